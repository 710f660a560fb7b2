/* The image store: images as content-addressed chunks (SHA-256) in the
 * store (db.h, either engine of sql.h), with a manifest signed by the
 * controller's Ed25519 image-signing key.
 * An image is visible only once every chunk is stored and its manifest is
 * committed (durably).  Loop-thread functions use the one writer
 * connection; store_chunk_load(), store_chunk_read() and store_verify() run
 * in worker threads with their own read-only connections. */
#ifndef SKY_CONTROLLER_STORE_H
#define SKY_CONTROLLER_STORE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/skyrootd/db.h"

#define STORE_CHUNK_SIZE (1u << 20)
#define STORE_NAME_MAX 64
#define STORE_MAX_UPLOADS 8
#define STORE_DEFAULT_IMAGE_MAX (64ull << 30)
/* Free space kept back for the store itself (WAL, indexes). */
#define STORE_SPACE_MARGIN (16ull << 20)

struct store;
struct store_upload;

struct store_image {
	char id[DB_ID_MAX];
	char name[STORE_NAME_MAX];
	char kind[8];                 /* kernel | initrd | disk */
	char format[8];               /* raw | qcow2 */
	uint64_t size;
	uint8_t sha256[32];
	uint32_t chunks;
	uint32_t chunk_size;
	int64_t created;
};

int store_open(struct db *db, const char *db_path, const char *state_dir, EVP_PKEY *signing_key,
	       uint64_t image_max, struct store **out);
void store_close(struct store *st);
uint64_t store_image_max(const struct store *st);

/* Upload.  begin: -EINVAL (bad name or kind), -EEXIST (name taken),
 * -EFBIG (over image_max), -ENOSPC (not enough free space), -EBUSY (too
 * many uploads at once).  write: -EFBIG, -ENOSPC, -EIO.  commit makes the
 * image visible and durable, then frees the upload; abort undoes it. */
int store_upload_begin(struct store *st, const char *name, const char *kind, uint64_t expected_size,
		       struct store_upload **out);
int store_upload_write(struct store_upload *up, const void *data, size_t len);
int store_upload_commit(struct store_upload *up, struct store_image *out);
void store_upload_abort(struct store_upload *up);
uint64_t store_upload_received(const struct store_upload *up);
/* Free bytes of the state folder's file system. */
uint64_t store_free_space(const struct store *st);

int store_image_get(struct store *st, const char *id_or_name, struct store_image *out);
typedef int (*store_image_cb)(void *ctx, const struct store_image *img);
int store_image_list(struct store *st, store_image_cb cb, void *ctx);
int store_image_delete(struct store *st, const char *id);
/* The signed manifest (malloc'd copies), for an order to board_id (an
 * image fetch, a guest, a bare-metal boot): records that the board may be
 * served the image's chunks (al_chunks.c checks it). */
int store_image_manifest(struct store *st, const char *board_id, const char *id, uint8_t **manifest,
			 size_t *len, uint8_t **sig, size_t *sig_len);
/* The image's signed manifest checked against the store: its signature by
 * the store's signing key, and that it describes the image's row and its
 * chunks (id, name, size, SHA-256, chunk digests in order).  0, -EBADMSG
 * when anything differs (why: a sentence), -ENOENT, -ENOMEM, -EIO. */
int store_image_check_manifest(struct store *st, const char *id, char *why, size_t whylen);
/* Where chunk `index` of image `id` lives: -ENOENT when out of range. */
int store_image_chunk(struct store *st, const char *id, uint32_t index, int64_t *rowid,
		      uint8_t digest[32], uint32_t *size);

/* Worker threads: read chunk `rowid` (the engine's blob read; SQLite:
 * incremental blob I/O straight into buf) without hashing it: the path that serves boards, which check every
 * chunk against the signed manifest themselves.  0, -EBADMSG (the stored
 * blob is not `size` bytes), -ENOENT, -EIO. */
int store_chunk_load(const char *db_path, int64_t rowid, uint8_t *buf, uint32_t size);
/* The same, then check it hashes to digest (image verify, the scrub, a
 * board's report): 0, -EBADMSG (corrupt), -ENOENT, -EIO. */
int store_chunk_read(const char *db_path, int64_t rowid, const uint8_t digest[32], uint8_t *buf,
		     uint32_t size);
/* The same two on a connection the caller holds (the scrub's). */
struct sql;
int store_chunk_load_h(struct sql *c, int64_t rowid, uint8_t *buf, uint32_t size);
int store_chunk_read_h(struct sql *c, int64_t rowid, const uint8_t digest[32], uint8_t *buf, uint32_t size);

/* Worker threads: re-hash every chunk of an image; bad_cb is called for
 * each corrupt one.  Returns the number of bad chunks, or a negative errno. */
