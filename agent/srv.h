/* The controller from DNS SRV (RFC 2782): _skyroot._tcp in the resolver's
 * search domains (the rack's dnsmasq serves it, and DHCP gives the board
 * that DNS server and domain), for a board whose kernel command line names
 * no controller and whose DHCP server sent no option 224 (agent/dhcp.h).
 * Like the DHCP option it is untrusted: it only says where to dial; the
 * CA pin never comes from the network. */
#ifndef SKY_AGENT_SRV_H
#define SKY_AGENT_SRV_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_SRV_NAME "_skyroot._tcp"
/* The largest answer read (a UDP answer is at most 512 bytes, EDNS more). */
#define AGENT_SRV_ANSWER_MAX 4096

/* The usable SRV records of a DNS answer, best first: lowest priority,
 * then highest weight, then the answer's order (no random choice: the
 * board tries them in this order, agent/ctlset.h).  A target named twice
 * with the same port counts once; beyond max (at most
 * AGENT_MAX_CONTROLLERS) the worst are left out.
 * Records whose target is "." (no service), whose port is 0 or whose
 * target is not a DNS name are skipped.  0 with *count >= 1 entries;
 * -ENOENT when no record is usable; -EINVAL for a malformed answer;
 * -ENAMETOOLONG when the only usable targets are too long. */
struct sky_hostport;
int agent_srv_list(const unsigned char *answer, size_t len, struct sky_hostport *out, size_t max, size_t *count);

/* The best of them (the first of agent_srv_list).
 * Records whose target is "." (no service), whose port is 0 or whose
 * target is not a DNS name are skipped.  0 with host and port;
 * -ENOENT when no record is usable; -EINVAL for a malformed answer;
 * -ENAMETOOLONG when the host does not fit hostlen. */
int agent_srv_pick(const unsigned char *answer, size_t len, char *host, size_t hostlen, uint16_t *port);

/* res_search(AGENT_SRV_NAME, IN, SRV) through the system resolver, then
 * agent_srv_list.  -ENOENT also when the name does not resolve. */
int agent_srv_lookup(struct sky_hostport *out, size_t max, size_t *count);

#endif
