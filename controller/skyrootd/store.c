/* Image store: see store.h. */
#include "controller/skyrootd/store.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/limits.h"
#include "common/parse.h"
#include "common/util.h"
#include "common/x509.h"
#include "controller/skyrootd/fwgate.h"
#include "controller/skyrootd/sql.h"
#include "skyroot.pb-c.h"

enum store_stmt {
	Q_CHUNK_FIND,
	Q_CHUNK_INSERT,
	Q_CHUNK_DATA_INSERT,
	Q_CHUNK_DATA_DROP,
	Q_CHUNK_REF,
	Q_CHUNK_UNREF,
	Q_CHUNK_DROP,
	Q_IMAGE_INSERT,
	Q_IMAGE_CHUNK_INSERT,
	Q_IMAGE_BY_ID,
	Q_IMAGE_BY_NAME,
	Q_IMAGE_LIST,
	Q_IMAGE_NAME_TAKEN,
	Q_IMAGE_MANIFEST,
	Q_IMAGE_CHUNK,
	Q_IMAGE_CHUNK_IDS,
	Q_IMAGE_DELETE,
	Q_IMAGE_CHUNKS_DELETE,
	Q_CHUNK_QUARANTINED,
	Q_COUNT
};

#define IMAGE_COLS "id, name, kind, format, size, sha256, chunks, chunk_size, created_at"

static const char *const store_sql[Q_COUNT] = {
	[Q_CHUNK_FIND] = "SELECT id FROM chunks WHERE digest = ?",
	[Q_CHUNK_INSERT] = "INSERT INTO chunks(digest, size, refs) VALUES(?, ?, 1) RETURNING id",
	/* Empty: the bytes follow through the engine's blob_write. */
	[Q_CHUNK_DATA_INSERT] = "INSERT INTO chunk_data(id, data) VALUES(?, ?)",
	[Q_CHUNK_DATA_DROP] = "DELETE FROM chunk_data WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM chunks WHERE id = ?1)",
	[Q_CHUNK_REF] = "UPDATE chunks SET refs = refs + 1 WHERE id = ?",
	[Q_CHUNK_UNREF] = "UPDATE chunks SET refs = refs - 1 WHERE id = ?",
	[Q_CHUNK_DROP] = "DELETE FROM chunks WHERE id = ? AND refs <= 0",
	[Q_IMAGE_INSERT] = "INSERT INTO images(id, name, kind, format, size, sha256, chunk_size, chunks, "
			   "created_at, manifest, signature) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
	[Q_IMAGE_CHUNK_INSERT] = "INSERT INTO image_chunks(image_id, idx, chunk_id) VALUES(?,?,?)",
	[Q_IMAGE_BY_ID] = "SELECT " IMAGE_COLS " FROM images WHERE id = ?",
	[Q_IMAGE_BY_NAME] = "SELECT " IMAGE_COLS " FROM images WHERE name = ?",
	[Q_IMAGE_LIST] = "SELECT " IMAGE_COLS " FROM images ORDER BY name, id",
	[Q_IMAGE_NAME_TAKEN] = "SELECT 1 FROM images WHERE name = ?",
	[Q_IMAGE_MANIFEST] = "SELECT manifest, signature FROM images WHERE id = ?",
	[Q_IMAGE_CHUNK] = "SELECT c.id, c.digest, c.size FROM image_chunks ic JOIN chunks c ON c.id = ic.chunk_id "
			  "WHERE ic.image_id = ? AND ic.idx = ?",
	[Q_IMAGE_CHUNK_IDS] = "SELECT chunk_id FROM image_chunks WHERE image_id = ?",
	[Q_IMAGE_DELETE] = "DELETE FROM images WHERE id = ?",
	[Q_IMAGE_CHUNKS_DELETE] = "DELETE FROM image_chunks WHERE image_id = ?",
	[Q_CHUNK_QUARANTINED] = "SELECT quarantined_at FROM chunks WHERE id = ?",
};

