/* fuzz_imgcache's own header (private to tests/fuzz/fuzz_imgcache*.c): the
 * model's types and the world one input runs in, shared by
 *   fuzz_imgcache_model.c    the model of what the cache must do, the
 *                            controller's side of the link, and the checks
 *                            comparing the cache with the model;
 *   fuzz_imgcache_hostile.c  the hostile controller: the manifest as the
 *                            input spoils it, and its answers to requests;
 *   fuzz_imgcache.c          the driver: the script's steps and
 *                            LLVMFuzzerTestOneInput.
 * What the target checks is described in fuzz_imgcache.c. */
#ifndef SKY_TESTS_FUZZ_IMGCACHE_H
#define SKY_TESTS_FUZZ_IMGCACHE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/images.h"

#define IMAGE_MAX (64u * 1024u)
#define CHUNKS_MAX 128u  /* chunks of the honest manifest (the image is cut to fit) */
#define QUEUE_MAX 64
#define STEPS_MAX 256
#define REFETCH_MAX 3   /* manifests sent again per input (each costs a verify) */
#define ID_OK "img-fuzz"
#define ID_TWIN "img-twin"

/* How the manifest is spoiled: the header's first byte, low four bits. */
enum mmode {
	M_HONEST,
	M_SIG_FLIP,      /* one signature byte flipped */
	M_SIG_OTHER,     /* signed by another key */
	M_SIG_STALE,     /* the manifest changed after it was signed */
	M_DG_SWAP,       /* two chunk digests swapped */
	M_DG_SHORT,      /* one chunk digest 31 bytes */
	M_DG_EXTRA,      /* one chunk digest too many */
	M_DG_MISSING,    /* one chunk digest too few */
	M_DG_DUP,        /* one chunk's digest repeated for the next */
	M_DG_WRONG,      /* one chunk digest with a bit flipped */
	M_SIZE,          /* the total size wrong */
	M_CHUNK_ZERO,    /* chunk size 0 */
	M_CHUNK_HUGE,    /* chunk size over (or at) IMGCACHE_MAX_CHUNK */
	M_CHUNK_WRONG,   /* another chunk size than the digests were made with */
	M_WHOLE,         /* the whole image's SHA-256 wrong or short */
	M_ID,            /* the id empty, too long, or at its longest */
};

/* How a chunk request is answered. */
enum amode { A_HONEST, A_SHORT, A_LONG, A_FLIP, A_OTHER_CHUNK, A_EMPTY, A_WRONG_INDEX, A_OTHER_IMAGE, A_ERROR };

/* How the answer arrives: whole (imgcache_on_chunk), in the tail form's
 * pieces (begin with the length, data, end), or cut off by a link drop. */
enum delivery { D_WHOLE, D_PIECES, D_CUT };

/* What the cache must show for the image. */
enum mstate { S_NONE, S_FETCHING, S_READY, S_FAILED };

/* The cache's refusals, as imgcache_error words them. */
#define WHY_SIG "signature does not verify"
#define WHY_LEN "arrived with"
#define WHY_DIGEST "failed its SHA-256 check"
#define WHY_FULL "the image cache is full"
#define WHY_ERROR "could not send chunk"
#define WHY_NONE "the board was never sent its manifest"

struct manifest {
	char id[48];
	uint64_t size;
	uint32_t chunk;
	size_t n;
	uint8_t dg[CHUNKS_MAX + 1][32];
	size_t dlen[CHUNKS_MAX + 1];
	uint8_t sha[32];
	size_t shalen;
	uint8_t *packed;
	size_t packed_len;
	uint8_t *sig;
	size_t sig_len;
	bool sig_ok;                   /* signed, unchanged, by the board's key */
	bool servable;                 /* signed and its chunks the served image's */
	bool rules_ok;                 /* keeps the manifest rules (rules()) */
};

/* The model of one image in the cache. */
struct mimg {
	struct manifest m;
	enum mstate st;
	const char *why;               /* S_FAILED: words imgcache_error must hold */
	uint8_t have[CHUNKS_MAX + 1];
	size_t n_have;
	uint8_t *bytes;                /* the accepted chunks, where they go */
	bool content_checked;
	unsigned holds;
};

struct req {
	uint64_t id;
	struct mimg *img;
	uint32_t index;
	bool live;                     /* the cache still waits for it */
};

/* Everything one input sets up: the served image, the cache, the model of
 * its two images, the link (fuzz_imgcache_model.c holds it). */
struct world {
	const uint8_t *img;            /* the image the controller serves */
	size_t img_size;
	uint64_t budget;
	struct imgcache *c;
	struct mimg im[2];             /* the image as the header spoils it; the twin */
	/* the link */
	struct req q[QUEUE_MAX];
	unsigned nq;
	uint64_t next_id;
	bool session, refuse_sends;
	unsigned step, refetches;
	/* A chunk that fails its digest must be reported, once (ChunkCorrupt). */
	const struct mimg *rep_img;
	uint32_t rep_index;
	unsigned rep_got;
};

extern struct world icw;

static inline size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- fuzz_imgcache_model.c ---- */

/* SHA-256 of p. */
void ic_sha256(const void *p, size_t len, uint8_t out[32]);
/* The cache did what the model says it must not: say what, and abort so
 * that libFuzzer keeps the input. */
_Noreturn void ic_broken(const char *rule);
/* Set m->rules_ok: whether m keeps the manifest rules. */
void ic_rules(struct manifest *m);
/* Length chunk i must have by x's manifest. */
size_t ic_want_len(const struct mimg *x, uint32_t i);
/* The model: x refused for why; x complete if every chunk is in; x's
 * manifest arrives (again). */
void ic_fail_as(struct mimg *x, const char *why);
void ic_complete_if_done(struct mimg *x);
void ic_model_fetch(struct mimg *x);
/* The controller's queue of the cache's chunk requests. */
void ic_q_add(uint64_t id, struct mimg *x, uint32_t index);
unsigned ic_n_live(void);
/* The link drops (the cache and the model told) or comes up. */
void ic_link_down(void);
void ic_link_up(void);
/* The cache compared with the model; content: read each ready image whole
 * again. */
void ic_check_state(bool content);
/* The cache's ops: every frame it sends is checked (h_send). */
extern const struct imgcache_ops ic_ops;

/* ---- fuzz_imgcache_hostile.c ---- */

/* Make the fixed signing keys (once); returns the board's public key. */
const uint8_t *ic_keys_init(void);
/* The honest manifest of the served image, signed. */
void ic_make_honest(struct manifest *m, const char *id, uint32_t chunk);
/* The image's manifest: the honest one (the twin's, made first) spoiled as
 * flags say. */
void ic_make_manifest(uint32_t chunk, uint8_t flags);
/* Answer queued request k (live or not) the way mode says, delivered as how
 * says. */
void ic_answer(unsigned k, enum amode mode, enum delivery how);

#endif
