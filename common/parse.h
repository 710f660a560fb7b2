/* The one parser for each syntax of Skyroot's own: sizes, durations,
 * host:port, PCI addresses, hex, the CA pin and names.  Every program (skyrootd,
 * skyctl, skyagent, skyvmm) and every layer (flags, config files, the
 * kernel command line, API bodies) reads these values through here, so a
 * value that one accepts, all accept.  docs/syntax.md is the user's page.
 *
 * Pure functions: no logging, no allocation; 0 or a negative errno, and no
 * out-parameter is written on failure. */
#ifndef SKY_COMMON_PARSE_H
#define SKY_COMMON_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sizes: a whole number of bytes, optionally followed by a unit: K, M, G,
 * T, P, E, each a power of 1024, optionally followed by "iB" or "B" ("2G" =
 * "2GiB" = "2GB" = 2 * 2^30, as QEMU and free(1) read them); "B" alone
 * means bytes.  Units in any case: "4096", "512M", "2GiB", "64g", "1kb".
 * No sign, blank or fraction.  -EINVAL for bad syntax, -ERANGE above
 * INT64_MAX. */
int sky_parse_size(const char *s, uint64_t *bytes);

/* Durations: one or more whole numbers each followed by a unit, ms, s, m, h,
 * d or w, written together ("1h30m", "90s", "500ms", "7d"), each unit
 * smaller than the one before ("30m1h" and "1m1m" are refused); a plain
 * number alone means seconds.  Units in lower case; no sign, blank or
 * fraction.  The result is in milliseconds.  -EINVAL for bad syntax,
 * -ERANGE above INT64_MAX ms. */
int sky_parse_duration_ms(const char *s, uint64_t *ms);
/* The same, in whole seconds: -EINVAL when it is not a whole number of
 * seconds ("1500ms"). */
int sky_parse_duration(const char *s, uint64_t *seconds);

/* A whole decimal number in [min, max].  -EINVAL for bad syntax, -ERANGE
 * outside the range. */
int sky_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* "HOST:PORT", "HOST", "[V6]:PORT", "[V6]" and a bare IPv6 address
 * ("::1", more than one colon: no port; a zone as in "fe80::1%eth0" is
 * kept).  HOST is a DNS name or an IPv4 address (at most 253 bytes; labels
 * of letters, digits, '-' and '_', 1..63 bytes, not starting or ending with
 * '-') or an IPv6 address (brackets removed); PORT 1..65535, 1 to 5 digits.  A missing port is default_port (0:
 * the port is required).  -EINVAL for bad syntax, -ENAMETOOLONG when HOST
 * does not fit in hostlen. */
int sky_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, uint16_t default_port);

/* A comma-separated list of such addresses ("a:7443,[fd00::2]:7443,b"),
 * as skyroot.controller= and skyagent --controller take it.  Every item is
 * read by sky_parse_hostport (default_port when it names none); an item
 * that names the same host (case-insensitively) and port as an earlier one
 * is dropped, so the order is that of first appearance.  0 with *n (>= 1)
 * entries in out; -EINVAL for an empty list, an empty item ("a,,b", a
 * trailing comma) or a bad item; -E2BIG for more than max distinct items;
 * -ENAMETOOLONG for an item longer than SKY_HOSTPORT_ITEM_MAX bytes.  *bad (may be NULL) is then the 1-based number of
 * the item at fault.  out is written up to the failing item. */
#define SKY_HOSTPORT_HOST_MAX 256
#define SKY_HOSTPORT_ITEM_MAX 300
struct sky_hostport {
	char host[SKY_HOSTPORT_HOST_MAX]; /* IPv6 without brackets */
	uint16_t port;
};
int sky_parse_hostport_list(const char *s, struct sky_hostport *out, size_t max, size_t *n, uint16_t default_port,
			    size_t *bad);

