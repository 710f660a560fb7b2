#include "controller/skyrootd/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/db_pg_schema.h"
#include "controller/skyrootd/sql.h"

/* Forward migrations on SQLite: entry i takes the schema from version i to
 * i+1.  A new one gets its PostgreSQL twin in db_pg_schema.c. */
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
	/* 12 -> 13: several controllers on one store (fleet.c, issue 14):
	 * which controller holds each board's session, refreshed while it
	 * lives (seen, unix seconds); orders for a board held elsewhere,
	 * taken oldest first by its holder. */
	"CREATE TABLE board_presence ("
	"  board_id TEXT PRIMARY KEY,"
	"  controller TEXT NOT NULL,"
	"  since INTEGER NOT NULL,"
	"  seen INTEGER NOT NULL);"
	"CREATE TABLE board_outbox ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  board_id TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"                /* "envelope", "fetch", "kick" */
	"  data BLOB,"
	"  created_at INTEGER NOT NULL);"      /* unix seconds */
	"CREATE INDEX board_outbox_board ON board_outbox(board_id);",
	/* 13 -> 14: guests' consoles across controllers (consoles.c, issue
	 * 14): on a shared store the controller that holds a guest's board
	 * copies its output here (about GUEST_CONSOLE_RING bytes per guest,
	 * older rows trimmed), for the others to serve; seq grows per guest
	 * whichever controller writes.  Empty on SQLite: one controller keeps
	 * consoles in memory. */
	"CREATE TABLE guest_console ("
	"  guest_id TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  data BLOB NOT NULL,"
	"  at INTEGER NOT NULL,"               /* unix seconds */
	"  PRIMARY KEY (guest_id, seq)) WITHOUT ROWID;",
	/* 14 -> 15: each board's last bare-metal boot order and the board's
	 * answer (boots.c), shared by the controllers of one store and kept
	 * across restarts; request_id is the order's id on the agent link. */
	"CREATE TABLE board_boots ("
	"  board_id TEXT PRIMARY KEY,"
	"  request_id INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"               /* sent | accepted | refused | failed */
	"  kernel TEXT NOT NULL,"              /* the kernel image's id */
	"  error TEXT NOT NULL DEFAULT '',"    /* the board's reason; '' unless refused or failed */
	"  at INTEGER NOT NULL);",             /* unix seconds of the last change */
	/* 15 -> 16: each certificate's seq is MAX(seq) + 1 (S_CERT_INSERT):
	 * without an index that was a scan of every certificate ever issued
	 * on every enrollment and renewal (207 us at 4,000 rows, growing with
	 * the fleet). */
	"CREATE INDEX certs_seq ON certs(seq);",
};
_Static_assert(SKY_ARRAY_SIZE(db_migrations) == DB_PG_BASE_VERSION + DB_PG_MIGRATIONS_N, "a new SQLite migration needs its PostgreSQL twin (db_pg_schema.c)");

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
	S_COUNT
};

#define BOARD_COLS "id, name, uuid, enrolled_at, last_seen, cert_not_after, inventory, baremetal, " \
	"reenroll_pending_at, reenroll_allowed_until, tpm_ek, tpm_bound_at, tpm_quote_at, tpm_refused, tpm_refused_at, " \
	"tpm_pcr11, tpm_quote_fail"

static const char *const db_stmt_sql[S_COUNT] = {
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
	[S_GRANT_INSERT] = "INSERT INTO board_images(board_id, image_id, granted_at) VALUES(?,?,?) ON CONFLICT DO NOTHING",
	[S_GRANT_CHECK] = "SELECT 1 FROM board_images WHERE board_id = ? AND image_id = ?",
	[S_GRANT_DELETE_BOARD] = "DELETE FROM board_images WHERE board_id = ?",
};

struct db {
	struct sql *c;
	struct sql_stmt *st[S_COUNT];
	bool held;                    /* db_hold: an API call's own transaction is open */
	unsigned depth;               /* db_begin levels inside it (savepoints) */
};

/* The engine's answer of a step that is not a row: 0 or -errno. */
static int db_err(int rc)
{
	return rc < 0 ? rc : 0;
}

static struct sql_stmt *st(struct db *db, enum db_stmt_id id)
{
	struct sql_stmt *s = db->st[id];
	sql_reset(s);
	return s;
}

/* Run a one-shot write statement (already bound). */
static int step_done(struct sql_stmt *s)
{
	return sql_run(s);
}

int db_schema_version(struct db *db)
{
	return db->c->ops->schema_version(db->c);
}

