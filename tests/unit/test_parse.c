/* Unit tests for common/parse.c: every syntax accepted, every refusal, the
 * overflow edges, and that no out-parameter is written on failure.
 *
 *   ./test_parse     (no environment needed)
 */
#include "common/parse.h"
#include "common/limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define POISON 0xa5a5a5a5a5a5a5a5ull

struct num_case {
	const char *in;
	uint64_t want;
};

struct bad_case {
	const char *in;
	int want; /* -EINVAL or -ERANGE */
};

/* ---- sizes ---------------------------------------------------------------- */

static void test_size_accepted(void **state)
{
	(void)state;
	static const struct num_case good[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "007", 7 },
		{ "512B", 512 },
		{ "512b", 512 },
		{ "1K", 1024 },
		{ "1k", 1024 },
		{ "1KiB", 1024 },
		{ "1KB", 1024 },
		{ "1kb", 1024 },
		{ "512M", 512ull << 20 },
		{ "512MiB", 512ull << 20 },
		{ "2G", 2ull << 30 },
		{ "2GiB", 2ull << 30 },
		{ "2GB", 2ull << 30 },
		{ "2gib", 2ull << 30 },
		{ "64g", 64ull << 30 },
		{ "1T", 1ull << 40 },
		{ "1P", 1ull << 50 },
		{ "7E", 7ull << 60 },
		{ "0G", 0 },
		{ "9223372036854775807", INT64_MAX },
		{ "8388607T", 8388607ull << 40 },
	};
	for (size_t i = 0; i < N(good); i++) {
		uint64_t v = POISON;
		if (sky_parse_size(good[i].in, &v) != 0)
			fail_msg("size '%s' should parse", good[i].in);
		if (v != good[i].want)
			fail_msg("size '%s' is %llu, not %llu", good[i].in, (unsigned long long)v,
				 (unsigned long long)good[i].want);
	}
}

