/* The controllers a board knows and which one it tries next (issue 14).
 *
 * The list comes from --controller / skyroot.controller= (comma separated,
 * in that order), DHCP option 224 or DNS SRV (priority, then weight).  A
 * DNS name may stand for several controllers: every address it resolves
 * to is tried in turn, in the resolver's order, before the next entry.
 * On any failure (refused, TLS failure, pin mismatch, session lost,
 * heartbeats unanswered) the board moves to the next address, then the
 * next entry, and from the last back to the first; the same CA pin and
 * the same identity apply to all of them.  Pure state, no I/O: the
 * connection code (agent/client.c) resolves and dials. */
#ifndef SKY_AGENT_CTLSET_H
#define SKY_AGENT_CTLSET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/parse.h"

#define AGENT_MAX_CONTROLLERS 16
/* The addresses kept of one DNS name (beyond: ignored, logged). */
#define AGENT_MAX_ADDRS 16

struct addrinfo;

struct agent_ctlset {
	const struct sky_hostport *list; /* the configuration's, outlives us */
	size_t n;
	size_t cur;                      /* the entry being tried or in session */
	struct sockaddr_storage addrs[AGENT_MAX_ADDRS];
	size_t n_addrs;                  /* 0: cur is not resolved yet */
	size_t addr;                     /* the address of cur being tried */
};

/* n >= 1 entries of list, tried from the first. */
void agent_ctlset_init(struct agent_ctlset *s, const struct sky_hostport *list, size_t n);
const struct sky_hostport *agent_ctlset_current(const struct agent_ctlset *s);
/* Whether the current entry must be resolved before it is dialled. */
bool agent_ctlset_need_resolve(const struct agent_ctlset *s);
/* Keep the TCP addresses of res (IPv4 and IPv6, duplicates dropped, at
 * most AGENT_MAX_ADDRS) for the current entry and try its first.  Returns
 * how many were kept (0: none usable, as a failed resolution). */
size_t agent_ctlset_set_addrs(struct agent_ctlset *s, const struct addrinfo *res);
/* The address to dial (NULL when not resolved). */
const struct sockaddr *agent_ctlset_addr(const struct agent_ctlset *s);
/* After a failure: the next address of this entry, else the next entry
 * (to be resolved again), else the first.  Returns true when that went
 * past the last entry back to the first: a whole round failed. */
bool agent_ctlset_advance(struct agent_ctlset *s);
/* "HOST:PORT" of the current entry, plus " (ADDR)" once resolved to an
 * address other than HOST itself, for the log. */
void agent_ctlset_describe(const struct agent_ctlset *s, char *buf, size_t len);

#endif