struct store {
	struct db *db;
	struct sql *c; /* the writer connection of db */
	struct sql_stmt *q[Q_COUNT];
	char *db_path;
	char *state_dir;
	EVP_PKEY *signing_key;
	uint64_t image_max;
	unsigned n_uploads;
	char upload_names[STORE_MAX_UPLOADS][STORE_NAME_MAX];
};

struct store_upload {
	struct store *st;
	unsigned slot;
	char name[STORE_NAME_MAX];
	char kind[8];
	uint8_t head[4];              /* for format detection */
	uint64_t received;
	uint64_t expected;            /* UINT64_MAX: unknown (chunked body) */
	EVP_MD_CTX *sha;
	uint8_t *buf;                 /* one chunk */
	size_t buf_len;
	int64_t *rowids;              /* chunk rows this upload holds a reference on */
	uint8_t (*digests)[32];
	size_t n_chunks, cap_chunks;
	int failed;
};

static struct sql_stmt *q(struct store *st, enum store_stmt id)
{
	struct sql_stmt *s = st->q[id];
	sql_reset(s);
	return s;
}

static int step_done(struct sql_stmt *s)
{
	return sql_run(s);
}

/* Recount chunk references from the committed images and drop orphans:
 * what an interrupted upload or a crash left behind. */
static int store_collect_orphans(struct store *st)
{
	int r = db_begin(st->db);
	if (r < 0)
		return r;
	r = sql_exec(st->c, "UPDATE chunks SET refs = (SELECT COUNT(*) FROM image_chunks WHERE chunk_id = chunks.id) "
			    "WHERE refs != (SELECT COUNT(*) FROM image_chunks WHERE chunk_id = chunks.id);"
			    "DELETE FROM chunks WHERE refs = 0;"
			    "DELETE FROM chunk_data WHERE id NOT IN (SELECT id FROM chunks);");
	if (r == 0)
		r = db_commit(st->db);
	if (r < 0)
		db_rollback(st->db);
	return r;
}

int store_open(struct db *db, const char *db_path, const char *state_dir, EVP_PKEY *signing_key,
	       uint64_t image_max, struct store **out)
{
	struct store *st = calloc(1, sizeof(*st));
	int r = -ENOMEM;

	if (!st)
		return -ENOMEM;
	st->db = db;
	st->c = db_sql(db);
	st->signing_key = signing_key;
	st->image_max = image_max;
	st->db_path = strdup(db_path);
	st->state_dir = strdup(state_dir);
	if (!st->db_path || !st->state_dir)
		goto fail;
	for (int i = 0; i < Q_COUNT; i++) {
		r = sql_prepare(st->c, store_sql[i], &st->q[i]);
		if (r < 0)
			goto fail;
	}
	r = store_collect_orphans(st);
	if (r < 0)
		goto fail;
	*out = st;
	return 0;
fail:
	store_close(st);
	return r;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sql_finalize(st->q[i]);
	free(st->db_path);
	free(st->state_dir);
	free(st);
}

uint64_t store_image_max(const struct store *st)
{
	return st->image_max;
}

