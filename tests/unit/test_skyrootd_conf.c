/* skyrootd's config file: every key of the run flags is accepted from the
 * file, checked as the flag is, refused with FILE:LINE when wrong; flags
 * win over the file; the sample file holds every key with its default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/conf.h"
#include "common/log.h"
#include "controller/skyrootd/chunk_cache.h"
#include "controller/skyrootd/config.h"
#include "controller/skyrootd/controller.h"

static char conf_path[64];

static void write_conf(const char *text)
{
	FILE *f;

	if (!conf_path[0]) {
		int fd;
		snprintf(conf_path, sizeof(conf_path), "/tmp/sky-conf-XXXXXX");
		fd = mkstemp(conf_path);
		assert_true(fd >= 0);
		close(fd);
	}
	f = fopen(conf_path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ctl_config_load on "run --config FILE" plus the flags given. */
static int load(struct ctl_config *c, char *err, size_t errlen, ...)
{
	static char *argv[16];
	static char args[16][128];
	va_list ap;
	int argc = 0;
	const char *a;

	argv[argc++] = strcpy(args[0], "run");
	argv[argc++] = strcpy(args[1], "--config");
	argv[argc++] = strcpy(args[2], conf_path);
	va_start(ap, errlen);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 15) {
		snprintf(args[argc], sizeof(args[argc]), "%s", a);
		argv[argc] = args[argc];
		argc++;
	}
	va_end(ap);
	argv[argc] = NULL;
	return ctl_config_load(c, argc, argv, err, errlen);
}

static void test_every_key_from_file(void **state)
{
	struct ctl_config c;
	struct ctl_options o;
	char err[512];
	(void)state;
	write_conf("# every key, none at its default\n"
		   "state = /srv/sky\n"
		   "agent-listen = 0.0.0.0:9443\n"
		   "api-listen = [::1]:9444   # a comment after a blank\n"
		   "advertise = ctl.example.net:9443\n"
		   "\n"
		   "cert-ttl = 12h\n"
		   "image-max = 2G\n"
		   "firmware = /srv/fw\n"
		   "boot-listen = 127.0.0.1:9080\n"
		   "  agent-conns-max = 100\n"
		   "agent-conns-per-addr=5\n"
		   "enroll-timeout = 1m\n"
		   "api-conns-max = 101\n"
		   "api-conns-per-addr = 6\n"
		   "boot-conns-max = 102\n"
		   "boot-conns-per-addr = 7\n"
		   "boot-downloads-max = 8\n"
		   "tls-handshake-timeout = 3s\n"
		   "request-timeout = 4\n"
		   "keepalive-timeout = 5m\r\n"
		   "chunk-cache = 1G\n"
		   "log-level = debug");
	assert_int_equal(load(&c, err, sizeof(err), NULL), 0);
	assert_string_equal(c.file, conf_path);
	assert_string_equal(c.state, "/srv/sky");
	assert_string_equal(c.agent_listen, "0.0.0.0:9443");
	assert_string_equal(c.api_listen, "[::1]:9444");
	assert_string_equal(c.advertise, "ctl.example.net:9443");
	assert_int_equal(c.cert_ttl, 12 * 3600);
	assert_int_equal(c.image_max, 2ull << 30);
	assert_string_equal(c.firmware, "/srv/fw");
	assert_string_equal(c.boot_listen, "127.0.0.1:9080");
	assert_int_equal(c.log_level, SKY_LOG_DEBUG);
	ctl_config_options(&c, &o);
	assert_int_equal(o.agent_lim.conns_max, 100);
	assert_int_equal(o.agent_lim.per_addr_max, 5);
	assert_int_equal(o.agent_lim.admit_ms, 60000);
	assert_int_equal(o.agent_lim.handshake_ms, 3000);
	assert_int_equal(o.api_lim.conns_max, 101);
	assert_int_equal(o.api_lim.per_addr_max, 6);
	assert_int_equal(o.api_lim.admit_ms, 4000);
	assert_int_equal(o.boot_lim.conns_max, 102);
	assert_int_equal(o.boot_lim.per_addr_max, 7);
	assert_int_equal(o.boot_downloads_max, 8);
	assert_int_equal(o.keepalive_ms, 300000);
	assert_int_equal(o.chunk_cache, 1ull << 30);
	ctl_config_free(&c);
}

