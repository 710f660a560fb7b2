/* libFuzzer target: the board's image cache (agent/images.c) against a
 * hostile controller, with a model of what the cache must do.
 *
 * The input is a header, an image and a script.  The header spoils the
 * image's signed manifest (or not): a flipped signature byte, another
 * signing key, changed after signing; chunk digests swapped, short, extra,
 * missing, duplicated or wrong; a wrong size; a zero, huge or wrong chunk
 * size; a wrong or short whole-image SHA-256; an unusable id; and sets the
 * RAM budget.  The script answers the cache's chunk requests (right, short,
 * long, flipped, another chunk's bytes, empty, wrong index or image, an
 * error), whole or in the frame's tail form (header and length, the bytes
 * in pieces, end) or cut off mid-way by the link dropping; in any order,
 * twice, late; drops and restores the link, sends the manifest again, holds
 * the image, asks for reports.  The twin is the same bytes under another id
 * with an honest manifest: it takes the chunks the board holds from the
 * first image, and needs room: an unheld ready image is evicted for it, a
 * held one never, none for nothing.
 *
 * The model (the harness's own account, from the manifest's rules alone) is
 * compared with the cache after every step and in the middle of a chunk
 * arriving in pieces: each image's state (imgcache_fd), the reason for a
 * refusal, the RAM accounted, the requests outstanding; and all the cache
 * sends: no request for a refused image or twice at once, no report of an
 * image ready that is not, no chunk counted before its end.  A chunk of the
 * wrong length is refused at its header, a wrong one at its end; a cut-off
 * one is not held and is asked for again.  A ready image is sealed and
 * holds exactly the accepted chunks, each hashing to its signed digest; a
 * signed manifest of the served chunks, served honestly, ends ready with
 * exactly the served bytes.  Any difference aborts, naming the rule.
 *
 * The whole-image SHA-256 is no longer hashed by the board: the signature
 * covers the ordered chunk digests and the size, so the whole follows
 * (agent/images.c finish(), README).  The agent only requires it to be 32
 * bytes (manifest_check) and echoes it in its status report; otherwise it is
 * unused.  So a signed manifest with a wrong one and right chunk digests
 * gives a ready image, reported with the manifest's digest: the model
 * demands exactly that.
 *
 * Checked by mutation of agent/images.c (each alone, tests/fuzz/run.sh 20 s,
 * twice): without the signature check, the chunk-digest check, the
 * chunk-length check, the cut-off chunk's re-request, the piece offset's
 * advance or F_SEAL_WRITE, it fails within 0.5 s on the seed corpus, and
 * fuzz_replay_imgcache on the committed corpus fails too.  From the "honest"
 * seed alone: the digest and length checks within 0.2 to 5.2 s, the
 * signature check within 0.4 to 8.2 s in three runs of four (not within
 * 20 s in one; 2 shared cores at a load average of about 10). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/images.h"
#include "common/log.h"
#include "common/x509.h"

#define IMAGE_MAX (64u * 1024u)
#define CHUNKS_MAX 128u  /* chunks of the honest manifest (the image is cut to fit) */
#define QUEUE_MAX 64
#define STEPS_MAX 256
#define REFETCH_MAX 3   /* manifests sent again per input (each costs a verify) */
#define ID_OK "img-fuzz"
#define ID_TWIN "img-twin"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

static struct world {
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
} w;

static EVP_PKEY *key, *other_key;
static uint8_t pub[32];

static EVP_PKEY *fixed_key(uint8_t fill)
{
	uint8_t seed[32];
	memset(seed, fill, sizeof(seed));
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	if (!k)
		abort();
	return k;
}

static void init_once(void)
{
	size_t n = sizeof(pub);
	if (key)
		return;
	sky_log_set_level(SKY_LOG_NONE);
	/* Fixed keys: a crash replays exactly. */
	key = fixed_key(0x11);
	other_key = fixed_key(0x22);
	if (sky_key_raw_public(key, pub, &n) < 0 || n != 32)
		abort();
}

/* SHA-256 with the digest fetched once (a fetch per call, as sky_sha256()
 * does, is much of the cost of hashing small chunks). */
static void sha256(const void *p, size_t len, uint8_t out[32])
{
	static EVP_MD *md;
	unsigned int n = 32;
	if (!md && !(md = EVP_MD_fetch(NULL, "SHA256", NULL)))
		abort();
	if (EVP_Digest(p, len, out, &n, md, NULL) != 1 || n != 32)
		abort();
}

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

