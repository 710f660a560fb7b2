/* libFuzzer target: the board's image cache (agent/images.c) against a
 * hostile controller, with a model of what the cache must do.
 *
 * The input is a header, an image and a script.  The header says how the
 * harness spoils the image's signed manifest (or not): a flipped signature
 * byte, a manifest signed by another key or changed after signing, chunk
 * digests swapped, short, extra, missing, duplicated or wrong, a wrong total
 * size, a zero, huge or wrong chunk size, a wrong whole-image SHA-256, an
 * unusable id; and the cache's RAM budget.  The script then answers the
 * cache's chunk requests (right, short, long, flipped, another chunk's
 * bytes, empty, the wrong index or image, an error), in any order, twice,
 * late (after the link dropped or the image failed); drops and restores the
 * link, sends the manifest again, holds the image, asks for reports.
 *
 * Beside the cache the harness keeps its own account of what the cache must
 * do with each of these (the model: which manifests are refused, which
 * chunk answers taken, when the image is complete), from the manifest's
 * rules alone, and after every step compares the cache's own state with
 * it: the image's state (imgcache_fd: ready / -EAGAIN fetching / -ENOENT),
 * the reason the cache gives for a refusal, the RAM it accounts, the
 * requests it has outstanding; and everything the cache tells the
 * controller: no chunk requested for a refused image or twice at once, no
 * report of an image as ready that is not.  An image the cache calls ready
 * is sealed against writes, growing and shrinking, and holds exactly the
 * bytes of the chunks it accepted, which hash to the signed manifest's
 * SHA-256; with an honest manifest, the image served honestly to the end
 * is ready and holds exactly the served bytes.  Any difference aborts. */
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
#include "common/util.h"
#include "common/x509.h"

#define IMAGE_MAX (64u * 1024u)
#define CHUNKS_MAX 128u  /* chunks of the honest manifest (the image is cut to fit) */
#define QUEUE_MAX 64
#define STEPS_MAX 256
#define REFETCH_MAX 2   /* manifests sent again per input (each costs a verify) */
#define ID_OK "img-fuzz"

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

/* What the cache must show for the image. */
enum mstate { S_NONE, S_FETCHING, S_READY, S_FAILED };

/* The cache's refusals, as imgcache_error words them. */
#define WHY_SIG "signature does not verify"
#define WHY_LEN "arrived with"
#define WHY_DIGEST "failed its SHA-256 check"
#define WHY_WHOLE "does not hash to the manifest's SHA-256"
#define WHY_FULL "the image cache is full"
#define WHY_ERROR "could not send chunk"
#define WHY_NONE "the board was never sent its manifest"

struct req {
	uint64_t id;
	uint32_t index;
	bool live;                     /* the cache still waits for it */
};

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
	bool rules_ok;                 /* keeps the manifest rules (rules()) */
};

