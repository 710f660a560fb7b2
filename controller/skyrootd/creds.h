/* API credentials (docs/api.md "Credentials and roles"): named tokens with
 * a role and an optional expiry, kept as the SHA-256 of the token only
 * (db migration 6), and the rules of what each role may call.  The rules
 * (creds_state, creds_role_allows, creds_route_need) are pure functions,
 * apart from the store, for the unit test. */
#ifndef SKY_CONTROLLER_CREDS_H
#define SKY_CONTROLLER_CREDS_H

#include <stdbool.h>
#include <stdint.h>

#include "controller/skyrootd/db.h"

enum creds_role {
	CREDS_NONE = 0,   /* no valid credential */
	CREDS_READER,     /* GET only */
	CREDS_OPERATOR,   /* everything but credentials and the audit log */
	CREDS_ADMIN,      /* everything */
};

/* What a credential is at a time. */
enum creds_state {
	CREDS_ACTIVE,
	CREDS_EXPIRED,
	CREDS_REVOKED,
};

#define CREDS_NAME_MAX DB_NAME_MAX
/* A rotation's grace for the old secret is at most a week. */
#define CREDS_GRACE_MAX (7 * 86400)

struct creds_row {
	char name[CREDS_NAME_MAX];
	enum creds_role role;
	int64_t created_at;
	int64_t expires_at;   /* 0 = never */
	int64_t rotated_at;   /* 0 = never */
	int64_t old_until;    /* the previous secret works until then; 0 = not at all */
	int64_t revoked_at;   /* 0 = not revoked */
};

const char *creds_role_name(enum creds_role role);
/* "reader", "operator", "admin": 0, else -EINVAL. */
int creds_role_parse(const char *s, enum creds_role *out);
/* A name: sky_name_ok (common/parse.h) without an id prefix. */
bool creds_name_ok(const char *name);
enum creds_state creds_state(const struct creds_row *c, int64_t now);
/* The role a call needs: GET/HEAD reader, others operator, and admin for
 * the admin routes (credentials, audit) whatever the method. */
enum creds_role creds_route_need(bool read_only_method, bool admin_route);
bool creds_role_allows(enum creds_role have, enum creds_role need);

/* ---- the store ---- */
/* -EEXIST when the name is taken (revoked ones included). */
int creds_create(struct db *db, const char *name, enum creds_role role, int64_t now, int64_t expires_at,
		 const uint8_t hash[32]);
/* The credential whose token hashes to hash, as it is at now: 0 and *out
 * when active; -ENOENT unknown, -EKEYEXPIRED expired (also a rotated-out
 * secret past its grace), -EKEYREVOKED revoked (*out filled for these two). */
int creds_find(struct db *db, const uint8_t hash[32], int64_t now, struct creds_row *out);
int creds_get(struct db *db, const char *name, struct creds_row *out);
typedef int (*creds_cb)(void *ctx, const struct creds_row *c);
int creds_list(struct db *db, creds_cb cb, void *ctx);
/* A new secret; the old one works for grace seconds more (0: invalid at
 * once).  -ENOENT, -EKEYREVOKED (a revoked one cannot be rotated). */
int creds_rotate(struct db *db, const char *name, const uint8_t hash[32], int64_t now, int64_t grace);
/* -ENOENT; revoking twice is 0. */
int creds_revoke(struct db *db, const char *name, int64_t now);
/* The tokens of the state folder as credentials: when there is no
 * credential named name yet (revoked ones count), or replace is set, it
 * gets this hash and role, active and without expiry. */
int creds_import(struct db *db, const char *name, enum creds_role role, const uint8_t hash[32], bool replace,
		 int64_t now);

#endif