static const char *state_name(enum mstate s)
{
	return s == S_NONE ? "none" : s == S_FETCHING ? "fetching" : s == S_READY ? "ready" : "failed";
}

/* The cache did what the model says it must not: say what, and crash so
 * that libFuzzer keeps the input. */
static _Noreturn void broken(const char *rule)
{
	const struct mimg *x = &w.im[0], *t = &w.im[1];
	fprintf(stderr, "fuzz_imgcache: the cache broke a rule: %s (model: manifest sig %s, rules %s; image %s%s%s, "
			"%zu of %zu chunks; twin %s, %zu chunks; step %u)\n",
		rule, x->m.sig_ok ? "good" : "bad", x->m.rules_ok ? "kept" : "broken", state_name(x->st),
		x->st == S_FAILED ? ": " : "", x->st == S_FAILED ? x->why : "", x->n_have, x->m.n, state_name(t->st),
		t->n_have, w.step);
	abort();
}

/* ---- the model: what the manifest's rules say ---- */

/* The rules a signed manifest must also keep: a usable id (1 to 31
 * characters), a chunk size of 1 to IMGCACHE_MAX_CHUNK, one 32-byte digest
 * per chunk of the size, a 32-byte SHA-256 of the whole. */
static void rules(struct manifest *m)
{
	m->rules_ok = false;
	if (!m->id[0] || strlen(m->id) >= 32 || m->chunk == 0 || m->chunk > IMGCACHE_MAX_CHUNK)
		return;
	if (m->size / m->chunk + (m->size % m->chunk ? 1 : 0) != m->n || m->shalen != 32)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (m->dlen[i] != 32)
			return;
	m->rules_ok = true;
}

/* Length chunk i must have by the manifest. */
static size_t want_len(const struct mimg *x, uint32_t i)
{
	uint64_t off = (uint64_t)i * x->m.chunk;
	return (size_t)(x->m.size - off < x->m.chunk ? x->m.size - off : x->m.chunk);
}

/* The cache forgets its requests for image x (all, for NULL). */
static void kill_requests(const struct mimg *x)
{
	for (unsigned k = 0; k < w.nq; k++)
		if (!x || w.q[k].img == x)
			w.q[k].live = false;
}

static void fail_as(struct mimg *x, const char *why)
{
	x->st = S_FAILED;
	x->why = why;
	kill_requests(x);
}

/* Every chunk in, each checked against its signed digest: ready.  The
 * manifest's whole-image SHA-256 is not checked by the board (the signature
 * covers the ordered chunk digests and the size, so the whole follows from
 * them); a wrong one in a signed manifest is the controller's own word,
 * only echoed in the board's report. */
static void complete_if_done(struct mimg *x)
{
	if (x->st == S_FETCHING && x->n_have == x->m.n)
		x->st = S_READY;
}

static uint64_t ram(const struct mimg *x)
{
	return x->st == S_FETCHING || x->st == S_READY ? x->m.size : 0;
}

/* Chunks of a ready image y serve as x's chunks with the same digest. */
static void copy_local(struct mimg *x, const struct mimg *y)
{
	if (y->st != S_READY)
		return;
	for (uint32_t i = 0; i < x->m.n; i++)
		for (uint32_t j = 0; j < y->m.n; j++)
			if (memcmp(x->m.dg[i], y->m.dg[j], 32) == 0 && want_len(x, i) == want_len(y, j)) {
				memcpy(x->bytes + (size_t)i * x->m.chunk, y->bytes + (size_t)j * y->m.chunk,
				       want_len(x, i));
				x->have[i] = 1;
				x->n_have++;
				break;
			}
}

/* Image x's manifest arrives (again). */
static void model_fetch(struct mimg *x)
{
	struct mimg *y = x == &w.im[0] ? &w.im[1] : &w.im[0];
	if (!x->m.sig_ok) {
		/* Refused; reported under the id it claims, unless a ready
		 * image has that id. */
		if (strlen(x->m.id) < 32 && x->st != S_READY) {
			fail_as(x, WHY_SIG);
			x->holds = 0;
		}
		return;
	}
	if (!x->m.rules_ok || x->st == S_FETCHING || x->st == S_READY)
		return;
	/* A failed one is forgotten and begins again. */
	kill_requests(x);
	memset(x->have, 0, sizeof(x->have));
	x->n_have = 0;
	x->content_checked = false;
	x->holds = 0;
	x->st = S_NONE;
	/* Room: the other image goes if it is ready, nobody holds it, and
	 * that makes room enough (none goes for nothing). */
	if (ram(y) + x->m.size > w.budget && y->st == S_READY && !y->holds && x->m.size <= w.budget)
		y->st = S_NONE;
	if (ram(y) + x->m.size > w.budget) {
		fail_as(x, WHY_FULL);
		return;
	}
	free(x->bytes);
	x->bytes = calloc((size_t)x->m.size + 1, 1);
	if (!x->bytes)
		abort();
	x->st = S_FETCHING;
	copy_local(x, y);
	complete_if_done(x);
}

