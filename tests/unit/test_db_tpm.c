/* Unit tests for controller/skyrootd/db_tpm.c: EK -> board in the store
 * (issue 16).  An EK binds to one board, is found by its fingerprint, goes
 * with its board; a newer EK replaces a board's earlier one; refusals are
 * noted on the board of the machine claimed, at most once a second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "controller/skyrootd/db.h"
#include "controller/skyrootd/db_tpm.h"
#include "tmpdb.h"

#define EK1 "0f6e24dd2e3c84dd00000000000000000000000000000000000000000000aaaa"
#define EK2 "0f6e24dd2e3c84dd00000000000000000000000000000000000000000000bbbb"

static int copy_cb(void *ctx, const struct db_board *b)
{
	memcpy(ctx, b, sizeof(*b));
	((struct db_board *)ctx)->inventory = NULL;
	return 0;
}

static void test_bind_find_delete(void **state)
{
	struct tmpdb t;
	struct db_board a = {.id = "brd-1", .name = "node-a", .uuid = "u-1", .enrolled_at = 1};
	struct db_board b = {.id = "brd-2", .name = "node-b", .uuid = "u-2", .enrolled_at = 1};
	struct db_board got;
	char id[DB_ID_MAX];

	(void)state;
	tmpdb_open(&t, "dbtpm");
	assert_int_equal(db_board_insert(t.db, &a), 0);
	assert_int_equal(db_board_insert(t.db, &b), 0);
	assert_int_equal(db_tpm_find_ek(t.db, EK1, id), -ENOENT);
	assert_int_equal(db_tpm_find_ek(t.db, "", id), -ENOENT); /* "" is no EK, never a board without one */
	assert_int_equal(db_tpm_quoted(t.db, "brd-1", "", 5), -ENOENT); /* no EK bound: no quote noted */
	assert_int_equal(db_tpm_bind(t.db, "brd-1", EK1, "", 100), 0);
	assert_int_equal(db_tpm_find_ek(t.db, EK1, id), 0);
	assert_string_equal(id, "brd-1");
	assert_int_equal(db_tpm_bind(t.db, "brd-2", EK1, "", 100), -EEXIST); /* one board per EK */
	assert_int_equal(db_tpm_quoted(t.db, "brd-1", "", 200), 0);
	assert_int_equal(db_board_get(t.db, "brd-1", copy_cb, &got), 0);
	assert_string_equal(got.tpm_ek, EK1);
	assert_int_equal(got.tpm_bound_at, 100);
	assert_int_equal(got.tpm_quote_at, 200);
	/* A newer TPM on the board replaces its EK. */
	assert_int_equal(db_tpm_bind(t.db, "brd-1", EK2, "", 300), 0);
	assert_int_equal(db_tpm_find_ek(t.db, EK1, id), -ENOENT);
	assert_int_equal(db_tpm_find_ek(t.db, EK2, id), 0);
	assert_int_equal(db_tpm_bind(t.db, "brd-9", EK1, "", 300), -ENOENT);
	/* The EK goes with its board. */
	assert_int_equal(db_board_delete(t.db, "brd-1"), 0);
	assert_int_equal(db_tpm_find_ek(t.db, EK2, id), -ENOENT);
	assert_int_equal(db_tpm_bind(t.db, "brd-2", EK2, "", 400), 0);
	tmpdb_close(&t);
}

static void test_refused(void **state)
{
	struct tmpdb t;
	struct db_board a = {.id = "brd-1", .name = "node-a", .uuid = "u-1", .enrolled_at = 1};
	struct db_board got;

	(void)state;
	tmpdb_open(&t, "dbtpm");
	assert_int_equal(db_board_insert(t.db, &a), 0);
	assert_int_equal(db_tpm_refused(t.db, "u-unknown", "why", 10), -ENOENT);
	assert_int_equal(db_tpm_refused(t.db, "u-1", "TPM evidence refused: wrong nonce", 10), 0);
	assert_int_equal(db_tpm_refused(t.db, "u-1", "another", 10), -ENOENT); /* once a second */
	assert_int_equal(db_board_get(t.db, "brd-1", copy_cb, &got), 0);
	assert_string_equal(got.tpm_refused, "TPM evidence refused: wrong nonce");
	assert_int_equal(got.tpm_refused_at, 10);
	/* A long reason is cut to fit. */
	char longwhy[1000];
	memset(longwhy, 'x', sizeof(longwhy) - 1);
	longwhy[sizeof(longwhy) - 1] = '\0';
	assert_int_equal(db_tpm_refused(t.db, "u-1", longwhy, 11), 0);
	assert_int_equal(db_board_get(t.db, "brd-1", copy_cb, &got), 0);
	assert_int_equal(strlen(got.tpm_refused), DB_TPM_REFUSED_MAX - 1);
	/* Binding clears the refusal. */
	assert_int_equal(db_tpm_bind(t.db, "brd-1", EK1, "", 12), 0);
	assert_int_equal(db_board_get(t.db, "brd-1", copy_cb, &got), 0);
	assert_string_equal(got.tpm_refused, "");
	assert_int_equal(got.tpm_refused_at, 0);
	tmpdb_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bind_find_delete),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
