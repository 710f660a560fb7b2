/* Unit tests for agent/srv.c: picking the controller from a DNS SRV answer
 * (_skyroot._tcp), built here byte by byte: priority and weight order,
 * name compression, records skipped ("." target, port 0, not a DNS name,
 * not SRV) and malformed answers refused.  The lookup itself
 * (agent_srv_lookup, the system resolver) is not run here: it would ask
 * the host's DNS servers; the e2e case rack_times does it against the
 * rack's dnsmasq.
 *
 *   ./test_srv
 */
#include "agent/srv.h"

#include "agent/ctlset.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

struct msg {
	unsigned char b[2048];
	size_t n;
};

static void put8(struct msg *m, unsigned v)
{
	assert_true(m->n < sizeof(m->b));
	m->b[m->n++] = (unsigned char)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* a name as labels; "" is the root; a trailing "@NN" is a pointer to NN */
static void putname(struct msg *m, const char *name)
{
	const char *p = name;
	while (*p) {
		if (*p == '@') {
			unsigned off = 0;
			for (p++; *p; p++)
				off = off * 10 + (unsigned)(*p - '0');
			put16(m, 0xc000 | off);
			return;
		}
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		put8(m, (unsigned)len);
		for (size_t i = 0; i < len; i++)
			put8(m, (unsigned char)p[i]);
		p += len;
		if (*p == '.')
			p++;
	}
	put8(m, 0);
}

/* header + the question _skyroot._tcp.rack.test (its name at offset 12;
 * "rack.test" at offset 12 + 9 + 5 = 26) */
static void start(struct msg *m, unsigned answers)
{
	memset(m, 0, sizeof(*m));
	put16(m, 0x1234);
	put16(m, 0x8180);
	put16(m, 1);
	put16(m, answers);
	put16(m, 0);
	put16(m, 0);
	putname(m, "_skyroot._tcp.rack.test");
	put16(m, 33);
	put16(m, 1);
}

/* an SRV answer; rdlen_adjust != 0 writes a wrong length */
static void srv(struct msg *m, unsigned prio, unsigned weight, unsigned port, const char *target,
		int rdlen_adjust)
{
	put16(m, 0xc00c);
	put16(m, 33);
	put16(m, 1);
	put32(m, 60);
	size_t at = m->n;
	put16(m, 0);
	put16(m, prio);
	put16(m, weight);
	put16(m, port);
	putname(m, target);
	unsigned rdlen = (unsigned)(m->n - at - 2) + (unsigned)rdlen_adjust;
	m->b[at] = (unsigned char)(rdlen >> 8);
	m->b[at + 1] = (unsigned char)(rdlen & 0xff);
}

static int pick(const struct msg *m, char *host, size_t hostlen, uint16_t *port)
{
	return agent_srv_pick(m->b, m->n, host, hostlen, port);
}

/* The answer *m picks want_host:want_port (a macro: a failure names the
 * caller's line). */
#define assert_picks(m, want_host, want_port)                             \
	do {                                                              \
		char picked[256];                                         \
		uint16_t picked_port = 0;                                 \
		assert_int_equal(pick((m), picked, sizeof(picked), &picked_port), 0); \
		assert_string_equal(picked, (want_host));                 \
		assert_int_equal(picked_port, (want_port));               \
	} while (0)

static void test_priority_then_weight(void **state)
{
	(void)state;
	struct msg m;

	start(&m, 3);
	srv(&m, 10, 0, 7001, "a.rack.test", 0);
	srv(&m, 5, 0, 7002, "b.rack.test", 0);
	srv(&m, 20, 100, 7003, "c.rack.test", 0);
	assert_picks(&m, "b.rack.test", 7002);

	start(&m, 3);
	srv(&m, 5, 1, 7001, "a.rack.test", 0);
	srv(&m, 5, 9, 7002, "b.rack.test", 0);
	srv(&m, 5, 3, 7003, "c.rack.test", 0);
	assert_picks(&m, "b.rack.test", 7002);
}

static void test_compressed_target(void **state)
{
	(void)state;
	struct msg m;

	/* "ctl" + a pointer to "rack.test" in the question */
	start(&m, 1);
	srv(&m, 0, 0, 7443, "ctl.@26", 0);
	assert_picks(&m, "ctl.rack.test", 7443);
}

static void test_skipped_records(void **state)
{
	(void)state;
	struct msg m;
	char host[256] = "untouched";
	uint16_t port = 99;

	/* "." (no service), port 0, not a DNS name: none usable */
	start(&m, 3);
	srv(&m, 0, 0, 7443, "", 0);
	srv(&m, 0, 0, 0, "a.rack.test", 0);
	srv(&m, 0, 0, 7443, "bad!name.rack.test", 0);
	assert_int_equal(pick(&m, host, sizeof(host), &port), -ENOENT);
	assert_string_equal(host, "untouched");
	assert_int_equal(port, 99);
	/* a usable one after them, at a worse priority, is taken */
	start(&m, 3);
	srv(&m, 0, 0, 7443, "", 0);
	srv(&m, 0, 0, 7443, "bad!name.rack.test", 0);
	srv(&m, 50, 0, 9000, "ok.rack.test", 0);
	assert_picks(&m, "ok.rack.test", 9000);
	/* an A record is not an SRV record */
	start(&m, 1);
	put16(&m, 0xc00c);
	put16(&m, 1);
	put16(&m, 1);
	put32(&m, 60);
	put16(&m, 4);
	put32(&m, 0x0a4d0002);
	assert_int_equal(pick(&m, host, sizeof(host), &port), -ENOENT);
	/* no answer at all */
	start(&m, 0);
	assert_int_equal(pick(&m, host, sizeof(host), &port), -ENOENT);
}

static void test_malformed(void **state)
{
	(void)state;
	struct msg m;
	char host[256];
	uint16_t port;

	/* cut short */
	start(&m, 1);
	srv(&m, 0, 0, 7443, "ctl.rack.test", 0);
	m.n -= 3;
	assert_int_equal(pick(&m, host, sizeof(host), &port), -EINVAL);
	/* rdata shorter than priority, weight, port and a name */
	start(&m, 1);
	put16(&m, 0xc00c);
	put16(&m, 33);
	put16(&m, 1);
	put32(&m, 60);
	put16(&m, 4);
	put32(&m, 0);
	assert_int_equal(pick(&m, host, sizeof(host), &port), -EINVAL);
	/* rdlength longer than the record's name: bytes nobody explains */
	start(&m, 1);
	srv(&m, 0, 0, 7443, "ctl.rack.test", 2);
	put16(&m, 0xabcd);
	assert_int_equal(pick(&m, host, sizeof(host), &port), -EINVAL);
	/* an answer count the message does not hold */
	start(&m, 2);
	srv(&m, 0, 0, 7443, "ctl.rack.test", 0);
	assert_int_equal(pick(&m, host, sizeof(host), &port), -EINVAL);
	/* a pointer loop in the target */
	start(&m, 1);
	size_t here = m.n + 12 + 6; /* where the target will start */
	char loop[16];
	snprintf(loop, sizeof(loop), "@%zu", here);
	srv(&m, 0, 0, 7443, loop, 0);
	assert_int_equal(pick(&m, host, sizeof(host), &port), -EINVAL);
	/* over the size bound */
	start(&m, 1);
	srv(&m, 0, 0, 7443, "ctl.rack.test", 0);
	assert_int_equal(agent_srv_pick(m.b, AGENT_SRV_ANSWER_MAX + 1, host, sizeof(host), &port), -EINVAL);
	/* the caller's buffer too small */
	assert_int_equal(pick(&m, host, 4, &port), -ENAMETOOLONG);
}

/* The whole list, in the order the board tries it: priority ascending,
 * then weight descending, then the answer's order; a target named twice
 * (same port) once; at most max, the worst left out. */
static void test_list_order(void **state)
{
	(void)state;
	struct msg m;
	struct sky_hostport list[AGENT_MAX_CONTROLLERS];
	size_t n = 0;

	start(&m, 6);
	srv(&m, 20, 5, 7001, "late.rack.test", 0);
	srv(&m, 10, 1, 7002, "light.rack.test", 0);
	srv(&m, 10, 50, 7003, "heavy.rack.test", 0);
	srv(&m, 10, 1, 7004, "light2.rack.test", 0);
	srv(&m, 5, 0, 7005, "first.rack.test", 0);
	srv(&m, 10, 50, 7003, "HEAVY.rack.test", 0);
	assert_int_equal(agent_srv_list(m.b, m.n, list, AGENT_MAX_CONTROLLERS, &n), 0);
	assert_int_equal(n, 5);
	const char *want[] = {"first.rack.test", "heavy.rack.test", "light.rack.test", "light2.rack.test",
			      "late.rack.test"};
	const unsigned ports[] = {7005, 7003, 7002, 7004, 7001};
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(list[i].host, want[i]);
		assert_int_equal(list[i].port, ports[i]);
	}
	/* Bounded: the best two only. */
	assert_int_equal(agent_srv_list(m.b, m.n, list, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].host, "first.rack.test");
	assert_string_equal(list[1].host, "heavy.rack.test");

	/* More records than the list holds: the best AGENT_MAX_CONTROLLERS,
	 * whatever the order they came in (the best last). */
	start(&m, AGENT_MAX_CONTROLLERS + 4);
	for (unsigned i = 0; i < AGENT_MAX_CONTROLLERS + 4; i++) {
		char host[32];
		snprintf(host, sizeof(host), "c%u.rack.test", i);
		srv(&m, 100 - i, 0, 7000 + i, host, 0);
	}
	assert_int_equal(agent_srv_list(m.b, m.n, list, AGENT_MAX_CONTROLLERS, &n), 0);
	assert_int_equal(n, AGENT_MAX_CONTROLLERS);
	assert_string_equal(list[0].host, "c19.rack.test");
	assert_string_equal(list[AGENT_MAX_CONTROLLERS - 1].host, "c4.rack.test");

	/* No usable record. */
	start(&m, 1);
	srv(&m, 1, 1, 0, "zero.rack.test", 0);
	assert_int_equal(agent_srv_list(m.b, m.n, list, AGENT_MAX_CONTROLLERS, &n), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_priority_then_weight),
		cmocka_unit_test(test_compressed_target),
		cmocka_unit_test(test_skipped_records),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_list_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
