/* Unit tests for agent/config.c (skyagent flags and the kernel command line).
 *
 * Environment: none needed.  SKY_FIXTURES (absolute path of tests/fixtures)
 * is used when set, to check that a fixture board's proc/cmdline is picked up
 * through --procfs-root; kernel command lines for the other cases are written
 * at run time to temporary files under $TMPDIR (default /tmp).
 *
 *   ./test_config     (or SKY_FIXTURES=$PWD/tests/fixtures ./test_config)
 */
#include "agent/config.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
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
#define PIN_B "sha256:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define MAX_ARGS 32

static const uint8_t pin_a[32] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
};
static const uint8_t pin_b[32] = {
	0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00,
	0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00,
};

static struct agent_config cfg; /* large: keep it off the stack */
static char err[512];

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* parse("--a", "b", NULL): runs agent_config_parse on the given flags. */
static int parse(const char *first, ...)
{
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	argv[argc++] = (char *)"skyagent";
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		assert_true(argc < MAX_ARGS);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	memset(err, 0, sizeof(err));
	int fds = open_fds();
	int r = agent_config_parse(&cfg, argc, argv, err, sizeof(err));
	assert_int_equal(open_fds(), fds); /* no descriptor left open */
	if (r == -EINVAL)
		assert_true(err[0] != '\0'); /* every failure says something */
	return r;
}

static char tmpfile_path[PATH_MAX];

/* Write a kernel command line to a temporary file; returns its path. */
static const char *cmdline_file(const char *text)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpfile_path, sizeof(tmpfile_path), "%s/skycfg.XXXXXX", t && *t ? t : "/tmp");
	int fd = mkstemp(tmpfile_path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return tmpfile_path;
}