/* Forward from the store's version: on a new store, base (when there is
 * one) makes it base_version at once; then steps[i] takes version
 * base_version + i to the next.  Each step is one transaction. */
static int db_step(struct sql *c, const char *sql, int to)
{
	int r = c->ops->begin(c);

	if (r < 0)
		return r;
	r = sql_exec(c, sql);
	if (r == 0)
		r = c->ops->set_schema_version(c, to);
	if (r == 0)
		r = sql_exec(c, "COMMIT");
	if (r < 0)
		sql_exec(c, "ROLLBACK");
	return r;
}

static int db_migrate(struct db *db, const char *base, int base_version, const char *const *steps, int n)
{
	int v = db_schema_version(db), r;

	if (v < 0)
		return v;
	if (v > base_version + n)
		return -EPROTONOSUPPORT; /* a newer skyrootd made this store */
	if (v == 0 && base) {
		r = db_step(db->c, base, base_version);
		if (r < 0)
			return r;
		v = base_version;
	}
	if (v < base_version)
		return -EPROTONOSUPPORT; /* older than this engine's base: cannot be */
	for (; v < base_version + n; v++) {
		r = db_step(db->c, steps[v - base_version], v + 1);
		if (r < 0)
			return r;
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

int db_open(const char *target, struct db **out)
{
	struct db *db = calloc(1, sizeof(*db));
	int r;

	if (!db)
		return -ENOMEM;
	r = sql_open(target, 0, &db->c);
	if (r < 0)
		goto fail;
	if (sql_target_is_pg(target))
		r = db_migrate(db, db_pg_base, DB_PG_BASE_VERSION, db_pg_migrations, db_pg_migrations_n);
	else
		r = db_migrate(db, NULL, 0, db_migrations, (int)SKY_ARRAY_SIZE(db_migrations));
	if (r < 0)
		goto fail;
	for (int i = 0; i < S_COUNT; i++) {
		r = sql_prepare(db->c, db_stmt_sql[i], &db->st[i]);
		if (r < 0)
			goto fail;
	}
	*out = db;
	return 0;
fail:
	db_close(db);
	return r;
}

struct sql *db_sql(struct db *db)
{
	return db->c;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sql_finalize(db->st[i]);
	sql_close(db->c);
	free(db);
}

int db_check(struct db *db)
{
	return db->c->ops->check(db->c);
}

/* Inside a held transaction (db_hold) a transaction of a module is a
 * savepoint of its own: its commit keeps its work in the held one, its
 * rollback undoes just its work. */
static int db_level(struct db *db, const char *verb)
{
	char sql[48];

	snprintf(sql, sizeof(sql), "%s sky_level%u", verb, db->depth);
	return sql_exec(db->c, sql);
}

int db_begin(struct db *db)
{
	int r;

	if (!db->held)
		return db->c->ops->begin(db->c);
	db->depth++;
	r = db_level(db, "SAVEPOINT");
	if (r < 0)
		db->depth--;
	return r;
}

int db_commit(struct db *db)
{
	int r;

	if (!db->held)
		return sql_exec(db->c, "COMMIT");
	if (db->depth == 0)
		return -EINVAL;
	r = db_level(db, "RELEASE");
	if (r < 0) { /* undone, and gone like a released one */
		db_level(db, "ROLLBACK TO");
		db_level(db, "RELEASE");
	}
	db->depth--; /* a rollback after a failed commit has nothing left to undo */
	return r;
}

int db_hold(struct db *db)
{
	int r;

	if (db->held || sql_in_tx(db->c))
		return -EBUSY;
	r = db->c->ops->begin(db->c);
	if (r == 0) {
		db->held = true;
		db->depth = 0;
	}
	return r;
}

int db_hold_commit(struct db *db)
{
	int r;

	if (!db->held)
		return -EINVAL;
	db->held = false;
	/* the engine may have ended it already (SQLite rolls back on some
	 * errors): nothing of it is kept */
	if (!sql_in_tx(db->c))
		return -EIO;
	r = sql_exec(db->c, "COMMIT");
	if (r < 0 && sql_in_tx(db->c))
		sql_exec(db->c, "ROLLBACK");
	return r;
}

void db_hold_rollback(struct db *db)
{
	db->held = false;
	if (sql_in_tx(db->c))
		sql_exec(db->c, "ROLLBACK");
}

int db_set_durable(struct db *db, bool durable)
{
	return db->c->ops->set_durable(db->c, durable);
}

void db_rollback(struct db *db)
{
	if (db->held) {
		if (db->depth > 0) {
			db_level(db, "ROLLBACK TO");
			db_level(db, "RELEASE");
			db->depth--;
		}
		return;
	}
	if (sql_in_tx(db->c))
		sql_exec(db->c, "ROLLBACK");
}

int db_savepoint(struct db *db)
{
	return sql_exec(db->c, "SAVEPOINT item");
}

int db_release(struct db *db)
{
	return sql_exec(db->c, "RELEASE item");
}

void db_rollback_to(struct db *db)
{
	sql_exec(db->c, "ROLLBACK TO item");
	sql_exec(db->c, "RELEASE item");
}

/* ---- tokens ---- */

int db_token_insert(struct db *db, const struct db_token *t, const uint8_t hash[32])
{
	struct sql_stmt *s = st(db, S_TOKEN_INSERT);
	sql_bind_text(s, 1, t->id);
	sql_bind_blob(s, 2, hash, 32);
	sql_bind_int64(s, 3, t->created_at);
	sql_bind_int64(s, 4, t->expires_at);
	sql_bind_int64(s, 5, t->uses);
	sql_bind_int64(s, 6, t->uses_left);
	sql_bind_text(s, 7, t->board_id);
	return step_done(s);
}

static void token_row(struct sql_stmt *s, struct db_token *t);

int db_token_find(struct db *db, const uint8_t hash[32], int64_t now, struct db_token *out)
{
	struct sql_stmt *s = st(db, S_TOKEN_BY_HASH);
	struct db_token t;
	int rc, r;

	sql_bind_blob(s, 1, hash, 32);
	rc = sql_step(s);
	if (rc != SQL_ROW) {
		r = rc == SQL_DONE ? -ENOENT : db_err(rc);
		sql_reset(s);
		return r;
	}
	token_row(s, &t);
	sql_reset(s);
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
	struct sql_stmt *s;
	int r = db_token_find(db, hash, now, &t);

	if (r < 0)
		return r;
	s = st(db, S_TOKEN_TAKE);
	sql_bind_text(s, 1, t.id);
	r = step_done(s);
	if (r < 0)
		return r;
	if (sql_changes(db->c) != 1)
		return -EUSERS;
	snprintf(id_out, DB_ID_MAX, "%s", t.id);
	return 0;
}

int db_token_check(struct db *db, const uint8_t hash[32], int64_t now)
{
	return db_token_find(db, hash, now, NULL);
}

static void token_row(struct sql_stmt *s, struct db_token *t)
{
	sql_copy_text(t->id, sizeof(t->id), s, 0);
	t->created_at = sql_col_int64(s, 1);
	t->expires_at = sql_col_int64(s, 2);
	t->uses = (uint32_t)sql_col_int64(s, 3);
	t->uses_left = (uint32_t)sql_col_int64(s, 4);
	t->revoked = (int)sql_col_int64(s, 5) != 0;
	sql_copy_text(t->board_id, sizeof(t->board_id), s, 6);
}

int db_token_list(struct db *db, db_token_cb cb, void *ctx)
{
	struct sql_stmt *s = st(db, S_TOKEN_LIST);
	int rc, r = 0;
	while ((rc = sql_step(s)) == SQL_ROW) {
		struct db_token t;
		token_row(s, &t);
		r = cb(ctx, &t);
		if (r)
			break;
	}
	if (r == 0 && rc != SQL_DONE)
		r = db_err(rc);
	sql_reset(s);
	return r;
}

int db_token_get(struct db *db, const char *id, struct db_token *out)
{
	struct sql_stmt *s = st(db, S_TOKEN_GET);
	int rc, r = -ENOENT;
	sql_bind_text(s, 1, id);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		token_row(s, out);
		r = 0;
	} else if (rc != SQL_DONE) {
		r = db_err(rc);
	}
	sql_reset(s);
	return r;
}

int db_token_revoke(struct db *db, const char *id)
{
	struct sql_stmt *s = st(db, S_TOKEN_REVOKE);
	int r;
	sql_bind_text(s, 1, id);
	r = step_done(s);
	if (r == 0 && sql_changes(db->c) == 0)
		r = -ENOENT;
	return r;
}

/* ---- boards ---- */

int db_board_find_uuid(struct db *db, const char *uuid, char *id_out)
{
	struct sql_stmt *s = st(db, S_BOARD_BY_UUID);
	int rc, r = -ENOENT;
	sql_bind_text(s, 1, uuid);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		sql_copy_text(id_out, DB_ID_MAX, s, 0);
		r = 0;
	} else if (rc != SQL_DONE) {
		r = db_err(rc);
	}
	sql_reset(s);
	return r;
}

