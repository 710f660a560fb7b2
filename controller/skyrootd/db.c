#include "controller/skyrootd/db.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/util.h"

/* Forward migrations: entry i takes the schema from version i to i+1. */
static const char *const db_migrations[] = {
	/* 0 -> 1: the foundation */
	"CREATE TABLE tokens ("
	"  id TEXT PRIMARY KEY,"
	"  hash BLOB NOT NULL UNIQUE,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  uses INTEGER NOT NULL,"
	"  uses_left INTEGER NOT NULL,"
	"  revoked INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE boards ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  uuid TEXT NOT NULL UNIQUE,"
	"  enrolled_at INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL DEFAULT 0,"
	"  cert_serial INTEGER NOT NULL DEFAULT 0,"
	"  cert_not_after INTEGER NOT NULL DEFAULT 0,"
	"  inventory BLOB);"
	"CREATE TABLE certs ("
	"  serial INTEGER PRIMARY KEY,"
	"  board_id TEXT NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  revoked INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX certs_board ON certs(board_id);",
	/* 1 -> 2: images as content-addressed chunks */
	/* Small rows for what changes (reference counts), the bytes apart:
	 * updating a row rewrites all of it, overflow pages included. */
	"CREATE TABLE chunks ("
	"  id INTEGER PRIMARY KEY,"
	"  digest BLOB NOT NULL UNIQUE,"
	"  size INTEGER NOT NULL,"
	"  refs INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE chunk_data ("
	"  id INTEGER PRIMARY KEY,"           /* = chunks.id; rowid for incremental blob I/O */
	"  data BLOB NOT NULL);"
	"CREATE TABLE images ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  kind TEXT NOT NULL,"
	"  format TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  sha256 BLOB NOT NULL,"
	"  chunk_size INTEGER NOT NULL,"
	"  chunks INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  manifest BLOB NOT NULL,"
	"  signature BLOB NOT NULL);"
	"CREATE TABLE image_chunks ("
	"  image_id TEXT NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  chunk_id INTEGER NOT NULL,"
	"  PRIMARY KEY (image_id, idx)) WITHOUT ROWID;"
	"CREATE INDEX image_chunks_chunk ON image_chunks(chunk_id);",
	/* 2 -> 3: guests, and boards running a bare-metal OS */
	"CREATE TABLE guests ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  board_id TEXT NOT NULL,"
	"  kernel TEXT NOT NULL,"
	"  initrd TEXT NOT NULL DEFAULT '',"
	"  disk TEXT NOT NULL DEFAULT '',"
	"  cmdline TEXT NOT NULL DEFAULT '',"
	"  vcpus INTEGER NOT NULL,"
	"  memory INTEGER NOT NULL,"
	"  devices TEXT NOT NULL DEFAULT '',"   /* space-separated PCI addresses */
	"  backend TEXT NOT NULL,"
	"  desired TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  error TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX guests_board ON guests(board_id);"
	"ALTER TABLE boards ADD COLUMN baremetal INTEGER NOT NULL DEFAULT 0;",
	/* 3 -> 4: identity hardening.  Tokens made for one board; re-enrollment
	 * of a known machine waits for an operator; certificates in issue
	 * order (seq) so that a newer one revokes the older; the images the
	 * controller sent to each board (the only ones it serves chunks of). */
	"ALTER TABLE tokens ADD COLUMN board_id TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE boards ADD COLUMN reenroll_pending_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE boards ADD COLUMN reenroll_allowed_until INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE certs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE board_images ("
	"  board_id TEXT NOT NULL,"
	"  image_id TEXT NOT NULL,"
	"  granted_at INTEGER NOT NULL,"
	"  PRIMARY KEY (board_id, image_id)) WITHOUT ROWID;",
	/* 4 -> 5: integrity at rest.  A chunk found corrupt in the store (by
	 * the scrub, a board's report re-checked here, a send or a verify) is
	 * quarantined: never served again until an upload of the same bytes
	 * heals it.  The scrub's place in the store survives a restart. */
	"ALTER TABLE chunks ADD COLUMN quarantined_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE chunks ADD COLUMN quarantine_why TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE scrub_state ("
	"  id INTEGER PRIMARY KEY CHECK (id = 0),"
	"  cursor INTEGER NOT NULL);",
	/* 5 -> 6: API credentials with roles (creds.c), and the audit log
	 * (audit.c).  A credential is found by the first bytes of its
	 * token's hash (lookup), then the whole hash compared in constant
	 * time; old_* is the secret a rotation keeps valid until old_until. */
	"CREATE TABLE credentials ("
	"  name TEXT PRIMARY KEY,"
	"  role TEXT NOT NULL,"
	"  lookup BLOB NOT NULL,"
	"  hash BLOB NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL DEFAULT 0,"
	"  rotated_at INTEGER NOT NULL DEFAULT 0,"
	"  old_lookup BLOB,"
	"  old_hash BLOB,"
	"  old_until INTEGER NOT NULL DEFAULT 0,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX credentials_lookup ON credentials(lookup);"
	"CREATE INDEX credentials_old_lookup ON credentials(old_lookup);"
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  at INTEGER NOT NULL,"
	"  credential TEXT NOT NULL,"
	"  peer TEXT NOT NULL,"
	"  method TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  status INTEGER NOT NULL,"
	"  request_id TEXT NOT NULL);",
	/* 6 -> 7: what PATCH changes beside a name (api_meta.c): the labels
	 * (a JSON object) and description of a board, image or guest, by id. */
	"CREATE TABLE meta ("
	"  id TEXT PRIMARY KEY,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  labels TEXT NOT NULL DEFAULT '{}');"
	/* The answers of POSTs with an Idempotency-Key (api_idem.c), by the
	 * hash of the credential and the key, sealed with a key only that
	 * credential gives; kept 24 hours. */
	"CREATE TABLE idempotency ("
	"  credential BLOB NOT NULL,"
	"  key TEXT NOT NULL,"
	"  request BLOB NOT NULL,"             /* SHA-256 of method, path, query and body */
	"  sealed BLOB NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (credential, key)) WITHOUT ROWID;"
	"CREATE INDEX idempotency_age ON idempotency(created_at);",
	/* 7 -> 8: boards that enrolled with no token (db_pending.c): pending
	 * until an operator accepts or rejects their key, or an expectation
	 * (a serial or UUID an operator said to accept) matches them. */
	"CREATE TABLE pending_boards ("
	"  id TEXT PRIMARY KEY,"
	"  key_sha256 BLOB NOT NULL UNIQUE,"   /* of the CSR's SubjectPublicKeyInfo */
	"  state TEXT NOT NULL,"               /* pending | accepted | rejected */
	"  serial TEXT NOT NULL,"
	"  uuid TEXT NOT NULL,"
	"  hostname TEXT NOT NULL,"
	"  macs TEXT NOT NULL,"                /* comma-separated */
	"  peer TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  decided_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX pending_boards_expiry ON pending_boards(expires_at);"
	"CREATE TABLE expectations ("
	"  id TEXT PRIMARY KEY,"
	"  serial TEXT NOT NULL,"              /* "" = by uuid */
	"  uuid TEXT NOT NULL,"                /* "" = by serial; lower case */
	"  created_at INTEGER NOT NULL);",
	/* 8 -> 9: the event log (events.c): every state change an integrator
	 * watches, in order; rv (AUTOINCREMENT: never reused, even after the
	 * oldest rows are deleted) is its resource version. */
	"CREATE TABLE events ("
	"  rv INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  at INTEGER NOT NULL,"               /* unix ms */
	"  type TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  object_id TEXT NOT NULL,"
	"  detail TEXT NOT NULL DEFAULT '{}');"
	"CREATE INDEX events_object ON events(object_id);",
	/* 9 -> 10: networks (networks.c) and guests' NICs on them.  A NIC's
	 * MAC is unique in the store and kept while its guest exists. */
	"CREATE TABLE networks ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  vlan INTEGER NOT NULL DEFAULT 0,"   /* 0 = untagged, else 1-4094 */
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE guest_nics ("
	"  guest_id TEXT NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  network_id TEXT NOT NULL,"
	"  mac TEXT NOT NULL UNIQUE,"          /* "02:53:4b:..", lower case */
	"  PRIMARY KEY (guest_id, idx)) WITHOUT ROWID;"
	"CREATE INDEX guest_nics_network ON guest_nics(network_id);",
	/* 10 -> 11: TPM-anchored identity (db_tpm.c, issue 16): the board's
	 * EK by its name's SHA-256 (hex), bound at its first verified
	 * enrollment; the last good quote; the last refusal of a TPM that
	 * claimed this machine, shown to the operator. */
	"ALTER TABLE boards ADD COLUMN tpm_ek TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE boards ADD COLUMN tpm_bound_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE boards ADD COLUMN tpm_quote_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE boards ADD COLUMN tpm_refused TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE boards ADD COLUMN tpm_refused_at INTEGER NOT NULL DEFAULT 0;"
	"CREATE UNIQUE INDEX boards_tpm_ek ON boards(tpm_ek) WHERE tpm_ek != '';",
	/* 11 -> 12: the measured-boot gate (fwgate.c, issue 16): the allowed
	 * firmware by the PCR 11 its UKI measures; each TPM board's PCR 11 of
	 * its last verified quote, which the gate judges; the AK (TPM2B_PUBLIC)
	 * its fresh quotes are checked with (al_quote.c), and why its last
	 * quote request failed ('' = it did not). */
	"CREATE TABLE firmware ("
	"  id TEXT PRIMARY KEY,"               /* "fw-..." */
	"  name TEXT NOT NULL UNIQUE,"
	"  pcr11 TEXT NOT NULL UNIQUE,"        /* 64 lower-case hex digits */
	"  created_at INTEGER NOT NULL);"
	"ALTER TABLE boards ADD COLUMN tpm_pcr11 TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE boards ADD COLUMN tpm_ak BLOB;"
	"ALTER TABLE boards ADD COLUMN tpm_quote_fail TEXT NOT NULL DEFAULT '';",
};

enum db_stmt_id {
	S_TOKEN_INSERT,
	S_TOKEN_BY_HASH,
	S_TOKEN_TAKE,
	S_TOKEN_LIST,
	S_TOKEN_GET,
	S_TOKEN_REVOKE,
	S_BOARD_BY_UUID,
	S_BOARD_INSERT,
	S_BOARD_SET_CERT,
	S_BOARD_SET_INV,
	S_BOARD_SET_SEEN,
	S_BOARD_SET_BAREMETAL,
	S_BOARD_GET_ID,
	S_BOARD_GET_NAME,
	S_BOARD_LIST,
	S_BOARD_NAME_TAKEN,
	S_BOARD_DELETE,
	S_CERT_REVOKE_BOARD,
	S_CERT_INSERT,
	S_CERT_CHECK,
	S_CERT_REVOKE_OLDER,
	S_BOARD_REENROLL_PENDING,
	S_BOARD_REENROLL_ALLOW,
	S_BOARD_REENROLL_TAKE,
	S_BOARD_REENROLL_DONE,
	S_GRANT_INSERT,
	S_GRANT_CHECK,
	S_GRANT_DELETE_BOARD,
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_COUNT
};

#define BOARD_COLS "id, name, uuid, enrolled_at, last_seen, cert_not_after, inventory, baremetal, " \
	"reenroll_pending_at, reenroll_allowed_until, tpm_ek, tpm_bound_at, tpm_quote_at, tpm_refused, tpm_refused_at, " \
	"tpm_pcr11, tpm_quote_fail"

static const char *const db_sql[S_COUNT] = {
	[S_TOKEN_INSERT] = "INSERT INTO tokens(id, hash, created_at, expires_at, uses, uses_left, board_id) VALUES(?,?,?,?,?,?,?)",
	[S_TOKEN_BY_HASH] = "SELECT id, created_at, expires_at, uses, uses_left, revoked, board_id FROM tokens WHERE hash = ?",
	[S_TOKEN_TAKE] = "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0",
	[S_TOKEN_LIST] = "SELECT id, created_at, expires_at, uses, uses_left, revoked, board_id FROM tokens ORDER BY created_at, id",
	[S_TOKEN_GET] = "SELECT id, created_at, expires_at, uses, uses_left, revoked, board_id FROM tokens WHERE id = ?",
	[S_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE id = ?",
	[S_BOARD_BY_UUID] = "SELECT id FROM boards WHERE uuid = ?",
	[S_BOARD_INSERT] = "INSERT INTO boards(id, name, uuid, enrolled_at, last_seen, cert_not_after, inventory) VALUES(?,?,?,?,?,?,?)",
	[S_BOARD_SET_CERT] = "UPDATE boards SET cert_serial = ?, cert_not_after = ? WHERE id = ?",
	[S_BOARD_SET_INV] = "UPDATE boards SET inventory = ? WHERE id = ?",
	[S_BOARD_SET_SEEN] = "UPDATE boards SET last_seen = ? WHERE id = ?",
	[S_BOARD_SET_BAREMETAL] = "UPDATE boards SET baremetal = ? WHERE id = ? AND baremetal != ?",
	[S_BOARD_GET_ID] = "SELECT " BOARD_COLS " FROM boards WHERE id = ?",
	[S_BOARD_GET_NAME] = "SELECT " BOARD_COLS " FROM boards WHERE name = ?",
	[S_BOARD_LIST] = "SELECT " BOARD_COLS " FROM boards ORDER BY name, id",
	[S_BOARD_NAME_TAKEN] = "SELECT 1 FROM boards WHERE name = ?",
	[S_BOARD_DELETE] = "DELETE FROM boards WHERE id = ?",
	[S_CERT_REVOKE_BOARD] = "UPDATE certs SET revoked = 1 WHERE board_id = ?",
	[S_CERT_INSERT] = ("INSERT INTO certs(serial, board_id, not_after, seq) "
			   "VALUES(?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM certs))"),
	[S_CERT_CHECK] = ("SELECT c.revoked, b.id IS NOT NULL FROM certs c LEFT JOIN boards b ON b.id = c.board_id "
			  "WHERE c.serial = ? AND c.board_id = ?"),
	[S_CERT_REVOKE_OLDER] = ("UPDATE certs SET revoked = 1 WHERE board_id = ?1 AND revoked = 0 "
				 "AND seq < (SELECT seq FROM certs WHERE serial = ?2 AND board_id = ?1)"),
	[S_BOARD_REENROLL_PENDING] = "UPDATE boards SET reenroll_pending_at = ? WHERE id = ?",
	[S_BOARD_REENROLL_ALLOW] = "UPDATE boards SET reenroll_allowed_until = ? WHERE id = ?",
	[S_BOARD_REENROLL_TAKE] = ("UPDATE boards SET reenroll_allowed_until = 0, reenroll_pending_at = 0 "
				   "WHERE id = ? AND reenroll_allowed_until > ?"),
	[S_BOARD_REENROLL_DONE] = "UPDATE boards SET reenroll_allowed_until = 0, reenroll_pending_at = 0 WHERE id = ?",
	[S_GRANT_INSERT] = "INSERT OR IGNORE INTO board_images(board_id, image_id, granted_at) VALUES(?,?,?)",
	[S_GRANT_CHECK] = "SELECT 1 FROM board_images WHERE board_id = ? AND image_id = ?",
	[S_GRANT_DELETE_BOARD] = "DELETE FROM board_images WHERE board_id = ?",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT item",
	[S_RELEASE] = "RELEASE item",
	[S_ROLLBACK_TO] = "ROLLBACK TO item",
};

struct db {
	sqlite3 *h;
	sqlite3_stmt *st[S_COUNT];
	int in_tx;
};

static int db_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	default:
		return -EIO;
	}
}

