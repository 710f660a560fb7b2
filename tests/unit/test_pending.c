/* Enrollment with no token (controller/skyrootd/pending.c over
 * db_pending.c): the bound on records, expiry of waiting and decided ones,
 * accept and reject, expectations (by serial, by uuid without case, used
 * once, claims fixed at the first ask), the claims' syntax and the rate of
 * asks per address. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/skyrootd/db.h"
#include "controller/skyrootd/db_pending.h"
#include "controller/skyrootd/pending.h"
#include "tests/unit/tmpdb.h"

struct fx {
	struct tmpdb t;
	struct pending_opts o;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	tmpdb_open(&x->t, "pending");
	x->o.max = 3;
	x->o.ttl = 100;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	tmpdb_close(&x->t);
	free(x);
	return 0;
}

/* A claim of key number k (its fingerprint is k repeated). */
static struct pending_claim claim(uint8_t k, const char *serial, const char *uuid)
{
	struct pending_claim c = { .serial = serial, .uuid = uuid, .hostname = "h", .macs = "52:54:00:00:00:01",
				   .peer = "10.0.0.1" };
	memset(c.key_sha256, k, 32);
	return c;
}

static enum pending_verdict ask(struct fx *x, uint8_t k, const char *serial, const char *uuid, int64_t now,
				struct pending_result *res)
{
	struct pending_claim c = claim(k, serial, uuid);
	struct pending_result local;

	if (!res)
		res = &local;
	assert_int_equal(pending_decide(x->t.db, &x->o, &c, now, res), 0);
	return res->verdict;
}

static void add_expect(struct fx *x, const char *id, const char *serial, const char *uuid, int64_t at)
{
	struct db_expectation e = { .created_at = at };
	char err[128];

	assert_true(pending_expect_check(&e, serial, uuid, err, sizeof(err)));
	snprintf(e.id, sizeof(e.id), "%s", id);
	assert_int_equal(db_expect_insert(x->t.db, &e), 0);
}

static void test_record_and_bound(void **state)
{
	struct fx *x = *state;
	struct pending_result r1, again;

	assert_int_equal(ask(x, 1, "S1", "u1", 1000, &r1), PENDING_WAIT);
	assert_true(r1.is_new);
	assert_memory_equal(r1.id, "pnd-", 4);
	/* The same key again: the same record, not a new one. */
	assert_int_equal(ask(x, 1, "S1", "u1", 1001, &again), PENDING_WAIT);
	assert_false(again.is_new);
	assert_string_equal(again.id, r1.id);
	assert_int_equal(ask(x, 2, "S2", "u2", 1002, NULL), PENDING_WAIT);
	assert_int_equal(ask(x, 3, "S3", "u3", 1003, NULL), PENDING_WAIT);
	assert_int_equal(db_pending_count(x->t.db), 3);
	/* max 3: a fourth key is refused and not recorded; known keys still ask. */
	assert_int_equal(ask(x, 4, "S4", "u4", 1004, NULL), PENDING_FULL);
	assert_int_equal(db_pending_count(x->t.db), 3);
	assert_int_equal(ask(x, 2, "S2", "u2", 1005, NULL), PENDING_WAIT);
	/* Rejected rows count too (they hold the key out). */
	assert_int_equal(pending_reject(x->t.db, &x->o, r1.id, 1006), 0);
	assert_int_equal(ask(x, 4, "S4", "u4", 1007, NULL), PENDING_FULL);
}

