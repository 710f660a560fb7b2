/* Boards' TPM identity in the store (db_tpm.h). */
#include "controller/skyrootd/db_tpm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/skyrootd/sql.h"

static void db_tpm__id(struct sql_stmt *s, void *out)
{
	sql_copy_text(out, DB_ID_MAX, s, 0);
}

int db_tpm_find_ek(struct db *db, const char *ek, char *id_out)
{
	struct sql_stmt *s;
	int r;

	if (!ek[0])
		return -ENOENT;
	r = sql_prepare(db_sql(db), "SELECT id FROM boards WHERE tpm_ek = ?", &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, ek);
	return sql_once_row(s, db_tpm__id, id_out);
}

int db_tpm_bind(struct db *db, const char *board_id, const char *ek, const char *pcr11, int64_t now)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "UPDATE boards SET tpm_ek = ?1, tpm_bound_at = ?2, tpm_quote_at = ?2, tpm_refused = '', "
			   "tpm_refused_at = 0, tpm_pcr11 = ?4, tpm_quote_fail = '' WHERE id = ?3", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, ek);
	sql_bind_int64(s, 2, now);
	sql_bind_text(s, 3, board_id);
	sql_bind_text(s, 4, pcr11 ? pcr11 : "");
	return sql_once_changed(s);
}

int db_tpm_quoted(struct db *db, const char *board_id, const char *pcr11, int64_t now)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "UPDATE boards SET tpm_quote_at = ?1, tpm_pcr11 = ?3, tpm_quote_fail = '' "
			   "WHERE id = ?2 AND tpm_ek != ''", &s);

	if (r < 0)
		return r;
	sql_bind_int64(s, 1, now);
	sql_bind_text(s, 2, board_id);
	sql_bind_text(s, 3, pcr11 ? pcr11 : "");
	return sql_once_changed(s);
}

int db_tpm_refused(struct db *db, const char *uuid, const char *why, int64_t now)
{
	char text[DB_TPM_REFUSED_MAX];
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "UPDATE boards SET tpm_refused = ?1, tpm_refused_at = ?2 WHERE uuid = ?3 "
			   "AND tpm_refused_at < ?2", &s);

	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "%s", why);
	sql_bind_text(s, 1, text);
	sql_bind_int64(s, 2, now);
	sql_bind_text(s, 3, uuid);
	return sql_once_changed(s);
}

int db_tpm_set_ak(struct db *db, const char *board_id, const uint8_t *ak, size_t len)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "UPDATE boards SET tpm_ak = ?1 WHERE id = ?2 AND tpm_ek != ''", &s);

	if (r < 0)
		return r;
	sql_bind_blob(s, 1, ak, len);
	sql_bind_text(s, 2, board_id);
	return sql_once_changed(s);
}

struct db_tpm__ak {
	uint8_t *buf;
	size_t cap, *len;
	int r;
};

static void db_tpm__ak_row(struct sql_stmt *s, void *out)
{
	struct db_tpm__ak *a = out;
	size_t n = sql_col_bytes(s, 0);
	const void *p = sql_col_blob(s, 0);

	if (!p || n == 0 || n > a->cap) {
		a->r = -ENOENT;
		return;
	}
	memcpy(a->buf, p, n);
	*a->len = n;
}

int db_tpm_get_ak(struct db *db, const char *board_id, uint8_t *ak, size_t cap, size_t *len)
{
	struct db_tpm__ak a = { .buf = ak, .cap = cap, .len = len };
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "SELECT tpm_ak FROM boards WHERE id = ?1 AND tpm_ek != ''", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, board_id);
	r = sql_once_row(s, db_tpm__ak_row, &a);
	return r < 0 ? r : a.r;
}

int db_tpm_quote_failed(struct db *db, const char *board_id, const char *why)
{
	char text[DB_TPM_REFUSED_MAX];
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "UPDATE boards SET tpm_quote_fail = ?1 WHERE id = ?2 AND tpm_ek != ''", &s);

	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "%s", why);
	sql_bind_text(s, 1, text);
	sql_bind_text(s, 2, board_id);
	return sql_once_changed(s);
}
