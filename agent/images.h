/* The board's image cache: images in sealed memfds, in RAM only.
 *
 * The controller sends a signed manifest; the cache checks the signature
 * against the key received at enrollment, pulls the chunks it does not
 * already hold with a bounded window, and takes each chunk as it arrives
 * into a buffer; a worker thread (ops.work) hashes the whole chunk once,
 * checks it against its digest in the signed manifest, and only then
 * writes it into its place in the image's memfd (chunkcheck.h): hashing
 * overlaps receiving, one SHA-256 pass and one write over each byte.
 * The window counts chunks being checked as well as chunks asked for, so
 * a board that hashes slower than it receives asks for less.  Once every
 * chunk is in, it seals the memfd (no write, grow or shrink); the
 * whole-image SHA-256 follows from the signed ordered chunk digests and is
 * not computed again.  A chunk that
 * fails its check fails the image.  A cut transfer resumes with the
 * missing chunks only.  Least-recently-used images no guest uses are
 * evicted to stay within the budget. */
#ifndef SKY_AGENT_IMAGES_H
#define SKY_AGENT_IMAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "skyroot.pb-c.h"

#define IMGCACHE_WINDOW 8
#define IMGCACHE_MAX_IMAGES 256
#define IMGCACHE_MAX_CHUNK (4u << 20)

struct imgcache;

struct imgcache_ops {
	/* Send env to the controller; *req_id gets the request id used.
	 * Returns 0 or a negative errno (-ENOTCONN without a session). */
	int (*send)(void *ctx, Skyroot__Envelope *env, uint64_t *req_id);
	/* Run work(arg) on another thread, then done(arg) back on the
	 * caller's loop; 0, or a negative errno and neither is called.
	 * Optional: without it (or when it fails) both run at once, inline.
	 * Each chunk's check and write go through it (chunkcheck.h). */
	int (*work)(void *ctx, void (*work)(void *arg), void (*done)(void *arg), void *arg);
};

int imgcache_new(const struct imgcache_ops *ops, void *ctx, uint64_t budget, struct imgcache **out);
void imgcache_free(struct imgcache *c);
/* The image-signing public key from enrollment. */
void imgcache_set_signing_key(struct imgcache *c, const uint8_t pub[32]);

void imgcache_on_fetch(struct imgcache *c, const Skyroot__ImageFetch *f);
/* Returns true when the frame answered one of our chunk requests. */
bool imgcache_on_chunk(struct imgcache *c, uint64_t req_id, const Skyroot__ChunkData *d);
/* The same for a chunk in the frame's tail form (common/frame.h), as it
 * arrives: begin with its header (d's data empty) and its length, then
 * data for each piece in order, then end.  begin returns what
 * imgcache_on_chunk does; the pieces of an unwanted chunk are dropped.
 * imgcache_on_chunk is these three over d's data. */
bool imgcache_chunk_begin(struct imgcache *c, uint64_t req_id, const Skyroot__ChunkData *d, size_t len);
void imgcache_chunk_data(struct imgcache *c, const uint8_t *p, size_t len);
void imgcache_chunk_end(struct imgcache *c);
bool imgcache_on_error(struct imgcache *c, uint64_t req_id, const Skyroot__Error *e);
void imgcache_session_up(struct imgcache *c);
void imgcache_session_down(struct imgcache *c);
/* Send an ImageStatus now (on session up, and after changes). */
void imgcache_report(struct imgcache *c);
/* Time for a progress report (called about twice a second). */
void imgcache_tick(struct imgcache *c);

/* A READY image's sealed memfd (borrowed), or -ENOENT / -EAGAIN (still
 * fetching).  A held image is not evicted. */
int imgcache_fd(struct imgcache *c, const char *image_id, uint64_t *size);
void imgcache_hold(struct imgcache *c, const char *image_id, bool hold);
/* The format its signed manifest names ("raw", "qcow2"), "" when unknown. */
const char *imgcache_format(struct imgcache *c, const char *image_id);
uint64_t imgcache_used(const struct imgcache *c);
/* Chunk requests sent and not yet answered (at most IMGCACHE_WINDOW). */
unsigned imgcache_outstanding(const struct imgcache *c);
/* A fetch is under way (or a report is due): keep ticking. */
bool imgcache_active(const struct imgcache *c);
/* Why an image is not usable, in words. */
const char *imgcache_error(struct imgcache *c, const char *image_id);

#endif
