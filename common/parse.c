/* The one parser for each syntax of Skyroot's own (see parse.h and
 * docs/syntax.md).  Every function checks the whole string, computes into
 * locals and writes its out-parameters only once everything is known to be
 * good. */
#include "common/parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/limits.h"

#define PARSE_HOST_MAX 253 /* a DNS name: RFC 1035's 255 octets on the wire */
#define PARSE_LABEL_MAX 63
#define PARSE_INT64_MAX ((uint64_t)INT64_MAX)
#define CA_PIN_PREFIX "sha256:"

static bool parse__digit(char c)
{
	return c >= '0' && c <= '9';
}

int sky_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The decimal digits at *p (at least one) into *v, with *p moved past them.
 * -EINVAL when there is no digit, -ERANGE above max. */
static int parse__number(const char **p, uint64_t max, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (!parse__digit(*s))
		return -EINVAL;
	for (; parse__digit(*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (n > (max - d) / 10) {
			/* Skip the rest of the digits: bad syntax after them
			 * still wins over the range. */
			while (parse__digit(*s))
				s++;
			*p = s;
			return -ERANGE;
		}
		n = n * 10 + d;
	}
	*p = s;
	*v = n;
	return 0;
}

/* ---- sizes ---------------------------------------------------------------- */

int sky_parse_size(const char *s, uint64_t *bytes)
{
	static const char letters[] = "KMGTPE";
	const char *p = s, *l;
	uint64_t v = 0, unit = 1;
	int r;

	if (!s || !bytes)
		return -EINVAL;
	r = parse__number(&p, UINT64_MAX, &v);
	if (r == -EINVAL)
		return r;
	if (*p != '\0' && strcasecmp(p, "B") != 0) {
		char c = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
		l = c != '\0' ? strchr(letters, c) : NULL;
		if (!l)
			return -EINVAL;
		if (p[1] != '\0' && strcasecmp(p + 1, "iB") != 0 && strcasecmp(p + 1, "B") != 0)
			return -EINVAL;
		for (const char *q = letters; q <= l; q++)
			unit *= 1024;
	}
	if (r < 0 || v > PARSE_INT64_MAX / unit)
		return -ERANGE;
	*bytes = v * unit;
	return 0;
}

/* The shortest "NU" that reads back exactly: the largest unit that divides
 * bytes. */
int sky_format_size_exact(uint64_t bytes, char *buf, size_t len)
{
	static const char letters[] = "KMGTPE";
	char tmp[32];
	size_t u = 0;
	int n;

	if (!buf)
		return -EINVAL;
	while (bytes != 0 && bytes % 1024 == 0 && u < sizeof(letters) - 1) {
		bytes /= 1024;
		u++;
	}
	if (u == 0)
		n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)bytes);
	else
		n = snprintf(tmp, sizeof(tmp), "%llu%c", (unsigned long long)bytes, letters[u - 1]);
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	memcpy(buf, tmp, (size_t)n + 1);
	return 0;
}

int sky_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	char tmp[32];
	double d;
	size_t u = 0;
	int n;

	if (!buf)
		return -EINVAL;
	if (bytes < 1024) {
		n = snprintf(tmp, sizeof(tmp), "%u B", (unsigned)bytes);
	} else {
		d = (double)bytes / 1024.0;
		/* 1023.95 would print as "1024.0": go to the next unit instead. */
		while (d >= 1023.95 && u + 1 < sizeof(units) - 1) {
			d /= 1024.0;
			u++;
		}
		n = snprintf(tmp, sizeof(tmp), "%.1f %ciB", d, units[u]);
	}
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	memcpy(buf, tmp, (size_t)n + 1);
	return 0;
}

/* ---- durations ------------------------------------------------------------ */

static const struct {
	const char *name;
	uint64_t ms;
} parse__units[] = {
	/* Longest names first where one is a prefix of another ("ms", "m"). */
	{ "w", 7ull * 24 * 3600 * 1000 },
	{ "d", 24ull * 3600 * 1000 },
	{ "h", 3600ull * 1000 },
	{ "ms", 1 },
	{ "m", 60ull * 1000 },
	{ "s", 1000 },
};

