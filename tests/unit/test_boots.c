/* Boards' last bare-metal boot orders in the store (controller/skyrootd/
 * boots.c): a stale or late answer does not overwrite the last order; two
 * controllers on one store (two connections) see the same order, and one
 * settles an order the other sent; a store opened again keeps it; all the
 * boards' orders at once are the same as one by one; request
 * ids are random, never 0, below 2^53; a board's reason is kept as UTF-8
 * of at most BOOTS_ERROR_MAX bytes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "controller/skyrootd/boots.h"
#include "tmpdb.h"

#define T0 INT64_C(1795608000)
#define ACCEPTED SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED
#define REFUSED SKYROOT__BOOT_OUTCOME__BOOT_REFUSED
#define FAILED SKYROOT__BOOT_OUTCOME__BOOT_FAILED

static void test_answers(void **state)
{
	struct tmpdb t;
	struct boots *bs = NULL;
	struct boot_status st;
	uint64_t first, second;
	char long_reason[2 * BOOTS_ERROR_MAX];
	(void)state;

	tmpdb_open(&t, "boots");
	assert_int_equal(boots_open(t.db, &bs), 0);
	assert_int_equal(boots_get(bs, "brd-1", &st), -ENOENT);
	assert_int_equal(boots_answer(bs, "brd-1", 1, ACCEPTED, "", T0, &st), -ENOENT);

	assert_int_equal(boots_next_request(bs, &first), 0);
	assert_int_equal(boots_next_request(bs, &second), 0);
	assert_true(first != 0 && second != first);
	assert_int_equal(boots_sent(bs, "brd-1", first, "img-k", T0), 0);
	assert_int_equal(boots_sent(bs, "brd-1", second, "img-k", T0 + 1), 0);
	assert_int_equal(boots_get(bs, "brd-1", &st), 0);
	assert_int_equal(st.state, BOOT_STATE_SENT);
	assert_int_equal(st.request_id, second);
	assert_int_equal(st.at, T0 + 1);
	assert_string_equal(st.kernel, "img-k");
	assert_string_equal(st.error, "");
	/* The first order's answer comes after the second was sent. */
	assert_int_equal(boots_answer(bs, "brd-1", first, ACCEPTED, "", T0 + 2, NULL), -ESTALE);
	assert_int_equal(boots_get(bs, "brd-1", &st), 0);
	assert_int_equal(st.state, BOOT_STATE_SENT);
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	assert_int_equal(boots_answer(bs, "brd-1", second, REFUSED, long_reason, T0 + 3, &st), 0);
	assert_int_equal(st.state, BOOT_STATE_REFUSED);
	assert_int_equal(st.request_id, second);
	assert_int_equal(st.at, T0 + 3);
	assert_int_equal(strlen(st.error), BOOTS_ERROR_MAX);
	/* Settled: nothing moves it any more. */
	assert_int_equal(boots_answer(bs, "brd-1", second, ACCEPTED, "", T0 + 4, NULL), -EALREADY);
	assert_int_equal(boots_answer(bs, "brd-1", second, FAILED, "late", T0 + 4, NULL), -EALREADY);
	assert_int_equal(boots_get(bs, "brd-1", &st), 0);
	assert_int_equal(st.state, BOOT_STATE_REFUSED);
	assert_int_equal(st.at, T0 + 3);

	/* Accepted, then failed; no reason given is said so; once failed, no
	 * second failure. */
	assert_int_equal(boots_sent(bs, "brd-2", first, "img-k", T0), 0);
	assert_int_equal(boots_answer(bs, "brd-2", first, ACCEPTED, "ignored", T0, &st), 0);
	assert_int_equal(st.state, BOOT_STATE_ACCEPTED);
	assert_string_equal(st.error, "");
	assert_int_equal(boots_answer(bs, "brd-2", first, ACCEPTED, "", T0, NULL), -EALREADY);
	assert_int_equal(boots_answer(bs, "brd-2", first, FAILED, NULL, T0 + 5, &st), 0);
	assert_string_equal(boots_state_name(st.state), "failed");
	assert_non_null(strstr(st.error, "no reason"));
	assert_int_equal(boots_answer(bs, "brd-2", first, FAILED, "again", T0 + 6, NULL), -EALREADY);
	/* A new order starts afresh. */
	assert_int_equal(boots_sent(bs, "brd-2", second, "img-j", T0 + 7), 0);
	assert_int_equal(boots_get(bs, "brd-2", &st), 0);
	assert_int_equal(st.state, BOOT_STATE_SENT);
	assert_string_equal(st.kernel, "img-j");
	assert_string_equal(st.error, "");
	assert_int_equal(boots_forget(bs, "brd-2"), 0);
	assert_int_equal(boots_get(bs, "brd-2", &st), -ENOENT);
	assert_int_equal(boots_get(bs, "brd-1", &st), 0);
	/* Nothing that could be an order of ours. */
	assert_int_equal(boots_sent(bs, "brd-3", 0, "img-k", T0), -EINVAL);
	assert_int_equal(boots_sent(bs, "brd-3", UINT64_MAX, "img-k", T0), -EINVAL);
	assert_int_equal(boots_answer(bs, "brd-1", UINT64_MAX, ACCEPTED, "", T0, NULL), -ENOENT);
	boots_free(bs);
	boots_free(NULL);
	tmpdb_close(&t);
}