int db_errno(int rc)
{
	return db_err(rc);
}

static sqlite3_stmt *st(struct db *db, enum db_stmt_id id)
{
	sqlite3_stmt *s = db->st[id];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Run a one-shot write statement (already bound). */
static int step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : db_err(rc);
	sqlite3_reset(s);
	return r;
}

static int exec(struct db *db, const char *sql)
{
	return db_err(sqlite3_exec(db->h, sql, NULL, NULL, NULL));
}

int db_schema_version(struct db *db)
{
	sqlite3_stmt *s;
	int v = -EIO;
	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int db_migrate(struct db *db)
{
	int v = db_schema_version(db), r;
	int target = (int)SKY_ARRAY_SIZE(db_migrations);
	char sql[64];

	if (v < 0)
		return v;
	if (v > target)
		return -EPROTONOSUPPORT; /* a newer skyrootd made this store */
	for (; v < target; v++) {
		r = exec(db, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		r = exec(db, db_migrations[v]);
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (r == 0)
			r = exec(db, sql);
		if (r == 0)
			r = exec(db, "COMMIT");
		if (r < 0) {
			exec(db, "ROLLBACK");
			return r;
		}
	}
	return 0;
}

int db_new_id(const char *prefix, size_t nbytes, char *out, size_t outlen)
{
	uint8_t raw[16];
	char hex[33];
	int r;

	if (nbytes > sizeof(raw) || strlen(prefix) + 2 * nbytes + 1 > outlen)
		return -EINVAL;
	r = sky_random(raw, nbytes);
	if (r < 0)
		return r;
	sky_format_hex(raw, nbytes, hex);
	snprintf(out, outlen, "%s%s", prefix, hex);
	return 0;
}

int db_open(const char *path, struct db **out)
{
	struct db *db = calloc(1, sizeof(*db));
	int r;

	if (!db)
		return -ENOMEM;
	r = db_err(sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						   SQLITE_OPEN_NOMUTEX, NULL));
	if (r < 0)
		goto fail;
	sqlite3_busy_timeout(db->h, 5000);
	sqlite3_extended_result_codes(db->h, 1);
	/* Image chunks are 1 MiB blobs: 32 KiB pages measured fastest for them
	 * (tests/bench/pagesize.py).  Only takes effect on a new store. */
	r = exec(db, "PRAGMA page_size = 32768");
	/* WAL: readers never block the writer; FULL: a commit survives power loss. */
	if (r == 0)
		r = exec(db, "PRAGMA journal_mode = WAL");
	if (r == 0)
		r = exec(db, "PRAGMA synchronous = FULL");
	if (r == 0)
		r = exec(db, "PRAGMA foreign_keys = ON");
	if (r == 0)
		r = db_migrate(db);
	if (r < 0)
		goto fail;
	for (int i = 0; i < S_COUNT; i++) {
		r = db_err(sqlite3_prepare_v3(db->h, db_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i], NULL));
		if (r < 0)
			goto fail;
	}
	*out = db;
	return 0;
fail:
	db_close(db);
	return r;
}

