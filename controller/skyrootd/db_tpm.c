/* Boards' TPM identity in the store (db_tpm.h). */
#include "controller/skyrootd/db_tpm.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static void db_tpm__id(sqlite3_stmt *s, void *out)
{
	db_copy_text(out, DB_ID_MAX, s, 0);
}

int db_tpm_find_ek(struct db *db, const char *ek, char *id_out)
{
	sqlite3_stmt *s;
	int r;

	if (!ek[0])
		return -ENOENT;
	r = db_prepare(db, "SELECT id FROM boards WHERE tpm_ek = ?", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, ek, -1, SQLITE_STATIC);
	return db_one(s, db_tpm__id, id_out);
}

int db_tpm_bind(struct db *db, const char *board_id, const char *ek, const char *pcr11, int64_t now)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "UPDATE boards SET tpm_ek = ?1, tpm_bound_at = ?2, tpm_quote_at = ?2, tpm_refused = '', "
			   "tpm_refused_at = 0, tpm_pcr11 = ?4, tpm_quote_fail = '' WHERE id = ?3", &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, ek, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, board_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, pcr11 ? pcr11 : "", -1, SQLITE_STATIC);
	return db_changed(db, s);
}

int db_tpm_quoted(struct db *db, const char *board_id, const char *pcr11, int64_t now)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "UPDATE boards SET tpm_quote_at = ?1, tpm_pcr11 = ?3, tpm_quote_fail = '' "
			   "WHERE id = ?2 AND tpm_ek != ''", &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_text(s, 2, board_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, pcr11 ? pcr11 : "", -1, SQLITE_STATIC);
	return db_changed(db, s);
}

int db_tpm_refused(struct db *db, const char *uuid, const char *why, int64_t now)
{
	char text[DB_TPM_REFUSED_MAX];
	sqlite3_stmt *s;
	int r = db_prepare(db, "UPDATE boards SET tpm_refused = ?1, tpm_refused_at = ?2 WHERE uuid = ?3 "
			   "AND tpm_refused_at < ?2", &s);

	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "%s", why);
	sqlite3_bind_text(s, 1, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, uuid, -1, SQLITE_STATIC);
	return db_changed(db, s);
}

int db_tpm_set_ak(struct db *db, const char *board_id, const uint8_t *ak, size_t len)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "UPDATE boards SET tpm_ak = ?1 WHERE id = ?2 AND tpm_ek != ''", &s);

	if (r < 0)
		return r;
	sqlite3_bind_blob(s, 1, ak, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, board_id, -1, SQLITE_STATIC);
	return db_changed(db, s);
}

struct db_tpm__ak {
	uint8_t *buf;
	size_t cap, *len;
	int r;
};

static void db_tpm__ak_row(sqlite3_stmt *s, void *out)
{
	struct db_tpm__ak *a = out;
	int n = sqlite3_column_bytes(s, 0);
	const void *p = sqlite3_column_blob(s, 0);

	if (!p || n <= 0 || (size_t)n > a->cap) {
		a->r = -ENOENT;
		return;
	}
	memcpy(a->buf, p, (size_t)n);
	*a->len = (size_t)n;
}

int db_tpm_get_ak(struct db *db, const char *board_id, uint8_t *ak, size_t cap, size_t *len)
{
	struct db_tpm__ak a = { .buf = ak, .cap = cap, .len = len };
	sqlite3_stmt *s;
	int r = db_prepare(db, "SELECT tpm_ak FROM boards WHERE id = ?1 AND tpm_ek != ''", &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, board_id, -1, SQLITE_STATIC);
	r = db_one(s, db_tpm__ak_row, &a);
	return r < 0 ? r : a.r;
}

int db_tpm_quote_failed(struct db *db, const char *board_id, const char *why)
{
	char text[DB_TPM_REFUSED_MAX];
	sqlite3_stmt *s;
	int r = db_prepare(db, "UPDATE boards SET tpm_quote_fail = ?1 WHERE id = ?2 AND tpm_ek != ''", &s);

	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "%s", why);
	sqlite3_bind_text(s, 1, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, board_id, -1, SQLITE_STATIC);
	return db_changed(db, s);
}
