/* The image store: images as content-addressed chunks (SHA-256) in SQLite,
 * with a manifest signed by the controller's Ed25519 image-signing key.
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

/* Worker threads: read chunk `rowid` (incremental blob I/O, straight into
 * buf) without hashing it: the path that serves boards, which check every
 * chunk against the signed manifest themselves.  0, -EBADMSG (the stored
 * blob is not `size` bytes), -ENOENT, -EIO. */
int store_chunk_load(const char *db_path, int64_t rowid, uint8_t *buf, uint32_t size);
/* The same, then check it hashes to digest (image verify, the scrub, a
 * board's report): 0, -EBADMSG (corrupt), -ENOENT, -EIO. */
int store_chunk_read(const char *db_path, int64_t rowid, const uint8_t digest[32], uint8_t *buf,
		     uint32_t size);

/* Worker threads: re-hash every chunk of an image; bad_cb is called for
 * each corrupt one.  Returns the number of bad chunks, or a negative errno. */
typedef void (*store_bad_cb)(void *ctx, uint32_t index, const uint8_t digest[32]);
int store_verify(const char *db_path, const char *image_id, uint32_t *chunks, store_bad_cb cb, void *ctx);
/* Close the calling thread's read-only connection of store_chunk_read()
 * and store_verify() (before the database file moves; a restore). */
void store_reader_close(void);

#endif
