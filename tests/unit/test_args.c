/* Unit tests for common/args.c: the option table over getopt_long — every
 * way of writing an option, every kind of value with its checks and
 * messages, operands moved to the end, did-you-mean, the usage text, and
 * that parsing again starts from scratch.
 *
 *   ./test_args     (no environment needed)
 */
#include "common/args.h"

#include "common/limits.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_ARGS 32

static char err[256];
static char *argv_buf[MAX_ARGS + 2];
static int argc_buf, first;

/* What the table below fills. */
static struct {
	uint64_t memory, vcpus, ttl;
	const char *name, *controller;
	bool force, verbose;
	char device[SKY_PCI_ADDR_LEN];
	struct sky_arg_list disks;
	int level;
	unsigned version_calls;
} v;

static int check_level(void *ctx, const char *value, char *e, size_t elen)
{
	int *level = ctx;
	if (strcmp(value, "low") == 0 || strcmp(value, "high") == 0) {
		*level = value[0] == 'h' ? 2 : 1;
		return 0;
	}
	snprintf(e, elen, "--level '%s' is neither low nor high", value);
	return -EINVAL;
}

static int count_version(void *ctx, const char *value, char *e, size_t elen)
{
	(void)e;
	(void)elen;
	assert_null(value);
	((unsigned *)ctx)[0]++;
	return 0;
}

static int disk_no_x(void *ctx, const char *value, char *e, size_t elen)
{
	(void)ctx;
	(void)e;
	(void)elen;
	return strchr(value, 'x') ? -EINVAL : 0; /* no message: the layer writes one */
}

static struct sky_opt opts[] = {
	{ .name = "memory", .short_name = 'm', .kind = SKY_ARG_SIZE, .dest = &v.memory, .metavar = "SIZE",
	  .help = "guest memory (e.g. 512M)", .min = SKY_GUEST_MEMORY_MIN, .max = SKY_GUEST_MEMORY_MAX },
	{ .name = "vcpus", .short_name = 'c', .kind = SKY_ARG_UINT, .dest = &v.vcpus, .metavar = "N",
	  .help = "virtual CPUs", .min = 1, .max = SKY_GUEST_VCPUS_MAX },
	{ .name = "ttl", .kind = SKY_ARG_DURATION, .dest = &v.ttl, .metavar = "DURATION", .help = "how long\nit lives",
	  .min = 60, .max = 7 * 86400 },
	{ .name = "name", .short_name = 'n', .kind = SKY_ARG_STR, .dest = &v.name, .metavar = "NAME", .help = "a name" },
	{ .name = "controller", .kind = SKY_ARG_HOSTPORT, .dest = &v.controller, .metavar = "HOST:PORT",
	  .help = "where", .min = 7443 },
	{ .name = "force", .short_name = 'f', .kind = SKY_ARG_FLAG, .dest = &v.force, .help = "do not ask" },
	{ .name = "verbose", .short_name = 'v', .kind = SKY_ARG_FLAG, .dest = &v.verbose, .help = "say more" },
	{ .name = "device", .kind = SKY_ARG_PCI, .dest = v.device, .metavar = "PCI", .help = "a device" },
	{ .name = "disk", .short_name = 'd', .kind = SKY_ARG_LIST, .dest = &v.disks, .metavar = "IMG",
	  .help = "a disk", .cb = disk_no_x },
	{ .name = "level", .kind = SKY_ARG_CALLBACK, .metavar = "LEVEL", .help = "low or high", .cb = check_level,
	  .ctx = &v.level },
	{ .name = "version", .kind = SKY_ARG_CALLBACK, .help = "the version", .cb = count_version,
	  .ctx = &v.version_calls },
	{ .name = "secret", .kind = SKY_ARG_FLAG, .help = "not shown", .hidden = true },
	{ 0 }
};

