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

/* The best SRV record of a DNS answer: lowest priority, then highest
 * weight, then the first (no random choice: one board, one controller).
 * Records whose target is "." (no service), whose port is 0 or whose
 * target is not a DNS name are skipped.  0 with host and port;
 * -ENOENT when no record is usable; -EINVAL for a malformed answer;
 * -ENAMETOOLONG when the host does not fit hostlen. */
int agent_srv_pick(const unsigned char *answer, size_t len, char *host, size_t hostlen, uint16_t *port);

/* res_search(AGENT_SRV_NAME, IN, SRV) through the system resolver, then
 * agent_srv_pick.  -ENOENT also when the name does not resolve. */
int agent_srv_lookup(char *host, size_t hostlen, uint16_t *port);

#endif
