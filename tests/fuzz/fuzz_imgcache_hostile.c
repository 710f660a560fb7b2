/* fuzz_imgcache: the hostile controller.  The image's signed manifest as
 * the input's header spoils it (or not), beside the twin's honest one; and
 * the answers to the cache's chunk requests as the script says: right,
 * short, long, flipped, another chunk's bytes, empty, wrong index or image,
 * an error; whole, in the frame's tail form, or cut off by the link
 * dropping.  The model (fuzz_imgcache_model.c) is told what each must do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/x509.h"
#include "tests/fuzz/fuzz_imgcache.h"

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

const uint8_t *ic_keys_init(void)
{
	size_t n = sizeof(pub);
	if (key)
		return pub;
	/* Fixed keys: a crash replays exactly. */
	key = fixed_key(0x11);
	other_key = fixed_key(0x22);
	if (sky_key_raw_public(key, pub, &n) < 0 || n != 32)
		abort();
	return pub;
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
void ic_make_honest(struct manifest *m, const char *id, uint32_t chunk)
{
	size_t n = icw.img_size / chunk + (icw.img_size % chunk ? 1 : 0);
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->size = icw.img_size;
	m->chunk = chunk;
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		ic_sha256(icw.img + i * chunk, min_sz(chunk, icw.img_size - i * chunk), m->dg[i]);
		m->dlen[i] = 32;
	}
	ic_sha256(icw.img, icw.img_size, m->sha);
	m->shalen = 32;
	pack_sign(m, key, 1);
	m->sig_ok = true;
	m->servable = true;
	ic_rules(m);
}

/* The image's manifest: the honest one (the twin's, made first) spoiled as
 * flags say. */
void ic_make_manifest(uint32_t chunk, uint8_t flags)
{
	struct manifest *m = &icw.im[0].m;
	const struct manifest *h = &icw.im[1].m;
	unsigned mode = flags & 0x0f, p = (flags >> 4) & 7;
	size_t n = icw.im[1].m.n;
	uint64_t later_size = 0;

	*m = icw.im[1].m;
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
		ic_sha256(&flags, 1, m->dg[n]);
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
	ic_rules(m);
	/* Servable: signed, keeping the rules, and its chunks those of the
	 * served image (the whole-image SHA-256 may still be wrong). */
	m->servable = m->sig_ok && m->rules_ok && m->size == h->size && m->chunk == h->chunk && m->n == h->n &&
		      memcmp(m->dg, h->dg, sizeof(m->dg[0]) * m->n) == 0;
}

/* The image's bytes at chunk i by x's manifest's cut (what an honest
 * controller holding this image sends), as far as the image goes. */
static size_t served(const struct mimg *x, uint32_t i, const uint8_t **p)
{
	uint64_t off = (uint64_t)i * x->m.chunk;
	*p = icw.img;
	if (off >= icw.img_size)
		return 0;
	*p = icw.img + off;
	return min_sz(ic_want_len(x, i), icw.img_size - (size_t)off);
}

/* The answer in the tail form: begin with the length, the bytes in pieces
 * (a tick between them, as the loop may run timers while a chunk arrives:
 * no report may count it yet), end; or cut off after cut bytes by the link
 * dropping.  Returns what begin said. */
static bool in_pieces(const struct req *r, Skyroot__ChunkData *d, const uint8_t *buf, size_t len, enum delivery how)
{
	size_t piece = 1 + ((size_t)icw.step * 97u + r->index * 13u) % (len / 2 + 1);
	size_t cut = how == D_PIECES ? len : ((size_t)icw.step * 31u + r->index) % (len + 1), sent = 0;
	bool taken;

	taken = imgcache_chunk_begin(icw.c, r->id, d, len);
	while (sent < cut) {
		size_t n = min_sz(piece, cut - sent);
		imgcache_chunk_data(icw.c, buf + sent, n);
		if (!sent) {
			if (icw.session)
				imgcache_tick(icw.c);
			ic_check_state(false);
		}
		sent += n;
	}
	if (how == D_PIECES)
		return taken; /* the caller ends it, its model first */
	/* Cut off: nothing of it counts; it is asked for again.  The request
	 * stays in the queue, dead, so that a late answer may come for it. */
	ic_link_down();
	ic_q_add(r->id, r->img, r->index);
	icw.q[icw.nq - 1].live = false;
	if (icw.step % 4) /* back up, or left down */
		ic_link_up();
	return taken;
}

