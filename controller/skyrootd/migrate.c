/* `skyrootd migrate` (migrate.h): a SQLite store into an empty PostgreSQL
 * database, through sql.h on both ends. */
#include "controller/skyrootd/migrate.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/args.h"
#include "common/util.h"
#include "controller/skyrootd/cmdline.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/sql.h"
#include "controller/skyrootd/store.h"

#define MG_ERR(...) fprintf(stderr, "skyrootd migrate: " __VA_ARGS__)

#define I MIGRATE_INT
#define T MIGRATE_TEXT
#define B MIGRATE_BLOB

/* Every table of the schema (db.c, db_pg_schema.c), its columns in the
 * order of SQLite's table_info.  tests/unit/test_migrate.c checks this list
 * against a new SQLite store: a new table or column belongs here. */
const struct migrate_table migrate_tables[] = {
	{ "tokens", NULL, false,
	  { { "id", T }, { "hash", B }, { "created_at", I }, { "expires_at", I }, { "uses", I }, { "uses_left", I },
	    { "revoked", I }, { "board_id", T }, { .name = NULL } } },
	{ "boards", NULL, false,
	  { { "id", T }, { "name", T }, { "uuid", T }, { "enrolled_at", I }, { "last_seen", I },
	    { "cert_serial", I }, { "cert_not_after", I }, { "inventory", B }, { "baremetal", I },
	    { "reenroll_pending_at", I }, { "reenroll_allowed_until", I }, { "tpm_ek", T }, { "tpm_bound_at", I },
	    { "tpm_quote_at", I }, { "tpm_refused", T }, { "tpm_refused_at", I }, { "tpm_pcr11", T },
	    { "tpm_ak", B }, { "tpm_quote_fail", T }, { .name = NULL } } },
	{ "certs", NULL, false,
	  { { "serial", I }, { "board_id", T }, { "not_after", I }, { "revoked", I }, { "seq", I }, { .name = NULL } } },
	{ "chunks", "id", false,
	  { { "id", I }, { "digest", B }, { "size", I }, { "refs", I }, { "quarantined_at", I },
	    { "quarantine_why", T }, { .name = NULL } } },
	/* the bytes: one 1 MiB row at a time */
	{ "chunk_data", NULL, false, { { "id", I }, { "data", B }, { .name = NULL } } },
	{ "images", NULL, false,
	  { { "id", T }, { "name", T }, { "kind", T }, { "format", T }, { "size", I }, { "sha256", B },
	    { "chunk_size", I }, { "chunks", I }, { "created_at", I }, { "manifest", B }, { "signature", B },
	    { .name = NULL } } },
	{ "image_chunks", NULL, false, { { "image_id", T }, { "idx", I }, { "chunk_id", I }, { .name = NULL } } },
	{ "guests", NULL, false,
	  { { "id", T }, { "name", T }, { "board_id", T }, { "kernel", T }, { "initrd", T }, { "disk", T },
	    { "cmdline", T }, { "vcpus", I }, { "memory", I }, { "devices", T }, { "backend", T }, { "desired", T },
	    { "state", T }, { "error", T }, { "created_at", I }, { .name = NULL } } },
	{ "board_images", NULL, false, { { "board_id", T }, { "image_id", T }, { "granted_at", I }, { .name = NULL } } },
	{ "scrub_state", NULL, false, { { "id", I }, { "cursor", I }, { .name = NULL } } },
	{ "credentials", NULL, false,
	  { { "name", T }, { "role", T }, { "lookup", B }, { "hash", B }, { "created_at", I }, { "expires_at", I },
	    { "rotated_at", I }, { "old_lookup", B }, { "old_hash", B }, { "old_until", I }, { "revoked_at", I },
	    { .name = NULL } } },
	{ "audit", "seq", true,
	  { { "seq", I }, { "at", I }, { "credential", T }, { "peer", T }, { "method", T }, { "path", T },
	    { "status", I }, { "request_id", T }, { .name = NULL } } },
	{ "meta", NULL, false, { { "id", T }, { "description", T }, { "labels", T }, { .name = NULL } } },
	{ "idempotency", NULL, false,
	  { { "credential", B }, { "key", T }, { "request", B }, { "sealed", B }, { "created_at", I }, { .name = NULL } } },
	{ "pending_boards", NULL, false,
	  { { "id", T }, { "key_sha256", B }, { "state", T }, { "serial", T }, { "uuid", T }, { "hostname", T },
	    { "macs", T }, { "peer", T }, { "first_seen", I }, { "last_seen", I }, { "expires_at", I },
	    { "decided_at", I }, { .name = NULL } } },
	{ "expectations", NULL, false,
	  { { "id", T }, { "serial", T }, { "uuid", T }, { "created_at", I }, { .name = NULL } } },
	{ "events", "rv", true,
	  { { "rv", I }, { "at", I }, { "type", T }, { "kind", T }, { "object_id", T }, { "detail", T }, { .name = NULL } } },
	{ "networks", NULL, false, { { "id", T }, { "name", T }, { "vlan", I }, { "created_at", I }, { .name = NULL } } },
	{ "guest_nics", NULL, false,
	  { { "guest_id", T }, { "idx", I }, { "network_id", T }, { "mac", T }, { .name = NULL } } },
	{ "firmware", NULL, false, { { "id", T }, { "name", T }, { "pcr11", T }, { "created_at", I }, { .name = NULL } } },
	{ "board_boots", NULL, false,
	  { { "board_id", T }, { "request_id", I }, { "state", T }, { "kernel", T }, { "error", T }, { "at", I },
	    { .name = NULL } } },
	/* fleet.c's: empty on a SQLite store (one controller), copied all the same */
	{ "board_presence", NULL, false,
	  { { "board_id", T }, { "controller", T }, { "since", I }, { "seen", I }, { .name = NULL } } },
	{ "board_outbox", "seq", true,
	  { { "seq", I }, { "board_id", T }, { "kind", T }, { "data", B }, { "created_at", I }, { .name = NULL } } },
	/* consoles.c's: written only on a shared store, so empty on a SQLite
	 * one (its consoles are in memory and not moved); listed all the same,
	 * as the schema check wants every table */
	{ "guest_console", NULL, false,
	  { { "guest_id", T }, { "seq", I }, { "data", B }, { "at", I }, { .name = NULL } } },
};
const size_t migrate_tables_n = SKY_ARRAY_SIZE(migrate_tables);