/* ---- the manifest ---- */

/* Signing is much of an input's cost and most inputs differ from the
 * last one in the script only: the last signatures (one a slot) are kept. */
static struct {
	EVP_PKEY *key;
	uint8_t *msg, sig[64];
	size_t len;
} last_sig[2];

static void sign(EVP_PKEY *k, struct manifest *m, unsigned slot)
{
	free(m->sig);
	if (last_sig[slot].msg && last_sig[slot].key == k && last_sig[slot].len == m->packed_len &&
	    memcmp(last_sig[slot].msg, m->packed, m->packed_len) == 0) {
		m->sig_len = 64;
		m->sig = malloc(64);
		if (!m->sig)
			abort();
		memcpy(m->sig, last_sig[slot].sig, 64);
		return;
	}
	if (sky_ed25519_sign(k, m->packed, m->packed_len, &m->sig, &m->sig_len) < 0 || m->sig_len != 64)
		abort();
	free(last_sig[slot].msg);
	last_sig[slot].msg = malloc(m->packed_len ? m->packed_len : 1);
	if (!last_sig[slot].msg)
		abort();
	memcpy(last_sig[slot].msg, m->packed, m->packed_len);
	memcpy(last_sig[slot].sig, m->sig, 64);
	last_sig[slot].len = m->packed_len;
	last_sig[slot].key = k;
}

static void pack_sign(struct manifest *m, EVP_PKEY *k, unsigned slot)
{
	Skyroot__ImageManifest pm = SKYROOT__IMAGE_MANIFEST__INIT;
	ProtobufCBinaryData dg[CHUNKS_MAX + 1];
	for (size_t i = 0; i < m->n; i++) {
		dg[i].data = m->dg[i];
		dg[i].len = m->dlen[i];
	}
	pm.id = m->id;
	pm.name = "fuzz";
	pm.kind = "disk";
	pm.format = "raw";
	pm.size = m->size;
	pm.chunk_size = m->chunk;
	pm.n_chunk_digests = m->n;
	pm.chunk_digests = dg;
	pm.sha256.data = m->sha;
	pm.sha256.len = m->shalen;
	free(m->packed);
	m->packed_len = skyroot__image_manifest__get_packed_size(&pm);
	m->packed = malloc(m->packed_len ? m->packed_len : 1);
	if (!m->packed)
		abort();
	skyroot__image_manifest__pack(&pm, m->packed);
	if (k)
		sign(k, m, slot);
}

/* The honest manifest of the served image, signed. */
static void make_honest(struct manifest *m, const char *id, uint32_t chunk)
{
	size_t n = w.img_size / chunk + (w.img_size % chunk ? 1 : 0);
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->size = w.img_size;
	m->chunk = chunk;
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		sha256(w.img + i * chunk, min_sz(chunk, w.img_size - i * chunk), m->dg[i]);
		m->dlen[i] = 32;
	}
	sha256(w.img, w.img_size, m->sha);
	m->shalen = 32;
	pack_sign(m, key, 1);
	m->sig_ok = true;
	m->servable = true;
	rules(m);
}

/* The image's manifest: the honest one (the twin's, made first) spoiled as
 * flags say. */