typedef void (*store_bad_cb)(void *ctx, uint32_t index, const uint8_t digest[32]);
int store_verify(const char *db_path, const char *image_id, uint32_t *chunks, store_bad_cb cb, void *ctx);
/* Every image of the store, each against its chunks (re-hashed, as
 * store_verify) and its signed manifest: a restore or a migrate keeps no
 * damaged store (store_verify.c).  bad_chunk (may be NULL) for each corrupt
 * chunk; verdict for each image.  0 all good; -EBADMSG an image is bad;
 * another negative errno: the images could not be listed, or one could not
 * be verified (its verdict has err set, and it is the last). */
struct store_verdict {
	const struct store_image *img;
	int err;                      /* < 0: not verified */
	int bad_chunks;
	uint32_t chunks;              /* read */
	const char *why;              /* the manifest's fault; "" none */
	bool ok;                      /* every chunk read and good, the manifest good */
};
struct store_verify_ops {
	void (*bad_chunk)(void *ctx, const struct store_image *img, uint32_t index, const uint8_t digest[32]);
	void (*verdict)(void *ctx, const struct store_verdict *v);
};
int store_verify_all(struct store *st, const char *db_path, const struct store_verify_ops *ops, void *ctx);
/* Close the calling thread's read-only connection of store_chunk_read()
 * and store_verify() (before the database file moves; a restore). */
void store_reader_close(void);

/* ---- integrity at rest (store_check.c) ----
 * A chunk found corrupt in the store is quarantined: never served again
 * (al_chunks.c asks store_chunk_quarantined), the images that use it are
 * shown as damaged, and an upload of the same bytes heals it (the upload
 * rewrites the row and lifts the quarantine).  Loop thread (the writer
 * connection of db, the store's) unless said. */

/* Quarantine chunk row `rowid` if it still holds the chunk with this
 * digest: 1 newly quarantined, 0 already quarantined or gone, or a
 * negative errno.  why: a sentence, kept with the row. */
int store_chunk_quarantine(struct db *db, int64_t rowid, const uint8_t digest[32], const char *why);
/* 1 when row `rowid` is quarantined, 0 when not (or gone), or -errno. */
int store_chunk_quarantined(struct store *st, int64_t rowid);
/* An image's quarantined chunks: how many, the first `max` indexes into
 * idx (may be NULL), and the first one's reason into why. */
int store_image_damage(struct db *db, const char *image_id, uint32_t *count, uint32_t *idx, size_t max,
		       char *why, size_t whylen);
/* The images that use chunk row `rowid`, for a log line: "img-a chunk 3,
 * img-b chunk 0" (the first few, "..." after them), "" for none. */
int store_chunk_users(struct db *db, int64_t rowid, char *out, size_t len);
/* Inside the caller's transaction on the writer connection c: the bytes
 * of a chunk being uploaded again (they hash to the row's digest) replace
 * a quarantined row's and lift its quarantine.  1 healed, 0 the row was
 * not quarantined, or a negative errno. */
int store_chunk_heal(struct sql *c, int64_t rowid, const uint8_t *data, size_t len);
/* Where the scrub stopped (0: at the start), kept across restarts. */
int store_scrub_cursor_get(struct db *db, int64_t *cursor);
int store_scrub_cursor_set(struct db *db, int64_t cursor);

/* Worker threads, with their own read-only connection: does row `rowid`
 * hold `size` bytes hashing to digest?  0 yes, -EBADMSG no (corrupt),
 * -ENOENT no such row, -EIO.  buf holds STORE_CHUNK_SIZE bytes. */
int store_chunk_check(const char *db_path, int64_t rowid, const uint8_t digest[32], uint32_t size, uint8_t *buf);

#define STORE_SCRUB_BAD_MAX 16
struct store_scrub_batch {
	int64_t after;                /* in: scrub rows with id > after */
	uint64_t want;                /* in: stop once this many bytes were read */
	int64_t last;                 /* out: the last row scrubbed (the next cursor) */
	uint64_t bytes;               /* out: bytes read and hashed */
	uint32_t chunks;              /* out: rows checked */
	bool end;                     /* out: no rows after last: the pass is over */
	uint32_t n_bad;               /* out: corrupt rows found (the first STORE_SCRUB_BAD_MAX) */
	int64_t bad_row[STORE_SCRUB_BAD_MAX];
	uint8_t bad_digest[STORE_SCRUB_BAD_MAX][32];
};
/* Worker threads: re-hash the next rows of the store that are not
 * quarantined, in row order, about b->want bytes.  0 or a negative errno. */
int store_scrub_batch(const char *db_path, struct store_scrub_batch *b, uint8_t *buf);

#endif