uint64_t store_free_space(const struct store *st)
{
	struct statvfs sv;
	if (statvfs(st->state_dir, &sv) < 0)
		return 0;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* ---- upload ---- */

_Static_assert(STORE_NAME_MAX == SKY_NAME_MAX + 1, "an image name is the one name syntax");

static bool kind_ok(const char *kind)
{
	return strcmp(kind, "kernel") == 0 || strcmp(kind, "initrd") == 0 || strcmp(kind, "disk") == 0;
}

/* Room for `more` bytes: each byte lands twice (WAL, then the database). */
static int store_space_ok(const struct store *st, uint64_t more)
{
	uint64_t need = more > UINT64_MAX / 4 ? UINT64_MAX : 2 * more + STORE_SPACE_MARGIN;
	return store_free_space(st) >= need ? 0 : -ENOSPC;
}

int store_upload_begin(struct store *st, const char *name, const char *kind, uint64_t expected_size,
		       struct store_upload **out)
{
	struct store_upload *up;
	unsigned slot;
	int r;

	/* An image name must not look like an image id. */
	if (!sky_name_ok(name, "img-") || !kind_ok(kind))
		return -EINVAL;
	if (expected_size != UINT64_MAX && expected_size > st->image_max)
		return -EFBIG;
	if (st->n_uploads >= STORE_MAX_UPLOADS)
		return -EBUSY;
	for (slot = 0; slot < STORE_MAX_UPLOADS; slot++)
		if (st->upload_names[slot][0] && strcmp(st->upload_names[slot], name) == 0)
			return -EEXIST;
	struct sql_stmt *s = q(st, Q_IMAGE_NAME_TAKEN);
	sql_bind_text(s, 1, name);
	int rc = sql_step(s);
	sql_reset(s);
	if (rc == SQL_ROW)
		return -EEXIST;
	if (rc < 0)
		return rc;
	r = store_space_ok(st, expected_size == UINT64_MAX ? STORE_CHUNK_SIZE : expected_size);
	if (r < 0)
		return r;

	up = calloc(1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	up->buf = malloc(STORE_CHUNK_SIZE);
	up->sha = EVP_MD_CTX_new();
	if (!up->buf || !up->sha || EVP_DigestInit_ex(up->sha, EVP_sha256(), NULL) != 1) {
		free(up->buf);
		EVP_MD_CTX_free(up->sha);
		free(up);
		return -ENOMEM;
	}
	for (slot = 0; slot < STORE_MAX_UPLOADS && st->upload_names[slot][0]; slot++)
		;
	up->st = st;
	up->slot = slot;
	up->expected = expected_size;
	snprintf(up->name, sizeof(up->name), "%s", name);
	snprintf(up->kind, sizeof(up->kind), "%s", kind);
	snprintf(st->upload_names[slot], STORE_NAME_MAX, "%s", name);
	st->n_uploads++;
	*out = up;
	return 0;
}

uint64_t store_upload_received(const struct store_upload *up)
{
	return up->received;
}

static int upload_grow(struct store_upload *up)
{
	size_t cap;
	int64_t *rows;
	uint8_t(*dig)[32];
	if (up->n_chunks < up->cap_chunks)
		return 0;
	cap = up->cap_chunks ? up->cap_chunks * 2 : 64;
	rows = realloc(up->rowids, cap * sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	up->rowids = rows;
	dig = realloc(up->digests, cap * sizeof(*dig));
	if (!dig)
		return -ENOMEM;
	up->digests = dig;
	up->cap_chunks = cap;
	return 0;
}

/* Store the buffered chunk (or take a reference on an identical one). Its
 * own short transaction, not yet durable: the manifest's commit is. */
static int upload_flush_chunk(struct store_upload *up)
{
	struct store *st = up->st;
	uint8_t digest[32];
	int64_t rowid = 0;
	struct sql_stmt *s;
	int rc, r;

	r = upload_grow(up);
	if (r < 0)
		return r;
	r = store_space_ok(st, STORE_CHUNK_SIZE);
	if (r < 0)
		return r;
	sky_sha256(up->buf, up->buf_len, digest);
	r = db_set_durable(st->db, false);
	if (r == 0)
		r = db_begin(st->db);
	if (r < 0)
		goto out;
	s = q(st, Q_CHUNK_FIND);
	sql_bind_blob(s, 1, digest, 32);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		rowid = sql_col_int64(s, 0);
		sql_reset(s);
		/* A quarantined copy of these bytes: they heal it. */
		r = store_chunk_heal(st->c, rowid, up->buf, up->buf_len);
		s = q(st, Q_CHUNK_REF);
		sql_bind_int64(s, 1, rowid);
		if (r >= 0)
			r = step_done(s);
	} else if (rc == SQL_DONE) {
		sql_reset(s);
		s = q(st, Q_CHUNK_INSERT);
		sql_bind_blob(s, 1, digest, 32);
		sql_bind_int64(s, 2, (int64_t)up->buf_len);
		rc = sql_step(s);
		if (rc == SQL_ROW)
			rowid = sql_col_int64(s, 0);
		r = rc == SQL_ROW ? 0 : rc < 0 ? rc : -EIO;
		sql_reset(s);
		if (r == 0) {
			s = q(st, Q_CHUNK_DATA_INSERT);
			sql_bind_int64(s, 1, rowid);
			sql_bind_blob(s, 2, "", 0);
			r = step_done(s);
		}
		/* The engine's blob write: on SQLite incremental blob I/O, the
		 * chunk straight into its row. */
		if (r == 0)
			r = st->c->ops->blob_write(st->c, "chunk_data", "data", rowid, up->buf, up->buf_len);
	} else {
		sql_reset(s);
		r = rc;
	}
	if (r == 0)
		r = db_commit(st->db);
	if (r < 0)
		db_rollback(st->db);
out:
	db_set_durable(st->db, true);
	if (r < 0)
		return r;
	up->rowids[up->n_chunks] = rowid;
	memcpy(up->digests[up->n_chunks], digest, 32);
	up->n_chunks++;
	up->buf_len = 0;
	return 0;
}

int store_upload_write(struct store_upload *up, const void *data, size_t len)
{
	const uint8_t *p = data;
	int r;

	if (up->failed)
		return up->failed;
	if (len > up->st->image_max - up->received ||
	    (up->expected != UINT64_MAX && up->received + len > up->expected)) {
		up->failed = -EFBIG;
		return up->failed;
	}
	if (EVP_DigestUpdate(up->sha, p, len) != 1) {
		up->failed = -EIO;
		return up->failed;
	}
	for (size_t i = 0; up->received + i < 4 && i < len; i++)
		up->head[up->received + i] = p[i];
	up->received += len;
	while (len > 0) {
		size_t take = STORE_CHUNK_SIZE - up->buf_len;
		if (take > len)
			take = len;
		memcpy(up->buf + up->buf_len, p, take);
		up->buf_len += take;
		p += take;
		len -= take;
		if (up->buf_len == STORE_CHUNK_SIZE) {
			r = upload_flush_chunk(up);
			if (r < 0) {
				up->failed = r;
				return r;
			}
		}
	}
	return 0;
}

static void upload_free(struct store_upload *up)
{
	struct store *st = up->st;
	st->upload_names[up->slot][0] = '\0';
	st->n_uploads--;
	EVP_MD_CTX_free(up->sha);
	free(up->buf);
	free(up->rowids);
	free(up->digests);
	free(up);
}

void store_upload_abort(struct store_upload *up)
{
	struct store *st;
	if (!up)
		return;
	st = up->st;
	/* Drop our references; chunks nobody else holds go.  Should this fail
	 * (disk full), the next start recounts and collects them. */
	if (up->n_chunks && db_begin(st->db) == 0) {
		int r = 0;
		for (size_t i = 0; i < up->n_chunks && r == 0; i++) {
			struct sql_stmt *s = q(st, Q_CHUNK_UNREF);
			sql_bind_int64(s, 1, up->rowids[i]);
			r = step_done(s);
			if (r == 0) {
				s = q(st, Q_CHUNK_DROP);
				sql_bind_int64(s, 1, up->rowids[i]);
				r = step_done(s);
			}
			if (r == 0) {
				s = q(st, Q_CHUNK_DATA_DROP);
				sql_bind_int64(s, 1, up->rowids[i]);
				r = step_done(s);
			}
		}
		if (r == 0)
			r = db_commit(st->db);
		if (r < 0)
			db_rollback(st->db);
	}
	upload_free(up);
}

static int store_sign_manifest(struct store *st, const struct store_image *img, uint8_t (*digests)[32],
			       size_t n, uint8_t **man, size_t *man_len, uint8_t **sig, size_t *sig_len)
{
	Skyroot__ImageManifest m = SKYROOT__IMAGE_MANIFEST__INIT;
	ProtobufCBinaryData *ds = calloc(n ? n : 1, sizeof(*ds));
	uint8_t *buf;
	int r;

	if (!ds)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ds[i].data = digests[i];
		ds[i].len = 32;
	}
	m.id = (char *)img->id;
	m.name = (char *)img->name;
	m.kind = (char *)img->kind;
	m.format = (char *)img->format;
	m.size = img->size;
	m.chunk_size = img->chunk_size;
	m.n_chunk_digests = n;
	m.chunk_digests = ds;
	m.sha256.data = (uint8_t *)img->sha256;
	m.sha256.len = 32;
	m.created = img->created;
	*man_len = skyroot__image_manifest__get_packed_size(&m);
	buf = malloc(*man_len ? *man_len : 1);
	if (!buf) {
		free(ds);
		return -ENOMEM;
	}
	skyroot__image_manifest__pack(&m, buf);
	free(ds);
	r = sky_ed25519_sign(st->signing_key, buf, *man_len, sig, sig_len);
	if (r < 0) {
		free(buf);
		return r;
	}
	*man = buf;
	return 0;
}

int store_upload_commit(struct store_upload *up, struct store_image *out)
{
	struct store *st = up->st;
	struct store_image img = {0};
	uint8_t *man = NULL, *sig = NULL;
	size_t man_len = 0, sig_len = 0;
	unsigned int dlen = 32;
	int r = up->failed;

	if (r == 0 && up->expected != UINT64_MAX && up->received != up->expected)
		r = -EPIPE; /* truncated */
	if (r == 0 && up->buf_len > 0)
		r = upload_flush_chunk(up);
	if (r < 0)
		goto fail;
	r = db_new_id("img-", 6, img.id, sizeof(img.id));
	if (r < 0)
		goto fail;
	snprintf(img.name, sizeof(img.name), "%s", up->name);
	snprintf(img.kind, sizeof(img.kind), "%s", up->kind);
	snprintf(img.format, sizeof(img.format), "%s",
		 up->received >= 4 && memcmp(up->head, "QFI\xfb", 4) == 0 ? "qcow2" : "raw");
	img.size = up->received;
	img.chunks = (uint32_t)up->n_chunks;
	img.chunk_size = STORE_CHUNK_SIZE;
	img.created = sky_unix_now();
	if (EVP_DigestFinal_ex(up->sha, img.sha256, &dlen) != 1) {
		r = -EIO;
		goto fail;
	}
	r = store_sign_manifest(st, &img, up->digests, up->n_chunks, &man, &man_len, &sig, &sig_len);
	if (r < 0)
		goto fail;

	/* One durable transaction makes the image visible, whole. */
	r = db_begin(st->db);
	if (r < 0)
		goto fail;
	struct sql_stmt *s = q(st, Q_IMAGE_INSERT);
	sql_bind_text(s, 1, img.id);
	sql_bind_text(s, 2, img.name);
	sql_bind_text(s, 3, img.kind);
	sql_bind_text(s, 4, img.format);
	sql_bind_int64(s, 5, (int64_t)img.size);
	sql_bind_blob(s, 6, img.sha256, 32);
	sql_bind_int64(s, 7, img.chunk_size);
	sql_bind_int64(s, 8, img.chunks);
	sql_bind_int64(s, 9, img.created);
	sql_bind_blob(s, 10, man, man_len);
	sql_bind_blob(s, 11, sig, sig_len);
	r = step_done(s);
	for (size_t i = 0; r == 0 && i < up->n_chunks; i++) {
		s = q(st, Q_IMAGE_CHUNK_INSERT);
		sql_bind_text(s, 1, img.id);
		sql_bind_int64(s, 2, (int64_t)i);
		sql_bind_int64(s, 3, up->rowids[i]);
		r = step_done(s);
	}
	if (r == 0)
		r = db_commit(st->db);
	if (r < 0) {
		db_rollback(st->db);
		goto fail;
	}
	free(man);
	free(sig);
	*out = img;
	upload_free(up);
	return 0;
fail:
	free(man);
	free(sig);
	store_upload_abort(up);
	return r;
}

/* ---- images ---- */

static void image_row(struct sql_stmt *s, struct store_image *img)
{
	const void *sha = sql_col_blob(s, 5);
	memset(img, 0, sizeof(*img));
	sql_copy_text(img->id, sizeof(img->id), s, 0);
	sql_copy_text(img->name, sizeof(img->name), s, 1);
	sql_copy_text(img->kind, sizeof(img->kind), s, 2);
	sql_copy_text(img->format, sizeof(img->format), s, 3);
	img->size = (uint64_t)sql_col_int64(s, 4);
	if (sha && sql_col_bytes(s, 5) == 32)
		memcpy(img->sha256, sha, 32);
	img->chunks = (uint32_t)sql_col_int64(s, 6);
	img->chunk_size = (uint32_t)sql_col_int64(s, 7);
	img->created = sql_col_int64(s, 8);
}

static int image_one(struct store *st, enum store_stmt id, const char *key, struct store_image *out)
{
	struct sql_stmt *s = q(st, id);
	int rc, r = -ENOENT;
	sql_bind_text(s, 1, key);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		image_row(s, out);
		r = 0;
	} else if (rc < 0) {
		r = rc;
	}
	sql_reset(s);
	return r;
}