/* "ADDR:PORT" / "[V6]:PORT" with a numeric address into a sockaddr usable
 * by bind(2) and uv_tcp_bind.  PORT 0..65535 (0: the kernel picks one);
 * ":PORT" is every IPv4 address (0.0.0.0), "localhost:PORT" 127.0.0.1.
 * -EINVAL for anything else (a DNS name, a missing port). */
struct sockaddr_storage;
int sky_parse_listen(const char *s, struct sockaddr_storage *out);

/* A PCI address as boards and lspci print it: "DDDD:BB:DD.F" (domain,
 * bus, device 00-1f, function 0-7, hex in either case) or "BB:DD.F" for
 * domain 0000.  Writes the canonical lower-case "0000:00:03.0".
 * -EINVAL for anything else, -ENOBUFS when len < SKY_PCI_ADDR_LEN. */
#define SKY_PCI_ADDR_LEN 13
int sky_parse_pci(const char *s, char *out, size_t len);

/* A MAC address: six pairs of hex digits (either case) separated by ':'
 * ("02:53:4b:00:00:01"), or, with n == 3, a prefix of three pairs
 * ("02:53:4b").  -EINVAL for anything else.  sky_format_mac writes the
 * canonical lower-case form into out (SKY_MAC_LEN bytes). */
#define SKY_MAC_LEN 18
int sky_parse_mac_n(const char *s, uint8_t *out, size_t n);
static inline int sky_parse_mac(const char *s, uint8_t out[6])
{
	return sky_parse_mac_n(s, out, 6);
}
void sky_format_mac(const uint8_t mac[6], char out[SKY_MAC_LEN]);

/* A guest NIC as skyctl's --nic takes it: "NETWORK" or "NETWORK,mac=M"
 * (M as sky_parse_mac reads it).  The network name into net (netlen
 * bytes; not checked against sky_name_ok here), the MAC into mac with
 * *has_mac.  -EINVAL for anything else (an empty name, another key, a
 * second mac=), -ENAMETOOLONG when the name does not fit.  Nothing is
 * written on failure (sky_parse_mac_n neither). */
int sky_parse_nic(const char *s, char *net, size_t netlen, uint8_t mac[6], bool *has_mac);

/* The value of one hex digit of either case, or -1. */
int sky_hex_digit(char c);
/* Exactly 2*len hex digits of either case into len bytes.  -EINVAL. */
int sky_parse_hex(const char *s, uint8_t *out, size_t len);
/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void sky_format_hex(const uint8_t *data, size_t len, char *out);

/* The CA pin: "sha256:" (either case) and 64 hex digits -> 32 bytes. */
int sky_parse_ca_pin(const char *s, uint8_t out[32]);

/* A name people give to a board, image, guest or credential (and the VMM
 * to a guest): 1 to SKY_NAME_MAX (common/limits.h) bytes of [A-Za-z0-9._-],
 * not starting with '-' or '.', and not starting with id_prefix ("brd-",
 * "img-", "gst-"; NULL or "" for none): names and ids share the API's
 * paths, so a name must never read as an id.  NULL is not a name. */
bool sky_name_ok(const char *name, const char *id_prefix);

/* Formatters, the inverse for people: 512 -> "512 B", 8388608 -> "8.0 MiB";
 * 42 -> "42s", 5400 -> "1h30m", 0 -> "0s" (sky_parse_duration reads every
 * one back to the same value).  -ENOBUFS when len is too small (32 always
 * suffices), -EINVAL when buf is NULL. */
int sky_format_size(uint64_t bytes, char *buf, size_t len);
int sky_format_duration(uint64_t seconds, char *buf, size_t len);
/* A size as sky_parse_size reads it back exactly, in the largest unit that
 * divides it: 4096 -> "4K", 2147483648 -> "2G", 1536 -> "1536", 0 -> "0".
 * For config files, defaults in usage texts and limits in messages. */
int sky_format_size_exact(uint64_t bytes, char *buf, size_t len);

#endif
