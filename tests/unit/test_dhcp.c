/* Unit tests for agent/dhcp.c (the controller's address from DHCP option
 * 224, as fwimage/udhcpc.script writes it) and its place in agent/config.c
 * (--controller-from-dhcp: used only when neither --controller nor
 * skyroot.controller= names the controller).
 *
 * Environment: none.  Temporary files under $TMPDIR (default /tmp).
 *
 *   ./test_dhcp
 */
#include "agent/config.h"
#include "agent/dhcp.h"
#include "common/parse.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define PIN_A "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static struct agent_config cfg; /* large: keep it off the stack */
static char err[1024];

/* hex of a string, as udhcpc exports an option it has no name for */
static const char *hex(const char *s, size_t len)
{
	static char out[2048];
	assert_true(len * 2 < sizeof(out));
	sky_format_hex((const uint8_t *)s, len, out);
	return out;
}

static int parse_hex(const char *h, char *host, size_t hostlen, uint16_t *port)
{
	return agent_dhcp_controller(h, strlen(h), host, hostlen, port, 7443);
}

static int parse_str(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	return parse_hex(hex(s, strlen(s)), host, hostlen, port);
}

/* parse (parse_str or parse_hex) reads in as want_host:want_port (a
 * macro: a failure names the caller's line). */
#define assert_reads(parse, in, want_host, want_port)                     \
	do {                                                              \
		char got[256];                                            \
		uint16_t got_port = 0;                                    \
		assert_int_equal(parse((in), got, sizeof(got), &got_port), 0); \
		assert_string_equal(got, (want_host));                    \
		assert_int_equal(got_port, (want_port));                  \
	} while (0)

/* The longest value an option can carry, 255 bytes: a 250-byte DNS name
 * (labels of 63, a DNS name's limit) and ":7443". */
static void longest_value(char out[256])
{
	memset(out, 'a', 250);
	out[63] = out[127] = out[191] = '.';
	memcpy(out + 250, ":7443", 6);
}

static void test_good_values(void **state)
{
	(void)state;
	char host[256];
	uint16_t port = 0;

	assert_reads(parse_str, "10.77.0.2:7443", "10.77.0.2", 7443);
	assert_reads(parse_str, "ctl.rack.example:9443", "ctl.rack.example", 9443);
	/* no port: the default */
	assert_reads(parse_str, "ctl", "ctl", 7443);
	assert_reads(parse_str, "[fd00::2]:8443", "fd00::2", 8443);
	/* upper-case hex and udhcpc's / echo's trailing newline */
	assert_reads(parse_hex, "31302E37372E302E323A31\n", "10.77.0.2", 1);
	/* one trailing NUL (a server that sends C strings) */
	assert_reads(parse_hex, "63746c3a3900", "ctl", 9);
	/* the longest value an option can carry */
	char longest[256];
	longest_value(longest);
	assert_int_equal(strlen(longest), 255);
	assert_int_equal(parse_str(longest, host, sizeof(host), &port), 0);
	assert_int_equal(strlen(host), 250);
}