/* The unit at *p: its index in parse__units, *p moved past it; -1 when none. */
static int parse__unit(const char **p)
{
	for (size_t i = 0; i < sizeof(parse__units) / sizeof(parse__units[0]); i++) {
		size_t n = strlen(parse__units[i].name);
		if (strncmp(*p, parse__units[i].name, n) == 0) {
			*p += n;
			return (int)i;
		}
	}
	return -1;
}

int sky_parse_duration_ms(const char *s, uint64_t *ms)
{
	const char *p = s;
	uint64_t total = 0, prev_unit = UINT64_MAX;
	bool range = false;

	if (!s || !ms)
		return -EINVAL;
	do {
		uint64_t v = 0, unit;
		int r = parse__number(&p, UINT64_MAX, &v), u;

		if (r == -EINVAL)
			return r;
		if (r == -ERANGE)
			range = true;
		if (*p == '\0' && prev_unit == UINT64_MAX) {
			unit = 1000; /* a plain number alone: seconds */
		} else {
			u = parse__unit(&p);
			if (u < 0)
				return -EINVAL;
			unit = parse__units[u].ms;
		}
		/* Each part in a smaller unit than the one before: "1h30m",
		 * never "30m1h" or "1m1m". */
		if (unit >= prev_unit)
			return -EINVAL;
		prev_unit = unit;
		if (range || v > PARSE_INT64_MAX / unit || total > PARSE_INT64_MAX - v * unit)
			range = true;
		else
			total += v * unit;
	} while (*p != '\0');
	if (range)
		return -ERANGE;
	*ms = total;
	return 0;
}

int sky_parse_duration(const char *s, uint64_t *seconds)
{
	uint64_t ms;
	int r;

	if (!seconds)
		return -EINVAL;
	r = sky_parse_duration_ms(s, &ms);
	if (r < 0)
		return r;
	if (ms % 1000 != 0)
		return -EINVAL;
	*seconds = ms / 1000;
	return 0;
}

int sky_format_duration(uint64_t seconds, char *buf, size_t len)
{
	static const struct {
		char unit;
		uint64_t s;
	} parts[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };
	char tmp[48];
	size_t n = 0;

	if (!buf)
		return -EINVAL;
	if (seconds == 0) {
		strcpy(tmp, "0s");
		n = 2;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && seconds > 0; i++) {
		uint64_t v = seconds / parts[i].s;
		if (v == 0)
			continue;
		seconds -= v * parts[i].s;
		n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%llu%c", (unsigned long long)v,
				      parts[i].unit);
	}
	if (n >= len)
		return -ENOBUFS;
	memcpy(buf, tmp, n + 1);
	return 0;
}

/* ---- whole numbers -------------------------------------------------------- */

int sky_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *p = s;
	uint64_t v;
	int r;

	if (!s || !out)
		return -EINVAL;
	r = parse__number(&p, UINT64_MAX, &v);
	if (r == -EINVAL || *p != '\0')
		return -EINVAL;
	if (r < 0 || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* ---- host:port ------------------------------------------------------------ */

static bool parse__ipv6(const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 16];
	struct in6_addr a;
	char *zone;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	/* A zone ("fe80::1%eth0") names an interface: letters, digits, . _ - */
	zone = strchr(buf, '%');
	if (zone) {
		*zone++ = '\0';
		if (*zone == '\0')
			return false;
		for (const char *z = zone; *z != '\0'; z++)
			if (!isalnum((unsigned char)*z) && *z != '.' && *z != '_' && *z != '-')
				return false;
	}
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/* A DNS name or an IPv4 address: labels of letters, digits, '-' and '_'
 * (1..63 bytes, not starting or ending with '-'), separated by dots. */
static bool parse__hostname(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > PARSE_HOST_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '.';
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-' && c != '_')
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > PARSE_LABEL_MAX)
			return false;
	}
	return true;
}