static void test_expiry(void **state)
{
	struct fx *x = *state;
	struct pending_result a, b;
	struct db_pending p;

	assert_int_equal(ask(x, 1, "S1", "u1", 1000, &a), PENDING_WAIT);
	assert_int_equal(ask(x, 2, "S2", "u2", 1000, &b), PENDING_WAIT);
	/* Asking again keeps a waiting row alive: ttl after its last ask. */
	assert_int_equal(ask(x, 1, "S1", "u1", 1090, NULL), PENDING_WAIT);
	assert_int_equal(db_pending_expire(x->t.db, 1099), 0);
	assert_int_equal(db_pending_expire(x->t.db, 1100), 1); /* b: 1000 + 100 */
	assert_int_equal(db_pending_get(x->t.db, b.id, &p), -ENOENT);
	assert_int_equal(db_pending_get(x->t.db, a.id, &p), 0);
	assert_int_equal(p.expires_at, 1190);
	/* A rejected row lives ttl after the decision, however often it asks. */
	assert_int_equal(pending_reject(x->t.db, &x->o, a.id, 1100), 0);
	assert_int_equal(ask(x, 1, "S1", "u1", 1150, NULL), PENDING_REJECTED);
	assert_int_equal(ask(x, 1, "S1", "u1", 1199, NULL), PENDING_REJECTED);
	assert_int_equal(db_pending_get(x->t.db, a.id, &p), 0);
	assert_int_equal(p.expires_at, 1200);
	/* After it the key is new again. */
	assert_int_equal(ask(x, 1, "S1", "u1", 1200, &b), PENDING_WAIT);
	assert_true(b.is_new);
	assert_string_not_equal(b.id, a.id);
	/* Decisions on an expired row find nothing. */
	assert_int_equal(pending_accept(x->t.db, &x->o, b.id, 1300), -ENOENT);
}

static void test_accept_reject(void **state)
{
	struct fx *x = *state;
	struct pending_result a, b;
	struct db_pending p;

	assert_int_equal(ask(x, 1, "S1", "u1", 1000, &a), PENDING_WAIT);
	assert_int_equal(pending_accept(x->t.db, &x->o, a.id, 1001), 0);
	assert_int_equal(pending_accept(x->t.db, &x->o, a.id, 1001), -EALREADY);
	/* Another key with the same claims gets nothing from the accept. */
	assert_int_equal(ask(x, 9, "S1", "u1", 1002, &b), PENDING_WAIT);
	assert_string_not_equal(b.id, a.id);
	/* The accepted key collects once; the row goes. */
	assert_int_equal(ask(x, 1, "S1", "u1", 1003, NULL), PENDING_ISSUE);
	assert_int_equal(db_pending_get(x->t.db, a.id, &p), -ENOENT);
	/* Reject: told at every ask; a rejected row cannot be accepted. */
	assert_int_equal(pending_reject(x->t.db, &x->o, b.id, 1004), 0);
	assert_int_equal(ask(x, 9, "S1", "u1", 1005, NULL), PENDING_REJECTED);
	assert_int_equal(pending_accept(x->t.db, &x->o, b.id, 1006), -EALREADY);
	assert_int_equal(pending_reject(x->t.db, &x->o, b.id, 1006), -EALREADY);
	/* Reject takes back an accept not collected yet. */
	assert_int_equal(ask(x, 5, "S5", "u5", 1007, &a), PENDING_WAIT);
	assert_int_equal(pending_accept(x->t.db, &x->o, a.id, 1008), 0);
	assert_int_equal(pending_reject(x->t.db, &x->o, a.id, 1009), 0);
	assert_int_equal(ask(x, 5, "S5", "u5", 1010, NULL), PENDING_REJECTED);
	assert_int_equal(pending_accept(x->t.db, &x->o, "pnd-000000000000", 1011), -ENOENT);
}

