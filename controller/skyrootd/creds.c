/* API credentials and the rules of the roles (creds.h).  Statements are
 * prepared per call: credentials change rarely, and a lookup costs one
 * indexed row. */
#include "controller/skyrootd/creds.h"

#include <errno.h>
#include <string.h>

#include "common/limits.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/sql.h"

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

/* Every statement here is prepared, stepped and finalized within one
 * call, and what it binds (the caller's name and hash, static role names)
 * lives through that call: bound without a copy (sql.h). */
static int creds__prepare(struct db *db, const char *sql, struct sql_stmt **s)
{
	return sql_prepare(db_sql(db), sql, s);
}

/* A secret's hash at parameters at (its lookup bytes) and at + 1 (all). */
static void creds__bind_secret(struct sql_stmt *s, int at, const uint8_t hash[32])
{
	sql_bind_blob(s, at, hash, CREDS_LOOKUP_BYTES);
	sql_bind_blob(s, at + 1, hash, 32);
}

static void creds__row(struct sql_stmt *s, struct creds_row *c)
{
	const char *role = sql_col_text(s, 1);

	memset(c, 0, sizeof(*c));
	sql_copy_text(c->name, sizeof(c->name), s, 0);
	if (creds_role_parse(role, &c->role) < 0)
		c->role = CREDS_NONE; /* an unknown role grants nothing */
	c->created_at = sql_col_int64(s, 2);
	c->expires_at = sql_col_int64(s, 3);
	c->rotated_at = sql_col_int64(s, 4);
	c->old_until = sql_col_int64(s, 5);
	c->revoked_at = sql_col_int64(s, 6);
}

/* A credential's name, role, secret, time (?5) and expiry (?6) into sql:
 * the insert of a new one, or the import over an old one. */
static int creds__put(struct db *db, const char *sql, const char *name, enum creds_role role, const uint8_t hash[32],
		      int64_t now, int64_t expires_at)
{
	struct sql_stmt *s;
	int r;

	if (!creds_name_ok(name) || role == CREDS_NONE)
		return -EINVAL;
	r = creds__prepare(db, sql, &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, name);
	sql_bind_text(s, 2, creds_role_name(role));
	creds__bind_secret(s, 3, hash);
	sql_bind_int64(s, 5, now);
	sql_bind_int64(s, 6, expires_at);
	return sql_once_done(s);
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
	struct sql_stmt *s;
	int r, rc, found = -ENOENT;

	r = creds__prepare(db,
			   "SELECT " CREDS_COLS ", hash, old_hash FROM credentials "
			   "WHERE lookup = ?1 OR old_lookup = ?1",
			   &s);
	if (r < 0)
		return r;
	sql_bind_blob(s, 1, hash, CREDS_LOOKUP_BYTES);
	while ((rc = sql_step(s)) == SQL_ROW) {
		const void *cur = sql_col_blob(s, 7), *old = sql_col_blob(s, 8);
		bool is_cur = cur && sql_col_bytes(s, 7) == 32 && sky_memeq_ct(cur, hash, 32) == 1;
		bool is_old = old && sql_col_bytes(s, 8) == 32 && sky_memeq_ct(old, hash, 32) == 1;
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
	if (rc < 0)
		found = rc;
	sql_finalize(s);
	return found;
}

static void creds__get_row(struct sql_stmt *s, void *out)
{
	creds__row(s, out);
}

int creds_get(struct db *db, const char *name, struct creds_row *out)
{
	struct sql_stmt *s;
	int r;

	r = creds__prepare(db, "SELECT " CREDS_COLS " FROM credentials WHERE name = ?1", &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, name);
	return sql_once_row(s, creds__get_row, out);
}

struct creds__each {
	creds_cb cb;
	void *ctx;
};

static int creds__each(void *arg, struct sql_stmt *s)
{
	struct creds__each *e = arg;
	struct creds_row c;

	creds__row(s, &c);
	return e->cb(e->ctx, &c);
}

int creds_list(struct db *db, creds_cb cb, void *ctx)
{
	struct creds__each e = { cb, ctx };
	struct sql_stmt *s;
	int r = creds__prepare(db, "SELECT " CREDS_COLS " FROM credentials ORDER BY name", &s);

	return r < 0 ? r : sql_once_each(s, creds__each, &e);
}

int creds_rotate(struct db *db, const char *name, const uint8_t hash[32], int64_t now, int64_t grace)
{
	struct creds_row c;
	struct sql_stmt *s;
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
	sql_bind_text(s, 1, name);
	creds__bind_secret(s, 2, hash);
	sql_bind_int64(s, 4, now);
	sql_bind_int64(s, 5, grace);
	return sql_once_done(s);
}

int creds_revoke(struct db *db, const char *name, int64_t now)
{
	struct sql_stmt *s;
	int r;

	r = creds__prepare(db,
			   "UPDATE credentials SET revoked_at = CASE WHEN revoked_at = 0 THEN ?2 ELSE revoked_at END, "
			   "old_lookup = NULL, old_hash = NULL, old_until = 0 WHERE name = ?1",
			   &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, name);
	sql_bind_int64(s, 2, now);
	return sql_once_changed(s);
}

int creds_import(struct db *db, const char *name, enum creds_role role, const uint8_t hash[32], bool replace,
		 int64_t now)
{
	struct creds_row c;
	int r = creds_get(db, name, &c);

	if (r == -ENOENT) {
		r = creds_create(db, name, role, now, 0, hash);
		/* -EEXIST: another controller of the fleet, starting on the
		 * same store at the same moment, made it meanwhile. */
		if (r != -EEXIST || !replace)
			return r == -EEXIST ? 0 : r;
	} else if (r < 0 || !replace) {
		return r;
	}
	return creds__put(db,
			  "UPDATE credentials SET role = ?2, lookup = ?3, hash = ?4, rotated_at = ?5, expires_at = ?6, "
			  "revoked_at = 0, old_lookup = NULL, old_hash = NULL, old_until = 0 WHERE name = ?1",
			  name, role, hash, now, 0);
}