static void test_size_refused(void **state)
{
	(void)state;
	static const struct bad_case bad[] = {
		{ "", -EINVAL },
		{ "G", -EINVAL },
		{ "B", -EINVAL },
		{ "-1", -EINVAL },
		{ "+1", -EINVAL },
		{ " 1", -EINVAL },
		{ "1 ", -EINVAL },
		{ "1 G", -EINVAL },
		{ "1.5G", -EINVAL },
		{ "12Q", -EINVAL },
		{ "1Gi", -EINVAL },
		{ "1GiBs", -EINVAL },
		{ "1GG", -EINVAL },
		{ "1BB", -EINVAL },
		{ "1iB", -EINVAL },
		{ "0x10", -EINVAL },
		{ "1e9", -EINVAL },
		{ "1G\n", -EINVAL },
		{ "9223372036854775808", -ERANGE },          /* INT64_MAX + 1 */
		{ "18446744073709551616", -ERANGE },         /* past UINT64_MAX */
		{ "99999999999999999999999999999", -ERANGE },
		{ "8E", -ERANGE },
		{ "8388608T", -ERANGE },
		{ "99999999999999999999999G", -ERANGE },
		{ "99999999999999999999999Q", -EINVAL },     /* bad syntax wins */
	};
	for (size_t i = 0; i < N(bad); i++) {
		uint64_t v = POISON;
		int r = sky_parse_size(bad[i].in, &v);
		if (r != bad[i].want)
			fail_msg("size '%s': %d, not %d", bad[i].in, r, bad[i].want);
		assert_true(v == POISON);
	}
	uint64_t v;
	assert_int_equal(sky_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(sky_parse_size("1", NULL), -EINVAL);
}

static void test_size_format(void **state)
{
	(void)state;
	char buf[32];
	static const struct {
		uint64_t in;
		const char *human, *exact;
	} cases[] = {
		{ 0, "0 B", "0" },
		{ 512, "512 B", "512" },
		{ 1023, "1023 B", "1023" },
		{ 1024, "1.0 KiB", "1K" },
		{ 1536, "1.5 KiB", "1536" },
		{ 8388608, "8.0 MiB", "8M" },
		{ 2ull << 30, "2.0 GiB", "2G" },
		{ (1ull << 20) - 1, "1.0 MiB", "1048575" },
		{ 1ull << 40, "1.0 TiB", "1T" },
		{ 7ull << 60, "7.0 EiB", "7E" },
		{ UINT64_MAX, "16.0 EiB", "18446744073709551615" },
	};
	for (size_t i = 0; i < N(cases); i++) {
		assert_int_equal(sky_format_size(cases[i].in, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].human);
		assert_int_equal(sky_format_size_exact(cases[i].in, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].exact);
		uint64_t back;
		if (cases[i].in <= INT64_MAX) {
			assert_int_equal(sky_parse_size(buf, &back), 0);
			assert_true(back == cases[i].in);
		}
	}
	/* Too small a buffer: -ENOBUFS and nothing written. */
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(sky_format_size(8388608, buf, 7), -ENOBUFS);
	assert_int_equal(buf[0], 'z');
	assert_int_equal(sky_format_size(8388608, buf, 8), 0);
	assert_string_equal(buf, "8.0 MiB");
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(sky_format_size_exact(2ull << 30, buf, 2), -ENOBUFS);
	assert_int_equal(buf[0], 'z');
	assert_int_equal(sky_format_size_exact(2ull << 30, buf, 3), 0);
	assert_string_equal(buf, "2G");
}

/* ---- durations ------------------------------------------------------------ */

static void test_duration_accepted(void **state)
{
	(void)state;
	static const struct num_case good_ms[] = {
		{ "0", 0 },
		{ "90", 90000 },
		{ "90s", 90000 },
		{ "15m", 900000 },
		{ "1h", 3600000 },
		{ "1h30m", 5400000 },
		{ "1h30m15s", 5415000 },
		{ "1m500ms", 60500 },
		{ "500ms", 500 },
		{ "7d", 7ull * 86400000 },
		{ "2w", 14ull * 86400000 },
		{ "1w2d3h4m5s6ms", ((((9ull * 24 + 3) * 60 + 4) * 60) + 5) * 1000 + 6 },
		{ "0s", 0 },
		{ "1d0h", 86400000 },
		{ "9223372036854775807ms", INT64_MAX },
		{ "9223372036854775s", 9223372036854775000ull },
		{ "9223372036854775s807ms", INT64_MAX },
	};
	for (size_t i = 0; i < N(good_ms); i++) {
		uint64_t v = POISON;
		if (sky_parse_duration_ms(good_ms[i].in, &v) != 0)
			fail_msg("duration '%s' should parse", good_ms[i].in);
		if (v != good_ms[i].want)
			fail_msg("duration '%s' is %llu ms, not %llu", good_ms[i].in, (unsigned long long)v,
				 (unsigned long long)good_ms[i].want);
	}
	uint64_t s = POISON;
	assert_int_equal(sky_parse_duration("1h30m", &s), 0);
	assert_true(s == 5400);
	assert_int_equal(sky_parse_duration("90", &s), 0);
	assert_true(s == 90);
	assert_int_equal(sky_parse_duration("2000ms", &s), 0);
	assert_true(s == 2);
	assert_int_equal(sky_parse_duration("1m1000ms", &s), 0);
	assert_true(s == 61);
}

static void test_duration_refused(void **state)
{
	(void)state;
	static const struct bad_case bad[] = {
		{ "", -EINVAL },
		{ "s", -EINVAL },
		{ "h1", -EINVAL },
		{ "-1s", -EINVAL },
		{ "+1s", -EINVAL },
		{ "1.5h", -EINVAL },
		{ "1 h", -EINVAL },
		{ "1h 30m", -EINVAL },
		{ " 90", -EINVAL },
		{ "90 ", -EINVAL },
		{ "1H", -EINVAL },     /* units in lower case */
		{ "1x", -EINVAL },
		{ "1sec", -EINVAL },
		{ "1hr", -EINVAL },
		{ "1h30", -EINVAL },   /* a plain number only alone */
		{ "30m1h", -EINVAL },  /* units from the largest down */
		{ "1m1m", -EINVAL },
		{ "1s1s", -EINVAL },
		{ "500ms1s", -EINVAL },
		{ "1h\n", -EINVAL },
		{ "9223372036854775808ms", -ERANGE },
		{ "9223372036854776s", -ERANGE },
		{ "9223372036854775s808ms", -ERANGE },
		{ "106751991167301d", -ERANGE },
		{ "18446744073709551616", -ERANGE },
		{ "99999999999999999999999w1x", -EINVAL },  /* bad syntax wins */
	};
	for (size_t i = 0; i < N(bad); i++) {
		uint64_t v = POISON;
		int r = sky_parse_duration_ms(bad[i].in, &v);
		if (r != bad[i].want)
			fail_msg("duration '%s': %d, not %d", bad[i].in, r, bad[i].want);
		assert_true(v == POISON);
		r = sky_parse_duration(bad[i].in, &v);
		if (r != bad[i].want)
			fail_msg("duration '%s' (seconds): %d, not %d", bad[i].in, r, bad[i].want);
		assert_true(v == POISON);
	}
	/* Whole seconds only for sky_parse_duration. */
	uint64_t v = POISON;
	assert_int_equal(sky_parse_duration("1500ms", &v), -EINVAL);
	assert_int_equal(sky_parse_duration("1s1ms", &v), -EINVAL);
	assert_true(v == POISON);
	assert_int_equal(sky_parse_duration(NULL, &v), -EINVAL);
	assert_int_equal(sky_parse_duration_ms(NULL, &v), -EINVAL);
	assert_int_equal(sky_parse_duration("1s", NULL), -EINVAL);
}

static void test_duration_format(void **state)
{
	(void)state;
	static const struct {
		uint64_t s;
		const char *want;
	} cases[] = {
		{ 0, "0s" },
		{ 42, "42s" },
		{ 60, "1m" },
		{ 90, "1m30s" },
		{ 5400, "1h30m" },
		{ 86400, "1d" },
		{ 7 * 86400 + 1, "7d1s" },
		{ 90061, "1d1h1m1s" },
		{ INT64_MAX / 1000, "106751991167d7h12m55s" },
	};
	char buf[32];
	for (size_t i = 0; i < N(cases); i++) {
		uint64_t back = POISON;
		assert_int_equal(sky_format_duration(cases[i].s, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].want);
		assert_int_equal(sky_parse_duration(buf, &back), 0);
		assert_true(back == cases[i].s);
	}
	assert_int_equal(sky_format_duration(UINT64_MAX, buf, sizeof(buf)), 0); /* 32 always suffices */
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(sky_format_duration(5400, buf, 5), -ENOBUFS);
	assert_int_equal(buf[0], 'z');
	assert_int_equal(sky_format_duration(5400, buf, 6), 0);
	assert_string_equal(buf, "1h30m");
}

/* ---- whole numbers -------------------------------------------------------- */

static void test_uint(void **state)
{
	(void)state;
	uint64_t v = POISON;
	assert_int_equal(sky_parse_uint("0", 0, 10, &v), 0);
	assert_true(v == 0);
	assert_int_equal(sky_parse_uint("10", 0, 10, &v), 0);
	assert_true(v == 10);
	assert_int_equal(sky_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(sky_parse_uint("0064", 1, 64, &v), 0);
	assert_true(v == 64);

	static const struct bad_case bad[] = {
		{ "", -EINVAL }, { "-1", -EINVAL }, { "+1", -EINVAL }, { "1.0", -EINVAL }, { " 1", -EINVAL },
		{ "1 ", -EINVAL }, { "1k", -EINVAL }, { "0x1", -EINVAL }, { "11", -ERANGE }, { "0", -ERANGE },
		{ "18446744073709551616", -ERANGE }, { "99999999999999999999999999", -ERANGE },
		{ "99999999999999999999999999x", -EINVAL },
	};
	for (size_t i = 0; i < N(bad); i++) {
		v = POISON;
		int r = sky_parse_uint(bad[i].in, 1, 10, &v);
		if (r != bad[i].want)
			fail_msg("uint '%s': %d, not %d", bad[i].in, r, bad[i].want);
		assert_true(v == POISON);
	}
	assert_int_equal(sky_parse_uint(NULL, 0, 1, &v), -EINVAL);
}

/* ---- host:port ------------------------------------------------------------ */

static void test_hostport_accepted(void **state)
{
	(void)state;
	static const struct {
		const char *in, *host;
		uint16_t port;
	} good[] = {
		{ "ctl.example.net:7443", "ctl.example.net", 7443 },
		{ "10.0.2.2:1", "10.0.2.2", 1 },
		{ "ctl", "ctl", 7443 },
		{ "ctl:65535", "ctl", 65535 },
		{ "my_host-1.lan:80", "my_host-1.lan", 80 },
		{ "ctl:08080", "ctl", 8080 },
		{ "[::1]:7443", "::1", 7443 },
		{ "[::1]", "::1", 7443 },
		{ "[2001:db8::10]", "2001:db8::10", 7443 },
		{ "[2001:DB8::10]:9", "2001:DB8::10", 9 },
		{ "[fe80::1%eth0]:80", "fe80::1%eth0", 80 },
		{ "fd00::2", "fd00::2", 7443 },
		{ "::1", "::1", 7443 },
		{ "fe80::1%eth0", "fe80::1%eth0", 7443 },
		{ "[::ffff:10.0.2.2]:9", "::ffff:10.0.2.2", 9 },
	};
	char host[256];
	uint16_t port;
	for (size_t i = 0; i < N(good); i++) {
		if (sky_parse_hostport(good[i].in, host, sizeof(host), &port, 7443) != 0)
			fail_msg("'%s' should parse", good[i].in);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	/* The longest name: 253 bytes of 63-byte labels. */
	char name[300];
	memset(name, 'a', 253);
	name[63] = name[127] = name[191] = '.';
	name[253] = '\0';
	assert_int_equal(sky_parse_hostport(name, host, sizeof(host), &port, 7443), 0);
	assert_string_equal(host, name);
	name[253] = 'a';
	name[254] = '\0';
	assert_int_equal(sky_parse_hostport(name, host, sizeof(host), &port, 7443), -EINVAL);
}

static void test_hostport_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "ctl:0", "ctl:65536", "ctl:abc", "ctl:", ":7443", "ctl:+80", "ctl:007443", "ctl:-1",
		"ctl: 80", "[::1", "[::1]x", "[::1]:", "[zz::1]:1", "[]:1", "[10.0.2.2]:1", "[ctl]:1",
		"ho st:1", "ctl:1:2", "ctl/x:1", "user@ctl:1", "[fe80::1%]:1", "[fe80::1%e/0]:1",
		"a..b:1", ".ctl:1", "ctl.:1", "-ctl:1", "ctl-.net:1", "ctl\n", "1:2:3:4:5:6:7:8:9",
		"[::1]]:1", "[[::1]]:1",
	};
	char host[256];
	uint16_t port;
	for (size_t i = 0; i < N(bad); i++) {
		strcpy(host, "untouched");
		port = 4242;
		int r = sky_parse_hostport(bad[i], host, sizeof(host), &port, 7443);
		if (r != -EINVAL)
			fail_msg("'%s' should be refused, got %d", bad[i], r);
		assert_string_equal(host, "untouched");
		assert_int_equal(port, 4242);
	}
	/* A label of 64 bytes. */
	char name[80];
	memset(name, 'a', 64);
	strcpy(name + 64, ":1");
	assert_int_equal(sky_parse_hostport(name, host, sizeof(host), &port, 7443), -EINVAL);
	/* default_port 0: the port is required. */
	assert_int_equal(sky_parse_hostport("ctl", host, sizeof(host), &port, 0), -EINVAL);
	assert_int_equal(sky_parse_hostport("[::1]", host, sizeof(host), &port, 0), -EINVAL);
	assert_int_equal(sky_parse_hostport("ctl:1", host, sizeof(host), &port, 0), 0);
	/* The host must fit the caller's buffer. */
	char tiny[4] = "xyz";
	port = 4242;
	assert_int_equal(sky_parse_hostport("abcd:1", tiny, sizeof(tiny), &port, 7443), -ENAMETOOLONG);
	assert_string_equal(tiny, "xyz");
	assert_int_equal(port, 4242);
	assert_int_equal(sky_parse_hostport("abc:1", tiny, sizeof(tiny), &port, 7443), 0);
	assert_string_equal(tiny, "abc");
	assert_int_equal(sky_parse_hostport(NULL, host, sizeof(host), &port, 1), -EINVAL);
	assert_int_equal(sky_parse_hostport("a", NULL, 0, &port, 1), -EINVAL);
	assert_int_equal(sky_parse_hostport("a", host, sizeof(host), NULL, 1), -EINVAL);
}

static void test_listen(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
	char a[INET6_ADDRSTRLEN];

	assert_int_equal(sky_parse_listen("127.0.0.1:7443", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(in4->sin_port), 7443);
	assert_string_equal(inet_ntop(AF_INET, &in4->sin_addr, a, sizeof(a)), "127.0.0.1");

	assert_int_equal(sky_parse_listen("localhost:0", &ss), 0);
	assert_string_equal(inet_ntop(AF_INET, &in4->sin_addr, a, sizeof(a)), "127.0.0.1");
	assert_int_equal(ntohs(in4->sin_port), 0);

	assert_int_equal(sky_parse_listen(":7444", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_string_equal(inet_ntop(AF_INET, &in4->sin_addr, a, sizeof(a)), "0.0.0.0");

	assert_int_equal(sky_parse_listen("[::1]:65535", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 65535);
	assert_string_equal(inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a)), "::1");
	assert_int_equal(sky_parse_listen("[::]:1", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);

	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x", "127.0.0.1:-1",
		"ctl.example.net:1", "[::1]", "::1", "[::1]:", "[127.0.0.1]:1", "1.2.3:1", "[]:1",
		"localhost", "[localhost]:1",
	};
	for (size_t i = 0; i < N(bad); i++) {
		memset(&ss, 0x5a, sizeof(ss));
		if (sky_parse_listen(bad[i], &ss) != -EINVAL)
			fail_msg("listen '%s' should be refused", bad[i]);
		assert_int_equal(((unsigned char *)&ss)[0], 0x5a);
	}
	assert_int_equal(sky_parse_listen(NULL, &ss), -EINVAL);
}

/* ---- PCI addresses -------------------------------------------------------- */

static void test_pci(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} good[] = {
		{ "0000:01:00.0", "0000:01:00.0" },
		{ "01:00.0", "0000:01:00.0" },
		{ "02:1F.7", "0000:02:1f.7" },
		{ "ABCD:ff:1f.7", "abcd:ff:1f.7" },
		{ "ffff:ff:00.0", "ffff:ff:00.0" },
	};
	static const char *const bad[] = {
		"", "00:20.0", "00:1f.8", "0:01:00.0", "0000:01:00.0 ", "0000:01:00.0\n", "00:01:00.0",
		"../../../etc", "0000:01:00", "0000-01:00.0", "0000:01.00.0", "0000:01:00:0", "g000:01:00.0",
		"00000:01:00.0", "01:0.0", "1:00.0", "0000:01:00.00", " 01:00.0",
	};
	char out[SKY_PCI_ADDR_LEN];
	for (size_t i = 0; i < N(good); i++) {
		assert_int_equal(sky_parse_pci(good[i].in, out, sizeof(out)), 0);
		assert_string_equal(out, good[i].want);
	}
	for (size_t i = 0; i < N(bad); i++) {
		strcpy(out, "untouched");
		if (sky_parse_pci(bad[i], out, sizeof(out)) != -EINVAL)
			fail_msg("PCI '%s' should be refused", bad[i]);
		assert_string_equal(out, "untouched");
	}
	strcpy(out, "untouched");
	assert_int_equal(sky_parse_pci("01:00.0", out, SKY_PCI_ADDR_LEN - 1), -ENOBUFS);
	assert_string_equal(out, "untouched");
	assert_int_equal(sky_parse_pci(NULL, out, sizeof(out)), -EINVAL);
}

/* ---- hex and the CA pin --------------------------------------------------- */

static void test_hex(void **state)
{
	(void)state;
	static const uint8_t bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char hex[2 * sizeof(bytes) + 1];
	uint8_t out[sizeof(bytes)];

	sky_format_hex(bytes, sizeof(bytes), hex);
	assert_string_equal(hex, "00017f80abff");
	assert_int_equal(sky_parse_hex(hex, out, sizeof(out)), 0);
	assert_memory_equal(out, bytes, sizeof(bytes));
	assert_int_equal(sky_parse_hex("00017F80ABFF", out, sizeof(out)), 0);
	assert_memory_equal(out, bytes, sizeof(bytes));
	sky_format_hex(bytes, 0, hex);
	assert_string_equal(hex, "");
	assert_int_equal(sky_parse_hex("", out, 0), 0);

	static const char *const bad[] = {
		"", "00017f80abf", "00017f80abff0", "00017f80abfg", "g0017f80abff", "00017f80ab f",
		"0x017f80abff", "-0017f80abff",
	};
	for (size_t i = 0; i < N(bad); i++) {
		memset(out, 0xa5, sizeof(out));
		if (sky_parse_hex(bad[i], out, sizeof(out)) != -EINVAL)
			fail_msg("hex '%s' should be refused", bad[i]);
		for (size_t j = 0; j < sizeof(out); j++)
			assert_int_equal(out[j], 0xa5); /* untouched, even after good digits */
	}
	assert_int_equal(sky_parse_hex(NULL, out, 1), -EINVAL);

	/* Longer than any fixed buffer: 1000 bytes. */
	static uint8_t big[1000], back[1000];
	static char bighex[2001];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	sky_format_hex(big, sizeof(big), bighex);
	assert_int_equal(sky_parse_hex(bighex, back, sizeof(back)), 0);
	assert_memory_equal(big, back, sizeof(big));
}

#define PIN_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void test_ca_pin(void **state)
{
	(void)state;
	static const uint8_t want[32] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	};
	uint8_t out[32];
	assert_int_equal(sky_parse_ca_pin("sha256:" PIN_HEX, out), 0);
	assert_memory_equal(out, want, 32);
	assert_int_equal(sky_parse_ca_pin("SHA256:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF",
					  out),
			 0);
	assert_memory_equal(out, want, 32);
	assert_int_equal(sky_parse_ca_pin("Sha256:" PIN_HEX, out), 0);

	static const char *const bad[] = {
		"",
		PIN_HEX, /* no prefix */
		"sha256:",
		"sha1:" PIN_HEX,
		"sha256 :" PIN_HEX,
		"sha256::" PIN_HEX,
		"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",   /* 63 */
		"sha256:" PIN_HEX "0",                                                       /* 65 */
		"sha256:g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg", /* late */
		"sha256: 0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"sha256:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55",
		"sha256:" PIN_HEX "\n",
	};
	for (size_t i = 0; i < N(bad); i++) {
		memset(out, 0xa5, sizeof(out));
		if (sky_parse_ca_pin(bad[i], out) != -EINVAL)
			fail_msg("pin '%s' should be refused", bad[i]);
		for (size_t j = 0; j < sizeof(out); j++)
			assert_int_equal(out[j], 0xa5);
	}
	assert_int_equal(sky_parse_ca_pin(NULL, out), -EINVAL);
}

/* ---- names ---------------------------------------------------------------- */

static void test_name(void **state)
{
	(void)state;
	char longest[SKY_NAME_MAX + 2];

	static const char *const good[] = {
		"a", "Z", "7", "_", "web-1", "rack1-07", "ci-bot_1.x", "a.b.c", "A-Za-z0-9._-", "x-", "x.", "brd",
		"brd_1", "img.x", "gst", "board-gst-1", "BRD-1", /* the prefix is matched as given, not folded */
	};
	for (size_t i = 0; i < N(good); i++) {
		if (!sky_name_ok(good[i], NULL) || !sky_name_ok(good[i], "") || !sky_name_ok(good[i], "brd-"))
			fail_msg("name '%s' should be accepted", good[i]);
	}
	static const char *const bad[] = {
		"",     "-a",   ".a",   ".",    "-",      "..",     "a b",     "a/b",  "a:b", "a\nb", "a\tb",
		" a",   "a ",   "é",    "a\xff", "a@b",   "a+b",    "a%2fb",   "a*",   "~a",  "a\\b", "\x7f",
	};
	for (size_t i = 0; i < N(bad); i++) {
		if (sky_name_ok(bad[i], NULL) || sky_name_ok(bad[i], ""))
			fail_msg("name '%s' should be refused", bad[i]);
	}
	assert_false(sky_name_ok(NULL, NULL));
	assert_false(sky_name_ok(NULL, "brd-"));

	/* 1..SKY_NAME_MAX bytes: the longest is fine, one more is not. */
	memset(longest, 'n', sizeof(longest));
	longest[SKY_NAME_MAX] = '\0';
	assert_true(sky_name_ok(longest, NULL));
	longest[SKY_NAME_MAX] = 'n';
	longest[SKY_NAME_MAX + 1] = '\0';
	assert_false(sky_name_ok(longest, NULL));

	/* Names and ids share the API's paths: a name may not start with the
	 * kind's id prefix, and only that kind's prefix is refused. */
	assert_false(sky_name_ok("brd-1234", "brd-"));
	assert_false(sky_name_ok("brd-", "brd-"));
	assert_false(sky_name_ok("img-x", "img-"));
	assert_false(sky_name_ok("gst-web", "gst-"));
	assert_true(sky_name_ok("brd-1234", "img-"));
	assert_true(sky_name_ok("gst-web", "brd-"));
	assert_true(sky_name_ok("brd-1234", NULL));
	assert_true(sky_name_ok("brd", "brd-"));
	assert_true(sky_name_ok("xbrd-1", "brd-"));
	/* A bad name stays bad whatever the prefix. */
	assert_false(sky_name_ok(".hidden", "gst-"));
	assert_false(sky_name_ok("-x", "img-"));
}

/* Lists of controllers: commas, brackets, ports, duplicates, empty
 * items, too many. */
static void test_hostport_list(void **state)
{
	(void)state;
	struct sky_hostport l[4];
	size_t n = 99, bad = 99;

	assert_int_equal(sky_parse_hostport_list("a:7001,[fd00::2]:7002,b,[::1],10.0.0.1:1", l, 4, &n, 7443, &bad),
			 -E2BIG);
	assert_int_equal(bad, 5);
	assert_int_equal(sky_parse_hostport_list("a:7001,[fd00::2]:7002,b,[::1]", l, 4, &n, 7443, &bad), 0);
	assert_int_equal(n, 4);
	assert_int_equal(bad, 0);
	assert_string_equal(l[0].host, "a");
	assert_int_equal(l[0].port, 7001);
	assert_string_equal(l[1].host, "fd00::2");
	assert_int_equal(l[1].port, 7002);
	assert_string_equal(l[2].host, "b");
	assert_int_equal(l[2].port, 7443);
	assert_string_equal(l[3].host, "::1");
	assert_int_equal(l[3].port, 7443);

	/* One item is a list of one; a bare IPv6 address is one item. */
	assert_int_equal(sky_parse_hostport_list("ctl.example.net", l, 4, &n, 7443, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sky_parse_hostport_list("fe80::1%eth0", l, 4, &n, 7443, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].host, "fe80::1%eth0");

	/* Duplicates (same host, any case, same port) count once, the first
	 * place kept; the same host on another port is another controller. */
	assert_int_equal(sky_parse_hostport_list("b,a:1,B:7443,a:2,a:1,b", l, 4, &n, 7443, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal(l[0].host, "b");
	assert_string_equal(l[1].host, "a");
	assert_int_equal(l[1].port, 1);
	assert_int_equal(l[2].port, 2);
	/* ... so duplicates do not count against the bound. */
	assert_int_equal(sky_parse_hostport_list("a,a,a,a,a,a,b,c,d,d", l, 4, &n, 7443, NULL), 0);
	assert_int_equal(n, 4);

	/* Empty items, bad items: refused, the item named. */
	const struct {
		const char *s;
		size_t bad;
	} refused[] = {
		{"", 1}, {",", 1}, {"a,", 2}, {",a", 1}, {"a,,b", 2}, {"a, b", 2}, {"a:0,b", 1},
		{"a,b:65536", 2}, {"a,[fd00::2,b", 2}, {"a,fd00::2]:7", 2}, {"a;b", 1}, {"a,b:", 2},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		n = 99;
		assert_int_equal(sky_parse_hostport_list(refused[i].s, l, 4, &n, 7443, &bad), -EINVAL);
		assert_int_equal(bad, refused[i].bad);
		assert_int_equal(n, 99);
	}
	/* No default port: every item needs one. */
	assert_int_equal(sky_parse_hostport_list("a:1,b", l, 4, &n, 0, &bad), -EINVAL);
	assert_int_equal(bad, 2);
	/* An item longer than any address: refused before it is copied. */
	char longer[SKY_HOSTPORT_ITEM_MAX + 10] = "a,";
	memset(longer + 2, 'x', SKY_HOSTPORT_ITEM_MAX + 1);
	longer[SKY_HOSTPORT_ITEM_MAX + 3] = '\0';
	assert_int_equal(sky_parse_hostport_list(longer, l, 4, &n, 7443, &bad), -ENAMETOOLONG);
	assert_int_equal(bad, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_accepted),
		cmocka_unit_test(test_size_refused),
		cmocka_unit_test(test_size_format),
		cmocka_unit_test(test_duration_accepted),
		cmocka_unit_test(test_duration_refused),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_hostport_accepted),
		cmocka_unit_test(test_hostport_refused),
		cmocka_unit_test(test_hostport_list),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_pci),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_ca_pin),
		cmocka_unit_test(test_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