static void test_expectations(void **state)
{
	struct fx *x = *state;
	struct pending_result r;
	struct db_expectation e;

	x->o.max = 10;
	add_expect(x, "exp-01", "SN-1", NULL, 10);
	add_expect(x, "exp-02", NULL, "AbCd-0001", 11);
	/* By serial: issued at once, no row, the expectation used up. */
	assert_int_equal(ask(x, 1, "SN-1", "u1", 1000, &r), PENDING_ISSUE);
	assert_string_equal(r.expectation, "exp-01");
	assert_int_equal(db_pending_count(x->t.db), 0);
	assert_int_equal(db_expect_find(x->t.db, "SN-1", "", &e), -ENOENT);
	/* Used once: the next machine with that serial waits. */
	assert_int_equal(ask(x, 2, "SN-1", "u2", 1001, NULL), PENDING_WAIT);
	/* By uuid, without case. */
	assert_int_equal(ask(x, 3, "other", "ABCD-0001", 1002, &r), PENDING_ISSUE);
	assert_string_equal(r.expectation, "exp-02");
	/* Serials match exactly; empty claims match nothing. */
	add_expect(x, "exp-03", "sn-x", NULL, 12);
	assert_int_equal(ask(x, 4, "SN-X", "u4", 1003, NULL), PENDING_WAIT);
	assert_int_equal(ask(x, 5, "", "", 1003, NULL), PENDING_WAIT);
	assert_int_equal(db_expect_count(x->t.db), 1);
	/* A waiting board is taken by an expectation made later; a key keeps
	 * the claims of its first ask (other claims are refused, even ones an
	 * expectation would match). */
	assert_int_equal(ask(x, 6, "SN-LATE", "u6", 1004, NULL), PENDING_WAIT);
	add_expect(x, "exp-04", "SN-CHANGED", NULL, 13);
	assert_int_equal(ask(x, 6, "SN-CHANGED", "u6", 1005, NULL), PENDING_MISMATCH);
	assert_int_equal(ask(x, 6, "SN-LATE", "u-other", 1005, NULL), PENDING_MISMATCH);
	assert_int_equal(db_expect_find(x->t.db, "SN-CHANGED", "", &e), 0);
	add_expect(x, "exp-05", "SN-LATE", NULL, 14);
	assert_int_equal(ask(x, 6, "SN-LATE", "u6", 1006, &r), PENDING_ISSUE);
	assert_string_equal(r.expectation, "exp-05");
	/* A full table does not stop an expected machine. */
	x->o.max = 0;
	add_expect(x, "exp-06", "SN-FULL", NULL, 15);
	assert_int_equal(ask(x, 7, "SN-FULL", "u7", 1007, NULL), PENDING_ISSUE);
	assert_int_equal(ask(x, 8, "SN-NONE", "u8", 1007, NULL), PENDING_FULL);
	/* A machine whose UUID is an enrolled board's is never admitted by an
	 * expectation: it waits for an operator. */
	x->o.max = 10;
	add_expect(x, "exp-08", "SN-KNOWN", NULL, 17);
	struct pending_claim kc = claim(10, "SN-KNOWN", "u10");
	kc.known = true;
	assert_int_equal(pending_decide(x->t.db, &x->o, &kc, 1008, &r), 0);
	assert_int_equal(r.verdict, PENDING_WAIT);
	assert_int_equal(db_expect_find(x->t.db, "SN-KNOWN", "", &e), 0);
	/* A rejected key stays out, expected or not. */
	x->o.max = 10;
	assert_int_equal(ask(x, 9, "SN-R", "u9", 1008, &r), PENDING_WAIT);
	assert_int_equal(pending_reject(x->t.db, &x->o, r.id, 1008), 0);
	add_expect(x, "exp-07", "SN-R", NULL, 16);
	assert_int_equal(ask(x, 9, "SN-R", "u9", 1009, NULL), PENDING_REJECTED);
}

