/* The controllers a board knows and which one it tries next (agent/ctlset.h). */
#include "agent/ctlset.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void agent_ctlset_init(struct agent_ctlset *s, const struct sky_hostport *list, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->list = list;
	s->n = n;
}

const struct sky_hostport *agent_ctlset_current(const struct agent_ctlset *s)
{
	return &s->list[s->cur];
}

bool agent_ctlset_need_resolve(const struct agent_ctlset *s)
{
	return s->n_addrs == 0;
}

size_t agent_ctlset_set_addrs(struct agent_ctlset *s, const struct addrinfo *res)
{
	s->n_addrs = 0;
	s->addr = 0;
	for (const struct addrinfo *ai = res; ai && s->n_addrs < AGENT_MAX_ADDRS; ai = ai->ai_next) {
		size_t len = ai->ai_family == AF_INET ? sizeof(struct sockaddr_in)
			     : ai->ai_family == AF_INET6 ? sizeof(struct sockaddr_in6) : 0;
		bool dup = false;

		if (len == 0 || ai->ai_addrlen < len || ai->ai_socktype != SOCK_STREAM)
			continue;
		for (size_t i = 0; i < s->n_addrs && !dup; i++)
			dup = s->addrs[i].ss_family == ai->ai_family && memcmp(&s->addrs[i], ai->ai_addr, len) == 0;
		if (dup)
			continue;
		memset(&s->addrs[s->n_addrs], 0, sizeof(s->addrs[0]));
		memcpy(&s->addrs[s->n_addrs], ai->ai_addr, len);
		s->n_addrs++;
	}
	return s->n_addrs;
}

const struct sockaddr *agent_ctlset_addr(const struct agent_ctlset *s)
{
	return s->n_addrs ? (const struct sockaddr *)&s->addrs[s->addr] : NULL;
}

bool agent_ctlset_advance(struct agent_ctlset *s)
{
	if (s->n_addrs && s->addr + 1 < s->n_addrs) {
		s->addr++;
		return false;
	}
	s->n_addrs = 0;
	s->addr = 0;
	s->cur = s->cur + 1 < s->n ? s->cur + 1 : 0;
	return s->cur == 0;
}

void agent_ctlset_describe(const struct agent_ctlset *s, char *buf, size_t len)
{
	const struct sky_hostport *c = agent_ctlset_current(s);
	bool v6 = strchr(c->host, ':') != NULL;
	char ip[INET6_ADDRSTRLEN] = "";
	const struct sockaddr_storage *ss = s->n_addrs ? &s->addrs[s->addr] : NULL;

	if (ss && ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
	else if (ss && ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
	if (ip[0] && strcmp(ip, c->host) != 0)
		snprintf(buf, len, "%s%s%s:%u (%s)", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port, ip);
	else
		snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port);
}
