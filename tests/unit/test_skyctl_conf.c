/* Unit tests for controller/skyctl/conf.c and format.c: the skyctl config
 * file, the flags over it, the default path, and the clock and
 * progress-line formatters.  (Sizes, durations and PCI addresses are
 * common/parse.c's, tested in test_parse.c.) */
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
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_progress_bytes),
		cmocka_unit_test(test_progress_stream_and_counts),
		cmocka_unit_test(test_progress_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