static struct world {
	const uint8_t *img;            /* the image the controller serves */
	size_t img_size;
	struct manifest m;
	uint64_t budget;
	struct imgcache *c;
	/* the model */
	enum mstate st;
	const char *why;               /* S_FAILED: words imgcache_error must hold */
	uint8_t have[CHUNKS_MAX + 1];
	size_t n_have;
	uint8_t *bytes;                /* the accepted chunks, where they go */
	bool content_checked;
	/* the link */
	struct req q[QUEUE_MAX];
	unsigned nq;
	uint64_t next_id;
	bool session, refuse_sends;
	unsigned step, refetches;
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
	fprintf(stderr, "fuzz_imgcache: the cache broke a rule: %s (model: manifest sig %s, rules %s; image %s%s%s, "
			"%zu of %zu chunks; step %u)\n",
		rule, w.m.sig_ok ? "good" : "bad", w.m.rules_ok ? "kept" : "broken", state_name(w.st),
		w.st == S_FAILED ? ": " : "", w.st == S_FAILED ? w.why : "", w.n_have, w.m.n, w.step);
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
static size_t want_len(uint32_t i)
{
	uint64_t off = (uint64_t)i * w.m.chunk;
	return (size_t)(w.m.size - off < w.m.chunk ? w.m.size - off : w.m.chunk);
}

static void kill_requests(void)
{
	for (unsigned k = 0; k < w.nq; k++)
		w.q[k].live = false;
}

static void fail_as(const char *why)
{
	w.st = S_FAILED;
	w.why = why;
	kill_requests();
}

static void complete_if_done(void)
{
	uint8_t got[32];
	if (w.st != S_FETCHING || w.n_have != w.m.n)
		return;
	sky_sha256(w.bytes, (size_t)w.m.size, got);
	if (memcmp(got, w.m.sha, 32) == 0)
		w.st = S_READY;
	else
		fail_as(WHY_WHOLE);
}

/* The manifest arrives (again). */
static void model_fetch(void)
{
	if (!w.m.sig_ok) {
		/* Refused; reported under the id it claims, unless a ready
		 * image has that id. */
		if (strlen(w.m.id) < 32 && w.st != S_READY)
			fail_as(WHY_SIG);
		return;
	}
	if (!w.m.rules_ok || w.st == S_FETCHING || w.st == S_READY)
		return;
	kill_requests();
	memset(w.have, 0, sizeof(w.have));
	w.n_have = 0;
	w.content_checked = false;
	if (w.m.size > w.budget) {
		fail_as(WHY_FULL);
		return;
	}
	free(w.bytes);
	w.bytes = calloc((size_t)w.m.size + 1, 1);
	if (!w.bytes)
		abort();
	w.st = S_FETCHING;
	complete_if_done();
}

/* ---- the manifest ---- */

/* Signing is most of an input's cost and most inputs differ from the last
 * one in the script only: the last signature is kept. */
static struct {
	EVP_PKEY *key;
	uint8_t *msg, sig[64];
	size_t len;
} last_sig;

static void sign(EVP_PKEY *k, struct manifest *m)
{
	free(m->sig);
	if (last_sig.msg && last_sig.key == k && last_sig.len == m->packed_len &&
	    memcmp(last_sig.msg, m->packed, m->packed_len) == 0) {
		m->sig_len = 64;
		m->sig = malloc(64);
		if (!m->sig)
			abort();
		memcpy(m->sig, last_sig.sig, 64);
		return;
	}
	if (sky_ed25519_sign(k, m->packed, m->packed_len, &m->sig, &m->sig_len) < 0 || m->sig_len != 64)
		abort();
	free(last_sig.msg);
	last_sig.msg = malloc(m->packed_len ? m->packed_len : 1);
	if (!last_sig.msg)
		abort();
	memcpy(last_sig.msg, m->packed, m->packed_len);
	memcpy(last_sig.sig, m->sig, 64);
	last_sig.len = m->packed_len;
	last_sig.key = k;
}

static void pack_sign(struct manifest *m, EVP_PKEY *k)
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
		sign(k, m);
}

static void make_manifest(uint32_t chunk, uint8_t flags)
{
	struct manifest *m = &w.m;
	unsigned mode = flags & 0x0f, p = (flags >> 4) & 7;
	size_t n = w.img_size / chunk + (w.img_size % chunk ? 1 : 0);
	uint64_t later_size = 0;

	snprintf(m->id, sizeof(m->id), "%s", ID_OK);
	m->size = w.img_size;
	m->chunk = chunk;
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		sky_sha256(w.img + i * chunk, min_sz(chunk, w.img_size - i * chunk), m->dg[i]);
		m->dlen[i] = 32;
	}
	sky_sha256(w.img, w.img_size, m->sha);
	m->shalen = 32;
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
		sky_sha256(&flags, 1, m->dg[n]);
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
	pack_sign(m, mode == M_SIG_OTHER ? other_key : key);
	m->sig_ok = mode != M_SIG_OTHER && mode != M_SIG_FLIP && mode != M_SIG_STALE;
	if (mode == M_SIG_FLIP)
		m->sig[(p * 9u) % m->sig_len] ^= (uint8_t)(1u << p);
	if (mode == M_SIG_STALE) {
		m->size = later_size; /* sent as changed, with the old signature */
		pack_sign(m, NULL);
	}
	rules(m);
}