/* Answer queued request k (live or not) the way mode says, delivered as how
 * says. */
void ic_answer(unsigned k, enum amode mode, enum delivery how)
{
	Skyroot__ChunkData d = SKYROOT__CHUNK_DATA__INIT;
	Skyroot__Error e = SKYROOT__ERROR__INIT;
	struct req r = icw.q[k];
	struct mimg *x = r.img;
	const uint8_t *src;
	size_t len = served(x, r.index, &src);
	uint8_t *buf;
	bool ok, check = r.live && mode != A_OTHER_IMAGE && mode != A_WRONG_INDEX;

	memmove(&icw.q[k], &icw.q[k + 1], (icw.nq - k - 1) * sizeof(icw.q[0]));
	icw.nq--;
	if (mode == A_ERROR) {
		bool busy = icw.step & 1;
		e.code = busy ? SKYROOT__ERROR_CODE__ERROR_BUSY : SKYROOT__ERROR_CODE__ERROR_CHUNK_CORRUPT;
		e.message = "fuzz";
		if (r.live && !busy)
			ic_fail_as(x, WHY_ERROR);
		if (imgcache_on_error(icw.c, r.id, &e) != r.live || imgcache_on_error(icw.c, r.id, &e))
			ic_broken("an error answer to a request taken or ignored wrongly, or taken twice");
		return;
	}
	if (mode == A_OTHER_CHUNK && x->m.n > 1)
		len = served(x, (r.index + 1 + icw.step) % (uint32_t)x->m.n, &src);
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
		buf[len++] = (uint8_t)icw.step;
	if (mode == A_FLIP && len)
		buf[icw.step % len] ^= (uint8_t)(1u << (icw.step % 8));
	d.image_id = mode == A_OTHER_IMAGE ? "img-other" : x->m.id;
	d.index = mode == A_WRONG_INDEX ? r.index + 1 : r.index;
	/* The rules: the length the manifest gives (known at the chunk's
	 * header, before its bytes), then its digest (once all are in). */
	if (check && len != ic_want_len(x, r.index)) {
		ic_fail_as(x, WHY_LEN);
		check = false;
	}
	if (how != D_WHOLE) {
		ok = in_pieces(&r, &d, buf, len, how); /* d's data empty, as begin wants */
		if (ok != r.live)
			ic_broken("a chunk's header taken or ignored wrongly");
		if (how != D_PIECES) { /* cut off: not checked, not held */
			free(buf);
			return;
		}
	}
	if (check) {
		uint8_t got[32];
		ic_sha256(buf, len, got);
		if (memcmp(got, x->m.dg[r.index], 32) != 0) {
			ic_fail_as(x, WHY_DIGEST);
			icw.rep_img = x;
			icw.rep_index = r.index;
		} else {
			memcpy(x->bytes + (size_t)r.index * x->m.chunk, buf, len);
			x->have[r.index] = 1;
			x->n_have++;
			ic_complete_if_done(x);
		}
	}
	d.data.data = buf;
	d.data.len = len;
	if (how == D_WHOLE && imgcache_on_chunk(icw.c, r.id, &d) != r.live)
		ic_broken("a chunk answer taken or ignored wrongly");
	else if (how == D_PIECES)
		imgcache_chunk_end(icw.c);
	if (icw.rep_img && icw.rep_got != (icw.refuse_sends ? 0u : 1u))
		ic_broken("a chunk that failed its digest not reported to the controller once");
	icw.rep_img = NULL;
	icw.rep_got = 0;
	/* Never twice, whole or in pieces. */
	if (imgcache_on_chunk(icw.c, r.id, &d) || imgcache_chunk_begin(icw.c, r.id, &d, len))
		ic_broken("a chunk answer taken twice");
	imgcache_chunk_data(icw.c, buf, len);
	imgcache_chunk_end(icw.c);
	free(buf);
}
