/* Unit tests for agent/ctlset.c: the order in which a board tries the
 * controllers it knows (issue 14).  The list's order; every address of a
 * name in turn before the next entry; from the last back to the first,
 * which ends a round (the backoff grows by rounds, agent/client.c);
 * duplicate and non-TCP addresses dropped; at most AGENT_MAX_ADDRS kept;
 * the log's names of them.  And the list as skyagent reads it from
 * --controller and skyroot.controller= (agent/config.c).
 *
 *   ./test_ctlset
 */
#include "agent/config.h"
#include "agent/ctlset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static const struct sky_hostport three[] = {
	{"a.rack.test", 7001},
	{"fd00::2", 7002},
	{"10.0.0.3", 7003},
};

/* addrinfo entries for IPv4 addresses "10.0.0.N" (n of them, numbers as
 * given), chained in that order; socktype SOCK_STREAM unless dgram. */
struct ai_set {
	struct addrinfo ai[AGENT_MAX_ADDRS + 8];
	struct sockaddr_in sin[AGENT_MAX_ADDRS + 8];
};

static struct addrinfo *ai_chain(struct ai_set *s, const unsigned *last_octets, size_t n, int port, bool dgram_first)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.0.0.%u", last_octets[i]);
		s->sin[i].sin_family = AF_INET;
		s->sin[i].sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, ip, &s->sin[i].sin_addr), 1);
		s->ai[i].ai_family = AF_INET;
		s->ai[i].ai_socktype = (dgram_first && i == 0) ? SOCK_DGRAM : SOCK_STREAM;
		s->ai[i].ai_addrlen = sizeof(s->sin[i]);
		s->ai[i].ai_addr = (struct sockaddr *)&s->sin[i];
		s->ai[i].ai_next = i + 1 < n ? &s->ai[i + 1] : NULL;
	}
	return n ? &s->ai[0] : NULL;
}

static const char *addr_str(const struct agent_ctlset *s, char *buf, size_t len)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)agent_ctlset_addr(s);
	assert_non_null(in);
	assert_int_equal(in->sin_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len));
	return buf;
}

/* Failures rotate through the list in its order, and only the move from
 * the last entry to the first ends a round. */
static void test_rotation(void **state)
{
	(void)state;
	struct agent_ctlset s;

	agent_ctlset_init(&s, three, 3);
	assert_string_equal(agent_ctlset_current(&s)->host, "a.rack.test");
	assert_true(agent_ctlset_need_resolve(&s));
	assert_null(agent_ctlset_addr(&s));
	for (int round = 0; round < 3; round++) {
		assert_false(agent_ctlset_advance(&s));
		assert_string_equal(agent_ctlset_current(&s)->host, "fd00::2");
		assert_int_equal(agent_ctlset_current(&s)->port, 7002);
		assert_false(agent_ctlset_advance(&s));
		assert_string_equal(agent_ctlset_current(&s)->host, "10.0.0.3");
		assert_true(agent_ctlset_advance(&s)); /* back to the first: a round */
		assert_string_equal(agent_ctlset_current(&s)->host, "a.rack.test");
	}
	/* One controller: every failure is a whole round, on the same one. */
	agent_ctlset_init(&s, three + 2, 1);
	assert_true(agent_ctlset_advance(&s));
	assert_string_equal(agent_ctlset_current(&s)->host, "10.0.0.3");
}

/* A name with several addresses: each in turn, then the next entry, which
 * is resolved again (as is the name when its turn comes back). */