static void drop_cmdline_file(void)
{
	unlink(tmpfile_path);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

/* ---- flags and the kernel command line --------------------------------- */

static void test_flags_only(void **state)
{
	(void)state;
	/* All three given as flags: the command line file is never read. */
	assert_int_equal(parse("--controller", "ctl.example.net:9443", "--token", "tok-123", "--ca", PIN_A,
			       "--cmdline", "/nonexistent/cmdline", NULL),
			 0);
	assert_string_equal(cfg.controller_host, "ctl.example.net");
	assert_int_equal(cfg.controller_port, 9443);
	assert_string_equal(cfg.token, "tok-123");
	assert_true(cfg.have_ca_pin);
	assert_memory_equal(cfg.ca_pin, pin_a, 32);
	assert_string_equal(cfg.sysfs_root, "/sys");
	assert_string_equal(cfg.procfs_root, "/proc");
	assert_string_equal(cfg.devfs_root, "/dev");
	assert_string_equal(cfg.cmdline_path, "/nonexistent/cmdline");
	assert_int_equal(cfg.log_level, SKY_LOG_INFO);
	assert_int_equal(cfg.heartbeat_ms, 10000);
	assert_int_equal(cfg.once, 0);
}

static void test_equals_form_and_other_flags(void **state)
{
	(void)state;
	assert_int_equal(parse("--controller=10.0.2.2", "--ca=" PIN_B, "--token=", "--once",
			       "--sysfs-root=/fx/sys", "--procfs-root", "/fx/proc", "--devfs-root=/fx/dev",
			       "--log-level=debug", "--heartbeat-interval", "250", NULL),
			 0);
	assert_string_equal(cfg.controller_host, "10.0.2.2");
	assert_int_equal(cfg.controller_port, 7443);
	assert_string_equal(cfg.token, "");
	assert_memory_equal(cfg.ca_pin, pin_b, 32);
	assert_string_equal(cfg.sysfs_root, "/fx/sys");
	assert_string_equal(cfg.procfs_root, "/fx/proc");
	assert_string_equal(cfg.devfs_root, "/fx/dev");
	assert_string_equal(cfg.cmdline_path, "/fx/proc/cmdline");
	assert_int_equal(cfg.log_level, SKY_LOG_DEBUG);
	assert_int_equal(cfg.heartbeat_ms, 250);
	assert_int_equal(cfg.once, 1);
}

#define CTL_ARGS "--controller", "ctl.example.net:9443", "--token", "t", "--ca", PIN_A, "--cmdline", "/nonexistent/c"

/* A reboot order is carried out only with --allow-reboot; the command a
 * test gives instead of reboot(2) needs it too. */
static void test_reboot_flags(void **state)
{
	(void)state;
	assert_int_equal(parse(CTL_ARGS, NULL), 0);
	assert_int_equal(cfg.allow_reboot, 0);
	assert_string_equal(cfg.reboot_command, "");
	assert_int_equal(parse(CTL_ARGS, "--allow-reboot", "--reboot-command", "/bin/true", NULL), 0);
	assert_int_equal(cfg.allow_reboot, 1);
	assert_string_equal(cfg.reboot_command, "/bin/true");
	assert_int_equal(parse(CTL_ARGS, "--reboot-command", "/bin/true", NULL), -EINVAL);
	assert_contains(err, "--allow-reboot");
}

/* The TPM enrollment uses: --tpm, else DEVFS-ROOT/tpmrm0 when it exists,
 * never with --no-tpm. */
static void test_tpm_flags(void **state)
{
	char dir[PATH_MAX], dev[PATH_MAX + 16], want[PATH_MAX + 32];
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/skytpm.XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(parse(CTL_ARGS, "--devfs-root", dir, NULL), 0);
	assert_string_equal(cfg.tpm_tcti, ""); /* no device: no TPM */
	snprintf(dev, sizeof(dev), "%s/tpmrm0", dir);
	int fd = open(dev, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(parse(CTL_ARGS, "--devfs-root", dir, NULL), 0);
	snprintf(want, sizeof(want), "device:%s", dev);
	assert_string_equal(cfg.tpm_tcti, want);
	assert_int_equal(cfg.tpm_explicit, 0);
	assert_int_equal(parse(CTL_ARGS, "--devfs-root", dir, "--no-tpm", NULL), 0);
	assert_string_equal(cfg.tpm_tcti, "");
	assert_int_equal(parse(CTL_ARGS, "--devfs-root", dir, "--tpm", "swtpm:host=127.0.0.1,port=2321", NULL), 0);
	assert_string_equal(cfg.tpm_tcti, "swtpm:host=127.0.0.1,port=2321");
	assert_int_equal(cfg.tpm_explicit, 1);
	assert_int_equal(parse(CTL_ARGS, "--tpm", "device:/dev/tpmrm0", "--no-tpm", NULL), -EINVAL);
	assert_contains(err, "--no-tpm");
	assert_int_equal(parse(CTL_ARGS, "--tpm", "", NULL), -EINVAL);
	assert_contains(err, "TCTI");
	unlink(dev);
	rmdir(dir);
}

static void test_cmdline_only(void **state)
{
	(void)state;
	const char *path = cmdline_file("BOOT_IMAGE=/vmlinuz console=ttyS0 intel_iommu=on "
					"skyroot.controller=10.0.2.2:7443 skyroot.token=abcDEF_-0123 "
					"skyroot.ca=" PIN_A " panic=-1 quiet\n");
	assert_int_equal(parse("--cmdline", path, NULL), 0);
	assert_string_equal(cfg.controller_host, "10.0.2.2");
	assert_int_equal(cfg.controller_port, 7443);
	assert_string_equal(cfg.token, "abcDEF_-0123");
	assert_memory_equal(cfg.ca_pin, pin_a, 32);
	drop_cmdline_file();
}

static void test_flags_win_over_cmdline(void **state)
{
	(void)state;
	const char *path = cmdline_file("skyroot.controller=cmdline-host:1111 skyroot.token=cmdline-token "
					"skyroot.ca=" PIN_A "\n");
	assert_int_equal(parse("--cmdline", path, "--controller", "flag-host:2222", "--token", "flag-token",
			       "--ca", PIN_B, NULL),
			 0);
	assert_string_equal(cfg.controller_host, "flag-host");
	assert_int_equal(cfg.controller_port, 2222);
	assert_string_equal(cfg.token, "flag-token");
	assert_memory_equal(cfg.ca_pin, pin_b, 32);

	/* Only the controller as a flag: token and pin still come from the kernel. */
	assert_int_equal(parse("--cmdline", path, "--controller", "flag-host", NULL), 0);
	assert_string_equal(cfg.controller_host, "flag-host");
	assert_int_equal(cfg.controller_port, 7443);
	assert_string_equal(cfg.token, "cmdline-token");
	assert_memory_equal(cfg.ca_pin, pin_a, 32);

	/* An explicit empty --token means no token, even if the kernel has one. */
	assert_int_equal(parse("--cmdline", path, "--token", "", NULL), 0);
	assert_string_equal(cfg.token, "");
	assert_string_equal(cfg.controller_host, "cmdline-host");
	drop_cmdline_file();
}

static void test_default_cmdline_under_procfs_root(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	char dir[PATH_MAX], file[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/skycfgproc.XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/cmdline", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs("console=ttyS0 skyroot.controller=[fd00::2]:7000 skyroot.ca=" PIN_B "\n", f);
	fclose(f);

	assert_int_equal(parse("--procfs-root", dir, NULL), 0);
	assert_string_equal(cfg.cmdline_path, file);
	assert_string_equal(cfg.controller_host, "fd00::2");
	assert_int_equal(cfg.controller_port, 7000);
	assert_memory_equal(cfg.ca_pin, pin_b, 32);
	assert_string_equal(cfg.token, "");
	unlink(file);
	rmdir(dir);

	/* A fixture board's proc/cmdline has no skyroot.* keys: flags supply them. */
	const char *fx = getenv("SKY_FIXTURES");
	if (fx && fx[0] == '/') {
		char proc[PATH_MAX];
		snprintf(proc, sizeof(proc), "%s/boards/a/proc", fx);
		assert_int_equal(parse("--procfs-root", proc, NULL), -EINVAL);
		assert_contains(err, "no controller given");
		assert_int_equal(parse("--procfs-root", proc, "--controller", "h", "--ca", PIN_A, NULL), 0);
		assert_string_equal(cfg.token, "");
	}
}

static void test_missing_token_is_fine(void **state)
{
	(void)state;
	const char *path = cmdline_file("skyroot.controller=ctl skyroot.ca=" PIN_A);
	assert_int_equal(parse("--cmdline", path, NULL), 0);
	assert_string_equal(cfg.token, "");
	assert_string_equal(cfg.controller_host, "ctl");
	drop_cmdline_file();
}

static void test_missing_controller_or_pin(void **state)
{
	(void)state;
	const char *path = cmdline_file("console=ttyS0 quiet skyroot.ca=" PIN_A "\n");
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "no controller given");
	assert_contains(err, "--controller HOST:PORT");
	assert_contains(err, "skyroot.controller=HOST:PORT");
	drop_cmdline_file();

	path = cmdline_file("console=ttyS0 skyroot.controller=ctl:7443\n");
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "no CA pin given");
	assert_contains(err, "--ca sha256:HEX");
	assert_contains(err, "skyroot.ca=");
	drop_cmdline_file();

	/* The default file cannot be read: say so, and still say what to pass. */
	assert_int_equal(parse("--procfs-root", "/nonexistent-procfs", NULL), -EINVAL);
	assert_contains(err, "no controller given");
	assert_contains(err, "/nonexistent-procfs/cmdline");

	/* A file the user named and that cannot be read is an error of its own. */
	assert_int_equal(parse("--cmdline", "/nonexistent/cmdline", "--controller", "h", NULL), -EINVAL);
	assert_contains(err, "/nonexistent/cmdline");
	assert_contains(err, "--cmdline");

	/* An empty skyroot.controller= is not a controller. */
	path = cmdline_file("skyroot.controller= skyroot.ca=" PIN_A "\n");
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "bad controller address");
	assert_contains(err, "kernel command line");
	drop_cmdline_file();
}

