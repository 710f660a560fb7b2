/* libFuzzer target: the board's image cache (agent/images.c) driven by a
 * controller that misbehaves in every way the input can say.
 *
 * The input is an image and a script.  The harness builds the image's
 * manifest (honest, or with a digest, size, chunk size, id or signature
 * spoiled, as the first byte says), signs it with the harness's image key,
 * and hands it to the cache.  The script then answers the cache's chunk
 * requests: with the right bytes, short, flipped, for the wrong index or
 * image, with errors, out of order, whole or as the frame's tail form
 * hands them over (imgcache_chunk_begin, pieces, end, or cut off by a
 * dropped session); it drops and restores the session,
 * sends the manifest again, holds and releases the image.
 *
 * What must hold whatever the script: no crash, no leak, the window of
 * outstanding requests never over IMGCACHE_WINDOW, RAM used never over the
 * budget, and an image the cache calls ready is sealed against writes,
 * growing and shrinking, and holds exactly the image's bytes (each chunk
 * checked against the signed manifest's digests; the whole-image SHA-256
 * the manifest names is not checked again by the board, it follows from
 * those). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/images.h"
#include "common/log.h"
#include "common/util.h"
#include "common/x509.h"

#define IMAGE_MAX (64u * 1024u)
#define QUEUE_MAX 256
#define STEPS_MAX 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct req {
	uint64_t id;
	char image[40];
	uint32_t index;
};

struct harness {
	struct req q[QUEUE_MAX];
	unsigned nq;
	uint64_t next_id;
	unsigned reports;
	bool refuse_sends;
};

static EVP_PKEY *key;
static uint8_t pub[32];

static int h_send(void *ctx, Skyroot__Envelope *env, uint64_t *req_id)
{
	struct harness *h = ctx;
	if (h->refuse_sends)
		return -ENOTCONN;
	/* Whatever the cache sends must be a frame the link can carry. */
	if (skyroot__envelope__get_packed_size(env) > 256u * 1024u)
		abort();
	*req_id = ++h->next_id;
	if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST) {
		const Skyroot__ChunkRequest *cr = env->chunk_request;
		if (h->nq >= QUEUE_MAX) { /* forget the oldest (most are stale by then) */
			memmove(&h->q[0], &h->q[1], (QUEUE_MAX - 1) * sizeof(h->q[0]));
			h->nq--;
		}
		struct req *r = &h->q[h->nq++];
		r->id = *req_id;
		snprintf(r->image, sizeof(r->image), "%s", cr->image_id ? cr->image_id : "");
		r->index = cr->index;
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_IMAGE_STATUS) {
		h->reports++;
	}
	return 0;
}

static const struct imgcache_ops ops = { .send = h_send };

static void init_once(void)
{
	size_t n = sizeof(pub);
	if (key)
		return;
	sky_log_set_level(SKY_LOG_NONE);
	if (sky_key_new_ed25519(&key) < 0 || sky_key_raw_public(key, pub, &n) < 0 || n != 32)
		abort();
}

struct img {
	const uint8_t *bytes;
	size_t size;
	uint32_t chunk;
	char id[40];
	uint8_t *manifest;
	size_t manifest_len;
	uint8_t *sig;
	size_t sig_len;
	uint8_t sha[32];
};

