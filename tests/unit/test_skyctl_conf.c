/* Unit tests for controller/skyctl_conf.c: the skyctl config file, the
 * flags over it, the default path and the duration parser. */
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

#include "controller/skyctl_conf.h"

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