static void make_manifest(uint32_t chunk, uint8_t flags)
{
	struct manifest *m = &w.im[0].m;
	const struct manifest *h = &w.im[1].m;
	unsigned mode = flags & 0x0f, p = (flags >> 4) & 7;
	size_t n = w.im[1].m.n;
	uint64_t later_size = 0;

	*m = w.im[1].m;
	m->packed = NULL;
	m->sig = NULL;
	snprintf(m->id, sizeof(m->id), "%s", ID_OK);
	switch (mode) {
	case M_DG_SWAP:
		if (n > 1) {
			uint8_t t[32];
			memcpy(t, m->dg[p % n], 32);
			memcpy(m->dg[p % n], m->dg[n - 1], 32);
			memcpy(m->dg[n - 1], t, 32);
		}
		break;
	case M_DG_SHORT:
		if (n)
			m->dlen[p % n] = 31;
		else
			m->shalen = 31;
		break;
	case M_DG_EXTRA:
		sha256(&flags, 1, m->dg[n]);
		m->dlen[n] = 32;
		m->n = n + 1;
		break;
	case M_DG_MISSING:
		m->n = n ? n - 1 : 0;
		if (!n)
			m->size = 1;
		break;
	case M_DG_DUP:
		if (n > 1)
			memcpy(m->dg[(p + 1) % n], m->dg[p % n], 32);
		break;
	case M_DG_WRONG:
		if (n)
			m->dg[p % n][p] ^= 0x80;
		break;
	case M_SIZE:
		if (p < 3)
			m->size += p + 1;
		else if (p < 6)
			m->size = m->size > p - 2 ? m->size - (p - 2) : m->size + chunk;
		else if (p == 6)
			m->size = (uint64_t)1 << 40;
		else
			m->size += chunk;
		break;
	case M_CHUNK_ZERO:
		m->chunk = 0;
		break;
	case M_CHUNK_HUGE:
		m->chunk = (p & 3) == 0 ? UINT32_MAX : (p & 3) == 1 ? IMGCACHE_MAX_CHUNK + 1 : IMGCACHE_MAX_CHUNK;
		break;
	case M_CHUNK_WRONG:
		m->chunk = (p & 3) == 0 ? chunk + 1 : (p & 3) == 1 ? chunk - 1 : (p & 3) == 2 ? chunk * 2 : chunk / 2;
		break;
	case M_WHOLE:
		if (p & 1)
			m->shalen = 31;
		else
			m->sha[p] ^= 1;
		break;
	case M_ID:
		if ((p & 3) == 0)
			m->id[0] = 0;
		else
			snprintf(m->id, sizeof(m->id), "%.*s", (p & 3) == 1 ? 40 : 31,
				 "img-0123456789abcdefghijklmnopqrstuvwxyz0123456789");
		break;
	case M_SIG_STALE:
		later_size = m->size + 1 + p;
		break;
	default:
		break;
	}
	pack_sign(m, mode == M_SIG_OTHER ? other_key : key, 0);
	m->sig_ok = mode != M_SIG_OTHER && mode != M_SIG_FLIP && mode != M_SIG_STALE;
	if (mode == M_SIG_FLIP)
		m->sig[(p * 9u) % m->sig_len] ^= (uint8_t)(1u << p);
	if (mode == M_SIG_STALE) {
		m->size = later_size; /* sent as changed, with the old signature */
		pack_sign(m, NULL, 0);
	}
	rules(m);
	/* Servable: signed, keeping the rules, and its chunks those of the
	 * served image (the whole-image SHA-256 may still be wrong). */
	m->servable = m->sig_ok && m->rules_ok && m->size == h->size && m->chunk == h->chunk && m->n == h->n &&
		      memcmp(m->dg, h->dg, sizeof(m->dg[0]) * m->n) == 0;
}

/* ---- the controller's side of the link ---- */

static struct mimg *find_img(const char *id)
{
	for (unsigned k = 0; k < 2; k++)
		if (id && strcmp(id, w.im[k].m.id) == 0)
			return &w.im[k];
	return NULL;
}

static void q_add(uint64_t id, struct mimg *x, uint32_t index)
{
	if (w.nq == QUEUE_MAX) { /* forget the oldest request the cache gave up */
		unsigned k = 0;
		while (k < w.nq && w.q[k].live)
			k++;
		if (k == w.nq)
			abort();
		memmove(&w.q[k], &w.q[k + 1], (w.nq - k - 1) * sizeof(w.q[0]));
		w.nq--;
	}
	w.q[w.nq++] = (struct req){ .id = id, .img = x, .index = index, .live = true };
}

static unsigned n_live(void)
{
	unsigned n = 0;
	for (unsigned k = 0; k < w.nq; k++)
		n += w.q[k].live;
	return n;
}

static struct mimg *check_request(const Skyroot__ChunkRequest *cr)
{
	/* Only for an image being fetched, only a chunk it lacks, once. */
	struct mimg *x = find_img(cr->image_id);
	if (!x || x->st != S_FETCHING || cr->index >= x->m.n || x->have[cr->index])
		broken("a chunk request for an image not being fetched, a chunk it holds, or past its end");
	for (unsigned k = 0; k < w.nq; k++)
		if (w.q[k].live && w.q[k].img == x && w.q[k].index == cr->index)
			broken("a chunk requested twice at once");
	return x;
}