/* ---- the controller's side of the link ---- */

static void q_add(uint64_t id, uint32_t index)
{
	if (w.nq == QUEUE_MAX) { /* forget the oldest answered-never request the cache gave up */
		unsigned k = 0;
		while (k < w.nq && w.q[k].live)
			k++;
		if (k == w.nq)
			abort();
		memmove(&w.q[k], &w.q[k + 1], (w.nq - k - 1) * sizeof(w.q[0]));
		w.nq--;
	}
	w.q[w.nq++] = (struct req){ .id = id, .index = index, .live = true };
}

static unsigned n_live(void)
{
	unsigned n = 0;
	for (unsigned k = 0; k < w.nq; k++)
		n += w.q[k].live;
	return n;
}

static void check_request(const Skyroot__ChunkRequest *cr)
{
	/* Only for an image being fetched, only a chunk it lacks, once. */
	if (!w.session || w.st != S_FETCHING || !cr->image_id || strcmp(cr->image_id, w.m.id) != 0 ||
	    cr->index >= w.m.n || w.have[cr->index])
		broken("a chunk request for an image not being fetched, a chunk it holds, or past its end");
	for (unsigned k = 0; k < w.nq; k++)
		if (w.q[k].live && w.q[k].index == cr->index)
			broken("a chunk requested twice at once");
}

static void check_report(const Skyroot__ImageStatus *st)
{
	if (!st)
		broken("an empty status report");
	for (size_t k = 0; k < st->n_images; k++) {
		const Skyroot__CachedImage *ci = st->images[k];
		if (!ci->id || strcmp(ci->id, w.m.id) != 0 || w.st != S_READY || ci->size != w.m.size ||
		    ci->sha256.len != 32 || memcmp(ci->sha256.data, w.m.sha, 32) != 0)
			broken("an image reported ready that is not, or with another size or SHA-256");
	}
	for (size_t k = 0; k < st->n_fetching; k++) {
		const Skyroot__ImageProgress *pr = st->fetching[k];
		if (!pr->id || strcmp(pr->id, w.m.id) != 0 || w.st != S_FETCHING || pr->chunks != w.m.n ||
		    pr->done_chunks != w.n_have)
			broken("a fetch's progress reported wrong");
	}
	for (size_t k = 0; k < st->n_errors; k++) {
		const Skyroot__ImageError *er = st->errors[k];
		if (!er->id || strcmp(er->id, w.m.id) != 0 || w.st != S_FAILED || !er->error ||
		    !strstr(er->error, w.why))
			broken("a refusal reported that did not happen, or for another reason");
	}
	if (st->n_images + st->n_fetching + st->n_errors > 1)
		broken("a report of more images than were sent");
}

static int h_send(void *ctx, Skyroot__Envelope *env, uint64_t *req_id)
{
	(void)ctx;
	if (!w.session)
		broken("a frame sent on a link the cache was told is down"); /* the cache was told the link is down */
	if (w.refuse_sends)
		return -ENOTCONN;
	/* Whatever the cache sends must be a frame the link can carry. */
	if (skyroot__envelope__get_packed_size(env) > 256u * 1024u)
		broken("a frame too large for the link");
	*req_id = ++w.next_id;
	if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST) {
		check_request(env->chunk_request);
		q_add(*req_id, env->chunk_request->index);
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_IMAGE_STATUS) {
		check_report(env->image_status);
	} else {
		broken("a frame of a kind the cache has no business sending");
	}
	return 0;
}

static const struct imgcache_ops ops = { .send = h_send };

/* ---- comparing the cache with the model ---- */