#undef I
#undef T
#undef B

/* ---- the source: nobody else has it open ---- */

int migrate_source_idle(const char *path)
{
	sqlite3 *h = NULL;
	int rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL);

	/* A skyrootd holds its WAL connection open all the time, and with
	 * it a shared lock: an exclusive one cannot be had while it runs. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT", NULL, NULL, NULL);
	sqlite3_close(h);
	switch (rc) {
	case SQLITE_OK:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

/* ---- PostgreSQL only: identity columns ----
 * The one place of PostgreSQL's own SQL, used only when the destination is
 * PostgreSQL: a GENERATED ALWAYS column takes the source's values with
 * OVERRIDING SYSTEM VALUE, and every identity's sequence moves past the
 * highest value it ever gave (SQLite's sqlite_sequence remembers it for an
 * AUTOINCREMENT table whose newest rows were deleted). */

static const char *mg_pg_insert_clause(const struct migrate_table *t, bool dst_pg)
{
	return dst_pg && t->generated_always ? " OVERRIDING SYSTEM VALUE" : "";
}

/* The highest identity src gave in table t: its rows' and its sequence's. */
static int mg_identity_max(struct sql *src, const struct migrate_table *t, int64_t *max)
{
	char q[160];
	struct sql_stmt *s = NULL;
	int r;

	snprintf(q, sizeof(q), "SELECT COALESCE(MAX(%s), 0) FROM %s", t->identity, t->name);
	if ((r = sql_prepare(src, q, &s)) < 0)
		return r;
	r = sql_step(s);
	*max = r == SQL_ROW ? sql_col_int64(s, 0) : 0;
	sql_finalize(s);
	if (r < 0)
		return r;
	/* SQLite (the source of every migrate) keeps AUTOINCREMENT's high mark */
	if (!t->generated_always)
		return 0;
	if ((r = sql_prepare(src, "SELECT seq FROM sqlite_sequence WHERE name = ?", &s)) < 0)
		return r;
	sql_bind_text(s, 1, t->name);
	r = sql_step(s);
	if (r == SQL_ROW && sql_col_int64(s, 0) > *max)
		*max = sql_col_int64(s, 0);
	sql_finalize(s);
	return r < 0 ? r : 0;
}