sqlite3 *db_handle(struct db *db)
{
	return db->h;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close(db->h);
	free(db);
}

int db_check(struct db *db)
{
	sqlite3_stmt *s;
	int r = -EIO;
	if (sqlite3_prepare_v2(db->h, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0)
		r = 0;
	sqlite3_finalize(s);
	return r;
}

int db_begin(struct db *db)
{
	int r = step_done(st(db, S_BEGIN));
	if (r == 0)
		db->in_tx = 1;
	return r;
}

int db_commit(struct db *db)
{
	int r = step_done(st(db, S_COMMIT));
	if (r == 0)
		db->in_tx = 0;
	return r;
}

int db_set_durable(struct db *db, bool durable)
{
	return exec(db, durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

void db_rollback(struct db *db)
{
	if (db->in_tx)
		step_done(st(db, S_ROLLBACK));
	db->in_tx = 0;
}

int db_savepoint(struct db *db)
{
	return step_done(st(db, S_SAVEPOINT));
}

int db_release(struct db *db)
{
	return step_done(st(db, S_RELEASE));
}

void db_rollback_to(struct db *db)
{
	step_done(st(db, S_ROLLBACK_TO));
	step_done(st(db, S_RELEASE));
}

void db_copy_text(char *dst, size_t n, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(dst, n, "%s", t ? (const char *)t : "");
}

int db_prepare(struct db *db, const char *sql, sqlite3_stmt **s)
{
	return db_err(sqlite3_prepare_v2(db->h, sql, -1, s, NULL));
}

int db_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_err(rc);
}

int db_changed(struct db *db, sqlite3_stmt *s)
{
	int r = db_done(s);

	return r == 0 && sqlite3_changes(db->h) == 0 ? -ENOENT : r;
}

int db_one(sqlite3_stmt *s, db_row_fn row, void *out)
{
	int rc = sqlite3_step(s), r = 0;

	if (rc == SQLITE_ROW)
		row(s, out);
	else
		r = rc == SQLITE_DONE ? -ENOENT : db_err(rc);
	sqlite3_finalize(s);
	return r;
}

int db_count(struct db *db, const char *sql)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, sql, &s), rc;

	if (r < 0)
		return r;
	rc = sqlite3_step(s);
	r = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : db_errno(rc);
	sqlite3_finalize(s);
	return r;
}

