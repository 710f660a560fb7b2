/* The measured-boot gate: the allowed firmware and the rule (fwgate.h). */
#include "controller/skyrootd/fwgate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "controller/skyrootd/sql.h"

bool fwgate_pcr11_parse(const char *in, char out[FWGATE_PCR_HEX], char *err, size_t errlen)
{
	uint8_t v[32];

	if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
		in += 2;
	if (strlen(in) != 64 || sky_parse_hex(in, v, sizeof(v)) < 0) {
		snprintf(err, errlen, "a PCR 11 value is 64 hex digits (the SHA-256 bank), as fwimage/build.sh prints it");
		return false;
	}
	sky_format_hex(v, sizeof(v), out);
	return true;
}

static void fwgate__row(struct sql_stmt *s, void *out)
{
	struct fw_allowed *f = out;

	sql_copy_text(f->id, sizeof(f->id), s, 0);
	sql_copy_text(f->name, sizeof(f->name), s, 1);
	sql_copy_text(f->pcr11, sizeof(f->pcr11), s, 2);
	f->created_at = sql_col_int64(s, 3);
}

static void fwgate__name(struct sql_stmt *s, void *out)
{
	sql_copy_text(out, DB_NAME_MAX, s, 0);
}

int fwgate_allow(struct db *db, const struct fw_allowed *f, char *taken_by)
{
	char held[DB_NAME_MAX];
	struct sql_stmt *s;
	int r = fwgate_count(db);

	if (r >= FWGATE_MAX)
		return -ENOSPC;
	if (r >= 0)
		r = sql_prepare(db_sql(db), "SELECT name FROM firmware WHERE name = ?1 OR pcr11 = ?2", &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, f->name);
	sql_bind_text(s, 2, f->pcr11);
	r = sql_once_row(s, fwgate__name, held);
	if (r == 0) {
		if (taken_by)
			snprintf(taken_by, DB_NAME_MAX, "%s", held);
		return -EEXIST;
	}
	if (r != -ENOENT)
		return r;
	r = sql_prepare(db_sql(db), "INSERT INTO firmware (id, name, pcr11, created_at) VALUES (?4, ?1, ?2, ?3)", &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 4, f->id);
	sql_bind_text(s, 1, f->name);
	sql_bind_text(s, 2, f->pcr11);
	sql_bind_int64(s, 3, f->created_at);
	return sql_once_done(s);
}

int fwgate_get(struct db *db, const char *id_or_name, struct fw_allowed *out)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db),
			    "SELECT id, name, pcr11, created_at FROM firmware WHERE id = ?1 OR name = ?1 "
			    "ORDER BY id = ?1 DESC LIMIT 1",
			    &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, id_or_name);
	return sql_once_row(s, fwgate__row, out);
}

struct fwgate__each {
	fwgate_cb cb;
	void *ctx;
};

static int fwgate__each(void *arg, struct sql_stmt *s)
{
	struct fwgate__each *e = arg;
	struct fw_allowed f;

	fwgate__row(s, &f);
	return e->cb(e->ctx, &f);
}

int fwgate_list(struct db *db, fwgate_cb cb, void *ctx)
{
	struct fwgate__each e = { cb, ctx };
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "SELECT id, name, pcr11, created_at FROM firmware ORDER BY id", &s);

	return r < 0 ? r : sql_once_each(s, fwgate__each, &e);
}

int fwgate_revoke(struct db *db, const char *id)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "DELETE FROM firmware WHERE id = ?1", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, id);
	return sql_once_changed(s);
}

int fwgate_count(struct db *db)
{
	return sql_count(db_sql(db), "SELECT count(*) FROM firmware");
}

int fwgate_judge(struct db *db, const char *ek, const char *pcr11, const char *quote_fail, char *firmware, char *why)
{
	char name[DB_NAME_MAX] = "";
	struct sql_stmt *s;
	int r;

	if (firmware)
		firmware[0] = '\0';
	if (why)
		why[0] = '\0';
	if (!ek[0])
		return 0; /* no TPM: not gated */
	if (quote_fail && quote_fail[0]) {
		if (why)
			snprintf(why, FWGATE_WHY_MAX, "%s", quote_fail);
		return 1;
	}
	if (pcr11[0]) {
		r = sql_prepare(db_sql(db), "SELECT name FROM firmware WHERE pcr11 = ?1", &s);
		if (r < 0)
			return r;
		sql_bind_text(s, 1, pcr11);
		r = sql_once_row(s, fwgate__name, name);
		if (r == 0) {
			if (firmware)
				snprintf(firmware, DB_NAME_MAX, "%s", name);
			return 0;
		}
		if (r != -ENOENT)
			return r;
	}
	r = fwgate_count(db);
	if (r <= 0)
		return r; /* nothing allowed: the gate is off */
	if (why && pcr11[0])
		snprintf(why, FWGATE_WHY_MAX, "PCR 11 %s matches no allowed firmware", pcr11);
	else if (why)
		snprintf(why, FWGATE_WHY_MAX, "no verified PCR 11 yet (bound before the gate); it is judged at its next quote");
	return 1;
}

struct fwgate__tpm {
	char ek[DB_TPM_EK_MAX];
	char pcr11[FWGATE_PCR_HEX];
	char fail[DB_TPM_REFUSED_MAX];
};

static void fwgate__tpm_row(struct sql_stmt *s, void *out)
{
	struct fwgate__tpm *t = out;

	sql_copy_text(t->ek, sizeof(t->ek), s, 0);
	sql_copy_text(t->pcr11, sizeof(t->pcr11), s, 1);
	sql_copy_text(t->fail, sizeof(t->fail), s, 3);
}

int fwgate_board(struct db *db, const char *board_id, char *firmware, char *why)
{
	struct fwgate__tpm t;
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "SELECT tpm_ek, tpm_pcr11, id, tpm_quote_fail FROM boards WHERE id = ?1", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, board_id);
	r = sql_once_row(s, fwgate__tpm_row, &t);
	if (r < 0)
		return r;
	return fwgate_judge(db, t.ek, t.pcr11, t.fail, firmware, why);
}

int fwgate_snapshot(struct db *db, struct fwgate_board **out, size_t *n)
{
	struct fwgate_board *v = NULL, *nv;
	size_t cap = 0, len = 0;
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db),
			    "SELECT tpm_ek, tpm_pcr11, id, tpm_quote_fail FROM boards WHERE tpm_ek != '' ORDER BY id", &s),
	    rc;

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	while ((rc = sql_step(s)) == SQL_ROW) {
		struct fwgate__tpm t;

		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
		}
		fwgate__tpm_row(s, &t);
		sql_copy_text(v[len].id, sizeof(v[len].id), s, 2);
		snprintf(v[len].pcr11, sizeof(v[len].pcr11), "%s", t.pcr11);
		snprintf(v[len].quote_fail, sizeof(v[len].quote_fail), "%s", t.fail);
		len++;
	}
	if (r == 0 && rc != SQL_DONE)
		r = rc < 0 ? rc : -EIO;
	sql_finalize(s);
	/* Judged once the statement is done (the judge runs its own). */
	for (size_t i = 0; r == 0 && i < len; i++) {
		r = fwgate_judge(db, "bound", v[i].pcr11, v[i].quote_fail, NULL, NULL); /* every row has an EK */
		if (r >= 0) {
			v[i].quarantined = r == 1;
			r = 0;
		}
	}
	if (r < 0) {
		free(v);
		return r;
	}
	*out = v;
	*n = len;
	return 0;
}
