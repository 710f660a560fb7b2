/* Unit tests for controller/skyrootd/fwgate.c: the allowed firmware and the
 * measured-boot gate's rule (issue 16).  PCR 11 values as operators write
 * them; the list (names and values each once, revoke by id); the rule:
 * no TPM not gated, an empty list passes everyone, a matching PCR 11
 * passes with its firmware's name, anything else (and no PCR 11 yet) is
 * quarantined with the reason; the snapshot that tells which boards a
 * change of the list moved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "common/parse.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/db_tpm.h"
#include "controller/skyrootd/fwgate.h"
#include "tmpdb.h"

#define EK1 "0f6e24dd2e3c84dd00000000000000000000000000000000000000000000aaaa"
#define EK2 "0f6e24dd2e3c84dd00000000000000000000000000000000000000000000bbbb"
#define PCR_A "5f0b8a1d3c2e4f60718293a4b5c6d7e8f90112233445566778899aabbccddeef"
#define PCR_B "abababababababababababababababababababababababababababababababab"
#define PCR_Z "0000000000000000000000000000000000000000000000000000000000000000"

static void test_pcr11_parse(void **state)
{
	char out[FWGATE_PCR_HEX], err[200];

	(void)state;
	assert_true(fwgate_pcr11_parse(PCR_A, out, err, sizeof(err)));
	assert_string_equal(out, PCR_A);
	/* Either case, an optional 0x; kept in lower case. */
	assert_true(fwgate_pcr11_parse("0x5F0B8A1D3C2E4F60718293A4B5C6D7E8F90112233445566778899AABBCCDDEEF", out, err,
				       sizeof(err)));
	assert_string_equal(out, PCR_A);
	const char *bad[] = { "", "0x", "5f0b", PCR_A "00", "gf0b8a1d3c2e4f60718293a4b5c6d7e8f90112233445566778899aabbccddeef",
			      " " PCR_A, PCR_A " ", "0x0x" PCR_A, "sha256:" PCR_A,
			      "5f0b8a1d3c2e4f60718293a4b5c6d7e8f90112233445566778899aabbccddee", NULL };
	for (const char **b = bad; *b; b++) {
		err[0] = '\0';
		assert_false(fwgate_pcr11_parse(*b, out, err, sizeof(err)));
		assert_non_null(strstr(err, "64 hex digits"));
	}
}

static struct fw_allowed fw(const char *id, const char *name, const char *pcr)
{
	struct fw_allowed f = { .created_at = 100 };

	snprintf(f.id, sizeof(f.id), "%s", id);
	snprintf(f.name, sizeof(f.name), "%s", name);
	snprintf(f.pcr11, sizeof(f.pcr11), "%s", pcr);
	return f;
}

static int count_cb(void *ctx, const struct fw_allowed *f)
{
	(void)f;
	(*(int *)ctx)++;
	return 0;
}