/* ---- tokens ---- */

int db_token_insert(struct db *db, const struct db_token *t, const uint8_t hash[32])
{
	sqlite3_stmt *s = st(db, S_TOKEN_INSERT);
	sqlite3_bind_text(s, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, t->created_at);
	sqlite3_bind_int64(s, 4, t->expires_at);
	sqlite3_bind_int64(s, 5, t->uses);
	sqlite3_bind_int64(s, 6, t->uses_left);
	sqlite3_bind_text(s, 7, t->board_id, -1, SQLITE_STATIC);
	return step_done(s);
}

static void token_row(sqlite3_stmt *s, struct db_token *t);

int db_token_find(struct db *db, const uint8_t hash[32], int64_t now, struct db_token *out)
{
	sqlite3_stmt *s = st(db, S_TOKEN_BY_HASH);
	struct db_token t;
	int rc, r;

	sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -ENOENT : db_err(rc);
		sqlite3_reset(s);
		return r;
	}
	token_row(s, &t);
	sqlite3_reset(s);
	if (t.revoked)
		return -EKEYREVOKED;
	if (t.uses_left == 0)
		return -EUSERS;
	if (now >= t.expires_at)
		return -EKEYEXPIRED;
	if (out)
		*out = t;
	return 0;
}

int db_token_consume(struct db *db, const uint8_t hash[32], int64_t now, char *id_out)
{
	struct db_token t;
	sqlite3_stmt *s;
	int r = db_token_find(db, hash, now, &t);

	if (r < 0)
		return r;
	s = st(db, S_TOKEN_TAKE);
	sqlite3_bind_text(s, 1, t.id, -1, SQLITE_STATIC);
	r = step_done(s);
	if (r < 0)
		return r;
	if (sqlite3_changes(db->h) != 1)
		return -EUSERS;
	snprintf(id_out, DB_ID_MAX, "%s", t.id);
	return 0;
}

