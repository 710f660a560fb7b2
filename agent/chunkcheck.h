/* A chunk received whole, checked and written off the loop.
 *
 * The image cache (images.c) copies each arriving chunk into one of these
 * buffers as it is decrypted, then hands it to a worker thread, which
 * hashes it, compares the digest with the signed manifest's and, only when
 * they match, writes it once into its place in the image's memfd.  So the
 * hash of chunk N runs while chunk N+1 is received, and the memfd only
 * ever holds checked bytes.  The worker gets its own duplicate of the
 * memfd: whatever happens to the image meanwhile (it fails, is dropped or
 * fetched again), the descriptor it writes through is never another file's.
 *
 * chunkcheck_run() is the worker's whole part and touches nothing but the
 * struct; everything else is the owner's, on its loop.  Buffers are kept
 * for reuse on a small spare list (fresh memory for every chunk would be
 * page faults for every chunk). */
#ifndef SKY_AGENT_CHUNKCHECK_H
#define SKY_AGENT_CHUNKCHECK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CHUNKCHECK_ID_MAX 32

struct chunkcheck {
	struct chunkcheck *next;       /* on the spare list */
	uint8_t *buf;
	size_t cap;
	uint32_t len;                  /* the chunk's length */
	uint32_t got;                  /* bytes received so far */
	/* what the worker needs */
	int fd;                        /* a duplicate of the image's memfd, or -1 */
	off_t off;
	uint8_t digest[32];            /* from the signed manifest */
	int result;                    /* 0, -EBADMSG (digest), or -errno of the write */
	/* what the owner needs to find its image again afterwards */
	void *owner;
	char id[CHUNKCHECK_ID_MAX];
	uint64_t serial;
	uint32_t index;
};

struct chunkcheck_spares {
	struct chunkcheck *head;
	unsigned n;
};

/* A buffer for a chunk of len bytes: a spare one, or a new one.  NULL
 * when out of memory. */
struct chunkcheck *chunkcheck_get(struct chunkcheck_spares *sp, uint32_t len);
/* Back to the spares (at most keep of them are kept; the rest is freed).
 * Closes its descriptor if it still has one. */
void chunkcheck_put(struct chunkcheck_spares *sp, struct chunkcheck *ck, unsigned keep);
/* Free every spare. */
void chunkcheck_drop_spares(struct chunkcheck_spares *sp);
/* Append len bytes received; false when they would run past the chunk. */
bool chunkcheck_take(struct chunkcheck *ck, const uint8_t *p, size_t len);
/* On any thread: hash, compare, and write when they match (ck->result). */
void chunkcheck_run(void *ck);
/* pwrite all of it (EINTR retried); 0 or -errno. */
int chunkcheck_pwrite_all(int fd, const uint8_t *p, size_t len, off_t off);

#endif