int db_board_insert(struct db *db, const struct db_board *b)
{
	struct sql_stmt *s = st(db, S_BOARD_INSERT);
	sql_bind_text(s, 1, b->id);
	sql_bind_text(s, 2, b->name);
	sql_bind_text(s, 3, b->uuid);
	sql_bind_int64(s, 4, b->enrolled_at);
	sql_bind_int64(s, 5, b->last_seen);
	sql_bind_int64(s, 6, b->cert_not_after);
	if (b->inventory)
		sql_bind_blob(s, 7, b->inventory, (int)b->inventory_len);
	return step_done(s);
}

static int changed_or_enoent(struct db *db, int r)
{
	if (r == 0 && sql_changes(db->c) == 0)
		return -ENOENT;
	return r;
}

int db_board_set_cert(struct db *db, const char *id, uint64_t serial, int64_t not_after)
{
	struct sql_stmt *s = st(db, S_BOARD_SET_CERT);
	sql_bind_int64(s, 1, (int64_t)serial);
	sql_bind_int64(s, 2, not_after);
	sql_bind_text(s, 3, id);
	return changed_or_enoent(db, step_done(s));
}

int db_board_set_inventory(struct db *db, const char *id, const uint8_t *inv, size_t len)
{
	struct sql_stmt *s = st(db, S_BOARD_SET_INV);
	sql_bind_blob(s, 1, inv, (int)len);
	sql_bind_text(s, 2, id);
	return changed_or_enoent(db, step_done(s));
}

