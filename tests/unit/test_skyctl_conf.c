/* Unit tests for controller/skyctl/conf.c and format.c: the skyctl config file, the
 * flags over it, the default path, the duration, size and PCI address
 * parsers, and the size, clock and progress-line formatters. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/skyctl/conf.h"
#include "controller/skyctl/format.h"

/* A config filled with a pattern, to see that failures leave it alone. */
static void conf_poison(struct skyctl_conf *c)
{
	memset(c, 0x5a, sizeof(*c));
	c->controller[sizeof(c->controller) - 1] = '\0';
	c->ca[sizeof(c->ca) - 1] = '\0';
	c->token[sizeof(c->token) - 1] = '\0';
}

static int parse(struct skyctl_conf *c, const char *text, const char *base, char *err, size_t errlen)
{
	return skyctl_conf_parse(c, text, strlen(text), base, err, errlen);
}

/* Parsing text must fail with want, name the line, and leave *c as it was. */
static void assert_parse_fails(const char *text, int want, const char *needle)
{
	struct skyctl_conf c, before;
	char err[512] = "";

	conf_poison(&c);
	before = c;
	assert_int_equal(parse(&c, text, "/etc/skyroot", err, sizeof(err)), want);
	assert_memory_equal(&c, &before, sizeof(c));
	if (strstr(err, needle) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, needle);
}

static void test_parse_full(void **state)
{
	struct skyctl_conf c;
	char err[256] = "";
	const char *text =
		"# written by skyrootd init\r\n"
		"\n"
		"   \t\n"
		"controller = https://127.0.0.1:7444/\r\n"
		"  # indented comment\n"
		"ca=ca.crt\n"
		"\ttoken\t=\tadm-0123456789abcdef   "; /* no final newline */

	(void)state;
	conf_poison(&c);
	assert_int_equal(parse(&c, text, "/var/lib/skyroot", err, sizeof(err)), 0);
	assert_string_equal(c.controller, "https://127.0.0.1:7444");
	assert_string_equal(c.ca, "/var/lib/skyroot/ca.crt");
	assert_string_equal(c.token, "adm-0123456789abcdef");
}

static void test_parse_replaces_and_leaves_absent_keys_unset(void **state)
{
	struct skyctl_conf c;

	(void)state;
	conf_poison(&c);
	assert_int_equal(parse(&c, "token = t\n", NULL, NULL, 0), 0);
	assert_string_equal(c.token, "t");
	assert_string_equal(c.controller, "");
	assert_string_equal(c.ca, "");

	conf_poison(&c);
	assert_int_equal(parse(&c, "", NULL, NULL, 0), 0);
	assert_string_equal(c.token, "");
}

static void test_parse_ca_paths(void **state)
{
	struct skyctl_conf c;

	(void)state;
	assert_int_equal(parse(&c, "ca = /abs/ca.crt\n", "/etc/skyroot", NULL, 0), 0);
	assert_string_equal(c.ca, "/abs/ca.crt");
	assert_int_equal(parse(&c, "ca = sub/ca.crt\n", "/", NULL, 0), 0);
	assert_string_equal(c.ca, "/sub/ca.crt");
	assert_int_equal(parse(&c, "ca = ../ca.crt\n", "conf/", NULL, 0), 0);
	assert_string_equal(c.ca, "conf/../ca.crt");
	/* No base folder: as given. */
	assert_int_equal(parse(&c, "ca = ca.crt\n", NULL, NULL, 0), 0);
	assert_string_equal(c.ca, "ca.crt");
	/* A path with blanks inside is a path. */
	assert_int_equal(parse(&c, "ca = my certs/ca.crt\n", "/x", NULL, 0), 0);
	assert_string_equal(c.ca, "/x/my certs/ca.crt");
}