/* Build and sign the manifest; flags spoil parts of it. */
static void make_manifest(struct img *im, uint8_t flags)
{
	Skyroot__ImageManifest m = SKYROOT__IMAGE_MANIFEST__INIT;
	uint32_t n = im->chunk ? (uint32_t)((im->size + im->chunk - 1) / im->chunk) : 0;
	ProtobufCBinaryData *dg = calloc(n ? n : 1, sizeof(*dg));
	uint8_t (*digests)[32] = calloc(n ? n : 1, 32);
	if (!dg || !digests)
		abort();
	for (uint32_t i = 0; i < n; i++) {
		size_t off = (size_t)i * im->chunk, len = im->size - off < im->chunk ? im->size - off : im->chunk;
		sky_sha256(im->bytes + off, len, digests[i]);
		dg[i].data = digests[i];
		dg[i].len = 32;
	}
	sky_sha256(im->bytes, im->size, im->sha);
	m.id = im->id;
	m.name = "fuzz";
	m.kind = "disk";
	m.format = "raw";
	m.size = im->size;
	m.chunk_size = im->chunk;
	m.n_chunk_digests = n;
	m.chunk_digests = dg;
	m.sha256.data = im->sha;
	m.sha256.len = 32;
	if ((flags & 0x07) == 1 && n > 1) { /* two chunks swapped */
		uint8_t t[32];
		memcpy(t, digests[0], 32);
		memcpy(digests[0], digests[n - 1], 32);
		memcpy(digests[n - 1], t, 32);
	} else if ((flags & 0x07) == 2) {   /* whole-image digest wrong */
		m.sha256.data = digests[0];
	} else if ((flags & 0x07) == 3) {   /* a size that does not match */
		m.size = im->size + 1 + (flags >> 4);
	} else if ((flags & 0x07) == 4 && n > 0) { /* one digest short */
		dg[n - 1].len = 31;
	} else if ((flags & 0x07) == 5) {   /* a huge image */
		m.size = (uint64_t)1 << 40;
	} else if ((flags & 0x07) == 6) {   /* chunk size out of range */
		m.chunk_size = (flags & 0x10) ? 0 : 64u << 20;
	}
	im->manifest_len = skyroot__image_manifest__get_packed_size(&m);
	im->manifest = malloc(im->manifest_len ? im->manifest_len : 1);
	if (!im->manifest)
		abort();
	skyroot__image_manifest__pack(&m, im->manifest);
	if (sky_ed25519_sign(key, im->manifest, im->manifest_len, &im->sig, &im->sig_len) < 0)
		abort();
	if (flags & 0x08)                   /* signature spoiled */
		im->sig[flags % im->sig_len] ^= 0x40;
	free(dg);
	free(digests);
}

static void fetch(struct imgcache *c, const struct img *im)
{
	Skyroot__ImageFetch f = SKYROOT__IMAGE_FETCH__INIT;
	Skyroot__SignedManifest sm = SKYROOT__SIGNED_MANIFEST__INIT;
	sm.manifest.data = im->manifest;
	sm.manifest.len = im->manifest_len;
	sm.signature.data = im->sig;
	sm.signature.len = im->sig_len;
	f.manifest = &sm;
	imgcache_on_fetch(c, &f);
}

static void answer(struct imgcache *c, struct harness *h, const struct img *im, unsigned pick, uint8_t op)
{
	Skyroot__ChunkData d = SKYROOT__CHUNK_DATA__INIT;
	Skyroot__Error e = SKYROOT__ERROR__INIT;
	struct req r;
	uint8_t *buf;
	size_t off, len;

	if (h->nq == 0)
		return;
	pick %= h->nq;
	r = h->q[pick];
	memmove(&h->q[pick], &h->q[pick + 1], (h->nq - pick - 1) * sizeof(h->q[0]));
	h->nq--;
	off = (size_t)r.index * im->chunk;
	len = off < im->size ? (im->size - off < im->chunk ? im->size - off : im->chunk) : 0;
	buf = malloc(len + 2);
	if (!buf)
		abort();
	if (len)
		memcpy(buf, im->bytes + off, len);
	d.image_id = r.image;
	d.index = r.index;
	d.data.data = buf;
	d.data.len = len;
	switch (op % 8) {
	case 1: /* short */
		d.data.len = len ? len - 1 : 0;
		break;
	case 2: /* one byte flipped */
		if (len)
			buf[op % len] ^= 1;
		break;
	case 3: /* the wrong index */
		d.index = r.index + 1;
		break;
	case 4: /* another image */
		d.image_id = "img-other";
		break;
	case 5: /* the controller cannot */
		e.code = (op & 0x10) ? SKYROOT__ERROR_CODE__ERROR_BUSY : SKYROOT__ERROR_CODE__ERROR_CHUNK_CORRUPT;
		e.message = "fuzz";
		(void)imgcache_on_error(c, r.id, &e); /* false: one the cache had dropped */
		free(buf);
		return;
	case 6: /* one byte too many */
		buf[len] = 0;
		d.data.len = len + 1;
		break;
	case 7: { /* as the tail form hands it over: in pieces, maybe cut off */
		size_t piece = 1 + (size_t)pick * 97 + (size_t)(r.index % 7) * 13, sent = 0;
		bool cut = r.index % 5 == 4;
		d.data.len = 0;
		(void)imgcache_chunk_begin(c, r.id, &d, len);
		while (sent < len && !(cut && sent >= len / 2)) {
			size_t n = len - sent < piece ? len - sent : piece;
			imgcache_chunk_data(c, buf + sent, n);
			sent += n;
		}
		if (cut) {
			imgcache_session_down(c);
			h->nq = 0;
			imgcache_session_up(c);
		} else {
			imgcache_chunk_end(c);
		}
		free(buf);
		return;
	}
	default:
		break;
	}
	(void)imgcache_on_chunk(c, r.id, &d);
	/* An answer nobody asked for is not ours. */
	if (imgcache_on_chunk(c, r.id, &d))
		abort();
	free(buf);
}