static void test_missing_values_and_bad_flags(void **state)
{
	(void)state;
	assert_int_equal(parse("--ca", PIN_A, "--controller", NULL), -EINVAL);
	assert_contains(err, "--controller needs a value");
	assert_int_equal(parse("--token", NULL), -EINVAL);
	assert_contains(err, "--token needs a value");
	assert_int_equal(parse("--once=yes", NULL), -EINVAL);
	assert_contains(err, "--once takes no value");
	assert_int_equal(parse("--controler", "h", NULL), -EINVAL);
	assert_contains(err, "unknown option '--controler'; did you mean '--controller'?");
	assert_int_equal(parse("--cont", "h", NULL), -EINVAL); /* no abbreviations */
	assert_int_equal(parse("-x", NULL), -EINVAL);
	assert_int_equal(parse("ctl:7443", NULL), -EINVAL);
	assert_contains(err, "unexpected argument 'ctl:7443'");
	assert_int_equal(parse("--controller", "h", "--ca", PIN_A, "--token", "t", "--", "extra", NULL),
			 -EINVAL);
	assert_int_equal(parse("--controller", "h", "--ca", PIN_A, "--token", "t", "--", NULL), 0);
	assert_int_equal(parse("--sysfs-root", "", NULL), -EINVAL);
	assert_contains(err, "--sysfs-root");
	assert_int_equal(parse("--log-level", "verbose", NULL), -EINVAL);
	assert_contains(err, "error, warn, info or debug");
}