static struct sky_opt *opt(const char *name)
{
	for (struct sky_opt *o = opts; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	fail_msg("no option %s", name);
	return NULL;
}

/* parse("--a", "b", NULL) over opts with a fresh v. */
static int parse(const char *a, ...)
{
	va_list ap;
	memset(&v, 0, sizeof(v));
	v.disks.max = 3;
	argc_buf = 0;
	argv_buf[argc_buf++] = (char *)"prog";
	va_start(ap, a);
	for (const char *s = a; s; s = va_arg(ap, const char *)) {
		assert_true(argc_buf < MAX_ARGS);
		argv_buf[argc_buf++] = (char *)s;
	}
	va_end(ap);
	argv_buf[argc_buf] = NULL;
	memset(err, 0, sizeof(err));
	first = -1;
	int r = sky_args_parse(opts, argc_buf, argv_buf, &first, err, sizeof(err));
	if (r < 0)
		assert_true(err[0] != '\0'); /* every failure says something */
	if (r == 0)
		assert_true(first >= 1 && first <= argc_buf);
	else
		assert_int_equal(first, -1); /* written only on success */
	return r;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

/* ---- ways of writing options ---------------------------------------------- */

static void test_forms(void **state)
{
	(void)state;
	assert_int_equal(parse("--memory", "512M", "--name=web", "-c", "4", "-fv", "--ttl=1h30m", NULL), 0);
	assert_true(v.memory == 512ull << 20);
	assert_string_equal(v.name, "web");
	assert_true(v.vcpus == 4);
	assert_true(v.force && v.verbose);
	assert_true(v.ttl == 5400);
	assert_int_equal(first, argc_buf);
	assert_int_equal(opt("memory")->seen, 1);
	assert_int_equal(opt("device")->seen, 0);

	/* -nVALUE, bundled flags ending in one that takes a value. */
	assert_int_equal(parse("-nweb", "-fm2G", NULL), 0);
	assert_string_equal(v.name, "web");
	assert_true(v.force && !v.verbose);
	assert_true(v.memory == 2ull << 30);

	/* A value that looks like an option is still the value. */
	assert_int_equal(parse("--name", "--force", NULL), 0);
	assert_string_equal(v.name, "--force");
	assert_false(v.force);
	/* An empty value is a value. */
	assert_int_equal(parse("--name=", NULL), 0);
	assert_string_equal(v.name, "");

	/* Given twice: the last wins, seen counts both. */
	assert_int_equal(parse("--vcpus", "2", "--vcpus", "8", NULL), 0);
	assert_true(v.vcpus == 8);
	assert_int_equal(opt("vcpus")->seen, 2);
	/* seen starts again at 0 on each parse. */
	assert_int_equal(parse(NULL), 0);
	assert_int_equal(opt("vcpus")->seen, 0);
	assert_int_equal(first, 1);
}

static void test_operands_moved_last(void **state)
{
	(void)state;
	assert_int_equal(parse("create", "--memory", "1G", "web", "-f", "extra", NULL), 0);
	assert_int_equal(first, 4);
	assert_string_equal(argv_buf[1], "--memory");
	assert_string_equal(argv_buf[2], "1G");
	assert_string_equal(argv_buf[3], "-f");
	assert_string_equal(argv_buf[4], "create");
	assert_string_equal(argv_buf[5], "web");
	assert_string_equal(argv_buf[6], "extra");
	assert_true(v.force);

	/* "--" ends the options: what follows is an operand, even "-f". */
	assert_int_equal(parse("a", "--", "-f", "--memory", NULL), 0);
	assert_false(v.force);
	assert_int_equal(first, 2);
	assert_string_equal(argv_buf[1], "--");
	assert_string_equal(argv_buf[2], "a");
	assert_string_equal(argv_buf[3], "-f");
	assert_string_equal(argv_buf[4], "--memory");

	/* "-" alone is an operand (stdin, by habit). */
	assert_int_equal(parse("-", "-f", NULL), 0);
	assert_int_equal(first, 2);
	assert_string_equal(argv_buf[2], "-");

	/* The same text twice (one pointer): positions, not pointers, count. */
	static char same[] = "x";
	char *av[] = { (char *)"prog", same, (char *)"-f", same, NULL };
	int f;
	assert_int_equal(sky_args_parse(opts, 4, av, &f, err, sizeof(err)), 0);
	assert_int_equal(f, 2);
	assert_string_equal(av[1], "-f");
	assert_ptr_equal(av[2], same);
	assert_ptr_equal(av[3], same);
}

/* ---- values ---------------------------------------------------------------- */

static void test_size_values(void **state)
{
	(void)state;
	static const char *const good[] = { "512M", "2G", "2GiB", "2GB", "16M", "1T", "1073741824" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(parse("--memory", good[i], NULL), 0);
	assert_int_equal(parse("--memory", "12Q", NULL), -EINVAL);
	assert_string_equal(err, "--memory '12Q' is not a size; use e.g. --memory 512M or 2G");
	assert_int_equal(parse("-m", "1.5G", NULL), -EINVAL);
	assert_contains(err, "is not a size");
	assert_int_equal(parse("--memory", "8M", NULL), -EINVAL);
	assert_string_equal(err, "--memory '8M' is out of range: give 16M to 1T");
	assert_int_equal(parse("--memory", "2T", NULL), -EINVAL);
	assert_contains(err, "give 16M to 1T");
	assert_int_equal(parse("--memory", "99999999999999999999", NULL), -EINVAL);
	assert_contains(err, "out of range");
}

static void test_uint_values(void **state)
{
	(void)state;
	assert_int_equal(parse("--vcpus", "64", NULL), 0);
	assert_true(v.vcpus == 64);
	assert_int_equal(parse("--vcpus", "65", NULL), -EINVAL);
	assert_string_equal(err, "--vcpus '65' is out of range: give a whole number between 1 and 64");
	assert_int_equal(parse("--vcpus", "0", NULL), -EINVAL);
	assert_contains(err, "between 1 and 64");
	assert_int_equal(parse("--vcpus", "two", NULL), -EINVAL);
	assert_string_equal(err, "--vcpus 'two' is not a whole number; give one between 1 and 64");
	assert_int_equal(parse("--vcpus", "-1", NULL), -EINVAL);
	assert_contains(err, "not a whole number");
}

static void test_duration_values(void **state)
{
	(void)state;
	assert_int_equal(parse("--ttl", "7d", NULL), 0);
	assert_true(v.ttl == 7 * 86400);
	assert_int_equal(parse("--ttl", "90", NULL), 0);
	assert_true(v.ttl == 90);
	assert_int_equal(parse("--ttl", "1x", NULL), -EINVAL);
	assert_string_equal(err, "--ttl '1x' is not a duration in whole seconds; use e.g. --ttl 90s, 15m or 1h30m");
	assert_int_equal(parse("--ttl", "1500ms", NULL), -EINVAL);
	assert_contains(err, "whole seconds");
	assert_int_equal(parse("--ttl", "59s", NULL), -EINVAL);
	assert_string_equal(err, "--ttl '59s' is out of range: give 1m to 7d");
	assert_int_equal(parse("--ttl", "7d1s", NULL), -EINVAL);
	assert_contains(err, "out of range");
}

static void test_hostport_pci_values(void **state)
{
	(void)state;
	assert_int_equal(parse("--controller", "[2001:db8::1]:9", NULL), 0);
	assert_string_equal(v.controller, "[2001:db8::1]:9"); /* kept as given */
	assert_int_equal(parse("--controller", "ctl", NULL), 0); /* min: the default port */
	assert_int_equal(parse("--controller", "ctl:99999", NULL), -EINVAL);
	assert_contains(err, "--controller 'ctl:99999' is not HOST:PORT; use e.g. --controller ctl.example.net:7443");
	assert_null(v.controller);

	assert_int_equal(parse("--device", "01:00.0", NULL), 0);
	assert_string_equal(v.device, "0000:01:00.0");
	assert_int_equal(parse("--device", "0000:01:20.0", NULL), -EINVAL);
	assert_contains(err, "--device '0000:01:20.0' is not a PCI address; use e.g. --device 0000:01:00.0");
	assert_string_equal(v.device, "");
}

static void test_list_and_callbacks(void **state)
{
	(void)state;
	assert_int_equal(parse("-d", "a.img", "--disk", "b.img", "--disk=c.img", NULL), 0);
	assert_int_equal(v.disks.n, 3);
	assert_string_equal(v.disks.v[0], "a.img");
	assert_string_equal(v.disks.v[2], "c.img");
	assert_int_equal(opt("disk")->seen, 3);
	assert_int_equal(parse("-d", "a", "-d", "b", "-d", "c", "-d", "d", NULL), -EINVAL);
	assert_string_equal(err, "--disk is given more than 3 times: give it at most 3 times");
	/* A list's own check, with the layer's message when it writes none. */
	assert_int_equal(parse("-d", "x.img", NULL), -EINVAL);
	assert_string_equal(err, "--disk 'x.img' is not valid: see --help");
	assert_int_equal(v.disks.n, 0);

	assert_int_equal(parse("--level", "high", NULL), 0);
	assert_int_equal(v.level, 2);
	assert_int_equal(parse("--level=mid", NULL), -EINVAL);
	assert_string_equal(err, "--level 'mid' is neither low nor high");

	/* A callback without a metavar takes no value. */
	assert_int_equal(parse("--version", "--version", NULL), 0);
	assert_int_equal(v.version_calls, 2);
	assert_int_equal(parse("--version=1", NULL), -EINVAL);
	assert_string_equal(err, "--version takes no value: write just --version");

	/* A hidden option is parsed; with no dest it is only counted. */
	assert_int_equal(parse("--secret", NULL), 0);
	assert_int_equal(opt("secret")->seen, 1);
}

/* ---- mistakes -------------------------------------------------------------- */

static void test_unknown_and_did_you_mean(void **state)
{
	(void)state;
	assert_int_equal(parse("--memroy", "1G", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--memroy'; did you mean '--memory'?");
	assert_int_equal(parse("--vcpu=2", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--vcpu': options are not abbreviated; did you mean '--vcpus'?");
	assert_int_equal(parse("--controler", "h", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--controler'; did you mean '--controller'?");
	assert_int_equal(parse("--hepl", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--hepl'; did you mean '--help'?");
	assert_int_equal(parse("--bogus", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--bogus'; see --help for the options");
	assert_int_equal(parse("-x", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '-x'; see --help for the options");
	assert_int_equal(parse("-fx", NULL), -EINVAL);
	assert_contains(err, "'-x'");

	/* No abbreviations, even unambiguous ones getopt_long would take. */
	assert_int_equal(parse("--mem", "1G", NULL), -EINVAL);
	assert_string_equal(err, "unknown option '--mem': options are not abbreviated; did you mean '--memory'?");
	assert_true(v.memory == 0);
	assert_int_equal(parse("--cont=h", NULL), -EINVAL);
	assert_contains(err, "did you mean '--controller'?");
	assert_int_equal(parse("--forc", NULL), -EINVAL);
	assert_contains(err, "not abbreviated");
	assert_int_equal(parse("--ver", NULL), -EINVAL); /* verbose or version: ambiguous */
	assert_contains(err, "unknown option '--ver'");

	assert_int_equal(parse("--memory", NULL), -EINVAL);
	assert_string_equal(err, "--memory needs a value: --memory SIZE");
	assert_int_equal(parse("-m", NULL), -EINVAL);
	assert_string_equal(err, "--memory needs a value: --memory SIZE");
	assert_int_equal(parse("--force=yes", NULL), -EINVAL);
	assert_string_equal(err, "--force takes no value: write just --force");

	/* A long unknown name is cut in the message, never overflows. */
	char longname[600] = "--";
	memset(longname + 2, 'q', sizeof(longname) - 3);
	assert_int_equal(parse(longname, NULL), -EINVAL);
	assert_contains(err, "unknown option '--qqq");

	/* err may be NULL or tiny. */
	char *av[] = { (char *)"prog", (char *)"--bogus", NULL };
	int f = 77;
	assert_int_equal(sky_args_parse(opts, 2, av, &f, NULL, 0), -EINVAL);
	assert_int_equal(f, 77); /* not written on failure */
	char small[8];
	memset(small, 'z', sizeof(small));
	assert_int_equal(sky_args_parse(opts, 2, av, &f, small, sizeof(small)), -EINVAL);
	assert_non_null(memchr(small, '\0', sizeof(small)));
}

static void test_suggest(void **state)
{
	(void)state;
	static const char *const cmds[] = { "list", "show", "delete", "create", "start", "stop" };
	size_t n = sizeof(cmds) / sizeof(cmds[0]);
	assert_string_equal(sky_args_suggest("lsit", cmds, n), "list");  /* a swap is one edit */
	assert_string_equal(sky_args_suggest("lst", cmds, n), "list");
	assert_string_equal(sky_args_suggest("delte", cmds, n), "delete");
	assert_string_equal(sky_args_suggest("craete", cmds, n), "create");
	assert_string_equal(sky_args_suggest("stopp", cmds, n), "stop");
	assert_string_equal(sky_args_suggest("list", cmds, n), "list");
	assert_null(sky_args_suggest("frobnicate", cmds, n)); /* more than 2 edits */
	assert_null(sky_args_suggest("ab", cmds, n));
	assert_null(sky_args_suggest("x", cmds, n));
	assert_null(sky_args_suggest("", cmds, n));
	assert_null(sky_args_suggest(NULL, cmds, n));
	assert_null(sky_args_suggest("list", NULL, 0));
	char huge[200];
	memset(huge, 'l', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	assert_null(sky_args_suggest(huge, cmds, n));
}

/* ---- help and usage -------------------------------------------------------- */

static void test_help(void **state)
{
	(void)state;
	assert_int_equal(parse("--help", NULL), 1);
	assert_int_equal(parse("-h", NULL), 1);
	/* Parsing stops at --help: nothing after it is looked at. */
	assert_int_equal(parse("-f", "--help", "--bogus", NULL), 1);
	assert_true(v.force);
}

static void test_usage(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	sky_args_usage(f, opts);
	fclose(f);
	assert_contains(text, "  -m, --memory SIZE");
	assert_contains(text, "guest memory (e.g. 512M)\n");
	assert_contains(text, "      --ttl DURATION");
	assert_contains(text, "      --controller HOST:PORT");
	assert_contains(text, "  -f, --force ");
	assert_contains(text, "      --version ");
	assert_contains(text, "  -h, --help ");
	assert_null(strstr(text, "secret"));
	/* Help texts start in one column; a continuation lines up under it. */
	const char *m = strstr(text, "guest memory"), *line = strstr(text, "  -m, --memory");
	size_t col = (size_t)(m - line);
	const char *cont = strstr(text, "it lives");
	assert_int_equal(cont[-(long)col - 1], '\n');
	for (size_t i = 0; i < col; i++)
		assert_int_equal(cont[-(long)col + (long)i], ' ');
	const char *f2 = strstr(text, "do not ask"), *l2 = strstr(text, "  -f, --force");
	assert_int_equal((size_t)(f2 - l2), col);
	free(text);
}

/* ---- again and again ------------------------------------------------------- */

static void test_reentrant(void **state)
{
	(void)state;
	/* A failure in the middle of a bundle leaves getopt mid-way: the next
	 * parse must not pick up from there. */
	assert_int_equal(parse("-fxv", NULL), -EINVAL);
	assert_int_equal(parse("-v", "a", NULL), 0);
	assert_true(v.verbose && !v.force);
	assert_int_equal(first, 2);
	/* Another table in between. */
	static bool other;
	struct sky_opt other_opts[] = {
		{ .name = "other", .short_name = 'o', .kind = SKY_ARG_FLAG, .dest = &other, .help = "x" },
		{ 0 },
	};
	char *av[] = { (char *)"p", (char *)"-o", NULL };
	int f;
	assert_int_equal(sky_args_parse(other_opts, 2, av, &f, err, sizeof(err)), 0);
	assert_true(other);
	assert_int_equal(parse("--force", NULL), 0);
	assert_true(v.force);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(parse("-c", "3", "op", NULL), 0);
		assert_true(v.vcpus == 3);
		assert_int_equal(first, 3);
	}
}

static void test_bad_tables(void **state)
{
	(void)state;
	struct sky_opt no_cb[] = { { .name = "x", .kind = SKY_ARG_CALLBACK, .metavar = "X", .help = "x" }, { 0 } };
	struct sky_opt colon[] = { { .name = "x", .short_name = ':', .kind = SKY_ARG_FLAG, .help = "x" }, { 0 } };
	char *av[] = { (char *)"p", NULL };
	int f;
	assert_int_equal(sky_args_parse(no_cb, 1, av, &f, err, sizeof(err)), -EINVAL);
	assert_contains(err, "option table");
	assert_int_equal(sky_args_parse(colon, 1, av, &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(sky_args_parse(NULL, 1, av, &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(sky_args_parse(colon, 0, av, &f, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_operands_moved_last),
		cmocka_unit_test(test_size_values),
		cmocka_unit_test(test_uint_values),
		cmocka_unit_test(test_duration_values),
		cmocka_unit_test(test_hostport_pci_values),
		cmocka_unit_test(test_list_and_callbacks),
		cmocka_unit_test(test_unknown_and_did_you_mean),
		cmocka_unit_test(test_suggest),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_reentrant),
		cmocka_unit_test(test_bad_tables),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