static void check_content(int fd, uint64_t size)
{
	uint8_t *got = malloc(size ? size : 1);
	uint8_t sha[32];
	if (!got || pread(fd, got, size, 0) != (ssize_t)size || memcmp(got, w.bytes, size) != 0)
		broken("a ready image does not hold the bytes of the chunks it accepted");
	sky_sha256(got, size, sha);
	if (memcmp(sha, w.m.sha, 32) != 0)
		broken("a ready image does not hash to the signed manifest's SHA-256");
	free(got);
	if (pwrite(fd, "x", 1, 0) >= 0 || ftruncate(fd, (off_t)size + 1) == 0 || (size && ftruncate(fd, 0) == 0))
		broken("a ready image can be written, grown or shrunk");
	w.content_checked = true;
}

static void check_state(bool content)
{
	uint64_t size = 0;
	int fd = imgcache_fd(w.c, w.m.id, &size);
	const char *why = imgcache_error(w.c, w.m.id);

	if (imgcache_outstanding(w.c) > IMGCACHE_WINDOW || imgcache_outstanding(w.c) != n_live())
		broken("chunk requests outstanding: over the window, or not those the cache was sent answers for");
	if (imgcache_used(w.c) > w.budget)
		broken("more RAM in use than the budget");
	switch (w.st) {
	case S_NONE:
		if (fd != -ENOENT || strcmp(why, WHY_NONE) != 0 || imgcache_used(w.c) != 0)
			broken("a refused manifest left an image behind");
		break;
	case S_FAILED:
		if (fd != -ENOENT || !strstr(why, w.why) || imgcache_used(w.c) != 0)
			broken("a refused image is not refused (usable, or for another reason, or holding RAM)");
		break;
	case S_FETCHING:
		if (fd != -EAGAIN || imgcache_used(w.c) != w.m.size)
			broken("an image being fetched is not (ready, refused, or RAM accounted wrong)");
		if (!imgcache_active(w.c))
			broken("a fetch under way, and the cache says it needs no ticks");
		break;
	case S_READY: {
		if (fd < 0 || size != w.m.size || imgcache_used(w.c) != w.m.size)
			broken("an image that must be ready is not (or its size or RAM is wrong)");
		int seals = fcntl(fd, F_GET_SEALS);
		if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) !=
				     (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK))
			broken("a ready image's memfd is not sealed");
		if (content || !w.content_checked)
			check_content(fd, size);
		break;
	}
	}
}

/* ---- the steps ---- */

static void fetch(void)
{
	Skyroot__ImageFetch f = SKYROOT__IMAGE_FETCH__INIT;
	Skyroot__SignedManifest sm = SKYROOT__SIGNED_MANIFEST__INIT;
	sm.manifest.data = w.m.packed;
	sm.manifest.len = w.m.packed_len;
	sm.signature.data = w.m.sig;
	sm.signature.len = w.m.sig_len;
	f.manifest = &sm;
	model_fetch();
	imgcache_on_fetch(w.c, &f);
}

/* The image's bytes at chunk i by the manifest's cut (what an honest
 * controller holding this image sends), as far as the image goes. */
static size_t served(uint32_t i, const uint8_t **p)
{
	uint64_t off = (uint64_t)i * w.m.chunk;
	*p = w.img;
	if (off >= w.img_size)
		return 0;
	*p = w.img + off;
	return min_sz(want_len(i), w.img_size - (size_t)off);
}