static int mg_pg_set_sequence(struct sql *src, struct sql *dst, const struct migrate_table *t)
{
	char q[256];
	struct sql_stmt *s = NULL;
	int64_t max;
	int r = mg_identity_max(src, t, &max);

	if (r < 0 || max <= 0)
		return r; /* nothing given yet: the sequence starts at 1 */
	/* names from the table above, a number: nothing from outside */
	snprintf(q, sizeof(q), "SELECT setval(pg_get_serial_sequence('%s', '%s'), %" PRId64 ")", t->name,
		 t->identity, max);
	if ((r = sql_prepare(dst, q, &s)) < 0)
		return r;
	r = sql_step(s);
	sql_finalize(s);
	return r < 0 ? r : r == SQL_ROW ? 0 : -EIO;
}

/* ---- the copy ---- */

static int mg_build(char *sel, char *ins, size_t n, const struct migrate_table *t, bool dst_pg)
{
	size_t a = (size_t)snprintf(sel, n, "SELECT "), b, ncols = 0;

	b = (size_t)snprintf(ins, n, "INSERT INTO %s(", t->name);
	for (const struct migrate_col *c = t->cols; c->name && a < n && b < n; c++, ncols++) {
		a += (size_t)snprintf(sel + a, n - a, "%s%s", ncols ? ", " : "", c->name);
		b += (size_t)snprintf(ins + b, n - b, "%s%s", ncols ? ", " : "", c->name);
	}
	if (a < n)
		a += (size_t)snprintf(sel + a, n - a, " FROM %s", t->name);
	if (b < n)
		b += (size_t)snprintf(ins + b, n - b, ")%s VALUES(", mg_pg_insert_clause(t, dst_pg));
	for (size_t i = 0; i < ncols && b < n; i++)
		b += (size_t)snprintf(ins + b, n - b, "%s?", i ? ", " : "");
	if (b < n)
		b += (size_t)snprintf(ins + b, n - b, ")");
	return a < n && b < n ? 0 : -ENAMETOOLONG;
}

/* One row of s into ins: every column as its kind says. */
static void mg_bind_row(struct sql_stmt *s, struct sql_stmt *ins, const struct migrate_table *t, uint64_t *bytes)
{
	static const char empty[1];

	for (int i = 0; t->cols[i].name; i++) {
		size_t len;
		const void *v;

		if (sql_col_null(s, i)) {
			sql_bind_null(ins, i + 1);
			continue;
		}
		switch (t->cols[i].kind) {
		case MIGRATE_INT:
			sql_bind_int64(ins, i + 1, sql_col_int64(s, i));
			break;
		case MIGRATE_TEXT:
			v = sql_col_text(s, i);
			len = sql_col_bytes(s, i);
			sql_bind_textn(ins, i + 1, v ? v : empty, v ? (int)len : 0);
			*bytes += len;
			break;
		case MIGRATE_BLOB:
			/* an empty blob reads as NULL: bind it as empty, not NULL */
			v = sql_col_blob(s, i);
			len = sql_col_bytes(s, i);
			sql_bind_blob(ins, i + 1, v ? v : empty, v ? len : 0);
			*bytes += len;
			break;
		}
	}
}

static int mg_table(struct sql *src, struct sql *dst, const struct migrate_table *t, bool dst_pg,
		    struct migrate_stats *st, char *err, size_t errlen)
{
	char sel[1024], ins[1024], cnt[128];
	struct sql_stmt *s = NULL, *in = NULL;
	int r;