/* 1 to 5 digits, no sign. */
static int parse__port(const char *s, uint16_t *out)
{
	uint64_t v;
	size_t n = strlen(s);

	if (n == 0 || n > 5 || sky_parse_uint(s, 0, 65535, &v) < 0)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* Split s into host (*h, *hlen; IPv6 without brackets) and port text (*p,
 * NULL when there is none).  *v6 says the host is an IPv6 address.
 * Checks the brackets only, not the parts. */
static int parse__split(const char *s, const char **h, size_t *hlen, const char **p, bool *v6)
{
	const char *colon;

	*p = NULL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close)
			return -EINVAL;
		*h = s + 1;
		*hlen = (size_t)(close - *h);
		*v6 = true;
		if (close[1] == ':')
			*p = close + 2;
		else if (close[1] != '\0')
			return -EINVAL;
		return 0;
	}
	*h = s;
	colon = strchr(s, ':');
	if (colon && strchr(colon + 1, ':')) {
		/* Two colons or more: a bare IPv6 address, no port. */
		*hlen = strlen(s);
		*v6 = true;
		return 0;
	}
	*v6 = false;
	*hlen = colon ? (size_t)(colon - s) : strlen(s);
	if (colon)
		*p = colon + 1;
	return 0;
}

int sky_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, uint16_t default_port)
{
	const char *h, *p;
	size_t hlen;
	bool v6;
	uint16_t portv = default_port;

	if (!s || !host || !port)
		return -EINVAL;
	if (parse__split(s, &h, &hlen, &p, &v6) < 0)
		return -EINVAL;
	if (v6 ? !parse__ipv6(h, hlen) : !parse__hostname(h, hlen))
		return -EINVAL;
	if (p ? parse__port(p, &portv) < 0 || portv == 0 : portv == 0)
		return -EINVAL;
	if (hlen >= hostlen)
		return -ENAMETOOLONG;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = portv;
	return 0;
}

int sky_parse_hostport_list(const char *s, struct sky_hostport *out, size_t max, size_t *n, uint16_t default_port,
			    size_t *bad)
{
	char item[SKY_HOSTPORT_ITEM_MAX + 1];
	size_t count = 0, index = 0;

	if (bad)
		*bad = 0;
	if (!s || !out || !n)
		return -EINVAL;
	for (const char *p = s;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		struct sky_hostport hp;
		bool dup = false;
		int r;

		index++;
		if (bad)
			*bad = index;
		if (len == 0)
			return -EINVAL;
		if (len > SKY_HOSTPORT_ITEM_MAX)
			return -ENAMETOOLONG;
		memcpy(item, p, len);
		item[len] = '\0';
		r = sky_parse_hostport(item, hp.host, sizeof(hp.host), &hp.port, default_port);
		if (r < 0)
			return r;
		for (size_t i = 0; i < count && !dup; i++)
			dup = out[i].port == hp.port && strcasecmp(out[i].host, hp.host) == 0;
		if (!dup) {
			if (count >= max)
				return -E2BIG;
			out[count++] = hp;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (bad)
		*bad = 0;
	*n = count;
	return 0;
}

int sky_parse_listen(const char *s, struct sockaddr_storage *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *h, *p;
	size_t hlen;
	bool v6;
	uint16_t port;
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	if (!s || !out)
		return -EINVAL;
	if (parse__split(s, &h, &hlen, &p, &v6) < 0 || !p || parse__port(p, &port) < 0)
		return -EINVAL;
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(&ss, 0, sizeof(ss));
	if (!v6 && (hlen == 0 || strcmp(host, "localhost") == 0)) {
		/* ":7443" is every address; localhost is the loopback. */
		strcpy(host, hlen == 0 ? "0.0.0.0" : "127.0.0.1");
	}
	if (!v6 && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
	} else if (v6 && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
	} else {
		return -EINVAL;
	}
	*out = ss;
	return 0;
}

/* ---- PCI addresses -------------------------------------------------------- */

/* Exactly n hex digits at s into *out. */
static int parse__hexfield(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		int d = sky_hex_digit(s[i]);
		if (d < 0)
			return -EINVAL;
		v = v * 16 + (unsigned)d;
	}
	*out = v;
	return 0;
}

int sky_parse_pci(const char *s, char *out, size_t len)
{
	unsigned domain = 0, bus, dev, fn;
	size_t n;

	if (!s || !out)
		return -EINVAL;
	n = strnlen(s, SKY_PCI_ADDR_LEN);
	/* "BB:DD.F" is the tail of "DDDD:BB:DD.F". */
	if (n == 12) {
		if (parse__hexfield(s, 4, &domain) < 0 || s[4] != ':')
			return -EINVAL;
		s += 5;
	} else if (n != 7) {
		return -EINVAL;
	}
	if (parse__hexfield(s, 2, &bus) < 0 || s[2] != ':' || parse__hexfield(s + 3, 2, &dev) < 0 ||
	    s[5] != '.' || parse__hexfield(s + 6, 1, &fn) < 0 || dev > 0x1f || fn > 7)
		return -EINVAL;
	if (len < SKY_PCI_ADDR_LEN)
		return -ENOBUFS;
	snprintf(out, len, "%04x:%02x:%02x.%x", domain, bus, dev, fn);
	return 0;
}

/* ---- MAC addresses -------------------------------------------------------- */

int sky_parse_mac_n(const char *s, uint8_t *out, size_t n)
{
	uint8_t b[6];
	unsigned v;

	if (!s || !out || n == 0 || n > 6 || strnlen(s, 3 * n) != 3 * n - 1)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (parse__hexfield(s + 3 * i, 2, &v) < 0 || (i + 1 < n && s[3 * i + 2] != ':'))
			return -EINVAL;
		b[i] = (uint8_t)v;
	}
	memcpy(out, b, n);
	return 0;
}