int db_token_check(struct db *db, const uint8_t hash[32], int64_t now)
{
	return db_token_find(db, hash, now, NULL);
}

static void token_row(sqlite3_stmt *s, struct db_token *t)
{
	db_copy_text(t->id, sizeof(t->id), s, 0);
	t->created_at = sqlite3_column_int64(s, 1);
	t->expires_at = sqlite3_column_int64(s, 2);
	t->uses = (uint32_t)sqlite3_column_int64(s, 3);
	t->uses_left = (uint32_t)sqlite3_column_int64(s, 4);
	t->revoked = sqlite3_column_int(s, 5) != 0;
	db_copy_text(t->board_id, sizeof(t->board_id), s, 6);
}

int db_token_list(struct db *db, db_token_cb cb, void *ctx)
{
	sqlite3_stmt *s = st(db, S_TOKEN_LIST);
	int rc, r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_token t;
		token_row(s, &t);
		r = cb(ctx, &t);
		if (r)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(rc);
	sqlite3_reset(s);
	return r;
}

int db_token_get(struct db *db, const char *id, struct db_token *out)
{
	sqlite3_stmt *s = st(db, S_TOKEN_GET);
	int rc, r = -ENOENT;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		token_row(s, out);
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = db_err(rc);
	}
	sqlite3_reset(s);
	return r;
}