static void test_bad_values(void **state)
{
	(void)state;
	char host[256] = "untouched";
	uint16_t port = 1234;
	static const char *const bad_strings[] = {
		"10.77.0.2:0",     "10.77.0.2:65536", "10.77.0.2:", "10.77.0.2:http", ":7443",
		"ctl :7443",       "ctl:7443 x",      "[fd00::2",   "[fd00::2]x",    "ctl\t:7443",
		"ctl:7443\r\nx",   "ctl\x7f:1",       "ctl\xc3\xa9:1",
	};
	for (size_t i = 0; i < sizeof(bad_strings) / sizeof(bad_strings[0]); i++) {
		if (parse_str(bad_strings[i], host, sizeof(host), &port) != -EINVAL)
			fail_msg("accepted or misjudged DHCP value '%s'", bad_strings[i]);
	}
	/* a NUL inside, not only at the end */
	assert_int_equal(parse_hex("63746c00313a31", host, sizeof(host), &port), -EINVAL);
	/* only NULs, empty, odd length, not hex */
	assert_int_equal(parse_hex("00", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(parse_hex("", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(parse_hex("\n", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(parse_hex("6374c", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(parse_hex("63746g", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(parse_hex("63 74", host, sizeof(host), &port), -EINVAL);
	/* more than an option can hold */
	char toolong[300];
	memset(toolong, 'a', 251);
	memcpy(toolong + 251, ":7443", 6);
	assert_int_equal(parse_str(toolong, host, sizeof(host), &port), -E2BIG);
	/* nothing written on failure */
	assert_string_equal(host, "untouched");
	assert_int_equal(port, 1234);
	/* a host that does not fit the caller's buffer */
	char small[4];
	assert_int_equal(parse_str("ctl.example:1", small, sizeof(small), &port), -ENAMETOOLONG);
}

static char files[4][PATH_MAX];

static const char *write_file(int slot, const char *text, size_t len)
{
	const char *t = getenv("TMPDIR");
	snprintf(files[slot], sizeof(files[slot]), "%s/skydhcp.XXXXXX", t && *t ? t : "/tmp");
	int fd = mkstemp(files[slot]);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return files[slot];
}

static int teardown_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i][0])
			unlink(files[i]);
		files[i][0] = '\0';
	}
	return 0;
}

static void test_file(void **state)
{
	(void)state;
	char host[256];
	uint16_t port = 0;
	const char *h = hex("10.77.3.2:7001", 14);
	char line[64];
	snprintf(line, sizeof(line), "%.28s\n", h);
	const char *f = write_file(0, line, strlen(line));
	assert_int_equal(agent_dhcp_controller_file(f, host, sizeof(host), &port, 7443), 0);
	assert_string_equal(host, "10.77.3.2");
	assert_int_equal(port, 7001);
	assert_int_equal(agent_dhcp_controller_file("/nonexistent/dhcp", host, sizeof(host), &port, 7443),
			 -ENOENT);
	/* a file larger than any option's hex is refused before parsing */
	char big[1024];
	memset(big, 'a', sizeof(big));
	f = write_file(1, big, sizeof(big));
	assert_int_equal(agent_dhcp_controller_file(f, host, sizeof(host), &port, 7443), -E2BIG);
	/* the bound is the file's: the hex of a full 255-byte option and two
	 * newlines is read; one byte more is refused though its value fits */
	char longest[256], full[2 * 255 + 4];
	longest_value(longest);
	snprintf(full, sizeof(full), "%.510s\n\n", hex(longest, 255));
	f = write_file(2, full, strlen(full));
	assert_int_equal(agent_dhcp_controller_file(f, host, sizeof(host), &port, 7443), 0);
	assert_int_equal(strlen(host), 250);
	strcat(full, "\n");
	f = write_file(3, full, strlen(full));
	assert_int_equal(agent_dhcp_controller_file(f, host, sizeof(host), &port, 7443), -E2BIG);
}

/* skyagent's flags: the DHCP file fills the controller only when nothing
 * else names it, and never the pin or the token. */
static int agent_parse(const char *first, ...)
{
	char *argv[24];
	int argc = 0;
	argv[argc++] = (char *)"skyagent";
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		assert_true(argc < 22);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	memset(err, 0, sizeof(err));
	return agent_config_parse(&cfg, argc, argv, err, sizeof(err));
}

static void test_config_precedence(void **state)
{
	(void)state;
	const char *h = hex("10.77.0.2:7443", 14);
	const char *dhcp = write_file(0, h, strlen(h));
	const char *with_ctl = "console=ttyS0 skyroot.controller=ctl.cmdline:9000 skyroot.ca=" PIN_A;
	const char *cmd_ctl = write_file(1, with_ctl, strlen(with_ctl));
	const char *no_ctl = "console=ttyS0 skyroot.token=T1 skyroot.ca=" PIN_A;
	const char *cmd_none = write_file(2, no_ctl, strlen(no_ctl));

	/* the command line names the controller: DHCP is not used */
	assert_int_equal(agent_parse("--cmdline", cmd_ctl, "--controller-from-dhcp", dhcp, NULL), 0);
	assert_string_equal(cfg.controller_host, "ctl.cmdline");
	assert_int_equal(cfg.controller_port, 9000);
	/* a flag wins over both */
	assert_int_equal(agent_parse("--cmdline", cmd_none, "--controller", "flag.host:1",
				     "--controller-from-dhcp", dhcp, NULL),
			 0);
	assert_string_equal(cfg.controller_host, "flag.host");
	/* nothing else: DHCP's, and the pin and token still from the command line */
	assert_int_equal(agent_parse("--cmdline", cmd_none, "--controller-from-dhcp", dhcp, NULL), 0);
	assert_string_equal(cfg.controller_host, "10.77.0.2");
	assert_int_equal(cfg.controller_port, 7443);
	assert_string_equal(cfg.token, "T1");
	assert_true(cfg.have_ca_pin);
	/* the file missing: say which option and which file */
	assert_int_equal(agent_parse("--cmdline", cmd_none, "--controller-from-dhcp", "/nonexistent/ctl", NULL),
			 -EINVAL);
	if (!strstr(err, "DHCP option 224") || !strstr(err, "/nonexistent/ctl"))
		fail_msg("unhelpful error: %s", err);
	/* a bad value: refused, not dialled */
	const char *bad = hex("evil host:1", 11);
	const char *badf = write_file(3, bad, strlen(bad));
	assert_int_equal(agent_parse("--cmdline", cmd_none, "--controller-from-dhcp", badf, NULL), -EINVAL);
	if (!strstr(err, "bad controller address from DHCP option 224"))
		fail_msg("unhelpful error: %s", err);
	/* DHCP never supplies a pin: without one on the command line, no start */
	const char *nopin = "console=ttyS0";
	unlink(files[1]);
	const char *cmd_nopin = write_file(1, nopin, strlen(nopin));
	assert_int_equal(agent_parse("--cmdline", cmd_nopin, "--controller-from-dhcp", dhcp, NULL), -EINVAL);
	if (!strstr(err, "no CA pin"))
		fail_msg("expected the missing pin: %s", err);
}

/* Option 224 may name several controllers, comma separated: all of them,
 * in order, duplicates once; an empty item or more than the bound is a bad
 * value (not "too long", which is for the option's size). */
static void test_list_values(void **state)
{
	(void)state;
	struct sky_hostport l[AGENT_MAX_CONTROLLERS];
	size_t n = 0;
	const char *v = "10.77.0.2:7443,[fd00::2]:9000,ctl,10.77.0.2:7443";
	const char *h = hex(v, strlen(v));

	assert_int_equal(agent_dhcp_controllers(h, strlen(h), l, AGENT_MAX_CONTROLLERS, &n, 7443), 0);
	assert_int_equal(n, 3);
	assert_string_equal(l[0].host, "10.77.0.2");
	assert_int_equal(l[0].port, 7443);
	assert_string_equal(l[1].host, "fd00::2");
	assert_int_equal(l[1].port, 9000);
	assert_string_equal(l[2].host, "ctl");
	assert_int_equal(l[2].port, 7443);
	/* the single-controller reading is the first of them */
	assert_reads(parse_str, v, "10.77.0.2", 7443);
	v = "a,,b";
	h = hex(v, strlen(v));
	assert_int_equal(agent_dhcp_controllers(h, strlen(h), l, AGENT_MAX_CONTROLLERS, &n, 7443), -EINVAL);
	v = "a,b,c";
	h = hex(v, strlen(v));
	assert_int_equal(agent_dhcp_controllers(h, strlen(h), l, 2, &n, 7443), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_list_values),
		cmocka_unit_test_teardown(test_file, teardown_files),
		cmocka_unit_test_teardown(test_config_precedence, teardown_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