/* Two controllers on one store: an order sent through one is seen by the
 * other, which settles it when the board answers there; opened again,
 * the store still has it. */
static void test_shared_and_kept(void **state)
{
	struct tmpdb t;
	struct db *db2 = NULL;
	struct boots *a = NULL, *b = NULL;
	struct boot_status st;
	uint64_t req;
	(void)state;

	tmpdb_open(&t, "boots-shared");
	assert_int_equal(db_open(t.path, &db2), 0);
	assert_int_equal(boots_open(t.db, &a), 0);
	assert_int_equal(boots_open(db2, &b), 0);
	assert_int_equal(boots_next_request(a, &req), 0);
	assert_int_equal(boots_sent(a, "brd-9", req, "img-k", T0), 0);
	assert_int_equal(boots_get(b, "brd-9", &st), 0);
	assert_int_equal(st.state, BOOT_STATE_SENT);
	assert_int_equal(st.request_id, req);
	assert_int_equal(boots_answer(b, "brd-9", req, REFUSED, "no --allow-kexec", T0 + 1, NULL), 0);
	assert_int_equal(boots_get(a, "brd-9", &st), 0);
	assert_int_equal(st.state, BOOT_STATE_REFUSED);
	assert_string_equal(st.error, "no --allow-kexec");
	/* the same answer again, through the first: settled already */
	assert_int_equal(boots_answer(a, "brd-9", req, REFUSED, "no --allow-kexec", T0 + 2, NULL), -EALREADY);
	boots_free(b);
	db_close(db2);
	boots_free(a);
	/* a restart: the store opened again */
	db_close(t.db);
	assert_int_equal(db_open(t.path, &t.db), 0);
	assert_int_equal(boots_open(t.db, &a), 0);
	assert_int_equal(boots_get(a, "brd-9", &st), 0);
	assert_int_equal(st.state, BOOT_STATE_REFUSED);
	assert_int_equal(st.request_id, req);
	assert_int_equal(st.at, T0 + 1);
	assert_string_equal(st.kernel, "img-k");
	boots_free(a);
	tmpdb_close(&t);
}

/* Random ids: none 0, none at or past 2^53, no two alike in a few
 * thousand, and their high bits used (not a counter). */
static void test_request_ids(void **state)
{
	enum { N = 4096 };
	uint64_t *ids = calloc(N, sizeof(*ids)), high = 0;
	(void)state;

	assert_non_null(ids);
	for (int i = 0; i < N; i++) {
		assert_int_equal(boots_next_request(NULL, &ids[i]), 0);
		assert_true(ids[i] != 0 && ids[i] < ((uint64_t)1 << BOOTS_REQUEST_BITS));
		high |= ids[i] >> (BOOTS_REQUEST_BITS - 8);
		for (int k = 0; k < i; k++)
			assert_true(ids[k] != ids[i]);
	}
	assert_int_equal(high, 0xff);
	free(ids);
}