static void check_report(const Skyroot__ImageStatus *st)
{
	if (!st)
		broken("an empty status report");
	for (size_t k = 0; k < st->n_images; k++) {
		const Skyroot__CachedImage *ci = st->images[k];
		const struct mimg *x = find_img(ci->id);
		if (!x || x->st != S_READY || ci->size != x->m.size || ci->sha256.len != 32 ||
		    memcmp(ci->sha256.data, x->m.sha, 32) != 0)
			broken("an image reported ready that is not, or with another size or SHA-256");
	}
	for (size_t k = 0; k < st->n_fetching; k++) {
		const Skyroot__ImageProgress *pr = st->fetching[k];
		const struct mimg *x = find_img(pr->id);
		if (!x || x->st != S_FETCHING || pr->chunks != x->m.n || pr->done_chunks != x->n_have)
			broken("a fetch's progress reported wrong");
	}
	for (size_t k = 0; k < st->n_errors; k++) {
		const Skyroot__ImageError *er = st->errors[k];
		const struct mimg *x = find_img(er->id);
		if (!x || x->st != S_FAILED || !er->error || !strstr(er->error, x->why))
			broken("a refusal reported that did not happen, or for another reason");
	}
	if (st->n_images + st->n_fetching + st->n_errors > 2)
		broken("a report of more images than were sent");
}

static int h_send(void *ctx, Skyroot__Envelope *env, uint64_t *req_id)
{
	(void)ctx;
	if (!w.session)
		broken("a frame sent on a link the cache was told is down");
	if (w.refuse_sends)
		return -ENOTCONN;
	/* Whatever the cache sends must be a frame the link can carry. */
	if (skyroot__envelope__get_packed_size(env) > 256u * 1024u)
		broken("a frame too large for the link");
	*req_id = ++w.next_id;
	if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST) {
		struct mimg *x = check_request(env->chunk_request);
		q_add(*req_id, x, env->chunk_request->index);
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_IMAGE_STATUS) {
		check_report(env->image_status);
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_CORRUPT) {
		const Skyroot__ChunkCorrupt *cc = env->chunk_corrupt;
		const struct mimg *x = w.rep_img;
		if (!x || !cc->image_id || strcmp(cc->image_id, x->m.id) != 0 || cc->index != w.rep_index ||
		    cc->expected_sha256.len != 32 || memcmp(cc->expected_sha256.data, x->m.dg[w.rep_index], 32) != 0)
			broken("a corrupt-chunk report for a chunk that did not fail its digest, or naming another");
		w.rep_got++;
	} else {
		broken("a frame of a kind the cache has no business sending");
	}
	return 0;
}

static const struct imgcache_ops ops = { .send = h_send };

/* ---- comparing the cache with the model ---- */

static void check_content(struct mimg *x, int fd, uint64_t size)
{
	uint8_t *got = malloc(size ? size : 1);
	uint8_t sha[32];
	if (!got || pread(fd, got, size, 0) != (ssize_t)size || memcmp(got, x->bytes, size) != 0)
		broken("a ready image does not hold the bytes of the chunks it accepted");
	for (uint32_t i = 0; i < x->m.n; i++) {
		sha256(got + (size_t)i * x->m.chunk, want_len(x, i), sha);
		if (memcmp(sha, x->m.dg[i], 32) != 0)
			broken("a ready image's chunk does not hash to its digest in the signed manifest");
	}
	free(got);
	if (pwrite(fd, "x", 1, 0) >= 0 || ftruncate(fd, (off_t)size + 1) == 0 || (size && ftruncate(fd, 0) == 0))
		broken("a ready image can be written, grown or shrunk");
	x->content_checked = true;
}

static void check_image(struct mimg *x, bool content)
{
	uint64_t size = 0;
	int fd = imgcache_fd(w.c, x->m.id, &size);
	const char *why = imgcache_error(w.c, x->m.id);

	switch (x->st) {
	case S_NONE:
		if (fd != -ENOENT || strcmp(why, WHY_NONE) != 0)
			broken("a refused manifest or an evicted image left an image behind");
		break;
	case S_FAILED:
		if (fd != -ENOENT || !strstr(why, x->why))
			broken("a refused image is not refused (usable, or for another reason)");
		break;
	case S_FETCHING:
		if (fd != -EAGAIN)
			broken("an image being fetched is not (ready or refused or gone)");
		if (!imgcache_active(w.c))
			broken("a fetch under way, and the cache says it needs no ticks");
		break;
	case S_READY: {
		if (fd < 0 || size != x->m.size)
			broken("an image that must be ready is not (or its size is wrong)");
		int seals = fcntl(fd, F_GET_SEALS);
		if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) !=
				     (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK))
			broken("a ready image's memfd is not sealed");
		if (content || !x->content_checked)
			check_content(x, fd, size);
		break;
	}
	}
}

