/* libFuzzer target: the one parser per syntax (common/parse.c) and the
 * argument layer over it (common/args.c) - what every program reads from
 * flags, config files, the kernel command line and API bodies.
 *
 * The input, up to its first NUL, goes through every parser.  Invariants:
 * - no parser writes an out-parameter when it fails;
 * - a size or duration is at most INT64_MAX; its exact formatting parses
 *   back to the same value, and the human formatters fit in 32 bytes;
 * - sky_parse_duration succeeds exactly when the ms form is whole seconds;
 * - a host:port comes back bounded, non-empty, with a port != 0, and
 *   written again ("[V6]:PORT" or "HOST:PORT") parses to the same;
 * - a PCI address is canonical (lower case, 12 characters) and parses to
 *   itself; hex and the CA pin read back through sky_format_hex;
 * - a MAC address is written back canonical (17 characters, lower case)
 *   and parses to the same bytes; a --nic spec's network is a non-empty
 *   prefix of the input without ',', its MAC that of "mac=";
 * - the argument layer, given the input cut into arguments at '\n', never
 *   crashes, writes a NUL-terminated message on failure and puts *first in
 *   [1, argc] on success. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/args.h"
#include "common/parse.h"

#define FUZZ_ARGS_MAX 64
#define POISON 0xa5a5a5a5a5a5a5a5ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_size(const char *s)
{
	uint64_t v = POISON, back = POISON;
	char buf[32];
	int r = sky_parse_size(s, &v);

	if (r < 0) {
		if (v != POISON || (r != -EINVAL && r != -ERANGE))
			abort();
		return;
	}
	if (r != 0 || v > INT64_MAX)
		abort();
	if (sky_format_size_exact(v, buf, sizeof(buf)) != 0 || sky_parse_size(buf, &back) != 0 || back != v)
		abort();
	if (sky_format_size(v, buf, sizeof(buf)) != 0)
		abort();
}

static void check_duration(const char *s)
{
	uint64_t ms = POISON, sec = POISON, back = POISON;
	char buf[32];
	int r = sky_parse_duration_ms(s, &ms), rs = sky_parse_duration(s, &sec);

	if (r < 0) {
		if (ms != POISON || sec != POISON || rs != r || (r != -EINVAL && r != -ERANGE))
			abort();
		return;
	}
	if (ms > INT64_MAX)
		abort();
	if (ms % 1000 != 0) {
		if (rs != -EINVAL || sec != POISON)
			abort();
		return;
	}
	if (rs != 0 || sec != ms / 1000)
		abort();
	if (sky_format_duration(sec, buf, sizeof(buf)) != 0 || sky_parse_duration(buf, &back) != 0 || back != sec)
		abort();
}

static void check_uint(const char *s)
{
	uint64_t v = POISON;
	int r = sky_parse_uint(s, 10, 1000, &v);

	if (r < 0) {
		if (v != POISON)
			abort();
		return;
	}
	if (v < 10 || v > 1000)
		abort();
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			abort();
}

static void check_hostport(const char *s)
{
	char host[256], host2[256], again[300];
	uint16_t port = 4242, port2;
	int r;

	strcpy(host, "untouched");
	r = sky_parse_hostport(s, host, sizeof(host), &port, 7443);
	if (r < 0) {
		if (strcmp(host, "untouched") != 0 || port != 4242)
			abort();
		return;
	}
	if (port == 0 || host[0] == '\0' || strnlen(host, sizeof(host)) > 253)
		abort();
	snprintf(again, sizeof(again), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
	if (sky_parse_hostport(again, host2, sizeof(host2), &port2, 0) != 0 || strcmp(host, host2) != 0 ||
	    port != port2)
		abort();
}

static void check_listen(const char *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0x5a, sizeof(ss));
	if (sky_parse_listen(s, &ss) < 0) {
		for (size_t i = 0; i < sizeof(ss); i++)
			if (((unsigned char *)&ss)[i] != 0x5a)
				abort();
		return;
	}
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		abort();
}

static void check_mac_nic(const char *s)
{
	uint8_t m[6], back[6];
	char canon[SKY_MAC_LEN], net[16];
	bool has = false;
	int r;

	memset(m, 0xa5, sizeof(m));
	r = sky_parse_mac(s, m);
	if (r < 0) {
		for (size_t i = 0; i < sizeof(m); i++)
			if (m[i] != 0xa5)
				abort();
	} else {
		sky_format_mac(m, canon);
		if (strlen(canon) != 17 || sky_parse_mac(canon, back) != 0 || memcmp(m, back, 6) != 0 ||
		    strcasecmp(canon, s) != 0)
			abort();
	}
	memset(net, 0x5a, sizeof(net));
	r = sky_parse_nic(s, net, sizeof(net), m, &has);
	if (r < 0) {
		if (net[0] != 0x5a || (r != -EINVAL && r != -ENAMETOOLONG))
			abort();
		return;
	}
	if (!net[0] || strchr(net, ',') || strncmp(s, net, strlen(net)) != 0)
		abort();
	if (has != (s[strlen(net)] == ','))
		abort();
}

static void check_pci(const char *s)
{
	char out[SKY_PCI_ADDR_LEN], again[SKY_PCI_ADDR_LEN];

	strcpy(out, "untouched");
	if (sky_parse_pci(s, out, sizeof(out)) < 0) {
		if (strcmp(out, "untouched") != 0)
			abort();
		return;
	}
	if (strlen(out) != SKY_PCI_ADDR_LEN - 1 || strcasecmp(s + strlen(s) - 7, out + 5) != 0)
		abort();
	for (const char *p = out; *p; p++)
		if (isupper((unsigned char)*p))
			abort();
	if (sky_parse_pci(out, again, sizeof(again)) != 0 || strcmp(out, again) != 0)
		abort();
}

static void check_hex(const char *s)
{
	uint8_t bytes[64], pin[32];
	char hex[2 * sizeof(bytes) + 1];
	size_t n = strlen(s);

	memset(bytes, 0xa5, sizeof(bytes));
	if (n / 2 <= sizeof(bytes)) {
		if (sky_parse_hex(s, bytes, n / 2) == 0) {
			sky_format_hex(bytes, n / 2, hex);
			if (n % 2 != 0 || strcasecmp(hex, s) != 0)
				abort();
		} else {
			for (size_t i = 0; i < sizeof(bytes); i++)
				if (bytes[i] != 0xa5)
					abort();
		}
	}
	memset(pin, 0xa5, sizeof(pin));
	if (sky_parse_ca_pin(s, pin) == 0) {
		sky_format_hex(pin, sizeof(pin), hex);
		if (n != 7 + 64 || strncasecmp(s, "sha256:", 7) != 0 || strcasecmp(hex, s + 7) != 0)
			abort();
	} else {
		for (size_t i = 0; i < sizeof(pin); i++)
			if (pin[i] != 0xa5)
				abort();
	}
}

static int fuzz_cb(void *ctx, const char *value, char *err, size_t errlen)
{
	(void)ctx;
	if (value && value[0] == '!') {
		snprintf(err, errlen, "no");
		return -EINVAL;
	}
	return 0;
}

static void check_args(char *text)
{
	static uint64_t size, count, dur;
	static const char *str, *hp;
	static bool flag;
	static char pci[SKY_PCI_ADDR_LEN];
	static struct sky_arg_list list;
	struct sky_opt opts[] = {
		{ .name = "memory", .short_name = 'm', .kind = SKY_ARG_SIZE, .dest = &size, .metavar = "SIZE",
		  .min = 1 << 20, .max = 1ull << 40 },
		{ .name = "count", .short_name = 'c', .kind = SKY_ARG_UINT, .dest = &count, .metavar = "N", .max = 64 },
		{ .name = "ttl", .kind = SKY_ARG_DURATION, .dest = &dur, .metavar = "D" },
		{ .name = "name", .short_name = 'n', .kind = SKY_ARG_STR, .dest = &str, .metavar = "NAME" },
		{ .name = "controller", .kind = SKY_ARG_HOSTPORT, .dest = &hp, .metavar = "HOST:PORT" },
		{ .name = "force", .short_name = 'f', .kind = SKY_ARG_FLAG, .dest = &flag },
		{ .name = "device", .kind = SKY_ARG_PCI, .dest = pci, .metavar = "PCI" },
		{ .name = "disk", .short_name = 'd', .kind = SKY_ARG_LIST, .dest = &list, .metavar = "IMG", .cb = fuzz_cb },
		{ .name = "level", .kind = SKY_ARG_CALLBACK, .metavar = "L", .cb = fuzz_cb },
		{ 0 },
	};
	char *argv[FUZZ_ARGS_MAX + 2], err[128];
	int argc = 0, first = -1, r;

	argv[argc++] = (char *)"prog";
	for (char *p = text; p && argc <= FUZZ_ARGS_MAX;) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		argv[argc++] = p;
		p = nl ? nl + 1 : NULL;
	}
	argv[argc] = NULL;
	memset(err, 'z', sizeof(err));
	r = sky_args_parse(opts, argc, argv, &first, err, sizeof(err));
	if (r < 0 && !memchr(err, '\0', sizeof(err)))
		abort();
	if (r == 0 && (first < 1 || first > argc))
		abort();
	if (r != 0 && first != -1)
		abort();
	if (argv[argc] != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 4096)
		return 0;
	s = strndup((const char *)data, size);
	if (!s)
		return 0;
	check_size(s);
	check_duration(s);
	check_uint(s);
	check_hostport(s);
	check_listen(s);
	check_pci(s);
	check_mac_nic(s);
	check_hex(s);
	check_args(s); /* last: it cuts s at '\n' */
	free(s);
	return 0;
}