int store_image_get(struct store *st, const char *id_or_name, struct store_image *out)
{
	int r = image_one(st, Q_IMAGE_BY_ID, id_or_name, out);
	if (r == -ENOENT)
		r = image_one(st, Q_IMAGE_BY_NAME, id_or_name, out);
	return r;
}

int store_image_list(struct store *st, store_image_cb cb, void *ctx)
{
	struct sql_stmt *s = q(st, Q_IMAGE_LIST);
	int rc, r = 0;
	while ((rc = sql_step(s)) == SQL_ROW) {
		struct store_image img;
		image_row(s, &img);
		r = cb(ctx, &img);
		if (r)
			break;
	}
	if (r == 0 && rc < 0)
		r = rc;
	sql_reset(s);
	return r;
}

int store_image_delete(struct store *st, const char *id)
{
	struct sql_stmt *s;
	int64_t *rows = NULL;
	size_t n = 0, cap = 0;
	int rc, r;

	r = db_begin(st->db);
	if (r < 0)
		return r;
	s = q(st, Q_IMAGE_CHUNK_IDS);
	sql_bind_text(s, 1, id);
	while ((rc = sql_step(s)) == SQL_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			int64_t *nr = realloc(rows, nc * sizeof(*nr));
			if (!nr) {
				rc = -ENOMEM;
				break;
			}
			rows = nr;
			cap = nc;
		}
		rows[n++] = sql_col_int64(s, 0);
	}
	sql_reset(s);
	r = rc < 0 ? rc : 0;
	if (r == 0) {
		s = q(st, Q_IMAGE_DELETE);
		sql_bind_text(s, 1, id);
		r = step_done(s);
		if (r == 0 && sql_changes(st->c) == 0)
			r = -ENOENT;
	}
	if (r == 0) {
		s = q(st, Q_IMAGE_CHUNKS_DELETE);
		sql_bind_text(s, 1, id);
		r = step_done(s);
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		s = q(st, Q_CHUNK_UNREF);
		sql_bind_int64(s, 1, rows[i]);
		r = step_done(s);
		if (r == 0) {
			s = q(st, Q_CHUNK_DROP);
			sql_bind_int64(s, 1, rows[i]);
			r = step_done(s);
		}
		if (r == 0) {
			s = q(st, Q_CHUNK_DATA_DROP);
			sql_bind_int64(s, 1, rows[i]);
			r = step_done(s);
		}
	}
	free(rows);
	if (r == 0)
		r = db_commit(st->db);
	if (r < 0)
		db_rollback(st->db);
	return r;
}