static void test_parse_errors_name_the_line(void **state)
{
	(void)state;
	assert_parse_fails("controller = https://a\n# c\nfoo = 1\n", -EINVAL, "line 3: unknown key 'foo'");
	assert_parse_fails("\ncontroller https://a\n", -EINVAL, "line 2: expected 'key = value'");
	assert_parse_fails("token = a\ntoken = b\n", -EINVAL, "line 2: 'token' is already set on line 1");
	assert_parse_fails("token =\n", -EINVAL, "line 1: empty value for 'token'");
	assert_parse_fails("Token = x\n", -EINVAL, "line 1: unknown key 'Token'");
	assert_parse_fails("= x\n", -EINVAL, "line 1: unknown key ''");
	/* An unknown key full of control bytes is shown cleaned. */
	assert_parse_fails("k\x1b[2J = x\n", -EINVAL, "unknown key 'k?[2J'");
}

static void test_parse_bad_values(void **state)
{
	(void)state;
	assert_parse_fails("controller = http://127.0.0.1:7444\n", -EINVAL, "line 1: controller must be an https:// URL");
	assert_parse_fails("controller = 127.0.0.1:7444\n", -EINVAL, "https://");
	assert_parse_fails("controller = https://\n", -EINVAL, "has no host");
	assert_parse_fails("controller = https:///x\n", -EINVAL, "has no host");
	assert_parse_fails("controller = https://h/x?y=1\n", -EINVAL, "'?'");
	assert_parse_fails("controller = https://h:1 # api\n", -EINVAL, "blanks");
	assert_parse_fails("token = abc # the admin token\n", -EINVAL, "line 1: token contains blanks");
	assert_parse_fails("token = a\x7f" "b\n", -EINVAL, "control characters");
}

static void test_parse_limits(void **state)
{
	struct skyctl_conf c;
	size_t n = SKYCTL_CONF_MAX_LINE + 64;
	char *text = malloc(SKYCTL_CONF_MAX_FILE + 2);

	(void)state;
	assert_non_null(text);

	/* A comment line of exactly the maximum is fine... */
	text[0] = '#';
	memset(text + 1, 'x', SKYCTL_CONF_MAX_LINE - 1);
	strcpy(text + SKYCTL_CONF_MAX_LINE, "\ntoken = t\n");
	assert_int_equal(parse(&c, text, NULL, NULL, 0), 0);
	assert_string_equal(c.token, "t");

	/* ...one byte more is not. */
	memset(text, 'x', n);
	memcpy(text, "token = ", 8);
	text[n] = '\0';
	assert_parse_fails(text, -EINVAL, "line 1: longer than 4096 bytes");

	/* A token longer than its field. */
	memset(text + 8, 'a', SKYCTL_CONF_TOKEN_MAX);
	text[8 + SKYCTL_CONF_TOKEN_MAX] = '\0';
	assert_parse_fails(text, -ENAMETOOLONG, "line 1: token is longer than");

	/* A ca path that no longer fits once joined to the folder. */
	memcpy(text, "ca = ", 5);
	memset(text + 5, 'c', SKYCTL_CONF_MAX_LINE - 5);
	text[SKYCTL_CONF_MAX_LINE] = '\0';
	assert_parse_fails(text, -ENAMETOOLONG, "ca path is longer than");

	/* The whole text is bounded. */
	memset(text, '\n', SKYCTL_CONF_MAX_FILE + 1);
	text[SKYCTL_CONF_MAX_FILE + 1] = '\0';
	assert_parse_fails(text, -EFBIG, "larger than");
	free(text);
}

static void test_parse_nul_byte(void **state)
{
	static const char text[] = "token = a\ncontroller = https://x\0y\n";
	struct skyctl_conf c, before;
	char err[256];

	(void)state;
	conf_poison(&c);
	before = c;
	assert_int_equal(skyctl_conf_parse(&c, text, sizeof(text) - 1, NULL, err, sizeof(err)), -EINVAL);
	assert_memory_equal(&c, &before, sizeof(c));
	assert_non_null(strstr(err, "line 2: contains a NUL byte"));
}