static void check_state(bool content)
{
	if (imgcache_outstanding(w.c) > IMGCACHE_WINDOW || imgcache_outstanding(w.c) != n_live())
		broken("chunk requests outstanding: over the window, or not those the cache was sent answers for");
	/* RAM: exactly the images fetching or ready, never over the budget. */
	if (imgcache_used(w.c) != ram(&w.im[0]) + ram(&w.im[1]) || imgcache_used(w.c) > w.budget)
		broken("RAM accounted wrong, or over the budget");
	check_image(&w.im[0], content);
	check_image(&w.im[1], content);
}

/* ---- the steps ---- */

static void fetch(struct mimg *x)
{
	Skyroot__ImageFetch f = SKYROOT__IMAGE_FETCH__INIT;
	Skyroot__SignedManifest sm = SKYROOT__SIGNED_MANIFEST__INIT;
	sm.manifest.data = x->m.packed;
	sm.manifest.len = x->m.packed_len;
	sm.signature.data = x->m.sig;
	sm.signature.len = x->m.sig_len;
	f.manifest = &sm;
	model_fetch(x);
	imgcache_on_fetch(w.c, &f);
}

/* The image's bytes at chunk i by x's manifest's cut (what an honest
 * controller holding this image sends), as far as the image goes. */
static size_t served(const struct mimg *x, uint32_t i, const uint8_t **p)
{
	uint64_t off = (uint64_t)i * x->m.chunk;
	*p = w.img;
	if (off >= w.img_size)
		return 0;
	*p = w.img + off;
	return min_sz(want_len(x, i), w.img_size - (size_t)off);
}

static void link_down(void)
{
	kill_requests(NULL);
	imgcache_session_down(w.c);
	w.session = false;
}

static void link_up(void)
{
	w.session = true;
	imgcache_session_up(w.c);
}

/* The answer in the tail form: begin with the length, the bytes in pieces
 * (a tick between them, as the loop may run timers while a chunk arrives:
 * no report may count it yet), end; or cut off after cut bytes by the link
 * dropping.  Returns what begin said. */
static bool in_pieces(const struct req *r, Skyroot__ChunkData *d, const uint8_t *buf, size_t len, enum delivery how)
{
	size_t piece = 1 + ((size_t)w.step * 97u + r->index * 13u) % (len / 2 + 1);
	size_t cut = how == D_PIECES ? len : ((size_t)w.step * 31u + r->index) % (len + 1), sent = 0;
	bool taken;

	taken = imgcache_chunk_begin(w.c, r->id, d, len);
	while (sent < cut) {
		size_t n = min_sz(piece, cut - sent);
		imgcache_chunk_data(w.c, buf + sent, n);
		if (!sent) {
			if (w.session)
				imgcache_tick(w.c);
			check_state(false);
		}
		sent += n;
	}
	if (how == D_PIECES)
		return taken; /* the caller ends it, its model first */
	/* Cut off: nothing of it counts; it is asked for again.  The request
	 * stays in the queue, dead, so that a late answer may come for it. */
	link_down();
	q_add(r->id, r->img, r->index);
	w.q[w.nq - 1].live = false;
	if (w.step % 4) /* back up, or left down */
		link_up();
	return taken;
}

/* Answer queued request k (live or not) the way mode says, delivered as how
 * says. */
