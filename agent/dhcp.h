/* The controller's address as the rack's DHCP server hands it out, for a
 * board whose kernel command line names none (fwimage/README.md "Rack").
 *
 * The firmware asks for DHCP option 224 (site-specific range, RFC 2132
 * and RFC 3942), a string "HOST:PORT" (or HOST, or [IPv6]:PORT);
 * several controllers as a comma-separated list of those, tried in that
 * order (agent/ctlset.h);
 * fwimage/udhcpc.script writes it to a file as busybox udhcpc gives it:
 * the option's bytes in hex.  It comes from whoever answers DHCP on the
 * wire, so it is bounded and checked here, and only ever names where to
 * dial: the CA pin never comes from DHCP, so a rogue server can at most
 * point a board at a controller that fails the pin check. */
#ifndef SKY_AGENT_DHCP_H
#define SKY_AGENT_DHCP_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_DHCP_OPTION 224
/* A DHCP option's value is at most 255 bytes (one length octet). */
#define AGENT_DHCP_VALUE_MAX 255

/* The option's value as udhcpc exports it (hex digits, either case,
 * optionally followed by white space) -> the first controller it names:
 * host (IPv6 without brackets) and port (default_port when the value
 * names none).  One trailing NUL
 * byte in the value is allowed (some servers send C strings); any other
 * byte must be printable ASCII without spaces.  0; -EINVAL for bad hex,
 * an empty value, a byte out of range or a bad HOST:PORT; -E2BIG for a
 * value over AGENT_DHCP_VALUE_MAX bytes; -ENAMETOOLONG when the host does
 * not fit hostlen.  Nothing is written on failure. */
int agent_dhcp_controller(const char *hex, size_t len, char *host, size_t hostlen, uint16_t *port,
			  uint16_t default_port);

/* The whole list the option names (common/parse.h
 * sky_parse_hostport_list: at most max controllers, duplicates dropped):
 * 0 with *count >= 1 entries; errors as above, -EINVAL also for too many. */
struct sky_hostport;
int agent_dhcp_controllers(const char *hex, size_t len, struct sky_hostport *out, size_t max, size_t *count,
			   uint16_t default_port);
int agent_dhcp_controllers_file(const char *path, struct sky_hostport *out, size_t max, size_t *count,
				uint16_t default_port);

/* The same read from FILE (at most 2 * AGENT_DHCP_VALUE_MAX + 2 bytes:
 * -E2BIG beyond); -errno when it cannot be read. */
int agent_dhcp_controller_file(const char *path, char *host, size_t hostlen, uint16_t *port,
			       uint16_t default_port);

#endif