static void test_set_flags(void **state)
{
	struct skyctl_conf c, before;
	char err[256];
	char *url;

	(void)state;
	skyctl_conf_init(&c);
	assert_int_equal(skyctl_conf_set(&c, "controller", "HTTPS://localhost:7444//", NULL, err, sizeof(err)), 0);
	assert_string_equal(c.controller, "HTTPS://localhost:7444");
	assert_int_equal(skyctl_conf_set(&c, "ca", "rel/ca.crt", NULL, err, sizeof(err)), 0);
	assert_string_equal(c.ca, "rel/ca.crt");
	assert_int_equal(skyctl_conf_set(&c, "token", "t0k", NULL, err, sizeof(err)), 0);
	assert_string_equal(c.token, "t0k");

	before = c;
	assert_int_equal(skyctl_conf_set(&c, "cert", "x", NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown key 'cert'"));
	assert_int_equal(skyctl_conf_set(&c, "token", "", NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(skyctl_conf_set(&c, "controller", "ftp://x", NULL, err, sizeof(err)), -EINVAL);

	url = malloc(SKYCTL_CONF_URL_MAX + 16);
	assert_non_null(url);
	strcpy(url, "https://");
	memset(url + 8, 'h', SKYCTL_CONF_URL_MAX);
	url[8 + SKYCTL_CONF_URL_MAX] = '\0';
	assert_int_equal(skyctl_conf_set(&c, "controller", url, NULL, err, sizeof(err)), -ENAMETOOLONG);
	free(url);
	/* err may be NULL. */
	assert_int_equal(skyctl_conf_set(&c, "token", "a b", NULL, NULL, 0), -EINVAL);
	assert_memory_equal(&c, &before, sizeof(c));
}

/* ---- files -------------------------------------------------------------- */

struct fixture {
	char dir[64];
	char path[128];
};

static int setup_dir(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/skyctl-conf-test-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/skyctl.conf", f->dir);
	*state = f;
	return 0;
}

static int teardown_dir(void **state)
{
	struct fixture *f = *state;
	char sub[160];

	unlink(f->path);
	snprintf(sub, sizeof(sub), "%s/sub", f->dir);
	rmdir(sub);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void test_load_relative_ca(void **state)
{
	struct fixture *f = *state;
	static const char text[] = "controller = https://127.0.0.1:7444\nca = ca.crt\ntoken = adm-x\n";
	struct skyctl_conf c;
	char want[160], err[512];

	write_file(f->path, text, sizeof(text) - 1);
	assert_int_equal(skyctl_conf_load(&c, f->path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/ca.crt", f->dir);
	assert_string_equal(c.ca, want);
	assert_string_equal(c.controller, "https://127.0.0.1:7444");
	assert_string_equal(c.token, "adm-x");
}

static void test_load_errors(void **state)
{
	struct fixture *f = *state;
	static const char bad[] = "controller = https://a\ntokn = x\n";
	struct skyctl_conf c, before;
	char err[512], sub[160], want[256];
	char *big;

	conf_poison(&c);
	before = c;

	/* Missing: -ENOENT, naming the file. */
	assert_int_equal(skyctl_conf_load(&c, f->path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, f->path));

	/* Not a file. */
	snprintf(sub, sizeof(sub), "%s/sub", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(skyctl_conf_load(&c, sub, err, sizeof(err)), -EISDIR);

	/* A parse error names the file and the line. */
	write_file(f->path, bad, sizeof(bad) - 1);
	assert_int_equal(skyctl_conf_load(&c, f->path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: line 2: unknown key 'tokn'", f->path);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, want);

	/* Too big: refused before parsing. */
	big = malloc(SKYCTL_CONF_MAX_FILE + 1);
	assert_non_null(big);
	memset(big, '#', SKYCTL_CONF_MAX_FILE + 1);
	write_file(f->path, big, SKYCTL_CONF_MAX_FILE + 1);
	free(big);
	assert_int_equal(skyctl_conf_load(&c, f->path, err, sizeof(err)), -EFBIG);

	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_default_path(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(skyctl_conf_default_path("/etc/sky.conf", "/home/op", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/etc/sky.conf");
	assert_int_equal(skyctl_conf_default_path("", "/home/op", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/home/op/.config/skyroot/skyctl.conf");
	assert_int_equal(skyctl_conf_default_path(NULL, "/home/op", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/home/op/.config/skyroot/skyctl.conf");

	strcpy(buf, "untouched");
	assert_int_equal(skyctl_conf_default_path(NULL, NULL, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(skyctl_conf_default_path(NULL, "", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(skyctl_conf_default_path(NULL, "/a/very/long/home/folder/name", buf, 40),
			 -ENAMETOOLONG);
	assert_int_equal(skyctl_conf_default_path("/x/y", NULL, buf, 4), -ENAMETOOLONG);
	assert_string_equal(buf, "untouched");
}

/* ---- durations ------------------------------------------------------- */

static void test_duration_valid(void **state)
{
	static const struct {
		const char *in;
		uint64_t want;
	} cases[] = {
		{ "30s", 30 },
		{ "10m", 600 },
		{ "1h", 3600 },
		{ "2d", 172800 },
		{ "45", 45 },
		{ "0", 0 },
		{ "007m", 420 },
		{ "30d", 2592000 },
		{ "9223372036854775807", INT64_MAX },
		{ "106751991167300d", 106751991167300ULL * 86400 },
		{ "153722867280912930m", 153722867280912930ULL * 60 },
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		if (skyctl_conf_parse_duration(cases[i].in, &v) != 0 || v != cases[i].want)
			fail_msg("'%s': got %llu", cases[i].in, (unsigned long long)v);
	}
}

static void test_duration_invalid(void **state)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{ "", -EINVAL },
		{ "h", -EINVAL },
		{ "1x", -EINVAL },
		{ "1hh", -EINVAL },
		{ "1H", -EINVAL },
		{ "-1", -EINVAL },
		{ "+1", -EINVAL },
		{ " 1", -EINVAL },
		{ "1 ", -EINVAL },
		{ "1 h", -EINVAL },
		{ "1.5h", -EINVAL },
		{ "1h30m", -EINVAL },
		{ "0x10", -EINVAL },
		{ "9223372036854775808", -ERANGE },
		{ "99999999999999999999999", -ERANGE },
		{ "106751991167301d", -ERANGE },
		{ "153722867280912931m", -ERANGE },
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		int r = skyctl_conf_parse_duration(cases[i].in, &v);
		if (r != cases[i].want || v != 12345)
			fail_msg("'%s': got %d, value %llu", cases[i].in, r, (unsigned long long)v);
	}
}

/* ---- sizes given on the command line ---------------------------------- */

static void test_size_valid(void **state)
{
	static const struct {
		const char *in;
		uint64_t want;
	} cases[] = {
		{ "0", 0 },
		{ "268435456", 268435456 },
		{ "512B", 512 },
		{ "1K", 1024 },
		{ "1k", 1024 },
		{ "256M", 268435456 },
		{ "256m", 268435456 },
		{ "256MiB", 268435456 },
		{ "2G", 2147483648ULL },
		{ "2GiB", 2147483648ULL },
		{ "1536M", 1610612736ULL },
		{ "1T", 1099511627776ULL },
		{ "1P", 1125899906842624ULL },
		{ "7E", 7ULL << 60 },
		{ "0016M", 16ULL << 20 },
		{ "9223372036854775807", INT64_MAX },
		{ "9223372036854775807B", INT64_MAX },
		{ "8796093022207M", 8796093022207ULL << 20 }, /* the largest whole MiB count */
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		if (skyctl_conf_parse_size(cases[i].in, &v) != 0 || v != cases[i].want)
			fail_msg("'%s': got %llu", cases[i].in, (unsigned long long)v);
	}
}

static void test_size_invalid(void **state)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{ "", -EINVAL },
		{ "M", -EINVAL },
		{ "B", -EINVAL },
		{ "iB", -EINVAL },
		{ "256X", -EINVAL },
		{ "2GB", -EINVAL },      /* 10^9 or 2^30?  refused, not guessed */
		{ "2gb", -EINVAL },
		{ "2Gib", -EINVAL },
		{ "2GIB", -EINVAL },
		{ "2Gi", -EINVAL },
		{ "2GiBx", -EINVAL },
		{ "2GG", -EINVAL },
		{ "1.5G", -EINVAL },
		{ "-1", -EINVAL },
		{ "+1M", -EINVAL },
		{ " 1M", -EINVAL },
		{ "1M ", -EINVAL },
		{ "1 M", -EINVAL },
		{ "0x10", -EINVAL },
		{ "1bB", -EINVAL },
		{ "1b", -EINVAL },
		{ "9223372036854775808", -ERANGE },
		{ "99999999999999999999999G", -ERANGE },
		{ "8796093022208M", -ERANGE }, /* 2^63 */
		{ "8E", -ERANGE },
		{ "16E", -ERANGE },
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		int r = skyctl_conf_parse_size(cases[i].in, &v);
		if (r != cases[i].want || v != 12345)
			fail_msg("'%s': got %d, value %llu", cases[i].in, r, (unsigned long long)v);
	}
}

static void test_pci_address(void **state)
{
	static const struct {
		const char *in, *want; /* want NULL: refused */
	} cases[] = {
		{ "0000:00:03.0", "0000:00:03.0" },
		{ "00:03.0", "0000:00:03.0" },        /* as lspci prints it */
		{ "0000:AF:1F.7", "0000:af:1f.7" },
		{ "abcd:ff:00.1", "abcd:ff:00.1" },
		{ "", NULL },
		{ "0000:00:03", NULL },
		{ "0000:00:03.8", NULL },             /* functions are 0-7 */
		{ "0000:00:20.0", NULL },             /* devices are 00-1f */
		{ "0000:00:3.0", NULL },
		{ "000:00:03.0", NULL },
		{ "10000:00:03.0", NULL },
		{ "0000-00:03.0", NULL },
		{ "0000:00-03.0", NULL },
		{ "0000:00:03:0", NULL },
		{ "0000:0g:03.0", NULL },
		{ "0000:00:03.0 ", NULL },
		{ " 00:03.0", NULL },
		{ "+0:00:03.0", NULL },
		{ "0:03.0", NULL },
		{ "00:03.0\n", NULL },
	};
	char buf[SKYCTL_CONF_PCI_ADDRESS_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		strcpy(buf, "untouched");
		int r = skyctl_conf_parse_pci_address(cases[i].in, buf, sizeof(buf));
		if (cases[i].want != NULL && (r != 0 || strcmp(buf, cases[i].want) != 0))
			fail_msg("'%s': got %d '%s'", cases[i].in, r, buf);
		if (cases[i].want == NULL && (r != -EINVAL || strcmp(buf, "untouched") != 0))
			fail_msg("'%s': accepted (%d, '%s')", cases[i].in, r, buf);
	}
	strcpy(buf, "untouched");
	assert_int_equal(skyctl_conf_parse_pci_address("00:03.0", buf, SKYCTL_CONF_PCI_ADDRESS_LEN - 1), -ENOBUFS);
	assert_string_equal(buf, "untouched");
}

/* ---- sizes, clocks, progress lines ------------------------------------ */

static void test_format_size(void **state)
{
	static const struct {
		uint64_t in;
		const char *want;
	} cases[] = {
		{ 0, "0 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" },
		{ 1048575, "1.0 MiB" }, /* not "1024.0 KiB" */
		{ 8388608, "8.0 MiB" },
		{ 314572800, "300.0 MiB" },
		{ 1073741824ULL * 5 / 2, "2.5 GiB" },
		{ UINT64_MAX, "16.0 EiB" },
	};
	char buf[16];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(skyctl_format_size(cases[i].in, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].want);
	}
	/* Too small: refused, untouched. */
	strcpy(buf, "untouched");
	assert_int_equal(skyctl_format_size(314572800, buf, 9), -ENOBUFS);
	assert_string_equal(buf, "untouched");
	assert_int_equal(skyctl_format_size(314572800, buf, 10), 0);
	assert_string_equal(buf, "300.0 MiB");
}

static void test_format_duration(void **state)
{
	static const struct {
		uint64_t in;
		const char *want;
	} cases[] = {
		{ 0, "0:00" },
		{ 42, "0:42" },
		{ 725, "12:05" },
		{ 3599, "59:59" },
		{ 3600, "1:00:00" },
		{ 3723, "1:02:03" },
		{ 360000, "100:00:00" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(skyctl_format_clock(cases[i].in, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].want);
	}
	assert_int_equal(skyctl_format_clock(UINT64_MAX, buf, sizeof(buf)), 0);
	strcpy(buf, "untouched");
	assert_int_equal(skyctl_format_clock(3723, buf, 7), -ENOBUFS);
	assert_string_equal(buf, "untouched");
}

#define MIB (1024ULL * 1024)

static const char *progress(const struct skyctl_progress *p, size_t width)
{
	static char buf[4 * SKYCTL_PROGRESS_MAX_WIDTH + 1];

	assert_int_equal(skyctl_format_progress(p, width, buf, sizeof(buf)), 0);
	return buf;
}

/* Columns, counting a UTF-8 character as one; fails on a cut character. */
static size_t columns(const char *s)
{
	size_t w = 0;

	for (size_t i = 0; s[i] != '\0'; w++) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		for (size_t k = 1; k < n; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				fail_msg("a UTF-8 character is cut in '%s'", s);
		i += n;
	}
	return w;
}

static void test_progress_bytes(void **state)
{
	struct skyctl_progress p = {
		.done = 150 * MIB, .total = 300 * MIB, .elapsed_ms = 1000,
	};

	(void)state;
	/* Half of 300 MiB in a second: 150 MiB/s, one second left; the bar
	 * takes the rest of 79 columns. */
	assert_string_equal(progress(&p, 80),
			    "150.0 MiB / 300.0 MiB   50% [#############-------------]  150.0 MiB/s  ETA 0:01");
	/* Wide terminals: the bar stops at 40. */
	assert_string_equal(progress(&p, 200),
			    "150.0 MiB / 300.0 MiB   50% [####################--------------------]  150.0 MiB/s  ETA 0:01");
	/* Narrow: the bar shrinks to 10, then goes, then the rate goes. */
	assert_string_equal(progress(&p, 64), "150.0 MiB / 300.0 MiB   50% [#####-----]  150.0 MiB/s  ETA 0:01");
	assert_string_equal(progress(&p, 63), "150.0 MiB / 300.0 MiB   50%  150.0 MiB/s  ETA 0:01");
	assert_string_equal(progress(&p, 40), "150.0 MiB / 300.0 MiB   50%  ETA 0:01");

	/* The start: nothing is known yet; done is as wide as the total. */
	p.done = 0;
	p.elapsed_ms = 0;
	assert_string_equal(progress(&p, 50), "      0 B / 300.0 MiB    0%  ETA -:--");

	/* 100% only when it is all there, and then the time it took. */
	p.done = 300 * MIB - 1;
	p.elapsed_ms = 2500;
	assert_non_null(strstr(progress(&p, 80), " 99% ["));
	assert_non_null(strstr(progress(&p, 80), "ETA 0:01"));
	p.done = 300 * MIB;
	assert_string_equal(progress(&p, 80),
			    "300.0 MiB / 300.0 MiB  100% [######################]  120.0 MiB/s  0:02 elapsed");

	/* The ETA rounds up: a third done in a minute leaves two minutes. */
	p.done = 100 * MIB;
	p.elapsed_ms = 60000;
	assert_non_null(strstr(progress(&p, 100), "ETA 2:00"));
	p.elapsed_ms = 60001;
	assert_non_null(strstr(progress(&p, 100), "ETA 2:01"));
}

static void test_progress_stream_and_counts(void **state)
{
	struct skyctl_progress stream = { .done = 12 * MIB, .elapsed_ms = 3000 };
	struct skyctl_progress fetch = {
		.label = "debian-kernel -> node-a", .unit = "chunks", .done = 12, .total = 257, .elapsed_ms = 3000,
	};

	(void)state;
	/* No total (stdin): no percentage, bar or ETA. */
	assert_string_equal(progress(&stream, 80), "12.0 MiB  4.0 MiB/s  0:03 elapsed");
	stream.unit = "chunks";
	assert_string_equal(progress(&stream, 80), "12582912 chunks  0:03 elapsed");

	/* Counts: no rate; 245 chunks at 4/s: 61.25 s, shown as 1:02; 4% of
	 * 21 columns is not yet one. */
	assert_string_equal(progress(&fetch, 80),
			    "debian-kernel -> node-a   12/257 chunks    4% [---------------------]  ETA 1:02");
	fetch.done = 129;
	assert_string_equal(progress(&fetch, 80),
			    "debian-kernel -> node-a  129/257 chunks   50% [##########-----------]  ETA 0:03");
	fetch.done = 12;
	/* Narrower: the bar goes first, then the label is cut. */
	assert_string_equal(progress(&fetch, 60), "debian-kernel -> node-a   12/257 chunks    4%  ETA 1:02");
	assert_string_equal(progress(&fetch, 40), "debi...   12/257 chunks    4%  ETA 1:02");
	assert_int_equal(columns(progress(&fetch, 40)), 39);
}

static void test_progress_bounds(void **state)
{
	struct skyctl_progress cases[] = {
		{ .done = 0, .total = 0 },
		{ .done = 150 * MIB, .total = 300 * MIB, .elapsed_ms = 1000 },
		{ .done = UINT64_MAX / 2, .total = UINT64_MAX, .elapsed_ms = 1 },
		{ .done = UINT64_MAX, .total = 0, .elapsed_ms = 1 },
		{ .done = 5, .total = 3, .elapsed_ms = 10 }, /* more than the total: 100%, full bar */
		{ .label = "\x1b[31mred\x07", .unit = "chunks", .done = 1, .total = 2 },
		{ .label = "\xce\xb1\xce\xb2\xce\xb3\xce\xb4\xce\xb5\xce\xb6\xce\xb7\xce\xb8\xce\xb9\xce\xba"
			   "\xce\xb1\xce\xb2\xce\xb3\xce\xb4\xce\xb5\xce\xb6\xce\xb7\xce\xb8\xce\xb9\xce\xba",
		  .unit = "chunks", .done = 1, .total = 2 },
	};
	char buf[4 * SKYCTL_PROGRESS_MAX_WIDTH + 1], small[8];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t width = 0; width <= SKYCTL_PROGRESS_MAX_WIDTH + 20; width++) {
			size_t want = width < SKYCTL_PROGRESS_MIN_WIDTH ? SKYCTL_PROGRESS_MIN_WIDTH - 1
				    : width > SKYCTL_PROGRESS_MAX_WIDTH ? SKYCTL_PROGRESS_MAX_WIDTH - 1
				    : width - 1;
			assert_int_equal(skyctl_format_progress(&cases[i], width, buf, sizeof(buf)), 0);
			if (columns(buf) > want)
				fail_msg("case %zu, width %zu: '%s' is wider than %zu", i, width, buf, want);
			for (const char *c = buf; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					fail_msg("case %zu: a control byte in '%s'", i, buf);
		}
	}
	assert_non_null(strstr(progress(&cases[4], 80), "100% [#"));
	assert_null(strstr(progress(&cases[4], 80), "-"));
	assert_non_null(strstr(progress(&cases[5], 80), "?[31mred?  1/2 chunks"));

	/* Too small a buffer: refused, untouched. */
	strcpy(small, "intact");
	assert_int_equal(skyctl_format_progress(&cases[1], 80, small, sizeof(small)), -ENOBUFS);
	assert_string_equal(small, "intact");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_parse_replaces_and_leaves_absent_keys_unset),
		cmocka_unit_test(test_parse_ca_paths),
		cmocka_unit_test(test_parse_errors_name_the_line),
		cmocka_unit_test(test_parse_bad_values),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_parse_nul_byte),
		cmocka_unit_test(test_set_flags),
		cmocka_unit_test_setup_teardown(test_load_relative_ca, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_errors, setup_dir, teardown_dir),
		cmocka_unit_test(test_default_path),
		cmocka_unit_test(test_duration_valid),
		cmocka_unit_test(test_duration_invalid),
		cmocka_unit_test(test_size_valid),
		cmocka_unit_test(test_size_invalid),
		cmocka_unit_test(test_pci_address),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_progress_bytes),
		cmocka_unit_test(test_progress_stream_and_counts),
		cmocka_unit_test(test_progress_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