/* Malloc'd copies of image id's manifest and signature. */
static int image_manifest_blobs(struct store *st, const char *id, uint8_t **manifest, size_t *len, uint8_t **sig,
				size_t *sig_len)
{
	struct sql_stmt *s = q(st, Q_IMAGE_MANIFEST);
	int rc, r = -ENOENT;

	sql_bind_text(s, 1, id);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		size_t ml = sql_col_bytes(s, 0), sl = sql_col_bytes(s, 1);
		uint8_t *m = malloc(ml ? ml : 1), *g = malloc(sl ? sl : 1);
		if (!m || !g) {
			free(m);
			free(g);
			r = -ENOMEM;
		} else {
			if (ml)
				memcpy(m, sql_col_blob(s, 0), ml);
			if (sl)
				memcpy(g, sql_col_blob(s, 1), sl);
			*manifest = m;
			*len = ml;
			*sig = g;
			*sig_len = sl;
			r = 0;
		}
	} else if (rc < 0) {
		r = rc;
	}
	sql_reset(s);
	return r;
}

int store_image_manifest(struct store *st, const char *board_id, const char *id, uint8_t **manifest,
			 size_t *len, uint8_t **sig, size_t *sig_len)
{
	/* A board the measured-boot gate holds gets no image (fwgate.h). */
	int r = fwgate_board(st->db, board_id, NULL, NULL);

	if (r == 1)
		return -EPERM;
	if (r < 0 && r != -ENOENT)
		return r;
	r = db_board_image_grant(st->db, board_id, id, sky_unix_now());
	if (r < 0)
		return r;
	return image_manifest_blobs(st, id, manifest, len, sig, sig_len);
}