static void test_syntax(void **state)
{
	struct db_expectation e;
	char err[128], out[DB_PENDING_MACS_LEN];
	char *macs[] = { "52:54:00:AB:cd:01", "aa:bb:cc:dd:ee:ff" };
	char *bad_macs[] = { "52:54:00:ab:cd:01", "52-54-00-ab-cd-02" };
	char *short_mac[] = { "52:54:00:12:34:5" }, *long_mac[] = { "52:54:00:12:34:567" };
	char *hex_mac[] = { "52:54:00:12:34:5g" };
	char *many[DB_PENDING_MACS_MAX + 1];
	(void)state;

	assert_true(pending_serial_ok("SKY-A 0001"));
	assert_false(pending_serial_ok(""));
	assert_false(pending_serial_ok("a\nb"));
	assert_false(pending_serial_ok("caf\xc3\xa9"));
	char long_serial[DB_PENDING_SERIAL_MAX + 2];
	memset(long_serial, 'x', sizeof(long_serial) - 1);
	long_serial[sizeof(long_serial) - 1] = '\0';
	assert_false(pending_serial_ok(long_serial));
	long_serial[DB_PENDING_SERIAL_MAX] = '\0';
	assert_true(pending_serial_ok(long_serial));
	assert_true(pending_uuid_ok("5b0f4c0e-9a31-4d0b-8e2a-0a0000000a01"));
	assert_true(pending_uuid_ok("mac-52:54:00:12:34:56"));
	assert_false(pending_uuid_ok("a b"));
	assert_false(pending_uuid_ok("x'; --"));
	assert_false(pending_macs_join(short_mac, 1, out, sizeof(out)));
	assert_false(pending_macs_join(long_mac, 1, out, sizeof(out)));
	assert_false(pending_macs_join(hex_mac, 1, out, sizeof(out)));
	assert_true(pending_macs_join(macs, 2, out, sizeof(out)));
	assert_string_equal(out, "52:54:00:ab:cd:01,aa:bb:cc:dd:ee:ff");
	assert_true(pending_macs_join(macs, 0, out, sizeof(out)));
	assert_string_equal(out, "");
	assert_false(pending_macs_join(bad_macs, 2, out, sizeof(out)));
	for (size_t i = 0; i < DB_PENDING_MACS_MAX + 1; i++)
		many[i] = macs[0];
	assert_true(pending_macs_join(many, DB_PENDING_MACS_MAX, out, sizeof(out)));
	assert_false(pending_macs_join(many, DB_PENDING_MACS_MAX + 1, out, sizeof(out)));
	/* An expectation: exactly one of serial and uuid; the uuid in lower case. */
	assert_false(pending_expect_check(&e, NULL, NULL, err, sizeof(err)));
	assert_false(pending_expect_check(&e, "S", "U", err, sizeof(err)));
	assert_false(pending_expect_check(&e, "a\tb", NULL, err, sizeof(err)));
	assert_false(pending_expect_check(&e, NULL, "not a uuid", err, sizeof(err)));
	assert_true(pending_expect_check(&e, NULL, "ABC-def", err, sizeof(err)));
	assert_string_equal(e.uuid, "abc-def");
	assert_string_equal(e.serial, "");
	assert_true(pending_expect_check(&e, "SN", "", err, sizeof(err)));
	assert_string_equal(e.serial, "SN");
	assert_string_equal(e.uuid, "");
}

static void test_rate(void **state)
{
	struct pending_rate *r = pending_rate_new(3, 1000, 16);
	(void)state;

	assert_non_null(r);
	/* A burst of 3, then one a second. */
	for (int i = 0; i < 3; i++)
		assert_true(pending_rate_allow(r, "10.0.0.1", 5000));
	assert_false(pending_rate_allow(r, "10.0.0.1", 5000));
	assert_false(pending_rate_allow(r, "10.0.0.1", 5999));
	/* Another address has its own bucket. */
	assert_true(pending_rate_allow(r, "10.0.0.2", 5999));
	assert_true(pending_rate_allow(r, "10.0.0.1", 6000));
	assert_false(pending_rate_allow(r, "10.0.0.1", 6000));
	/* Refilled to the burst, not past it. */
	for (int i = 0; i < 3; i++)
		assert_true(pending_rate_allow(r, "10.0.0.1", 60000));
	assert_false(pending_rate_allow(r, "10.0.0.1", 60000));
	/* A full table: the stalest address gives way and no slot overflows. */
	for (int i = 0; i < 200; i++) {
		char peer[32];
		snprintf(peer, sizeof(peer), "192.168.0.%d", i);
		assert_true(pending_rate_allow(r, peer, 70000 + (uint64_t)i));
	}
	pending_rate_free(r);
	assert_null(pending_rate_new(0, 1000, 16));
	assert_null(pending_rate_new(3, 0, 16));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_record_and_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accept_reject, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expectations, setup, teardown),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