	if ((r = mg_build(sel, ins, sizeof(sel), t, dst_pg)) < 0) {
		snprintf(err, errlen, "table %s: its statements do not fit", t->name);
		return r;
	}
	snprintf(cnt, sizeof(cnt), "SELECT count(*) FROM %s", t->name);
	r = sql_count(dst, cnt);
	if (r != 0) {
		snprintf(err, errlen, "table %s of the destination %s", t->name,
			 r > 0 ? "has rows already" : "cannot be read");
		return r > 0 ? -EEXIST : r;
	}
	if ((r = sql_prepare(src, sel, &s)) < 0) {
		snprintf(err, errlen, "table %s of the source cannot be read: %s", t->name, sql_errmsg(src));
		return r;
	}
	if ((r = sql_prepare(dst, ins, &in)) < 0) {
		snprintf(err, errlen, "table %s of the destination cannot be written: %s", t->name, sql_errmsg(dst));
		sql_finalize(s);
		return r;
	}
	while ((r = sql_step(s)) == SQL_ROW) {
		mg_bind_row(s, in, t, &st->bytes);
		if ((r = sql_run(in)) < 0) {
			snprintf(err, errlen, "table %s: row %" PRIu64 " not written: %s", t->name, st->rows,
				 sql_errmsg(dst));
			break;
		}
		st->rows++;
	}
	if (r < 0 && !err[0])
		snprintf(err, errlen, "table %s of the source: %s", t->name, sql_errmsg(src));
	sql_finalize(in);
	sql_finalize(s);
	if (r == 0 && t->identity && dst_pg && (r = mg_pg_set_sequence(src, dst, t)) < 0)
		snprintf(err, errlen, "table %s: its identity sequence not set: %s", t->name, sql_errmsg(dst));
	if (r == 0)
		st->tables++;
	return r;
}

int migrate_copy(struct sql *src, struct sql *dst, bool dst_pg, struct migrate_stats *stats, char *err,
		 size_t errlen)
{
	int r;

	*stats = (struct migrate_stats){ 0 };
	err[0] = '\0';
	/* one snapshot of the source for the whole copy */
	if ((r = sql_exec(src, "BEGIN")) < 0) {
		snprintf(err, errlen, "the source cannot be read: %s", sql_errmsg(src));
		return r;
	}
	if ((r = dst->ops->begin(dst)) < 0) {
		snprintf(err, errlen, "no transaction on the destination: %s", sql_errmsg(dst));
		sql_exec(src, "ROLLBACK");
		return r;
	}
	for (size_t i = 0; i < migrate_tables_n && r == 0; i++)
		r = mg_table(src, dst, &migrate_tables[i], dst_pg, stats, err, errlen);
	if (r == 0 && (r = sql_exec(dst, "COMMIT")) < 0)
		snprintf(err, errlen, "the destination did not commit: %s", sql_errmsg(dst));
	if (r < 0 && sql_in_tx(dst))
		sql_exec(dst, "ROLLBACK");
	sql_exec(src, "ROLLBACK");
	return r;
}

/* ---- the command ---- */

static const char *opt_from, *opt_to;

static struct sky_opt migrate_opts[] = {
	{ .name = "from", .kind = SKY_ARG_STR, .dest = &opt_from, .metavar = "DIR",
	  .help = "the state folder of a controller on SQLite (required); stop it first" },
	{ .name = "to", .kind = SKY_ARG_STR, .dest = &opt_to, .metavar = "URI",
	  .help = "an empty PostgreSQL database, postgresql://... (required)" },
	{ 0 }
};

void ctl_migrate_usage(FILE *f)
{
	fprintf(f, "\nmigrate move a stopped controller's SQLite store, images included, into an\n"
		   "       empty PostgreSQL database in one transaction, verify every image there,\n"
		   "       then switch the state folder to it (DIR/store.url; the SQLite file is\n"
		   "       renamed to " CTL_DB_FILE ".migrated).\n");
	sky_args_usage(f, migrate_opts);
}

static int mg_path(char *out, const char *name)
{
	return (size_t)snprintf(out, PATH_MAX, "%s/%s", opt_from, name) < PATH_MAX ? 0 : -ENAMETOOLONG;
}