int db_token_revoke(struct db *db, const char *id)
{
	sqlite3_stmt *s = st(db, S_TOKEN_REVOKE);
	int r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	r = step_done(s);
	if (r == 0 && sqlite3_changes(db->h) == 0)
		r = -ENOENT;
	return r;
}

/* ---- boards ---- */

int db_board_find_uuid(struct db *db, const char *uuid, char *id_out)
{
	sqlite3_stmt *s = st(db, S_BOARD_BY_UUID);
	int rc, r = -ENOENT;
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		db_copy_text(id_out, DB_ID_MAX, s, 0);
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = db_err(rc);
	}
	sqlite3_reset(s);
	return r;
}

int db_board_insert(struct db *db, const struct db_board *b)
{
	sqlite3_stmt *s = st(db, S_BOARD_INSERT);
	sqlite3_bind_text(s, 1, b->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, b->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, b->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, b->enrolled_at);
	sqlite3_bind_int64(s, 5, b->last_seen);
	sqlite3_bind_int64(s, 6, b->cert_not_after);
	if (b->inventory)
		sqlite3_bind_blob(s, 7, b->inventory, (int)b->inventory_len, SQLITE_STATIC);
	return step_done(s);
}

static int changed_or_enoent(struct db *db, int r)
{
	if (r == 0 && sqlite3_changes(db->h) == 0)
		return -ENOENT;
	return r;
}