/* Check one image's manifest and signature against its row and chunks. */
static int image_manifest_check(struct store *st, const struct store_image *img, const uint8_t *man, size_t man_len,
				const uint8_t *sig, size_t sig_len, char *why, size_t whylen)
{
	Skyroot__ImageManifest *m;
	uint8_t pub[32], digest[32];
	size_t pub_len = sizeof(pub);
	int64_t rowid;
	uint32_t size;
	int r = sky_key_raw_public(st->signing_key, pub, &pub_len);

	if (r < 0)
		return r;
	if (sky_ed25519_verify(pub, man, man_len, sig, sig_len) < 0) {
		snprintf(why, whylen, "its manifest's signature does not verify against the image-signing key");
		return -EBADMSG;
	}
	m = skyroot__image_manifest__unpack(NULL, man_len, man);
	if (!m) {
		snprintf(why, whylen, "its signed manifest does not parse");
		return -EBADMSG;
	}
	r = -EBADMSG;
	if (!m->id || strcmp(m->id, img->id) != 0 || !m->name || strcmp(m->name, img->name) != 0 ||
	    m->size != img->size || m->n_chunk_digests != img->chunks || m->sha256.len != 32 ||
	    memcmp(m->sha256.data, img->sha256, 32) != 0) {
		snprintf(why, whylen, "its signed manifest does not describe the stored image (id, name, size, "
			 "SHA-256 or chunk count differ)");
		goto out;
	}
	for (uint32_t i = 0; i < img->chunks; i++) {
		int c = store_image_chunk(st, img->id, i, &rowid, digest, &size);
		if (c < 0 || m->chunk_digests[i].len != 32 || memcmp(m->chunk_digests[i].data, digest, 32) != 0) {
			snprintf(why, whylen, "chunk %u is not the one its signed manifest names", i);
			r = c < 0 && c != -ENOENT ? c : -EBADMSG;
			goto out;
		}
	}
	r = 0;
out:
	skyroot__image_manifest__free_unpacked(m, NULL);
	return r;
}