static void test_list(void **state)
{
	struct tmpdb t;
	struct fw_allowed a = fw("fw-1", "skyroot-a", PCR_A), got;
	char held[DB_NAME_MAX] = "";
	int n = 0;

	(void)state;
	tmpdb_open(&t, "fwgate");
	assert_int_equal(fwgate_count(t.db), 0);
	assert_int_equal(fwgate_allow(t.db, &a, held), 0);
	assert_int_equal(fwgate_count(t.db), 1);
	/* A name once, a PCR 11 once: the holder named. */
	struct fw_allowed same_name = fw("fw-2", "skyroot-a", PCR_B), same_pcr = fw("fw-3", "skyroot-b", PCR_A);
	assert_int_equal(fwgate_allow(t.db, &same_name, held), -EEXIST);
	assert_string_equal(held, "skyroot-a");
	held[0] = '\0';
	assert_int_equal(fwgate_allow(t.db, &same_pcr, held), -EEXIST);
	assert_string_equal(held, "skyroot-a");
	/* By id or by name. */
	assert_int_equal(fwgate_get(t.db, "fw-1", &got), 0);
	assert_string_equal(got.name, "skyroot-a");
	assert_string_equal(got.pcr11, PCR_A);
	assert_int_equal(got.created_at, 100);
	assert_int_equal(fwgate_get(t.db, "skyroot-a", &got), 0);
	assert_string_equal(got.id, "fw-1");
	assert_int_equal(fwgate_get(t.db, "skyroot-z", &got), -ENOENT);
	struct fw_allowed b = fw("fw-2", "skyroot-b", PCR_B);
	assert_int_equal(fwgate_allow(t.db, &b, NULL), 0);
	assert_int_equal(fwgate_list(t.db, count_cb, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(fwgate_revoke(t.db, "fw-1"), 0);
	assert_int_equal(fwgate_revoke(t.db, "fw-1"), -ENOENT);
	assert_int_equal(fwgate_count(t.db), 1);
	tmpdb_close(&t);
}

static void test_full(void **state)
{
	struct tmpdb t;
	char id[DB_ID_MAX], name[DB_NAME_MAX], pcr[FWGATE_PCR_HEX];
	uint8_t v[32] = {0};

	(void)state;
	tmpdb_open(&t, "fwgate");
	assert_int_equal(db_begin(t.db), 0);
	for (int i = 0; i < FWGATE_MAX; i++) {
		snprintf(id, sizeof(id), "fw-%d", i);
		snprintf(name, sizeof(name), "f%d", i);
		v[0] = (uint8_t)i;
		v[1] = (uint8_t)(i >> 8);
		sky_format_hex(v, sizeof(v), pcr);
		struct fw_allowed f = fw(id, name, pcr);
		assert_int_equal(fwgate_allow(t.db, &f, NULL), 0);
	}
	assert_int_equal(db_commit(t.db), 0);
	struct fw_allowed over = fw("fw-x", "over", PCR_B);
	assert_int_equal(fwgate_allow(t.db, &over, NULL), -ENOSPC);
	tmpdb_close(&t);
}

static void test_judge(void **state)
{
	struct tmpdb t;
	char fwname[DB_NAME_MAX], why[FWGATE_WHY_MAX];
	struct fw_allowed a = fw("fw-1", "skyroot-a", PCR_A);

	(void)state;
	tmpdb_open(&t, "fwgate");
	/* An empty list: the gate is off, every board passes, even one with no
	 * PCR 11 yet. */
	assert_int_equal(fwgate_judge(t.db, EK1, PCR_Z, "", fwname, why), 0);
	assert_string_equal(fwname, "");
	assert_string_equal(why, "");
	assert_int_equal(fwgate_judge(t.db, EK1, "", "", fwname, why), 0);
	/* One allowed: the gate is on. */
	assert_int_equal(fwgate_allow(t.db, &a, NULL), 0);
	assert_int_equal(fwgate_judge(t.db, EK1, PCR_A, "", fwname, why), 0);
	assert_string_equal(fwname, "skyroot-a");
	assert_string_equal(why, "");
	assert_int_equal(fwgate_judge(t.db, EK1, PCR_Z, "", fwname, why), 1);
	assert_string_equal(fwname, "");
	assert_string_equal(why, "PCR 11 " PCR_Z " matches no allowed firmware");
	assert_int_equal(fwgate_judge(t.db, EK1, "", "", NULL, why), 1);
	assert_non_null(strstr(why, "no verified PCR 11 yet"));
	/* A failed quote request quarantines whatever the list, with its reason. */
	assert_int_equal(fwgate_judge(t.db, EK1, PCR_A, "no answer to 3 quote requests in a row", fwname, why), 1);
	assert_string_equal(why, "no answer to 3 quote requests in a row");
	/* No TPM: never gated. */
	assert_int_equal(fwgate_judge(t.db, "", "", "", fwname, why), 0);
	assert_int_equal(fwgate_judge(t.db, "", PCR_Z, "", NULL, NULL), 0);
	/* Revoked: quarantined at once; the list empty again: the gate is off. */
	assert_int_equal(fwgate_revoke(t.db, "fw-1"), 0);
	assert_int_equal(fwgate_judge(t.db, EK1, PCR_A, "", fwname, why), 0);
	tmpdb_close(&t);
}

static void test_board_and_snapshot(void **state)
{
	struct tmpdb t;
	struct db_board b1 = {.id = "brd-1", .name = "node-a", .uuid = "u-1", .enrolled_at = 1};
	struct db_board b2 = {.id = "brd-2", .name = "node-b", .uuid = "u-2", .enrolled_at = 1};
	struct db_board b3 = {.id = "brd-3", .name = "node-c", .uuid = "u-3", .enrolled_at = 1};
	struct fw_allowed a = fw("fw-1", "skyroot-a", PCR_A);
	struct fwgate_board *snap = NULL;
	char fwname[DB_NAME_MAX], why[FWGATE_WHY_MAX];
	size_t n = 0;

	(void)state;
	tmpdb_open(&t, "fwgate");
	assert_int_equal(db_board_insert(t.db, &b1), 0);
	assert_int_equal(db_board_insert(t.db, &b2), 0);
	assert_int_equal(db_board_insert(t.db, &b3), 0); /* no TPM */
	assert_int_equal(db_tpm_bind(t.db, "brd-1", EK1, PCR_A, 10), 0);
	assert_int_equal(db_tpm_bind(t.db, "brd-2", EK2, PCR_Z, 10), 0);
	assert_int_equal(fwgate_board(t.db, "brd-9", fwname, why), -ENOENT);
	assert_int_equal(fwgate_allow(t.db, &a, NULL), 0);
	assert_int_equal(fwgate_board(t.db, "brd-1", fwname, why), 0);
	assert_string_equal(fwname, "skyroot-a");
	assert_int_equal(fwgate_board(t.db, "brd-2", fwname, why), 1);
	assert_int_equal(fwgate_board(t.db, "brd-3", fwname, why), 0);
	/* A new quote with another PCR 11 moves the board. */
	assert_int_equal(db_tpm_quoted(t.db, "brd-1", PCR_B, 20), 0);
	assert_int_equal(fwgate_board(t.db, "brd-1", fwname, why), 1);
	assert_string_equal(why, "PCR 11 " PCR_B " matches no allowed firmware");
	/* The TPM boards only, each judged. */
	assert_int_equal(fwgate_snapshot(t.db, &snap, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(snap[0].id, "brd-1");
	assert_string_equal(snap[0].pcr11, PCR_B);
	assert_true(snap[0].quarantined);
	assert_string_equal(snap[1].id, "brd-2");
	assert_true(snap[1].quarantined);
	free(snap);
	struct fw_allowed z = fw("fw-2", "zero", PCR_Z);
	assert_int_equal(fwgate_allow(t.db, &z, NULL), 0);
	assert_int_equal(fwgate_snapshot(t.db, &snap, &n), 0);
	assert_int_equal(n, 2);
	assert_true(snap[0].quarantined);
	assert_false(snap[1].quarantined);
	free(snap);
	tmpdb_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcr11_parse),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_board_and_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
