/* The controller's store on one of the engines of sql.h (SQLite in WAL
 * mode by default; PostgreSQL for several controllers): one connection used
 * only from the loop thread (the one writer path), prepared statements only.
 * Every function returns 0 or a negative errno; -ENOENT for "no such row". */
#ifndef SKY_CONTROLLER_DB_H
#define SKY_CONTROLLER_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;

#define DB_ID_MAX 32
#define DB_NAME_MAX 64

/* target: a SQLite file, or a postgresql:// URI (sql.h).  Migrates the
 * schema forward to this version. */
int db_open(const char *target, struct db **out);
/* A new row id: prefix + hex of nbytes random bytes ("brd-", "tok-",
 * "img-", "gst-").  -EINVAL when it does not fit in outlen. */
int db_new_id(const char *prefix, size_t nbytes, char *out, size_t outlen);
void db_close(struct db *db);
int db_schema_version(struct db *db);
/* The connection, for modules with their own statements (store.c), which
 * use sql.h: one dialect for both engines. */
struct sql;
struct sql *db_sql(struct db *db);
/* The engine's integrity check (SQLite: PRAGMA integrity_check): 0, else -EIO. */
int db_check(struct db *db);

/* ---- tokens ---- */
struct db_token {
	char id[DB_ID_MAX];
	int64_t created_at;
	int64_t expires_at;
	uint32_t uses;
	uint32_t uses_left;
	bool revoked;
	char board_id[DB_ID_MAX];   /* "" = any machine; else only re-enrolls that board */
};
/* hash = SHA-256 of the secret. */
int db_token_insert(struct db *db, const struct db_token *t, const uint8_t hash[32]);
/* Atomically take one use of the token with this hash, if it is active at
 * now: -ENOENT unknown, -EKEYEXPIRED expired, -EKEYREVOKED revoked,
 * -EUSERS used up.  Part of the caller's transaction when inside one. */
int db_token_consume(struct db *db, const uint8_t hash[32], int64_t now, char *id_out);
/* The same checks without taking a use. */
int db_token_check(struct db *db, const uint8_t hash[32], int64_t now);
/* The same checks; the token's row into out (may be NULL) when it is active. */
int db_token_find(struct db *db, const uint8_t hash[32], int64_t now, struct db_token *out);
typedef int (*db_token_cb)(void *ctx, const struct db_token *t);
int db_token_list(struct db *db, db_token_cb cb, void *ctx);
int db_token_get(struct db *db, const char *id, struct db_token *out);
int db_token_revoke(struct db *db, const char *id);

/* ---- boards ---- */
/* A board's EK: the SHA-256 of its TPM name, in hex (db_tpm.h). */
#define DB_TPM_EK_MAX 65
#define DB_TPM_REFUSED_MAX 256
struct db_board {
	char id[DB_ID_MAX];
	char name[DB_NAME_MAX];
	char uuid[64];
	int64_t enrolled_at;
	int64_t last_seen;          /* 0 = never */
	int64_t cert_not_after;
	const uint8_t *inventory;   /* serialized Skyroot__Hello, may be NULL */
	size_t inventory_len;
	bool baremetal;             /* told to kexec an OS; until the firmware is back */
	int64_t reenroll_pending_at;    /* a known machine asked to re-enroll with a general token; 0 = no */
	int64_t reenroll_allowed_until; /* an operator allowed one re-enrollment until then; 0 = no */
	char tpm_ek[DB_TPM_EK_MAX];     /* its EK's fingerprint (db_tpm.h); "" = no TPM bound */
	int64_t tpm_bound_at;           /* when the EK was bound to it */
	int64_t tpm_quote_at;           /* the last good quote; 0 = none */
	char tpm_refused[DB_TPM_REFUSED_MAX]; /* why a TPM claiming this machine was refused last */
	int64_t tpm_refused_at;
	char tpm_pcr11[65];             /* PCR 11 of its last verified quote, hex; "" = none (fwgate.h) */
	char tpm_quote_fail[DB_TPM_REFUSED_MAX]; /* why its last quote request failed; "" = it did not */
};
/* Find by DMI product UUID.  -ENOENT when none. */
int db_board_find_uuid(struct db *db, const char *uuid, char *id_out);
int db_board_insert(struct db *db, const struct db_board *b);
int db_board_set_cert(struct db *db, const char *id, uint64_t serial, int64_t not_after);
int db_board_set_inventory(struct db *db, const char *id, const uint8_t *inv, size_t len);
int db_board_set_last_seen(struct db *db, const char *id, int64_t when);
int db_board_set_baremetal(struct db *db, const char *id, bool on);
/* Lookup by id, or by name when no id matches.  The callback sees a row
 * whose pointers are valid only during the call. */
typedef int (*db_board_cb)(void *ctx, const struct db_board *b);
int db_board_get(struct db *db, const char *id_or_name, db_board_cb cb, void *ctx);
int db_board_list(struct db *db, db_board_cb cb, void *ctx);
int db_board_name_taken(struct db *db, const char *name);
/* Delete the board and revoke every certificate issued to it. */
int db_board_delete(struct db *db, const char *id);
/* Re-enrollment of a known machine with a general token: mark it pending
 * (at now); an operator allows one until a time; taking the allowance
 * (-EACCES when there is none, or it lapsed) clears both, as done does. */
int db_board_reenroll_pending(struct db *db, const char *id, int64_t now);
int db_board_reenroll_allow(struct db *db, const char *id, int64_t until);
int db_board_reenroll_take(struct db *db, const char *id, int64_t now);
int db_board_reenroll_done(struct db *db, const char *id);
/* The images the controller sent to a board (an image fetch, a guest, a
 * bare-metal boot): the only ones whose chunks it is served.  granted: 1
 * or 0. */
int db_board_image_grant(struct db *db, const char *board_id, const char *image_id, int64_t now);
int db_board_image_granted(struct db *db, const char *board_id, const char *image_id);

/* ---- certificates ---- */
int db_cert_insert(struct db *db, uint64_t serial, const char *board_id, int64_t not_after);
/* 0 when serial was issued to board_id and is not revoked; -EKEYREVOKED
 * when its board is gone; -ESTALE when a newer certificate of the board
 * replaced it; -ENOENT when we never issued it. */
int db_cert_check(struct db *db, uint64_t serial, const char *board_id);
/* Revoke the board's certificates issued before serial: the number revoked. */
int db_cert_revoke_older(struct db *db, const char *board_id, uint64_t serial);

/* ---- transactions (the engine's write transaction .. COMMIT, durable) ---- */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);
/* synchronous=FULL (the default) or NORMAL for writes nobody has been told
 * are done yet: in WAL mode the next FULL commit makes them durable too. */
int db_set_durable(struct db *db, bool durable);
/* An API call's own transaction (api_idem.c: what a POST with an
 * Idempotency-Key does and the answer kept for its key commit together).
 * While it is held, db_begin/db_commit/db_rollback are savepoints in it.
 * -EBUSY when a transaction is open already.  db_hold_commit: -EIO when
 * the engine ended it meanwhile (nothing kept). */
int db_hold(struct db *db);
int db_hold_commit(struct db *db);
void db_hold_rollback(struct db *db);
/* One item of a batch inside a transaction: undo just that item on failure. */
int db_savepoint(struct db *db);
int db_release(struct db *db);
void db_rollback_to(struct db *db);

#endif