int store_image_check_manifest(struct store *st, const char *id, char *why, size_t whylen)
{
	struct store_image img;
	uint8_t *man = NULL, *sig = NULL;
	size_t man_len = 0, sig_len = 0;
	int r = image_one(st, Q_IMAGE_BY_ID, id, &img);

	if (r == 0)
		r = image_manifest_blobs(st, id, &man, &man_len, &sig, &sig_len);
	if (r < 0)
		return r;
	r = image_manifest_check(st, &img, man, man_len, sig, sig_len, why, whylen);
	free(man);
	free(sig);
	return r;
}

int store_image_chunk(struct store *st, const char *id, uint32_t index, int64_t *rowid, uint8_t digest[32],
		      uint32_t *size)
{
	struct sql_stmt *s = q(st, Q_IMAGE_CHUNK);
	int rc, r = -ENOENT;
	sql_bind_text(s, 1, id);
	sql_bind_int64(s, 2, index);
	rc = sql_step(s);
	if (rc == SQL_ROW && sql_col_bytes(s, 1) == 32) {
		*rowid = sql_col_int64(s, 0);
		memcpy(digest, sql_col_blob(s, 1), 32);
		*size = (uint32_t)sql_col_int64(s, 2);
		r = 0;
	} else if (rc < 0) {
		r = rc;
	}
	sql_reset(s);
	return r;
}