int db_board_set_cert(struct db *db, const char *id, uint64_t serial, int64_t not_after)
{
	sqlite3_stmt *s = st(db, S_BOARD_SET_CERT);
	sqlite3_bind_int64(s, 1, (int64_t)serial);
	sqlite3_bind_int64(s, 2, not_after);
	sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
	return changed_or_enoent(db, step_done(s));
}

int db_board_set_inventory(struct db *db, const char *id, const uint8_t *inv, size_t len)
{
	sqlite3_stmt *s = st(db, S_BOARD_SET_INV);
	sqlite3_bind_blob(s, 1, inv, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	return changed_or_enoent(db, step_done(s));
}

int db_board_set_baremetal(struct db *db, const char *id, bool on)
{
	sqlite3_stmt *s = st(db, S_BOARD_SET_BAREMETAL);
	sqlite3_bind_int(s, 1, on);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, on);
	return step_done(s);
}

int db_board_set_last_seen(struct db *db, const char *id, int64_t when)
{
	sqlite3_stmt *s = st(db, S_BOARD_SET_SEEN);
	sqlite3_bind_int64(s, 1, when);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	return changed_or_enoent(db, step_done(s));
}

static void board_row(sqlite3_stmt *s, struct db_board *b)
{
	db_copy_text(b->id, sizeof(b->id), s, 0);
	db_copy_text(b->name, sizeof(b->name), s, 1);
	db_copy_text(b->uuid, sizeof(b->uuid), s, 2);
	b->enrolled_at = sqlite3_column_int64(s, 3);
	b->last_seen = sqlite3_column_int64(s, 4);
	b->cert_not_after = sqlite3_column_int64(s, 5);
	b->inventory = sqlite3_column_blob(s, 6);
	b->inventory_len = (size_t)sqlite3_column_bytes(s, 6);
	b->baremetal = sqlite3_column_int(s, 7) != 0;
	b->reenroll_pending_at = sqlite3_column_int64(s, 8);
	b->reenroll_allowed_until = sqlite3_column_int64(s, 9);
	db_copy_text(b->tpm_ek, sizeof(b->tpm_ek), s, 10);
	b->tpm_bound_at = sqlite3_column_int64(s, 11);
	b->tpm_quote_at = sqlite3_column_int64(s, 12);
	db_copy_text(b->tpm_refused, sizeof(b->tpm_refused), s, 13);
	b->tpm_refused_at = sqlite3_column_int64(s, 14);
	db_copy_text(b->tpm_pcr11, sizeof(b->tpm_pcr11), s, 15);
	db_copy_text(b->tpm_quote_fail, sizeof(b->tpm_quote_fail), s, 16);
}

static int board_query(sqlite3_stmt *s, db_board_cb cb, void *ctx, int single)
{
	int rc, r = 0, found = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_board b;
		board_row(s, &b);
		found = 1;
		r = cb(ctx, &b);
		if (r || single)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = db_err(rc);
	sqlite3_reset(s);
	if (r == 0 && single && !found)
		r = -ENOENT;
	return r;
}

int db_board_get(struct db *db, const char *id_or_name, db_board_cb cb, void *ctx)
{
	sqlite3_stmt *s = st(db, S_BOARD_GET_ID);
	int r;
	sqlite3_bind_text(s, 1, id_or_name, -1, SQLITE_STATIC);
	r = board_query(s, cb, ctx, 1);
	if (r != -ENOENT)
		return r;
	s = st(db, S_BOARD_GET_NAME);
	sqlite3_bind_text(s, 1, id_or_name, -1, SQLITE_STATIC);
	return board_query(s, cb, ctx, 1);
}