void sky_format_mac(const uint8_t mac[6], char out[SKY_MAC_LEN])
{
	snprintf(out, SKY_MAC_LEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int sky_parse_nic(const char *s, char *net, size_t netlen, uint8_t mac[6], bool *has_mac)
{
	const char *comma;
	size_t n;

	uint8_t m[6];

	if (!s || !net || !mac || !has_mac || netlen == 0)
		return -EINVAL;
	comma = strchr(s, ',');
	n = comma ? (size_t)(comma - s) : strlen(s);
	if (n == 0)
		return -EINVAL;
	if (comma && (strncmp(comma + 1, "mac=", 4) != 0 || sky_parse_mac(comma + 5, m) < 0))
		return -EINVAL;
	if (n >= netlen)
		return -ENAMETOOLONG;
	memcpy(net, s, n);
	net[n] = '\0';
	*has_mac = comma != NULL;
	if (comma)
		memcpy(mac, m, 6);
	return 0;
}

/* ---- hex and the CA pin --------------------------------------------------- */

int sky_parse_hex(const char *s, uint8_t *out, size_t len)
{
	if (!s || (!out && len > 0) || len > SIZE_MAX / 2 - 1)
		return -EINVAL;
	if (strnlen(s, 2 * len + 1) != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < 2 * len; i++)
		if (sky_hex_digit(s[i]) < 0)
			return -EINVAL;
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(sky_hex_digit(s[2 * i]) << 4 | sky_hex_digit(s[2 * i + 1]));
	return 0;
}

void sky_format_hex(const uint8_t *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

int sky_parse_ca_pin(const char *s, uint8_t out[32])
{
	size_t plen = strlen(CA_PIN_PREFIX);

	if (!s || strncasecmp(s, CA_PIN_PREFIX, plen) != 0)
		return -EINVAL;
	return sky_parse_hex(s + plen, out, 32);
}

bool sky_name_ok(const char *name, const char *id_prefix)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > SKY_NAME_MAX || name[0] == '-' || name[0] == '.')
		return false;
	if (id_prefix && id_prefix[0] && strncmp(name, id_prefix, strlen(id_prefix)) == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || parse__digit(c) || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}