static void test_addresses(void **state)
{
	(void)state;
	struct agent_ctlset s;
	struct ai_set ais;
	char buf[64];
	const unsigned octets[] = {7, 8, 7, 9};

	agent_ctlset_init(&s, three, 3);
	/* a UDP entry is not dialled; 10.0.0.7 twice is tried once */
	assert_int_equal(agent_ctlset_set_addrs(&s, ai_chain(&ais, octets, 4, 7001, false)), 3);
	assert_false(agent_ctlset_need_resolve(&s));
	assert_string_equal(addr_str(&s, buf, sizeof(buf)), "10.0.0.7");
	agent_ctlset_describe(&s, buf, sizeof(buf));
	assert_string_equal(buf, "a.rack.test:7001 (10.0.0.7)");
	assert_false(agent_ctlset_advance(&s));
	assert_string_equal(agent_ctlset_current(&s)->host, "a.rack.test");
	assert_string_equal(addr_str(&s, buf, sizeof(buf)), "10.0.0.8");
	assert_false(agent_ctlset_advance(&s));
	assert_string_equal(addr_str(&s, buf, sizeof(buf)), "10.0.0.9");
	assert_false(agent_ctlset_advance(&s));
	assert_string_equal(agent_ctlset_current(&s)->host, "fd00::2");
	assert_true(agent_ctlset_need_resolve(&s));
	agent_ctlset_describe(&s, buf, sizeof(buf));
	assert_string_equal(buf, "[fd00::2]:7002");

	/* Only non-TCP answers: nothing to dial, as a failed resolution. */
	assert_int_equal(agent_ctlset_set_addrs(&s, ai_chain(&ais, octets, 1, 7002, true)), 0);
	assert_true(agent_ctlset_need_resolve(&s));
	assert_int_equal(agent_ctlset_set_addrs(&s, NULL), 0);

	/* At most AGENT_MAX_ADDRS of one name. */
	unsigned many[AGENT_MAX_ADDRS + 4];
	for (unsigned i = 0; i < AGENT_MAX_ADDRS + 4; i++)
		many[i] = 20 + i;
	agent_ctlset_init(&s, three, 1);
	assert_int_equal(agent_ctlset_set_addrs(&s, ai_chain(&ais, many, AGENT_MAX_ADDRS + 4, 7001, false)),
			 AGENT_MAX_ADDRS);
	for (unsigned i = 0; i + 1 < AGENT_MAX_ADDRS; i++)
		assert_false(agent_ctlset_advance(&s));
	assert_true(agent_ctlset_advance(&s)); /* the last address of the only entry */
	assert_true(agent_ctlset_need_resolve(&s));

	/* An IP literal resolves to itself: the log does not repeat it. */
	agent_ctlset_init(&s, three + 2, 1);
	const unsigned self[] = {3};
	assert_int_equal(agent_ctlset_set_addrs(&s, ai_chain(&ais, self, 1, 7003, false)), 1);
	agent_ctlset_describe(&s, buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.3:7003");
}

/* ---- the list as skyagent reads it ---- */

static struct agent_config cfg;
static char err[512];

static int parse_args(const char *controller, const char *cmdline_text)
{
	const char *t = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/skyctlset.XXXXXX", t && *t ? t : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, cmdline_text, strlen(cmdline_text)), (ssize_t)strlen(cmdline_text));
	close(fd);
	char *argv[16];
	int argc = 0;
	argv[argc++] = "skyagent";
	argv[argc++] = "--cmdline";
	argv[argc++] = path;
	argv[argc++] = "--no-tpm";
	argv[argc++] = "--ca";
	argv[argc++] = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	if (controller) {
		argv[argc++] = "--controller";
		argv[argc++] = (char *)controller;
	}
	argv[argc] = NULL;
	int r = agent_config_parse(&cfg, argc, argv, err, sizeof(err));
	unlink(path);
	return r;
}

static void test_config_lists(void **state)
{
	(void)state;

	assert_int_equal(parse_args("a:7001,[fd00::2]:7002,a:7001,b", ""), 0);
	assert_int_equal(cfg.n_controllers, 3);
	assert_string_equal(cfg.controllers[0].host, "a");
	assert_string_equal(cfg.controllers[1].host, "fd00::2");
	assert_string_equal(cfg.controllers[2].host, "b");
	assert_int_equal(cfg.controllers[2].port, 7443);
	/* the first also where a single controller was */
	assert_string_equal(cfg.controller_host, "a");
	assert_int_equal(cfg.controller_port, 7001);

	/* The kernel command line takes the same list. */
	assert_int_equal(parse_args(NULL, "quiet skyroot.controller=c1:7443,c2:7443,[::1]:9 ro\n"), 0);
	assert_int_equal(cfg.n_controllers, 3);
	assert_string_equal(cfg.controllers[1].host, "c2");
	assert_string_equal(cfg.controllers[2].host, "::1");
	assert_int_equal(cfg.controllers[2].port, 9);

	/* Sixteen at most: the error says so. */
	char list[400] = "";
	for (int i = 0; i < AGENT_MAX_CONTROLLERS + 1; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%sc%d", i ? "," : "", i);
	assert_int_equal(parse_args(list, ""), -EINVAL);
	assert_non_null(strstr(err, "too many controllers"));
	assert_non_null(strstr(err, "16"));
	list[strlen(list) - 4] = '\0'; /* drop ",c16" */
	assert_int_equal(parse_args(list, ""), 0);
	assert_int_equal(cfg.n_controllers, AGENT_MAX_CONTROLLERS);

	/* An empty item, from a flag and from the kernel: which one and where. */
	assert_int_equal(parse_args("a,,b", ""), -EINVAL);
	assert_non_null(strstr(err, "item 2"));
	assert_non_null(strstr(err, "--controller"));
	assert_int_equal(parse_args(NULL, "skyroot.controller=a:1,\n"), -EINVAL);
	assert_non_null(strstr(err, "item 2"));
	assert_non_null(strstr(err, "kernel command line"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_config_lists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