static void test_heartbeat_bounds(void **state)
{
	(void)state;
	static const char *const good[] = { "100", "600000", "10000" };
	static const char *const bad[] = { "99", "600001", "0", "", "abc", "10s", "-100", "+100",
					   "99999999999999999999" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(parse("--controller", "h", "--ca", PIN_A, "--token", "t",
				       "--heartbeat-interval", good[i], NULL),
				 0);
		assert_int_equal(cfg.heartbeat_ms, strtoull(good[i], NULL, 10));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse("--controller", "h", "--ca", PIN_A, "--token", "t",
				       "--heartbeat-interval", bad[i], NULL),
				 -EINVAL);
		assert_contains(err, "between 100 and 600000");
	}
}

/* ---- quoting, pins, addresses, tokens ---------------------------------- */

static void test_cmdline_get_quoting(void **state)
{
	(void)state;
	char v[64];
	assert_int_equal(agent_cmdline_get("a=1 skyroot.token=\"abc def\" b=2", "skyroot.token", v, sizeof(v)), 0);
	assert_string_equal(v, "abc def");
	assert_int_equal(agent_cmdline_get("a=1 \"skyroot.token=x y\" b", "skyroot.token", v, sizeof(v)), 0);
	assert_string_equal(v, "x y");
	assert_int_equal(agent_cmdline_get("skyroot.token=first skyroot.token=second", "skyroot.token", v,
					   sizeof(v)),
			 0);
	assert_string_equal(v, "second");
	assert_int_equal(agent_cmdline_get("console=ttyS0\tskyroot.token=t\n", "skyroot.token", v, sizeof(v)), 0);
	assert_string_equal(v, "t");
	assert_int_equal(agent_cmdline_get("skyroot.token=", "skyroot.token", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	assert_int_equal(agent_cmdline_get("skyroot.token=\"\"", "skyroot.token", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	assert_int_equal(agent_cmdline_get("skyroot.token=\"", "skyroot.token", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	assert_int_equal(agent_cmdline_get("skyroot.token=a=b", "skyroot.token", v, sizeof(v)), 0);
	assert_string_equal(v, "a=b");

	strcpy(v, "untouched");
	assert_int_equal(agent_cmdline_get("", "skyroot.token", v, sizeof(v)), -ENOENT);
	assert_int_equal(agent_cmdline_get("skyroot.token", "skyroot.token", v, sizeof(v)), -ENOENT);
	assert_int_equal(agent_cmdline_get("skyroot.tokenx=1 xskyroot.token=2", "skyroot.token", v, sizeof(v)),
			 -ENOENT);
	/* Inside another parameter's quoted value, it is not a parameter. */
	assert_int_equal(agent_cmdline_get("foo=\"skyroot.token=inside x\" bar", "skyroot.token", v, sizeof(v)),
			 -ENOENT);
	assert_string_equal(v, "untouched");

	char small[4];
	assert_int_equal(agent_cmdline_get("k=abcd", "k", small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(agent_cmdline_get("k=abc", "k", small, sizeof(small)), 0);
	assert_string_equal(small, "abc");
	assert_int_equal(agent_cmdline_get("k=\"abc\"", "k", small, sizeof(small)), 0);
	assert_string_equal(small, "abc");

	/* Quoting through the whole parse. */
	const char *path = cmdline_file("quiet skyroot.controller=\"[::1]:9000\" \"skyroot.ca=" PIN_A "\"\n");
	assert_int_equal(parse("--cmdline", path, NULL), 0);
	assert_string_equal(cfg.controller_host, "::1");
	assert_int_equal(cfg.controller_port, 9000);
	assert_memory_equal(cfg.ca_pin, pin_a, 32);
	drop_cmdline_file();
}

/* The pin's syntax is tested in test_parse.c (sky_parse_ca_pin); here the
 * messages a user sees from the flags and the kernel command line. */
static void test_bad_pin(void **state)
{
	(void)state;
	assert_int_equal(parse("--controller", "h", "--ca", "SHA256:00112233445566778899AABBCCDDEEFF"
			       "00112233445566778899AABBCCDDEEFF", "--token", "t", NULL), 0);
	assert_memory_equal(cfg.ca_pin, pin_a, 32);

	assert_int_equal(parse("--controller", "h", "--ca", "sha256:1234", NULL), -EINVAL);
	assert_contains(err, "bad CA pin");
	assert_contains(err, "--ca");
	assert_contains(err, "64 hex digits");

	const char *path = cmdline_file("skyroot.controller=h skyroot.ca=sha256:nothex\n");
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "bad CA pin");
	assert_contains(err, "kernel command line");
	drop_cmdline_file();

	char longpin[700] = "skyroot.controller=h skyroot.ca=sha256:";
	memset(longpin + strlen(longpin), 'a', 600);
	path = cmdline_file(longpin);
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "skyroot.ca=");
	drop_cmdline_file();
}

/* The syntax of HOST:PORT is tested in test_parse.c (sky_parse_hostport);
 * here what the agent keeps of it and the message a user sees. */
static void test_hostport(void **state)
{
	(void)state;
	assert_int_equal(parse("--controller", "ctl", "--ca", PIN_A, "--token", "t", NULL), 0);
	assert_string_equal(cfg.controller_host, "ctl");
	assert_int_equal(cfg.controller_port, 7443);
	assert_int_equal(parse("--controller", "[fe80::1%eth0]:80", "--ca", PIN_A, "--token", "t", NULL), 0);
	assert_string_equal(cfg.controller_host, "fe80::1%eth0");
	assert_int_equal(cfg.controller_port, 80);

	/* Through the flags, with the message a user sees. */
	assert_int_equal(parse("--controller", "[2001:db8::10]:7443", "--ca", PIN_A, "--token", "t", NULL), 0);
	assert_string_equal(cfg.controller_host, "2001:db8::10");
	assert_int_equal(cfg.controller_port, 7443);
	assert_int_equal(parse("--controller", "ctl:99999", "--ca", PIN_A, NULL), -EINVAL);
	assert_contains(err, "bad controller address 'ctl:99999'");
	assert_contains(err, "--controller");
	assert_contains(err, "between 1 and 65535");
}

static void test_token_limits(void **state)
{
	(void)state;
	char tok[AGENT_MAX_TOKEN + 1];
	memset(tok, 'T', AGENT_MAX_TOKEN - 1);
	tok[AGENT_MAX_TOKEN - 1] = '\0'; /* 127 bytes: the longest that fits */
	assert_int_equal(parse("--controller", "h", "--ca", PIN_A, "--token", tok, NULL), 0);
	assert_string_equal(cfg.token, tok);

	memset(tok, 'T', AGENT_MAX_TOKEN);
	tok[AGENT_MAX_TOKEN] = '\0'; /* 128 bytes */
	assert_int_equal(parse("--controller", "h", "--ca", PIN_A, "--token", tok, NULL), -EINVAL);
	assert_contains(err, "128 bytes");
	assert_contains(err, "127");

	char line[1024];
	snprintf(line, sizeof(line), "skyroot.controller=h skyroot.ca=" PIN_A " skyroot.token=%s\n", tok);
	const char *path = cmdline_file(line);
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "token from the kernel command line");
	drop_cmdline_file();

	/* Longer than any buffer the parser uses. */
	char huge[800];
	memset(huge, 'T', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	char line2[1024];
	snprintf(line2, sizeof(line2), "skyroot.controller=h skyroot.ca=" PIN_A " skyroot.token=%s", huge);
	path = cmdline_file(line2);
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "token");
	drop_cmdline_file();

	/* A quoted token with a space is not a token skyctl prints. */
	path = cmdline_file("skyroot.controller=h skyroot.ca=" PIN_A " skyroot.token=\"a b\"");
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "space or a non-printable");
	drop_cmdline_file();
}

static void test_long_paths(void **state)
{
	(void)state;
	static char longp[5000];
	memset(longp, 'p', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(parse("--sysfs-root", longp, NULL), -EINVAL);
	assert_contains(err, "--sysfs-root");
	assert_contains(err, "shorter");

	/* Fits procfs_root but not procfs_root + "/cmdline". */
	longp[sizeof(cfg.procfs_root) - 3] = '\0';
	assert_int_equal(parse("--procfs-root", longp, NULL), -EINVAL);
	assert_contains(err, "--cmdline FILE");
	/* ...unless --cmdline says where to look. */
	assert_int_equal(parse("--procfs-root", longp, "--cmdline", "/x", "--controller", "h", "--ca", PIN_A,
			       "--token", "t", NULL),
			 0);
}

static void test_cmdline_too_big(void **state)
{
	(void)state;
	size_t n = 70000;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	const char *path = cmdline_file(big);
	free(big);
	assert_int_equal(parse("--cmdline", path, NULL), -EINVAL);
	assert_contains(err, "larger than");
	drop_cmdline_file();
}

static void test_small_err_buffer(void **state)
{
	(void)state;
	char *argv[] = { (char *)"skyagent", (char *)"--bogus", NULL };
	char small[8];
	memset(small, 'z', sizeof(small));
	assert_int_equal(agent_config_parse(&cfg, 2, argv, small, sizeof(small)), -EINVAL);
	assert_true(memchr(small, '\0', sizeof(small)) != NULL);
	assert_int_equal(agent_config_parse(&cfg, 2, argv, NULL, 0), -EINVAL);
}

/* ---- --help and --version ---------------------------------------------- */

/* Run a parse with stdout sent to a file; returns what was printed. */
static void capture(const char *flag, char *out, size_t outlen, int *ret)
{
	const char *t = getenv("TMPDIR");
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/skycfgout.XXXXXX", t && *t ? t : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	dup2(fd, STDOUT_FILENO);
	char *argv[] = { (char *)"skyagent", (char *)flag, NULL };
	*ret = agent_config_parse(&cfg, 2, argv, err, sizeof(err));
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	ssize_t n = pread(fd, out, outlen - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n >= 0);
	out[n] = '\0';
}

static void test_help_and_version(void **state)
{
	(void)state;
	char out[8192];
	int r;
	capture("--version", out, sizeof(out), &r);
	assert_int_equal(r, 1);
	assert_string_equal(out, "skyagent 0.1.0\n");

	capture("--help", out, sizeof(out), &r);
	assert_int_equal(r, 1);
	assert_contains(out, "usage: skyagent");
	static const char *const flags[] = { "--controller HOST:PORT", "--token TOKEN", "--ca sha256:HEX",
					     "--sysfs-root DIR", "--procfs-root DIR", "--devfs-root DIR",
					     "--cmdline FILE", "--log-level LEVEL",
					     "--heartbeat-interval MS", "--once", "--version" };
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		assert_contains(out, flags[i]);

	capture("-h", out, sizeof(out), &r);
	assert_int_equal(r, 1);
	assert_contains(out, "usage: skyagent");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags_only),
		cmocka_unit_test(test_equals_form_and_other_flags),
		cmocka_unit_test(test_cmdline_only),
		cmocka_unit_test(test_flags_win_over_cmdline),
		cmocka_unit_test(test_default_cmdline_under_procfs_root),
		cmocka_unit_test(test_missing_token_is_fine),
		cmocka_unit_test(test_missing_controller_or_pin),
		cmocka_unit_test(test_missing_values_and_bad_flags),
		cmocka_unit_test(test_heartbeat_bounds),
		cmocka_unit_test(test_cmdline_get_quoting),
		cmocka_unit_test(test_bad_pin),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_token_limits),
		cmocka_unit_test(test_long_paths),
		cmocka_unit_test(test_cmdline_too_big),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_reboot_flags),
		cmocka_unit_test(test_tpm_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