static void answer(unsigned k, enum amode mode, enum delivery how)
{
	Skyroot__ChunkData d = SKYROOT__CHUNK_DATA__INIT;
	Skyroot__Error e = SKYROOT__ERROR__INIT;
	struct req r = w.q[k];
	struct mimg *x = r.img;
	const uint8_t *src;
	size_t len = served(x, r.index, &src);
	uint8_t *buf;
	bool ok, check = r.live && mode != A_OTHER_IMAGE && mode != A_WRONG_INDEX;

	memmove(&w.q[k], &w.q[k + 1], (w.nq - k - 1) * sizeof(w.q[0]));
	w.nq--;
	if (mode == A_ERROR) {
		bool busy = w.step & 1;
		e.code = busy ? SKYROOT__ERROR_CODE__ERROR_BUSY : SKYROOT__ERROR_CODE__ERROR_CHUNK_CORRUPT;
		e.message = "fuzz";
		if (r.live && !busy)
			fail_as(x, WHY_ERROR);
		if (imgcache_on_error(w.c, r.id, &e) != r.live || imgcache_on_error(w.c, r.id, &e))
			broken("an error answer to a request taken or ignored wrongly, or taken twice");
		return;
	}
	if (mode == A_OTHER_CHUNK && x->m.n > 1)
		len = served(x, (r.index + 1 + w.step) % (uint32_t)x->m.n, &src);
	else if (mode == A_OTHER_CHUNK)
		mode = A_FLIP;
	if (mode == A_SHORT && len)
		len--;
	else if (mode == A_EMPTY)
		len = 0;
	/* Exactly the bytes sent, so reading past them is caught by ASan. */
	buf = malloc(len + (mode == A_LONG) > 0 ? len + (mode == A_LONG) : 1);
	if (!buf)
		abort();
	if (len)
		memcpy(buf, src, len);
	if (mode == A_LONG)
		buf[len++] = (uint8_t)w.step;
	if (mode == A_FLIP && len)
		buf[w.step % len] ^= (uint8_t)(1u << (w.step % 8));
	d.image_id = mode == A_OTHER_IMAGE ? "img-other" : x->m.id;
	d.index = mode == A_WRONG_INDEX ? r.index + 1 : r.index;
	/* The rules: the length the manifest gives (known at the chunk's
	 * header, before its bytes), then its digest (once all are in). */
	if (check && len != want_len(x, r.index)) {
		fail_as(x, WHY_LEN);
		check = false;
	}
	if (how != D_WHOLE) {
		ok = in_pieces(&r, &d, buf, len, how); /* d's data empty, as begin wants */
		if (ok != r.live)
			broken("a chunk's header taken or ignored wrongly");
		if (how != D_PIECES) { /* cut off: not checked, not held */
			free(buf);
			return;
		}
	}
	if (check) {
		uint8_t got[32];
		sha256(buf, len, got);
		if (memcmp(got, x->m.dg[r.index], 32) != 0) {
			fail_as(x, WHY_DIGEST);
			w.rep_img = x;
			w.rep_index = r.index;
		} else {
			memcpy(x->bytes + (size_t)r.index * x->m.chunk, buf, len);
			x->have[r.index] = 1;
			x->n_have++;
			complete_if_done(x);
		}
	}
	d.data.data = buf;
	d.data.len = len;
	if (how == D_WHOLE && imgcache_on_chunk(w.c, r.id, &d) != r.live)
		broken("a chunk answer taken or ignored wrongly");
	else if (how == D_PIECES)
		imgcache_chunk_end(w.c);
	if (w.rep_img && w.rep_got != (w.refuse_sends ? 0u : 1u))
		broken("a chunk that failed its digest not reported to the controller once");
	w.rep_img = NULL;
	w.rep_got = 0;
	/* Never twice, whole or in pieces. */
	if (imgcache_on_chunk(w.c, r.id, &d) || imgcache_chunk_begin(w.c, r.id, &d, len))
		broken("a chunk answer taken twice");
	imgcache_chunk_data(w.c, buf, len);
	imgcache_chunk_end(w.c);
	free(buf);
}

/* The k-th live request's place in the queue, or -1. */
static int live_at(unsigned k)
{
	unsigned n = n_live();
	if (!n)
		return -1;
	k %= n;
	for (unsigned i = 0; i < w.nq; i++)
		if (w.q[i].live && k-- == 0)
			return (int)i;
	return -1;
}

static void drain(void)
{
	int k;
	for (unsigned guard = 0; guard < 8 * CHUNKS_MAX + 64 && (k = live_at(0)) >= 0; guard++)
		answer((unsigned)k, A_HONEST, D_WHOLE);
}

static void hold(struct mimg *x, bool on)
{
	if (x->st != S_NONE) /* the cache knows the image */
		x->holds = on ? x->holds + 1 : x->holds ? x->holds - 1 : 0;
	imgcache_hold(w.c, x->m.id, on);
}