/* Asked on every chunk request: a prepared statement (store_check.c has
 * the rest of the quarantine). */
int store_chunk_quarantined(struct store *st, int64_t rowid)
{
	struct sql_stmt *s = q(st, Q_CHUNK_QUARANTINED);
	int rc, r = 0;

	sql_bind_int64(s, 1, rowid);
	rc = sql_step(s);
	if (rc == SQL_ROW)
		r = sql_col_int64(s, 0) != 0 ? 1 : 0;
	else if (rc < 0)
		r = rc;
	sql_reset(s);
	return r;
}

/* ---- worker threads ---- */

/* Each worker thread keeps its own read-only connection (SQLite in WAL
 * mode: readers do not block the writer, and see only committed data; the
 * engine gives a reader a small page cache, as chunks stream through once). */
static _Thread_local struct sql *reader;
static _Thread_local char reader_path[PATH_MAX];

static int reader_get(const char *db_path, struct sql **out)
{
	if (reader && strcmp(reader_path, db_path) != 0) {
		sql_close(reader);
		reader = NULL;
	}
	if (!reader) {
		if (strlen(db_path) >= sizeof(reader_path))
			return -ENAMETOOLONG;
		int r = sql_open(db_path, SQL_OPEN_READONLY, &reader);
		if (r < 0) {
			reader = NULL;
			return r;
		}
		snprintf(reader_path, sizeof(reader_path), "%s", db_path);
	}
	*out = reader;
	return 0;
}

void store_reader_close(void)
{
	sql_close(reader);
	reader = NULL;
	reader_path[0] = '\0';
}

int store_chunk_load(const char *db_path, int64_t rowid, uint8_t *buf, uint32_t size)
{
	struct sql *c;
	int r = reader_get(db_path, &c);

	return r < 0 ? r : store_chunk_load_h(c, rowid, buf, size);
}

int store_chunk_read(const char *db_path, int64_t rowid, const uint8_t digest[32], uint8_t *buf, uint32_t size)
{
	struct sql *c;
	int r = reader_get(db_path, &c);

	return r < 0 ? r : store_chunk_read_h(c, rowid, digest, buf, size);
}

int store_verify(const char *db_path, const char *image_id, uint32_t *chunks, store_bad_cb cb, void *ctx)
{
	struct sql *c;
	struct sql_stmt *s = NULL;
	uint8_t *buf = malloc(STORE_CHUNK_SIZE);
	int rc, r, bad = 0;
	uint32_t n = 0;

	if (!buf)
		return -ENOMEM;
	r = reader_get(db_path, &c);
	if (r == 0)
		r = sql_prepare(c,
				"SELECT ic.idx, c.id, c.digest, c.size FROM image_chunks ic "
				"JOIN chunks c ON c.id = ic.chunk_id WHERE ic.image_id = ? ORDER BY ic.idx",
				&s);
	if (r < 0)
		goto out;
	sql_bind_text(s, 1, image_id);
	while ((rc = sql_step(s)) == SQL_ROW) {
		uint32_t idx = (uint32_t)sql_col_int64(s, 0);
		uint8_t digest[32] = {0};
		uint32_t size = (uint32_t)sql_col_int64(s, 3);
		if (sql_col_bytes(s, 2) == 32)
			memcpy(digest, sql_col_blob(s, 2), 32);
		n++;
		if (size > STORE_CHUNK_SIZE ||
		    store_chunk_read_h(c, sql_col_int64(s, 1), digest, buf, size) < 0) {
			bad++;
			cb(ctx, idx, digest);
		}
	}
	r = rc < 0 ? rc : bad;
	if (r >= 0)
		*chunks = n;
out:
	sql_finalize(s);
	free(buf);
	return r;
}