static void check_ready(struct imgcache *c, const struct img *im, uint64_t budget)
{
	uint64_t size = 0;
	int fd = imgcache_fd(c, im->id, &size);
	if (imgcache_used(c) > budget)
		abort();
	if (fd < 0)
		return;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) !=
			     (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK))
		abort();
	if (size != im->size)
		abort();
	uint8_t *got = malloc(size ? size : 1);
	if (!got || pread(fd, got, size, 0) != (ssize_t)size || memcmp(got, im->bytes, size) != 0)
		abort();
	if (pwrite(fd, "x", 1, 0) >= 0)
		abort();
	free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness h = { 0 };
	struct imgcache *c = NULL;
	struct img im = { 0 };
	uint8_t flags;
	size_t len;
	uint64_t budget;
	const uint8_t *script;
	size_t nscript;

	init_once();
	if (size < 4)
		return 0;
	flags = data[0];
	im.chunk = 1u + data[1] * 64u;
	len = ((size_t)data[2] << 8 | data[3]) % (IMAGE_MAX + 1);
	data += 4;
	size -= 4;
	if (len > size)
		len = size;
	im.bytes = data;
	im.size = len;
	snprintf(im.id, sizeof(im.id), "img-%02x", flags & 0x60);
	script = data + len;
	nscript = size - len;
	budget = (flags & 0x80) ? im.size / 2 + 1 : 4 * IMAGE_MAX;
	make_manifest(&im, flags);

	if (imgcache_new(&ops, &h, budget, &c) < 0)
		abort();
	imgcache_set_signing_key(c, pub);
	imgcache_session_up(c);
	fetch(c, &im);
	for (size_t i = 0; i < nscript && i < STEPS_MAX; i++) {
		uint8_t b = script[i];
		switch (b >> 5) {
		case 0:
		case 1:
		case 2:
			answer(c, &h, &im, b & 7, (uint8_t)(b >> 3) & 7 ? (uint8_t)((b >> 3) & 7) : 0);
			break;
		case 3: /* answers in order, all correct */
			while (h.nq)
				answer(c, &h, &im, 0, 0);
			break;
		case 4: /* the link drops; the requests on it are lost */
			imgcache_session_down(c);
			h.nq = 0;
			h.refuse_sends = b & 1;
			if (!(b & 2)) {
				h.refuse_sends = false;
				imgcache_session_up(c);
			}
			break;
		case 5: /* the controller sends the manifest again */
			fetch(c, &im);
			break;
		case 6:
			imgcache_hold(c, im.id, b & 1);
			imgcache_tick(c);
			break;
		default:
			imgcache_report(c);
			check_ready(c, &im, budget);
			break;
		}
		if (imgcache_outstanding(c) > IMGCACHE_WINDOW)
			abort();
	}
	while (h.nq)
		answer(c, &h, &im, 0, 0);
	check_ready(c, &im, budget);
	imgcache_free(c);
	free(im.manifest);
	free(im.sig);
	return 0;
}
