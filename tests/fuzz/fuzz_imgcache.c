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
 * 20 s in one; 2 shared cores at a load average of about 10).
 *
 * This file is the driver (the script's steps, LLVMFuzzerTestOneInput);
 * the model and its checks are in fuzz_imgcache_model.c, the hostile
 * manifests and answers in fuzz_imgcache_hostile.c (fuzz_imgcache.h). */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/fuzz/fuzz_imgcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *pub;

static void init_once(void)
{
	if (pub)
		return;
	sky_log_set_level(SKY_LOG_NONE);
	pub = ic_keys_init();
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
	ic_model_fetch(x);
	imgcache_on_fetch(icw.c, &f);
}

/* The k-th live request's place in the queue, or -1. */
static int live_at(unsigned k)
{
	unsigned n = ic_n_live();
	if (!n)
		return -1;
	k %= n;
	for (unsigned i = 0; i < icw.nq; i++)
		if (icw.q[i].live && k-- == 0)
			return (int)i;
	return -1;
}

static void drain(void)
{
	int k;
	for (unsigned guard = 0; guard < 8 * CHUNKS_MAX + 64 && (k = live_at(0)) >= 0; guard++)
		ic_answer((unsigned)k, A_HONEST, D_WHOLE);
}

static void hold(struct mimg *x, bool on)
{
	if (x->st != S_NONE) /* the cache knows the image */
		x->holds = on ? x->holds + 1 : x->holds ? x->holds - 1 : 0;
	imgcache_hold(icw.c, x->m.id, on);
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
			ic_answer((unsigned)k, am <= A_ERROR ? (enum amode)am : in_pieces_mode[am - A_ERROR - 1],
			       am <= A_ERROR ? D_WHOLE : am < 14 ? D_PIECES : D_CUT);
		break;
	}
	case 2: /* answer all, honestly, in order */
		drain();
		break;
	case 3: /* the link */
		if ((b & 3) == 0) {
			if (icw.session)
				ic_link_down();
			ic_link_up();
		} else if ((b & 3) == 1) {
			if (icw.session)
				ic_link_down();
		} else if ((b & 3) == 2) {
			if (!icw.session)
				ic_link_up();
		} else {
			icw.refuse_sends = !icw.refuse_sends; /* the link broke unnoticed, or healed */
		}
		break;
	case 4: /* the controller sends a manifest (again): the image's, or the twin's */
		if (icw.refetches++ < REFETCH_MAX)
			fetch(&icw.im[b & 1]);
		break;
	case 5: /* a guest starts or stops using an image */
		hold(&icw.im[(b >> 1) & 1], b & 1);
		if (icw.session)
			imgcache_tick(icw.c);
		break;
	case 6:
		if (icw.session)
			imgcache_report(icw.c);
		ic_check_state(true);
		break;
	default: /* late answers: to a request the cache gave up, or never made */
		for (unsigned i = 0; i < icw.nq; i++)
			if (!icw.q[i].live) {
				if (b & 1) {
					ic_answer(i, A_HONEST, (b & 4) ? D_PIECES : D_WHOLE);
					return;
				}
				break;
			}
		{
			Skyroot__ChunkData d = SKYROOT__CHUNK_DATA__INIT;
			d.image_id = icw.im[0].m.id;
			if (imgcache_on_chunk(icw.c, (b & 2) ? 0 : icw.next_id + 1, &d))
				ic_broken("an answer to a request never made was taken");
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
	struct mimg *x = &icw.im[0];
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

	memset(&icw, 0, sizeof(icw));
	icw.img = data;
	icw.img_size = len;
	icw.budget = 4 * IMAGE_MAX;
	if (flags & 0x80) /* room for one image, or not even that */
		icw.budget = (flags & 0x10) ? (len ? len : 1) : len / 2 + 1;
	ic_make_honest(&icw.im[1].m, ID_TWIN, chunk);
	ic_make_manifest(chunk, flags);

	if (imgcache_new(&ic_ops, NULL, icw.budget, &icw.c) < 0)
		abort();
	imgcache_set_signing_key(icw.c, pub);
	ic_link_up();
	ic_check_state(false);
	fetch(x);
	ic_check_state(false);
	for (size_t i = len; i < size && icw.step < STEPS_MAX; i++) {
		icw.step++;
		run_step(data[i]);
		ic_check_state(false);
	}

	/* The end: a new link (the agent reconnects after a send failed),
	 * every chunk served honestly; then nothing held, the image's manifest
	 * again if it failed or was evicted, and every chunk served honestly. */
	icw.step++;
	icw.refuse_sends = false;
	if (icw.session)
		ic_link_down();
	ic_link_up();
	drain();
	ic_check_state(false);
	for (unsigned k = 0; k < 2; k++)
		while (icw.im[k].holds)
			hold(&icw.im[k], false);
	if (x->st == S_FAILED || x->st == S_NONE)
		fetch(x);
	drain();
	ic_check_state(true);
	/* A signed manifest of the served image's chunks (a wrong whole-image
	 * SHA-256 or not), served honestly to the end: ready, with those bytes. */
	if (x->m.servable && len <= icw.budget && x->st != S_READY)
		ic_broken("an image whose signed manifest names the served chunks, served honestly to the end, is not ready");
	if (x->st == S_READY && x->m.servable && memcmp(x->bytes, icw.img, len) != 0)
		ic_broken("the honest image arrived with other bytes");

	imgcache_free(icw.c);
	for (unsigned k = 0; k < 2; k++) {
		free(icw.im[k].bytes);
		free(icw.im[k].m.packed);
		free(icw.im[k].m.sig);
	}
	return 0;
}