/* What must hold before anything is touched; says what does not. */
static int mg_preflight(const char *db_path)
{
	char p[PATH_MAX];
	struct sql *c = NULL;
	int r;

	if (mg_path(p, CTL_DB_URL) < 0 || access(p, F_OK) == 0) {
		MG_ERR("%s already uses PostgreSQL (%s exists): nothing to migrate\n", opt_from, CTL_DB_URL);
		return -EEXIST;
	}
	if (access(db_path, F_OK) < 0) {
		MG_ERR("no SQLite store in %s (%s: %s)\n", opt_from, CTL_DB_FILE, strerror(errno));
		return -ENOENT;
	}
	if (mg_path(p, CTL_DB_FILE ".migrated") < 0 || access(p, F_OK) == 0) {
		MG_ERR("%s holds %s.migrated from an earlier migrate: move it away first\n", opt_from, CTL_DB_FILE);
		return -EEXIST;
	}
	r = migrate_source_idle(db_path);
	if (r < 0) {
		MG_ERR("%s/%s %s\n", opt_from, CTL_DB_FILE,
		       r == -EBUSY ? "is in use: a skyrootd runs on it; stop it first" : "cannot be opened");
		return r;
	}
	r = sql_open(opt_to, 0, &c);
	if (r < 0) {
		MG_ERR("cannot reach the PostgreSQL database: %s\n", c ? sql_errmsg(c) : strerror(-r));
		return r;
	}
	r = c->ops->schema_version(c);
	sql_close(c);
	if (r != 0) {
		MG_ERR("%s\n", r > 0 ? "the PostgreSQL database holds a store already: migrate needs an empty one"
				     : "cannot read the PostgreSQL database's schema version");
		return r > 0 ? -EADDRINUSE : r;
	}
	return 0;
}

/* A reader leaves the -wal and -shm files behind: the last writer to
 * close (after a read) takes them away, as a stopped skyrootd leaves it. */
static void mg_tidy(const char *db_path)
{
	sqlite3 *h = NULL;

	if (sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK)
		sqlite3_exec(h, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	sqlite3_close(h);
}

/* The copy: the source at this skyrootd's schema version first (as `run`
 * would bring it), then every row in one transaction of the destination. */
static int mg_move(const char *db_path)
{
	struct db *db = NULL;
	struct sql *src = NULL;
	struct migrate_stats st;
	char err[256];
	int r = db_open(db_path, &db), v;

	db_close(db);
	db = NULL;
	if (r < 0) {
		MG_ERR("cannot open the SQLite store: %s\n", strerror(-r));
		return r;
	}
	if ((r = sql_open(db_path, SQL_OPEN_READONLY, &src)) < 0 || (r = db_open(opt_to, &db)) < 0) {
		MG_ERR("cannot open the %s: %s\n", src ? "PostgreSQL database" : "SQLite store", strerror(-r));
		goto out;
	}
	v = src->ops->schema_version(src);
	if (v != db_schema_version(db)) {
		MG_ERR("the SQLite store is at schema version %d, the PostgreSQL one at %d\n", v, db_schema_version(db));
		r = -EPROTO;
		goto out;
	}
	printf("Copying the store of %s (schema version %d) into PostgreSQL, in one transaction\n", opt_from, v);
	r = migrate_copy(src, db_sql(db), true, &st, err, sizeof(err));
	if (r < 0)
		MG_ERR("%s; nothing was copied (the database holds the empty schema now: drop and recreate it "
		       "before trying again)\n", err);
	else
		printf("  %" PRIu64 " rows of %u tables (%.1f MiB of text and blobs) committed\n", st.rows, st.tables,
		       (double)st.bytes / (1 << 20));
out:
	sql_close(src);
	db_close(db);
	mg_tidy(db_path);
	return r;
}

struct mg_check {
	unsigned images, bad;
	bool failed;                  /* an image could not be verified (said) */
};

static void mg__bad_chunk(void *ctx, const struct store_image *img, uint32_t index, const uint8_t digest[32])
{
	char hex[65];

	(void)ctx;
	sky_format_hex(digest, 32, hex);
	printf("  BAD  %s (%s): chunk %" PRIu32 " does not hash to %s\n", img->name, img->id, index, hex);
}

static void mg__verdict(void *ctx, const struct store_verdict *v)
{
	struct mg_check *c = ctx;
	const struct store_image *img = v->img;

	c->images++;
	if (v->err < 0) {
		MG_ERR("cannot verify image %s (%s): %s\n", img->name, img->id, strerror(-v->err));
		c->failed = true;
	} else if (!v->ok) {
		printf("  BAD  %s (%s): %d of %" PRIu32 " chunks bad%s%s\n", img->name, img->id, v->bad_chunks,
		       img->chunks, v->why[0] ? "; " : "", v->why);
		c->bad++;
	} else {
		printf("  OK   %s (%s): %" PRIu32 " chunks and the signed manifest\n", img->name, img->id, v->chunks);
	}
}

/* The state loaded on the destination as `run` will load it; every image:
 * every chunk re-hashed, its signed manifest checked.  0 all good,
 * -EBADMSG some image is bad, another negative errno. */
static int mg_verify(void)
{
	static const struct store_verify_ops ops = { .bad_chunk = mg__bad_chunk, .verdict = mg__verdict };
	struct controller ctl = { .opt = { .state_dir = opt_from, .db = opt_to } };
	struct mg_check c = { 0 };
	int r = ctl_state_load(&ctl);

	if (r < 0) {
		MG_ERR("the state does not load on the PostgreSQL store: %s\n", strerror(-r));
		return r;
	}
	printf("Verifying the images in PostgreSQL\n");
	r = store_verify_all(ctl.store, ctl.db_path, &ops, &c);
	if (r == 0 || r == -EBADMSG)
		printf("%u images: %u OK, %u BAD\n", c.images, c.images - c.bad, c.bad);
	else if (!c.failed)
		MG_ERR("cannot list the images: %s\n", strerror(-r));
	store_reader_close();
	ctl_state_unload(&ctl);
	return r;
}

/* The folder uses PostgreSQL from now on: store.url, and the SQLite file
 * (with its -wal and -shm, if any) renamed aside. */
static int mg_switch(const char *db_path)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[PATH_MAX], from[PATH_MAX + 8], to[PATH_MAX + 24];
	size_t n = strlen(opt_to);
	char *line = malloc(n + 2);
	int r;

	if (!line)
		return -ENOMEM;
	memcpy(line, opt_to, n);
	line[n] = '\n';
	r = migrate_source_idle(db_path);
	if (r < 0)
		MG_ERR("%s/%s came into use during the migrate%s\n", opt_from, CTL_DB_FILE,
		       r == -EBUSY ? " (a skyrootd started on it?)" : "");
	if (r == 0 && (r = mg_path(p, CTL_DB_URL)) == 0 && (r = sky_write_file(p, line, n + 1, 0600, 1)) < 0)
		MG_ERR("cannot write %s: %s\n", p, strerror(-r));
	OPENSSL_cleanse(line, n + 1);
	free(line);
	for (size_t i = 0; r == 0 && i < SKY_ARRAY_SIZE(sfx); i++) {
		snprintf(from, sizeof(from), "%s%s", db_path, sfx[i]);
		snprintf(to, sizeof(to), "%s.migrated%s", db_path, sfx[i]);
		if (rename(from, to) < 0 && (errno != ENOENT || i == 0)) {
			r = -errno;
			MG_ERR("cannot rename %s: %s\n", from, strerror(errno));
		}
	}
	if (r == 0)
		r = sky_fsync_dir_of(db_path);
	return r;
}