static void test_flags_win(void **state)
{
	struct ctl_config c;
	char err[512];
	(void)state;
	write_conf("state = /srv/sky\ncert-ttl = 12h\nlog-level = debug\napi-conns-max = 7\n");
	assert_int_equal(load(&c, err, sizeof(err), "--cert-ttl", "2h", "--state", "/elsewhere", NULL), 0);
	assert_int_equal(c.cert_ttl, 7200);
	assert_string_equal(c.state, "/elsewhere");
	assert_int_equal(c.log_level, SKY_LOG_DEBUG); /* from the file: no flag */
	assert_int_equal(c.api_conns, 7);
	assert_int_equal(c.boot_conns, 256);          /* in neither: the default */
	ctl_config_free(&c);
}

/* The file is refused; err starts with "FILE:LINE: " and holds want. */
static void refused(const char *text, unsigned line, const char *want)
{
	struct ctl_config c = { .state = "untouched" };
	char err[512], prefix[128];

	write_conf(text);
	assert_int_equal(load(&c, err, sizeof(err), NULL), -EINVAL);
	snprintf(prefix, sizeof(prefix), "%s:%u: ", conf_path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want))
		fail_msg("'%s' does not start with '%s' or lacks '%s'", err, prefix, want);
	assert_string_equal(c.state, "untouched"); /* nothing written */
}

static void test_bad_lines_refused_with_line(void **state)
{
	(void)state;
	refused("state = /s\n# fine\nlog-levle = debug\n", 3, "unknown key 'log-levle'; did you mean 'log-level'?");
	refused("state = /s\n\ncert-ttl = 12x\n", 3, "--cert-ttl '12x' is not a duration");
	refused("cert-ttl = 5\n", 1, "out of range");                 /* below the flag's minimum */
	refused("state = /s\napi-conns-max = 0\n", 2, "between 1 and 1000000");
	refused("state = /s\napi-listen = example.net:1\n", 2, "is not ADDR:PORT");
	refused("state = /s\nlog-level = loud\n", 2, "is not a log level");
	refused("state = /s\nimage-max = lots\n", 2, "is not a size");
	refused("state = /s\njust words\n", 2, "is not KEY = VALUE");
	refused("state = /s\ncert-ttl =\n", 2, "cert-ttl has no value");
	refused("state = /s\n= 5\n", 2, "a value without a key");
	refused("state = /s\nstate = /t\n", 2, "state is set again (first on line 1)");
	refused("config = /other.conf\n", 1, "unknown key 'config'");
	refused("help = yes\n", 1, "unknown key 'help'");
}