int db_board_set_baremetal(struct db *db, const char *id, bool on)
{
	struct sql_stmt *s = st(db, S_BOARD_SET_BAREMETAL);
	sql_bind_int64(s, 1, on);
	sql_bind_text(s, 2, id);
	sql_bind_int64(s, 3, on);
	return step_done(s);
}

int db_board_set_last_seen(struct db *db, const char *id, int64_t when)
{
	struct sql_stmt *s = st(db, S_BOARD_SET_SEEN);
	sql_bind_int64(s, 1, when);
	sql_bind_text(s, 2, id);
	return changed_or_enoent(db, step_done(s));
}

static void board_row(struct sql_stmt *s, struct db_board *b)
{
	sql_copy_text(b->id, sizeof(b->id), s, 0);
	sql_copy_text(b->name, sizeof(b->name), s, 1);
	sql_copy_text(b->uuid, sizeof(b->uuid), s, 2);
	b->enrolled_at = sql_col_int64(s, 3);
	b->last_seen = sql_col_int64(s, 4);
	b->cert_not_after = sql_col_int64(s, 5);
	b->inventory = sql_col_blob(s, 6);
	b->inventory_len = (size_t)sql_col_bytes(s, 6);
	b->baremetal = (int)sql_col_int64(s, 7) != 0;
	b->reenroll_pending_at = sql_col_int64(s, 8);
	b->reenroll_allowed_until = sql_col_int64(s, 9);
	sql_copy_text(b->tpm_ek, sizeof(b->tpm_ek), s, 10);
	b->tpm_bound_at = sql_col_int64(s, 11);
	b->tpm_quote_at = sql_col_int64(s, 12);
	sql_copy_text(b->tpm_refused, sizeof(b->tpm_refused), s, 13);
	b->tpm_refused_at = sql_col_int64(s, 14);
	sql_copy_text(b->tpm_pcr11, sizeof(b->tpm_pcr11), s, 15);
	sql_copy_text(b->tpm_quote_fail, sizeof(b->tpm_quote_fail), s, 16);
}

static int board_query(struct sql_stmt *s, db_board_cb cb, void *ctx, int single)
{
	int rc, r = 0, found = 0;
	while ((rc = sql_step(s)) == SQL_ROW) {
		struct db_board b;
		board_row(s, &b);
		found = 1;
		r = cb(ctx, &b);
		if (r || single)
			break;
	}
	if (r == 0 && rc != SQL_DONE && rc != SQL_ROW)
		r = db_err(rc);
	sql_reset(s);
	if (r == 0 && single && !found)
		r = -ENOENT;
	return r;
}