int db_board_list(struct db *db, db_board_cb cb, void *ctx)
{
	return board_query(st(db, S_BOARD_LIST), cb, ctx, 0);
}

int db_board_name_taken(struct db *db, const char *name)
{
	sqlite3_stmt *s = st(db, S_BOARD_NAME_TAKEN);
	int rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : db_err(rc);
}

int db_board_delete(struct db *db, const char *id)
{
	sqlite3_stmt *s;
	int r = db_begin(db);
	if (r < 0)
		return r;
	s = st(db, S_CERT_REVOKE_BOARD);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	r = step_done(s);
	if (r == 0) {
		s = st(db, S_GRANT_DELETE_BOARD);
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		r = step_done(s);
	}
	if (r == 0) {
		s = st(db, S_BOARD_DELETE);
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		r = changed_or_enoent(db, step_done(s));
	}
	if (r == 0)
		r = db_commit(db);
	if (r < 0)
		db_rollback(db);
	return r;
}

/* ---- certificates ---- */

int db_cert_insert(struct db *db, uint64_t serial, const char *board_id, int64_t not_after)
{
	sqlite3_stmt *s = st(db, S_CERT_INSERT);
	sqlite3_bind_int64(s, 1, (int64_t)serial);
	sqlite3_bind_text(s, 2, board_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, not_after);
	return step_done(s);
}

int db_cert_check(struct db *db, uint64_t serial, const char *board_id)
{
	sqlite3_stmt *s = st(db, S_CERT_CHECK);
	int rc, r;
	sqlite3_bind_int64(s, 1, (int64_t)serial);
	sqlite3_bind_text(s, 2, board_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int revoked = sqlite3_column_int(s, 0);
		int board_exists = sqlite3_column_int(s, 1);
		r = !board_exists ? -EKEYREVOKED : revoked ? -ESTALE : 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : db_err(rc);
	}
	sqlite3_reset(s);
	return r;
}

int db_cert_revoke_older(struct db *db, const char *board_id, uint64_t serial)
{
	sqlite3_stmt *s = st(db, S_CERT_REVOKE_OLDER);
	int r;
	sqlite3_bind_text(s, 1, board_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)serial);
	r = step_done(s);
	return r < 0 ? r : sqlite3_changes(db->h);
}

/* ---- re-enrollment of a known machine ---- */

/* One statement on one board row: "UPDATE ... ?1 ... WHERE id = ?2". */
static int board_set_time(struct db *db, enum db_stmt_id id, const char *board_id, int64_t when)
{
	sqlite3_stmt *s = st(db, id);
	sqlite3_bind_int64(s, 1, when);
	sqlite3_bind_text(s, 2, board_id, -1, SQLITE_STATIC);
	return changed_or_enoent(db, step_done(s));
}

int db_board_reenroll_pending(struct db *db, const char *id, int64_t now)
{
	return board_set_time(db, S_BOARD_REENROLL_PENDING, id, now);
}

int db_board_reenroll_allow(struct db *db, const char *id, int64_t until)
{
	return board_set_time(db, S_BOARD_REENROLL_ALLOW, id, until);
}

int db_board_reenroll_take(struct db *db, const char *id, int64_t now)
{
	sqlite3_stmt *s = st(db, S_BOARD_REENROLL_TAKE);
	int r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	r = changed_or_enoent(db, step_done(s));
	return r == -ENOENT ? -EACCES : r;
}

int db_board_reenroll_done(struct db *db, const char *id)
{
	sqlite3_stmt *s = st(db, S_BOARD_REENROLL_DONE);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return changed_or_enoent(db, step_done(s));
}

/* ---- images sent to boards ---- */

int db_board_image_grant(struct db *db, const char *board_id, const char *image_id, int64_t now)
{
	sqlite3_stmt *s = st(db, S_GRANT_INSERT);
	sqlite3_bind_text(s, 1, board_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, image_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	return step_done(s);
}

int db_board_image_granted(struct db *db, const char *board_id, const char *image_id)
{
	sqlite3_stmt *s = st(db, S_GRANT_CHECK);
	int rc;
	sqlite3_bind_text(s, 1, board_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, image_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : db_err(rc);
}