/* Answer queued request k (live or not) the way mode says. */
static void answer(unsigned k, enum amode mode)
{
	Skyroot__ChunkData d = SKYROOT__CHUNK_DATA__INIT;
	Skyroot__Error e = SKYROOT__ERROR__INIT;
	struct req r = w.q[k];
	const uint8_t *src;
	size_t len = served(r.index, &src);
	uint8_t *buf;
	bool ok;

	memmove(&w.q[k], &w.q[k + 1], (w.nq - k - 1) * sizeof(w.q[0]));
	w.nq--;
	if (mode == A_ERROR) {
		bool busy = w.step & 1;
		e.code = busy ? SKYROOT__ERROR_CODE__ERROR_BUSY : SKYROOT__ERROR_CODE__ERROR_CHUNK_CORRUPT;
		e.message = "fuzz";
		if (r.live && !busy)
			fail_as(WHY_ERROR);
		if (imgcache_on_error(w.c, r.id, &e) != r.live || imgcache_on_error(w.c, r.id, &e))
			broken("an error answer to a request taken or ignored wrongly, or taken twice");
		return;
	}
	if (mode == A_OTHER_CHUNK && w.m.n > 1)
		len = served((r.index + 1 + w.step) % (uint32_t)w.m.n, &src);
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
	d.image_id = mode == A_OTHER_IMAGE ? "img-other" : w.m.id;
	d.index = mode == A_WRONG_INDEX ? r.index + 1 : r.index;
	d.data.data = buf;
	d.data.len = len;

	if (r.live && mode != A_OTHER_IMAGE && mode != A_WRONG_INDEX) {
		/* The rules: the length the manifest gives, then its digest. */
		uint8_t got[32];
		sky_sha256(buf, len, got);
		if (len != want_len(r.index)) {
			fail_as(WHY_LEN);
		} else if (memcmp(got, w.m.dg[r.index], 32) != 0) {
			fail_as(WHY_DIGEST);
		} else {
			memcpy(w.bytes + (size_t)r.index * w.m.chunk, buf, len);
			w.have[r.index] = 1;
			w.n_have++;
			complete_if_done();
		}
	}
	ok = imgcache_on_chunk(w.c, r.id, &d);
	/* Taken if and only if the cache waited for it; never twice. */
	if (ok != r.live || imgcache_on_chunk(w.c, r.id, &d))
		broken("a chunk answer taken or ignored wrongly, or taken twice");
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
	for (unsigned guard = 0; guard < 4 * CHUNKS_MAX + 64 && (k = live_at(0)) >= 0; guard++)
		answer((unsigned)k, A_HONEST);
}

static void link_down(void)
{
	kill_requests();
	imgcache_session_down(w.c);
	w.session = false;
}

static void link_up(void)
{
	w.session = true;
	imgcache_session_up(w.c);
}

static void run_step(uint8_t b)
{
	int k;
	switch (b >> 5) {
	case 0:
	case 1: { /* answer a live request */
		unsigned am = (b >> 2) & 15;
		if ((k = live_at(b & 3)) >= 0)
			answer((unsigned)k, am <= A_ERROR ? (enum amode)am : A_HONEST);
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
	case 4: /* the controller sends the manifest again */
		if (w.refetches++ < REFETCH_MAX)
			fetch();
		break;
	case 5:
		imgcache_hold(w.c, w.m.id, b & 1);
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
					answer(i, A_HONEST);
					return;
				}
				break;
			}
		{
			Skyroot__ChunkData d = SKYROOT__CHUNK_DATA__INIT;
			d.image_id = w.m.id;
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
	if (flags & 0x80) /* just enough, or too little */
		w.budget = (flags & 0x10) ? (len ? len : 1) : len / 2 + 1;
	make_manifest(chunk, flags);

	if (imgcache_new(&ops, NULL, w.budget, &w.c) < 0)
		abort();
	imgcache_set_signing_key(w.c, pub);
	link_up();
	check_state(false);
	fetch();
	check_state(false);
	for (size_t i = len; i < size && w.step < STEPS_MAX; i++) {
		w.step++;
		run_step(data[i]);
		check_state(false);
	}

	/* The end: a new link (the agent reconnects after a send failed), the
	 * manifest again if the image failed, and every chunk served honestly. */
	w.step++;
	w.refuse_sends = false;
	if (w.session)
		link_down();
	link_up();
	if (w.st == S_FAILED)
		fetch();
	drain();
	check_state(true);
	if ((flags & 0x0f) == M_HONEST && len <= w.budget && w.st != S_READY)
		broken("an honest image, served honestly to the end, is not ready");
	if (w.st == S_READY && (flags & 0x0f) == M_HONEST && memcmp(w.bytes, w.img, len) != 0)
		broken("the honest image arrived with other bytes");

	imgcache_free(w.c);
	free(w.bytes);
	free(w.m.packed);
	free(w.m.sig);
	w.bytes = NULL;
	w.m.packed = NULL;
	w.m.sig = NULL;
	return 0;
}
