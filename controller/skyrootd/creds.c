/* API credentials and the rules of the roles (creds.h).  Statements are
 * prepared per call: credentials change rarely, and a lookup costs one
 * indexed row. */
#include "controller/skyrootd/creds.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>

#include "common/limits.h"
#include "common/parse.h"
#include "common/util.h"

/* The bytes of the hash a credential is looked up by (not secret: the
 * hash of a random token), before the constant-time compare of all 32. */
#define CREDS_LOOKUP_BYTES 8

static const char *const creds_roles[] = {
	[CREDS_NONE] = "none",
	[CREDS_READER] = "reader",
	[CREDS_OPERATOR] = "operator",
	[CREDS_ADMIN] = "admin",
};

const char *creds_role_name(enum creds_role role)
{
	return (unsigned)role < SKY_ARRAY_SIZE(creds_roles) ? creds_roles[role] : "none";
}

int creds_role_parse(const char *s, enum creds_role *out)
{
	for (size_t i = CREDS_READER; i < SKY_ARRAY_SIZE(creds_roles); i++)
		if (s && strcmp(s, creds_roles[i]) == 0) {
			*out = (enum creds_role)i;
			return 0;
		}
	return -EINVAL;
}

_Static_assert(CREDS_NAME_MAX == SKY_NAME_MAX + 1, "a credential name is the one name syntax");

bool creds_name_ok(const char *name)
{
	/* Credentials have no id: the name is the path segment. */
	return sky_name_ok(name, NULL);
}

enum creds_state creds_state(const struct creds_row *c, int64_t now)
{
	if (c->revoked_at)
		return CREDS_REVOKED;
	if (c->expires_at && now >= c->expires_at)
		return CREDS_EXPIRED;
	return CREDS_ACTIVE;
}

enum creds_role creds_route_need(bool read_only_method, bool admin_route)
{
	if (admin_route)
		return CREDS_ADMIN;
	return read_only_method ? CREDS_READER : CREDS_OPERATOR;
}

bool creds_role_allows(enum creds_role have, enum creds_role need)
{
	return have != CREDS_NONE && need != CREDS_NONE && have >= need;
}

/* ---- the store ---- */

#define CREDS_COLS "name, role, created_at, expires_at, rotated_at, old_until, revoked_at"

static int creds__prepare(struct db *db, const char *sql, sqlite3_stmt **s)
{
	int rc = sqlite3_prepare_v2(db_handle(db), sql, -1, s, NULL);

	return rc == SQLITE_OK ? 0 : db_errno(rc);
}

static int creds__done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : db_errno(rc);

	sqlite3_finalize(s);
	return r;
}

/* A secret's hash at parameters at (its lookup bytes) and at + 1 (all). */
static void creds__bind_secret(sqlite3_stmt *s, int at, const uint8_t hash[32])
{
	sqlite3_bind_blob(s, at, hash, CREDS_LOOKUP_BYTES, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, at + 1, hash, 32, SQLITE_TRANSIENT);
}

static void creds__row(sqlite3_stmt *s, struct creds_row *c)
{
	const char *role = (const char *)sqlite3_column_text(s, 1);

	memset(c, 0, sizeof(*c));
	db_copy_text(c->name, sizeof(c->name), s, 0);
	if (creds_role_parse(role, &c->role) < 0)
		c->role = CREDS_NONE; /* an unknown role grants nothing */
	c->created_at = sqlite3_column_int64(s, 2);
	c->expires_at = sqlite3_column_int64(s, 3);
	c->rotated_at = sqlite3_column_int64(s, 4);
	c->old_until = sqlite3_column_int64(s, 5);
	c->revoked_at = sqlite3_column_int64(s, 6);
}

/* A credential's name, role, secret, time (?5) and expiry (?6) into sql:
 * the insert of a new one, or the import over an old one. */
static int creds__put(struct db *db, const char *sql, const char *name, enum creds_role role, const uint8_t hash[32],
		      int64_t now, int64_t expires_at)
{
	sqlite3_stmt *s;
	int r;

	if (!creds_name_ok(name) || role == CREDS_NONE)
		return -EINVAL;
	r = creds__prepare(db, sql, &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, creds_role_name(role), -1, SQLITE_STATIC);
	creds__bind_secret(s, 3, hash);
	sqlite3_bind_int64(s, 5, now);
	sqlite3_bind_int64(s, 6, expires_at);
	return creds__done(s);
}