int ctl_migrate_main(int argc, char **argv)
{
	char db_path[PATH_MAX];
	int r = ctl_cmdline_parse("migrate", migrate_opts, 2, argc, argv, ctl_migrate_usage);

	if (r)
		return r < 0 ? 0 : r;
	if (!sql_target_is_pg(opt_to)) {
		MG_ERR("--to must be a postgresql:// URI\n");
		return 2;
	}
	if (!sql_engine(opt_to)) {
		MG_ERR("this skyrootd was built without PostgreSQL (libpq)\n");
		return 1;
	}
	umask(077);
	if (mg_path(db_path, CTL_DB_FILE) < 0) {
		MG_ERR("--from: the path is too long\n");
		return 2;
	}
	if (mg_preflight(db_path) < 0 || mg_move(db_path) < 0)
		return 1;
	r = mg_verify();
	if (r < 0) {
		MG_ERR("%s; %s still uses its SQLite store, unchanged (the PostgreSQL database holds the copy: "
		       "drop it before migrating again)\n",
		       r == -EBADMSG ? "some images did not verify" : "the copy could not be verified", opt_from);
		return 1;
	}
	if (mg_switch(db_path) < 0) {
		MG_ERR("the copy is good, but %s was not switched to it\n", opt_from);
		return 1;
	}
	printf("Migrated. %s now uses PostgreSQL (%s/%s, mode 0600).\n"
	       "The old SQLite store is %s/%s.migrated: keep it until you trust the new one.\n"
	       "Start the controller:  skyrootd run --state %s\n",
	       opt_from, opt_from, CTL_DB_URL, opt_from, CTL_DB_FILE, opt_from);
	return 0;
}