int db_board_get(struct db *db, const char *id_or_name, db_board_cb cb, void *ctx)
{
	struct sql_stmt *s = st(db, S_BOARD_GET_ID);
	int r;
	sql_bind_text(s, 1, id_or_name);
	r = board_query(s, cb, ctx, 1);
	if (r != -ENOENT)
		return r;
	s = st(db, S_BOARD_GET_NAME);
	sql_bind_text(s, 1, id_or_name);
	return board_query(s, cb, ctx, 1);
}

int db_board_list(struct db *db, db_board_cb cb, void *ctx)
{
	return board_query(st(db, S_BOARD_LIST), cb, ctx, 0);
}

int db_board_name_taken(struct db *db, const char *name)
{
	struct sql_stmt *s = st(db, S_BOARD_NAME_TAKEN);
	int rc;
	sql_bind_text(s, 1, name);
	rc = sql_step(s);
	sql_reset(s);
	if (rc == SQL_ROW)
		return 1;
	return rc == SQL_DONE ? 0 : db_err(rc);
}

int db_board_delete(struct db *db, const char *id)
{
	struct sql_stmt *s;
	int r = db_begin(db);
	if (r < 0)
		return r;
	s = st(db, S_CERT_REVOKE_BOARD);
	sql_bind_text(s, 1, id);
	r = step_done(s);
	if (r == 0) {
		s = st(db, S_GRANT_DELETE_BOARD);
		sql_bind_text(s, 1, id);
		r = step_done(s);
	}
	if (r == 0) {
		s = st(db, S_BOARD_DELETE);
		sql_bind_text(s, 1, id);
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
	struct sql_stmt *s = st(db, S_CERT_INSERT);
	sql_bind_int64(s, 1, (int64_t)serial);
	sql_bind_text(s, 2, board_id);
	sql_bind_int64(s, 3, not_after);
	return step_done(s);
}

int db_cert_check(struct db *db, uint64_t serial, const char *board_id)
{
	struct sql_stmt *s = st(db, S_CERT_CHECK);
	int rc, r;
	sql_bind_int64(s, 1, (int64_t)serial);
	sql_bind_text(s, 2, board_id);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		int revoked = (int)sql_col_int64(s, 0);
		int board_exists = (int)sql_col_int64(s, 1);
		r = !board_exists ? -EKEYREVOKED : revoked ? -ESTALE : 0;
	} else {
		r = rc == SQL_DONE ? -ENOENT : db_err(rc);
	}
	sql_reset(s);
	return r;
}

int db_cert_revoke_older(struct db *db, const char *board_id, uint64_t serial)
{
	struct sql_stmt *s = st(db, S_CERT_REVOKE_OLDER);
	int r;
	sql_bind_text(s, 1, board_id);
	sql_bind_int64(s, 2, (int64_t)serial);
	r = step_done(s);
	return r < 0 ? r : sql_changes(db->c);
}

/* ---- re-enrollment of a known machine ---- */

/* One statement on one board row: "UPDATE ... ?1 ... WHERE id = ?2". */
static int board_set_time(struct db *db, enum db_stmt_id id, const char *board_id, int64_t when)
{
	struct sql_stmt *s = st(db, id);
	sql_bind_int64(s, 1, when);
	sql_bind_text(s, 2, board_id);
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
	struct sql_stmt *s = st(db, S_BOARD_REENROLL_TAKE);
	int r;
	sql_bind_text(s, 1, id);
	sql_bind_int64(s, 2, now);
	r = changed_or_enoent(db, step_done(s));
	return r == -ENOENT ? -EACCES : r;
}

int db_board_reenroll_done(struct db *db, const char *id)
{
	struct sql_stmt *s = st(db, S_BOARD_REENROLL_DONE);
	sql_bind_text(s, 1, id);
	return changed_or_enoent(db, step_done(s));
}

/* ---- images sent to boards ---- */

int db_board_image_grant(struct db *db, const char *board_id, const char *image_id, int64_t now)
{
	struct sql_stmt *s = st(db, S_GRANT_INSERT);
	sql_bind_text(s, 1, board_id);
	sql_bind_text(s, 2, image_id);
	sql_bind_int64(s, 3, now);
	return step_done(s);
}

int db_board_image_granted(struct db *db, const char *board_id, const char *image_id)
{
	struct sql_stmt *s = st(db, S_GRANT_CHECK);
	int rc;
	sql_bind_text(s, 1, board_id);
	sql_bind_text(s, 2, image_id);
	rc = sql_step(s);
	sql_reset(s);
	if (rc == SQL_ROW)
		return 1;
	return rc == SQL_DONE ? 0 : db_err(rc);
}