int creds_create(struct db *db, const char *name, enum creds_role role, int64_t now, int64_t expires_at,
		 const uint8_t hash[32])
{
	return creds__put(db,
			  "INSERT INTO credentials (name, role, lookup, hash, created_at, expires_at) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			  name, role, hash, now, expires_at);
}

int creds_find(struct db *db, const uint8_t hash[32], int64_t now, struct creds_row *out)
{
	sqlite3_stmt *s;
	int r, rc, found = -ENOENT;

	r = creds__prepare(db,
			   "SELECT " CREDS_COLS ", hash, old_hash FROM credentials "
			   "WHERE lookup = ?1 OR old_lookup = ?1",
			   &s);
	if (r < 0)
		return r;
	sqlite3_bind_blob(s, 1, hash, CREDS_LOOKUP_BYTES, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const void *cur = sqlite3_column_blob(s, 7), *old = sqlite3_column_blob(s, 8);
		bool is_cur = cur && sqlite3_column_bytes(s, 7) == 32 && sky_memeq_ct(cur, hash, 32) == 1;
		bool is_old = old && sqlite3_column_bytes(s, 8) == 32 && sky_memeq_ct(old, hash, 32) == 1;
		struct creds_row c;

		if (!is_cur && !is_old)
			continue;
		creds__row(s, &c);
		switch (creds_state(&c, now)) {
		case CREDS_REVOKED:
			found = -EKEYREVOKED;
			break;
		case CREDS_EXPIRED:
			found = -EKEYEXPIRED;
			break;
		case CREDS_ACTIVE:
			/* A rotated-out secret lives only through its grace. */
			found = is_cur || now < c.old_until ? 0 : -EKEYEXPIRED;
			break;
		}
		if (out)
			*out = c;
		break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		found = db_errno(rc);
	sqlite3_finalize(s);
	return found;
}

int creds_get(struct db *db, const char *name, struct creds_row *out)
{
	sqlite3_stmt *s;
	int r, rc;

	r = creds__prepare(db, "SELECT " CREDS_COLS " FROM credentials WHERE name = ?1", &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		creds__row(s, out);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	}
	sqlite3_finalize(s);
	return r;
}

int creds_list(struct db *db, creds_cb cb, void *ctx)
{
	sqlite3_stmt *s;
	int r, rc;

	r = creds__prepare(db, "SELECT " CREDS_COLS " FROM credentials ORDER BY name", &s);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct creds_row c;
		creds__row(s, &c);
		r = cb(ctx, &c);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_errno(rc);
	sqlite3_finalize(s);
	return r;
}

int creds_rotate(struct db *db, const char *name, const uint8_t hash[32], int64_t now, int64_t grace)
{
	struct creds_row c;
	sqlite3_stmt *s;
	int r;

	if (grace < 0 || grace > CREDS_GRACE_MAX)
		return -EINVAL;
	r = creds_get(db, name, &c);
	if (r < 0)
		return r;
	if (c.revoked_at)
		return -EKEYREVOKED;
	r = creds__prepare(db,
			   "UPDATE credentials SET old_lookup = CASE WHEN ?5 > 0 THEN lookup END, "
			   "old_hash = CASE WHEN ?5 > 0 THEN hash END, old_until = CASE WHEN ?5 > 0 THEN ?4 + ?5 ELSE 0 END, "
			   "lookup = ?2, hash = ?3, rotated_at = ?4 WHERE name = ?1",
			   &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	creds__bind_secret(s, 2, hash);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_int64(s, 5, grace);
	return creds__done(s);
}

int creds_revoke(struct db *db, const char *name, int64_t now)
{
	sqlite3_stmt *s;
	int r;

	r = creds__prepare(db,
			   "UPDATE credentials SET revoked_at = CASE WHEN revoked_at = 0 THEN ?2 ELSE revoked_at END, "
			   "old_lookup = NULL, old_hash = NULL, old_until = 0 WHERE name = ?1",
			   &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, now);
	r = creds__done(s);
	if (r == 0 && sqlite3_changes(db_handle(db)) == 0)
		r = -ENOENT;
	return r;
}

int creds_import(struct db *db, const char *name, enum creds_role role, const uint8_t hash[32], bool replace,
		 int64_t now)
{
	struct creds_row c;
	int r = creds_get(db, name, &c);

	if (r == -ENOENT)
		return creds_create(db, name, role, now, 0, hash);
	if (r < 0 || !replace)
		return r;
	return creds__put(db,
			  "UPDATE credentials SET role = ?2, lookup = ?3, hash = ?4, rotated_at = ?5, expires_at = ?6, "
			  "revoked_at = 0, old_lookup = NULL, old_hash = NULL, old_until = 0 WHERE name = ?1",
			  name, role, hash, now, 0);
}