static void run_step(uint8_t b)
{
	int k;
	switch (b >> 5) {
	case 0:
	case 1: { /* answer a live request: whole (0-8), in pieces (9-13), cut off (14, 15) */
		static const enum amode in_pieces_mode[7] = { A_HONEST, A_SHORT, A_LONG, A_FLIP, A_WRONG_INDEX,
							      A_HONEST, A_LONG };
		unsigned am = (b >> 2) & 15;
		if ((k = live_at(b & 3)) >= 0)
			answer((unsigned)k, am <= A_ERROR ? (enum amode)am : in_pieces_mode[am - A_ERROR - 1],
			       am <= A_ERROR ? D_WHOLE : am < 14 ? D_PIECES : D_CUT);
		break;
	}
	case 2: /* answer all, honestly, in order */
		drain();
		break;
	case 3: /* the link */
		if ((b & 3) == 0) {
			if (w.session)
				link_down();
			link_up();
		} else if ((b & 3) == 1) {
			if (w.session)
				link_down();
		} else if ((b & 3) == 2) {
			if (!w.session)
				link_up();
		} else {
			w.refuse_sends = !w.refuse_sends; /* the link broke unnoticed, or healed */
		}
		break;
	case 4: /* the controller sends a manifest (again): the image's, or the twin's */
		if (w.refetches++ < REFETCH_MAX)
			fetch(&w.im[b & 1]);
		break;
	case 5: /* a guest starts or stops using an image */
		hold(&w.im[(b >> 1) & 1], b & 1);
		if (w.session)
			imgcache_tick(w.c);
		break;
	case 6:
		if (w.session)
			imgcache_report(w.c);
		check_state(true);
		break;
	default: /* late answers: to a request the cache gave up, or never made */
		for (unsigned i = 0; i < w.nq; i++)
			if (!w.q[i].live) {
				if (b & 1) {
					answer(i, A_HONEST, (b & 4) ? D_PIECES : D_WHOLE);
					return;
				}
				break;
			}
		{
			Skyroot__ChunkData d = SKYROOT__CHUNK_DATA__INIT;
			d.image_id = w.im[0].m.id;
			if (imgcache_on_chunk(w.c, (b & 2) ? 0 : w.next_id + 1, &d))
				broken("an answer to a request never made was taken");
		}
		break;
	}
}

/* The input: a flags byte (bits 0-3: how the manifest is spoiled, enum
 * mmode; bits 4-6: a parameter of that; bit 7: a small budget), the chunk
 * size (1 + 64 * the byte), the image's length (big-endian 16 bits; cut to
 * what follows and to CHUNKS_MAX chunks), the image, and the script, a
 * step a byte (run_step).  tests/fuzz/seeds.py writes the seed corpus. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mimg *x = &w.im[0];
	uint8_t flags;
	uint32_t chunk;
	size_t len;

	init_once();
	if (size < 4)
		return 0;
	flags = data[0];
	chunk = 1u + data[1] * 64u;
	len = ((size_t)data[2] << 8 | data[3]) % (IMAGE_MAX + 1);
	data += 4;
	size -= 4;
	len = min_sz(min_sz(len, size), (size_t)chunk * CHUNKS_MAX);

	memset(&w, 0, sizeof(w));
	w.img = data;
	w.img_size = len;
	w.budget = 4 * IMAGE_MAX;
	if (flags & 0x80) /* room for one image, or not even that */
		w.budget = (flags & 0x10) ? (len ? len : 1) : len / 2 + 1;
	make_honest(&w.im[1].m, ID_TWIN, chunk);
	make_manifest(chunk, flags);

	if (imgcache_new(&ops, NULL, w.budget, &w.c) < 0)
		abort();
	imgcache_set_signing_key(w.c, pub);
	link_up();
	check_state(false);
	fetch(x);
	check_state(false);
	for (size_t i = len; i < size && w.step < STEPS_MAX; i++) {
		w.step++;
		run_step(data[i]);
		check_state(false);
	}

	/* The end: a new link (the agent reconnects after a send failed),
	 * every chunk served honestly; then nothing held, the image's manifest
	 * again if it failed or was evicted, and every chunk served honestly. */
	w.step++;
	w.refuse_sends = false;
	if (w.session)
		link_down();
	link_up();
	drain();
	check_state(false);
	for (unsigned k = 0; k < 2; k++)
		while (w.im[k].holds)
			hold(&w.im[k], false);
	if (x->st == S_FAILED || x->st == S_NONE)
		fetch(x);
	drain();
	check_state(true);
	/* A signed manifest of the served image's chunks (a wrong whole-image
	 * SHA-256 or not), served honestly to the end: ready, with those bytes. */
	if (x->m.servable && len <= w.budget && x->st != S_READY)
		broken("an image whose signed manifest names the served chunks, served honestly to the end, is not ready");
	if (x->st == S_READY && x->m.servable && memcmp(x->bytes, w.img, len) != 0)
		broken("the honest image arrived with other bytes");

	imgcache_free(w.c);
	for (unsigned k = 0; k < 2; k++) {
		free(w.im[k].bytes);
		free(w.im[k].m.packed);
		free(w.im[k].m.sig);
	}
	return 0;
}