/* Every board's last order at once (a list of boards): the same as one
 * by one, for many boards (past the first allocation), none for a board
 * without one. */
static void test_all(void **state)
{
	struct tmpdb t;
	struct boots *bs = NULL;
	struct boots_all *all = NULL;
	struct boot_status st;
	const struct boot_status *p;
	char id[DB_ID_MAX];
	(void)state;

	tmpdb_open(&t, "boots-all");
	assert_int_equal(boots_open(t.db, &bs), 0);
	assert_int_equal(boots_all(bs, &all), 0);
	assert_null(boots_all_find(all, "brd-0"));
	boots_all_free(all);
	for (int i = 40; i > 0; i--) { /* inserted out of order */
		snprintf(id, sizeof(id), "brd-%02d", i);
		assert_int_equal(boots_sent(bs, id, (uint64_t)(1000 + i), "img-k", T0 + i), 0);
		if (i % 3 == 0)
			assert_int_equal(boots_answer(bs, id, (uint64_t)(1000 + i), REFUSED, id, T0 + i + 1, NULL), 0);
	}
	assert_int_equal(boots_all(bs, &all), 0);
	for (int i = 1; i <= 40; i++) {
		snprintf(id, sizeof(id), "brd-%02d", i);
		p = boots_all_find(all, id);
		assert_non_null(p);
		assert_int_equal(boots_get(bs, id, &st), 0);
		assert_memory_equal(p, &st, sizeof(st));
		assert_int_equal(p->request_id, 1000 + i);
		assert_int_equal(p->state, i % 3 == 0 ? BOOT_STATE_REFUSED : BOOT_STATE_SENT);
	}
	assert_null(boots_all_find(all, "brd-00"));
	assert_null(boots_all_find(all, "brd-41"));
	boots_all_free(all);
	boots_all_free(NULL);
	boots_free(bs);
	tmpdb_close(&t);
}

/* A board's reason that is not UTF-8 is kept with '?' for the bytes that
 * are not; a character cut by the limit is left out whole. */
static void test_reason_utf8(void **state)
{
	struct tmpdb t;
	struct boots *bs = NULL;
	struct boot_status st;
	char reason[BOOTS_ERROR_MAX + 8];
	(void)state;

	tmpdb_open(&t, "boots-utf8");
	assert_int_equal(boots_open(t.db, &bs), 0);
	assert_int_equal(boots_sent(bs, "brd-1", 7, "img-k", T0), 0);
	assert_int_equal(boots_answer(bs, "brd-1", 7, REFUSED, "bad \xff\xfe byte, caf\xc3\xa9", T0, &st), 0);
	assert_string_equal(st.error, "bad ?? byte, caf\xc3\xa9");
	/* "é" (2 bytes) across the limit */
	memset(reason, 'x', sizeof(reason));
	reason[BOOTS_ERROR_MAX - 1] = '\xc3';
	reason[BOOTS_ERROR_MAX] = '\xa9';
	reason[BOOTS_ERROR_MAX + 1] = '\0';
	assert_int_equal(boots_sent(bs, "brd-1", 8, "img-k", T0), 0);
	assert_int_equal(boots_answer(bs, "brd-1", 8, FAILED, reason, T0, &st), 0);
	assert_int_equal(strlen(st.error), BOOTS_ERROR_MAX - 1);
	assert_int_equal(boots_get(bs, "brd-1", &st), 0);
	assert_int_equal(strlen(st.error), BOOTS_ERROR_MAX - 1);
	boots_free(bs);
	tmpdb_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_shared_and_kept),
		cmocka_unit_test(test_request_ids),
		cmocka_unit_test(test_all),
		cmocka_unit_test(test_reason_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
