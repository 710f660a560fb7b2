/* The controller from DNS SRV (see agent/srv.h), parsed with libresolv. */
#include "agent/srv.h"

#include "agent/ctlset.h"
#include "common/parse.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Whether SRV (prio, weight) goes before (p2, w2): lower priority first,
 * then higher weight; equal keys keep the answer's order. */
static bool srv_before(unsigned prio, unsigned weight, unsigned p2, unsigned w2)
{
	return prio < p2 || (prio == p2 && weight > w2);
}

int agent_srv_list(const unsigned char *answer, size_t len, struct sky_hostport *out, size_t max, size_t *count)
{
	ns_msg msg;
	unsigned prios[AGENT_MAX_CONTROLLERS], weights[AGENT_MAX_CONTROLLERS];
	size_t n = 0;
	bool too_long = false;

	if (max > AGENT_MAX_CONTROLLERS)
		max = AGENT_MAX_CONTROLLERS;
	if (len > AGENT_SRV_ANSWER_MAX || ns_initparse(answer, (int)len, &msg) < 0)
		return -EINVAL;
	int nrr = ns_msg_count(msg, ns_s_an);
	for (int i = 0; i < nrr; i++) {
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
		struct sky_hostport hp;
		int r = strchr(target, ':') ? -EINVAL : sky_parse_hostport(target, hp.host, sizeof(hp.host), &hp.port, p);
		if (r == -ENAMETOOLONG)
			too_long = true;
		if (r < 0)
			continue;
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = out[k].port == hp.port && strcasecmp(out[k].host, hp.host) == 0;
		if (dup)
			continue;
		/* Insertion into the sorted list, after its equals; beyond max
		 * the worst goes. */
		size_t at = n;
		while (at > 0 && srv_before(prio, weight, prios[at - 1], weights[at - 1]))
			at--;
		if (at >= max)
			continue;
		size_t last = n < max ? n : max - 1;
		for (size_t k = last; k > at; k--) {
			out[k] = out[k - 1];
			prios[k] = prios[k - 1];
			weights[k] = weights[k - 1];
		}
		out[at] = hp;
		prios[at] = prio;
		weights[at] = weight;
		if (n < max)
			n++;
	}
	if (n == 0)
		return too_long ? -ENAMETOOLONG : -ENOENT;
	*count = n;
	return 0;
}

int agent_srv_pick(const unsigned char *answer, size_t len, char *host, size_t hostlen, uint16_t *port)
{
	struct sky_hostport list[AGENT_MAX_CONTROLLERS];
	size_t n;
	int r = agent_srv_list(answer, len, list, AGENT_MAX_CONTROLLERS, &n);

	if (r < 0)
		return r;
	if (strlen(list[0].host) >= hostlen)
		return -ENAMETOOLONG;
	memcpy(host, list[0].host, strlen(list[0].host) + 1);
	*port = list[0].port;
	return 0;
}

int agent_srv_lookup(struct sky_hostport *out, size_t max, size_t *count)
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
	return agent_srv_list(answer, (size_t)n, out, max, count);
}