static void test_file_errors(void **state)
{
	struct ctl_config c;
	char err[512], big[SKY_CONF_LINE_MAX + 64];
	(void)state;
	/* A file named with --config must exist. */
	write_conf("");
	unlink(conf_path);
	assert_int_equal(load(&c, err, sizeof(err), "--state", "/s", NULL), -ENOENT);
	assert_non_null(strstr(err, conf_path));
	/* Empty: fine, the flags and defaults. */
	write_conf("# nothing\n\n");
	assert_int_equal(load(&c, err, sizeof(err), "--state", "/s", NULL), 0);
	assert_int_equal(c.cert_ttl, CTL_DEFAULT_CERT_TTL);
	ctl_config_free(&c);
	/* No state anywhere. */
	assert_int_equal(load(&c, err, sizeof(err), NULL), -EINVAL);
	assert_non_null(strstr(err, "--state DIR is required"));
	/* A bad flag is a usage error whatever the file says. */
	assert_int_equal(load(&c, err, sizeof(err), "--state", "/s", "--cert-ttl", "x", NULL), -EINVAL);
	assert_non_null(strstr(err, "--cert-ttl 'x'"));
	/* A line too long, a NUL byte. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "state = ", 8);
	refused(big, 1, "longer than");
	{
		struct sky_opt none[] = { { 0 } };
		char *store = NULL;
		assert_int_equal(sky_conf_parse(none, "x.conf", "a\0b", 3, &store, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "x.conf:1: a NUL byte: is this a text file?");
		assert_null(store);
	}
}

/* deploy/skyrootd.conf.example: with its "#key = value" lines made live
 * it is accepted, and every key is there with the default. */
static void test_sample_file(void **state)
{
	const char *fixtures = getenv("SKY_FIXTURES");
	char path[4096], line[512], *out = NULL;
	size_t outlen = 0;
	struct ctl_config c, d;
	struct ctl_options o, od;
	char err[512];
	FILE *in, *mem;
	unsigned keys = 0;
	(void)state;
	assert_non_null(fixtures);
	snprintf(path, sizeof(path), "%s/../../deploy/skyrootd.conf.example", fixtures);
	in = fopen(path, "r");
	assert_non_null(in);
	mem = open_memstream(&out, &outlen);
	assert_non_null(mem);
	while (fgets(line, sizeof(line), in)) {
		const char *l = line;
		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' && strstr(line, " = ")) {
			l = line + 1;
			keys++;
		} else if (line[0] >= 'a' && line[0] <= 'z') {
			keys++;
		}
		fputs(l, mem);
	}
	fclose(in);
	fclose(mem);
	write_conf(out);
	free(out);
	assert_int_equal(load(&c, err, sizeof(err), NULL), 0);
	/* Every key of the file's table (all the run flags but --config). */
	assert_int_equal(keys, 24);
	/* The defaults: as with an empty file, but for the examples of the
	 * keys that are off by default, and the state. */
	write_conf("");
	assert_int_equal(load(&d, err, sizeof(err), "--state", "/var/lib/skyroot", NULL), 0);
	assert_string_equal(c.state, "/var/lib/skyroot");
	assert_string_equal(c.agent_listen, d.agent_listen);
	assert_string_equal(c.api_listen, d.api_listen);
	assert_non_null(c.advertise);
	assert_non_null(c.boot_listen);
	assert_non_null(c.firmware);
	/* db: off by default (the state folder says), the example a URI */
	assert_null(d.db);
	assert_non_null(c.db);
	assert_memory_equal(c.db, "postgresql://", 13);
	assert_int_equal(c.log_level, d.log_level);
	ctl_config_options(&c, &o);
	ctl_config_options(&d, &od);
	assert_int_equal(o.cert_ttl, od.cert_ttl);
	assert_int_equal(o.image_max, od.image_max);
	assert_memory_equal(&o.agent_lim, &od.agent_lim, sizeof(o.agent_lim));
	assert_memory_equal(&o.api_lim, &od.api_lim, sizeof(o.api_lim));
	assert_memory_equal(&o.boot_lim, &od.boot_lim, sizeof(o.boot_lim));
	assert_int_equal(o.keepalive_ms, od.keepalive_ms);
	assert_int_equal(o.boot_downloads_max, od.boot_downloads_max);
	/* threads: unset is one loop per CPU (0 here), the example says 2. */
	assert_int_equal(od.threads, 0);
	assert_int_equal(o.threads, 2);
	/* chunk-cache: unset is the engine's default (resolved at start), the
	 * example says PostgreSQL's; 0 turns it off. */
	assert_true(od.chunk_cache == CHUNK_CACHE_AUTO);
	assert_int_equal(o.chunk_cache, CHUNK_CACHE_DEFAULT_PG);
	assert_int_equal(chunk_cache_bound(od.chunk_cache, true), CHUNK_CACHE_DEFAULT_PG);
	assert_int_equal(chunk_cache_bound(od.chunk_cache, false), 0);
	assert_int_equal(chunk_cache_bound(0, true), 0);
	ctl_config_free(&c);
	ctl_config_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_from_file),
		cmocka_unit_test(test_flags_win),
		cmocka_unit_test(test_bad_lines_refused_with_line),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_sample_file),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	if (conf_path[0])
		unlink(conf_path);
	return r;
}
