/* The controller from DNS SRV (see agent/srv.h), parsed with libresolv. */
#include "agent/srv.h"

#include "common/parse.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <string.h>

int agent_srv_pick(const unsigned char *answer, size_t len, char *host, size_t hostlen, uint16_t *port)
{
	ns_msg msg;
	char best[NS_MAXDNAME] = "";
	unsigned best_prio = 0, best_weight = 0;
	uint16_t best_port = 0;
	bool found = false;

	if (len > AGENT_SRV_ANSWER_MAX || ns_initparse(answer, (int)len, &msg) < 0)
		return -EINVAL;
	int n = ns_msg_count(msg, ns_s_an);
	for (int i = 0; i < n; i++) {
		ns_rr rr;
		char target[NS_MAXDNAME];
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return -EINVAL;
		if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in)
			continue;
		const unsigned char *rd = ns_rr_rdata(rr);
		if (ns_rr_rdlen(rr) < 7)
			return -EINVAL;
		unsigned prio = ns_get16(rd), weight = ns_get16(rd + 2);
		uint16_t p = (uint16_t)ns_get16(rd + 4);
		int used = dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, target, sizeof(target));
		if (used < 0 || used != ns_rr_rdlen(rr) - 6)
			return -EINVAL;
		/* "." (stored as ""): the domain offers no such service */
		if (target[0] == '\0' || p == 0)
			continue;
		char h[256];
		uint16_t unused;
		if (strchr(target, ':') || sky_parse_hostport(target, h, sizeof(h), &unused, p) < 0)
			continue;
		if (!found || prio < best_prio || (prio == best_prio && weight > best_weight)) {
			found = true;
			best_prio = prio;
			best_weight = weight;
			best_port = p;
			memcpy(best, h, strlen(h) + 1);
		}
	}
	if (!found)
		return -ENOENT;
	if (strlen(best) >= hostlen)
		return -ENAMETOOLONG;
	memcpy(host, best, strlen(best) + 1);
	*port = best_port;
	return 0;
}

int agent_srv_lookup(char *host, size_t hostlen, uint16_t *port)
{
	unsigned char answer[AGENT_SRV_ANSWER_MAX];
	struct __res_state st;

	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) < 0)
		return -ENOENT;
	int n = res_nsearch(&st, AGENT_SRV_NAME, ns_c_in, ns_t_srv, answer, sizeof(answer));
	res_nclose(&st);
	if (n < 0)
		return -ENOENT;
	/* res_nsearch returns the full length even when it did not fit */
	if ((size_t)n > sizeof(answer))
		return -EINVAL;
	return agent_srv_pick(answer, (size_t)n, host, hostlen, port);
}
