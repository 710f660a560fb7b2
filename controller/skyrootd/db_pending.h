/* The store's rows of boards that enrolled with no token, and of the
 * expectations that accept them with no hands (pending.h has the rules).
 * Inside the caller's transaction when there is one; 0 or a negative
 * errno, -ENOENT for "no such row". */
#ifndef SKY_CONTROLLER_DB_PENDING_H
#define SKY_CONTROLLER_DB_PENDING_H

#include <stdbool.h>
#include <stdint.h>

#include "controller/skyrootd/db.h"

#define DB_PENDING_SERIAL_MAX 64      /* bytes of a claimed DMI serial */
#define DB_PENDING_UUID_MAX 63        /* of a claimed UUID (AL_MAX_UUID) */
#define DB_PENDING_HOST_MAX 64
#define DB_PENDING_MACS_MAX 16        /* MAC addresses kept of one board */
#define DB_PENDING_MACS_LEN (DB_PENDING_MACS_MAX * 18)
#define DB_PENDING_PEER_MAX 64

enum db_pending_state { DB_PENDING_WAITING, DB_PENDING_ACCEPTED, DB_PENDING_REJECTED };

struct db_pending {
	char id[DB_ID_MAX];                       /* "pnd-<hex>" */
	uint8_t key_sha256[32];
	enum db_pending_state state;
	char serial[DB_PENDING_SERIAL_MAX + 1];
	char uuid[DB_PENDING_UUID_MAX + 1];
	char hostname[DB_PENDING_HOST_MAX + 1];
	char macs[DB_PENDING_MACS_LEN];           /* "aa:..:ff,aa:..:01" */
	char peer[DB_PENDING_PEER_MAX];
	int64_t first_seen, last_seen, expires_at, decided_at;
};

struct db_expectation {
	char id[DB_ID_MAX];                       /* "exp-<hex>" */
	char serial[DB_PENDING_SERIAL_MAX + 1];   /* "" when by uuid */
	char uuid[DB_PENDING_UUID_MAX + 1];       /* "" when by serial */
	int64_t created_at;
};

const char *db_pending_state_name(enum db_pending_state st);

/* Delete the rows whose expires_at is at or before now: how many. */
int db_pending_expire(struct db *db, int64_t now);
int db_pending_count(struct db *db);
int db_pending_insert(struct db *db, const struct db_pending *p);
int db_pending_by_key(struct db *db, const uint8_t key_sha256[32], struct db_pending *out);
int db_pending_get(struct db *db, const char *id, struct db_pending *out);
/* The board asked again: last_seen, peer and (a waiting one) expires_at. */
int db_pending_seen(struct db *db, const char *id, int64_t now, const char *peer, int64_t expires_at);
/* Decide a row that is in state from: -ENOENT when none, -EALREADY when
 * the row is in another state. */
int db_pending_decide(struct db *db, const char *id, enum db_pending_state from, enum db_pending_state to,
		      int64_t now, int64_t expires_at);
int db_pending_delete(struct db *db, const char *id);
typedef int (*db_pending_cb)(void *ctx, const struct db_pending *p);
int db_pending_list(struct db *db, db_pending_cb cb, void *ctx);

int db_expect_insert(struct db *db, const struct db_expectation *e);
int db_expect_count(struct db *db);
int db_expect_delete(struct db *db, const char *id);
/* The oldest expectation with this serial (non-empty) or this uuid
 * (non-empty, compared without case): -ENOENT when none. */
int db_expect_find(struct db *db, const char *serial, const char *uuid, struct db_expectation *out);
typedef int (*db_expect_cb)(void *ctx, const struct db_expectation *e);
int db_expect_list(struct db *db, db_expect_cb cb, void *ctx);

#endif
