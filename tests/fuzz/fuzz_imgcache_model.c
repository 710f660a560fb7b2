/* fuzz_imgcache: the model of what the image cache must do, from the
 * manifest's rules alone; the controller's side of the link (the cache's
 * requests queued, every frame it sends checked); and the checks comparing
 * the cache with the model.  Any difference aborts, naming the rule. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_imgcache.h"

struct world icw;

/* SHA-256 with the digest fetched once (a fetch per call, as sky_sha256()
 * does, is much of the cost of hashing small chunks). */
void ic_sha256(const void *p, size_t len, uint8_t out[32])
{
	static EVP_MD *md;
	unsigned int n = 32;
	if (!md && !(md = EVP_MD_fetch(NULL, "SHA256", NULL)))
		abort();
	if (EVP_Digest(p, len, out, &n, md, NULL) != 1 || n != 32)
		abort();
}

static const char *state_name(enum mstate s)
{
	return s == S_NONE ? "none" : s == S_FETCHING ? "fetching" : s == S_READY ? "ready" : "failed";
}

/* The cache did what the model says it must not: say what, and crash so
 * that libFuzzer keeps the input. */
_Noreturn void ic_broken(const char *rule)
{
	const struct mimg *x = &icw.im[0], *t = &icw.im[1];
	fprintf(stderr, "fuzz_imgcache: the cache broke a rule: %s (model: manifest sig %s, rules %s; image %s%s%s, "
			"%zu of %zu chunks; twin %s, %zu chunks; step %u)\n",
		rule, x->m.sig_ok ? "good" : "bad", x->m.rules_ok ? "kept" : "broken", state_name(x->st),
		x->st == S_FAILED ? ": " : "", x->st == S_FAILED ? x->why : "", x->n_have, x->m.n, state_name(t->st),
		t->n_have, icw.step);
	abort();
}

/* ---- the model: what the manifest's rules say ---- */

/* The rules a signed manifest must also keep: a usable id (1 to 31
 * characters), a chunk size of 1 to IMGCACHE_MAX_CHUNK, one 32-byte digest
 * per chunk of the size, a 32-byte SHA-256 of the whole. */
void ic_rules(struct manifest *m)
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
size_t ic_want_len(const struct mimg *x, uint32_t i)
{
	uint64_t off = (uint64_t)i * x->m.chunk;
	return (size_t)(x->m.size - off < x->m.chunk ? x->m.size - off : x->m.chunk);
}

/* The cache forgets its requests for image x (all, for NULL). */
static void kill_requests(const struct mimg *x)
{
	for (unsigned k = 0; k < icw.nq; k++)
		if (!x || icw.q[k].img == x)
			icw.q[k].live = false;
}

void ic_fail_as(struct mimg *x, const char *why)
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
void ic_complete_if_done(struct mimg *x)
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
			if (memcmp(x->m.dg[i], y->m.dg[j], 32) == 0 && ic_want_len(x, i) == ic_want_len(y, j)) {
				memcpy(x->bytes + (size_t)i * x->m.chunk, y->bytes + (size_t)j * y->m.chunk,
				       ic_want_len(x, i));
				x->have[i] = 1;
				x->n_have++;
				break;
			}
}

/* Image x's manifest arrives (again). */
void ic_model_fetch(struct mimg *x)
{
	struct mimg *y = x == &icw.im[0] ? &icw.im[1] : &icw.im[0];
	if (!x->m.sig_ok) {
		/* Refused; reported under the id it claims, unless a ready
		 * image has that id. */
		if (strlen(x->m.id) < 32 && x->st != S_READY) {
			ic_fail_as(x, WHY_SIG);
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
	if (ram(y) + x->m.size > icw.budget && y->st == S_READY && !y->holds && x->m.size <= icw.budget)
		y->st = S_NONE;
	if (ram(y) + x->m.size > icw.budget) {
		ic_fail_as(x, WHY_FULL);
		return;
	}
	free(x->bytes);
	x->bytes = calloc((size_t)x->m.size + 1, 1);
	if (!x->bytes)
		abort();
	x->st = S_FETCHING;
	copy_local(x, y);
	ic_complete_if_done(x);
}

/* ---- the controller's side of the link ---- */

static struct mimg *find_img(const char *id)
{
	for (unsigned k = 0; k < 2; k++)
		if (id && strcmp(id, icw.im[k].m.id) == 0)
			return &icw.im[k];
	return NULL;
}

void ic_q_add(uint64_t id, struct mimg *x, uint32_t index)
{
	if (icw.nq == QUEUE_MAX) { /* forget the oldest request the cache gave up */
		unsigned k = 0;
		while (k < icw.nq && icw.q[k].live)
			k++;
		if (k == icw.nq)
			abort();
		memmove(&icw.q[k], &icw.q[k + 1], (icw.nq - k - 1) * sizeof(icw.q[0]));
		icw.nq--;
	}
	icw.q[icw.nq++] = (struct req){ .id = id, .img = x, .index = index, .live = true };
}

unsigned ic_n_live(void)
{
	unsigned n = 0;
	for (unsigned k = 0; k < icw.nq; k++)
		n += icw.q[k].live;
	return n;
}

static struct mimg *check_request(const Skyroot__ChunkRequest *cr)
{
	/* Only for an image being fetched, only a chunk it lacks, once. */
	struct mimg *x = find_img(cr->image_id);
	if (!x || x->st != S_FETCHING || cr->index >= x->m.n || x->have[cr->index])
		ic_broken("a chunk request for an image not being fetched, a chunk it holds, or past its end");
	for (unsigned k = 0; k < icw.nq; k++)
		if (icw.q[k].live && icw.q[k].img == x && icw.q[k].index == cr->index)
			ic_broken("a chunk requested twice at once");
	return x;
}

static void check_report(const Skyroot__ImageStatus *st)
{
	if (!st)
		ic_broken("an empty status report");
	for (size_t k = 0; k < st->n_images; k++) {
		const Skyroot__CachedImage *ci = st->images[k];
		const struct mimg *x = find_img(ci->id);
		if (!x || x->st != S_READY || ci->size != x->m.size || ci->sha256.len != 32 ||
		    memcmp(ci->sha256.data, x->m.sha, 32) != 0)
			ic_broken("an image reported ready that is not, or with another size or SHA-256");
	}
	for (size_t k = 0; k < st->n_fetching; k++) {
		const Skyroot__ImageProgress *pr = st->fetching[k];
		const struct mimg *x = find_img(pr->id);
		if (!x || x->st != S_FETCHING || pr->chunks != x->m.n || pr->done_chunks != x->n_have)
			ic_broken("a fetch's progress reported wrong");
	}
	for (size_t k = 0; k < st->n_errors; k++) {
		const Skyroot__ImageError *er = st->errors[k];
		const struct mimg *x = find_img(er->id);
		if (!x || x->st != S_FAILED || !er->error || !strstr(er->error, x->why))
			ic_broken("a refusal reported that did not happen, or for another reason");
	}
	if (st->n_images + st->n_fetching + st->n_errors > 2)
		ic_broken("a report of more images than were sent");
}

static int h_send(void *ctx, Skyroot__Envelope *env, uint64_t *req_id)
{
	(void)ctx;
	if (!icw.session)
		ic_broken("a frame sent on a link the cache was told is down");
	if (icw.refuse_sends)
		return -ENOTCONN;
	/* Whatever the cache sends must be a frame the link can carry. */
	if (skyroot__envelope__get_packed_size(env) > 256u * 1024u)
		ic_broken("a frame too large for the link");
	*req_id = ++icw.next_id;
	if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST) {
		struct mimg *x = check_request(env->chunk_request);
		ic_q_add(*req_id, x, env->chunk_request->index);
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_IMAGE_STATUS) {
		check_report(env->image_status);
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_CORRUPT) {
		const Skyroot__ChunkCorrupt *cc = env->chunk_corrupt;
		const struct mimg *x = icw.rep_img;
		if (!x || !cc->image_id || strcmp(cc->image_id, x->m.id) != 0 || cc->index != icw.rep_index ||
		    cc->expected_sha256.len != 32 || memcmp(cc->expected_sha256.data, x->m.dg[icw.rep_index], 32) != 0)
			ic_broken("a corrupt-chunk report for a chunk that did not fail its digest, or naming another");
		icw.rep_got++;
	} else {
		ic_broken("a frame of a kind the cache has no business sending");
	}
	return 0;
}

const struct imgcache_ops ic_ops = { .send = h_send };

/* ---- comparing the cache with the model ---- */

static void check_content(struct mimg *x, int fd, uint64_t size)
{
	uint8_t *got = malloc(size ? size : 1);
	uint8_t sha[32];
	if (!got || pread(fd, got, size, 0) != (ssize_t)size || memcmp(got, x->bytes, size) != 0)
		ic_broken("a ready image does not hold the bytes of the chunks it accepted");
	for (uint32_t i = 0; i < x->m.n; i++) {
		ic_sha256(got + (size_t)i * x->m.chunk, ic_want_len(x, i), sha);
		if (memcmp(sha, x->m.dg[i], 32) != 0)
			ic_broken("a ready image's chunk does not hash to its digest in the signed manifest");
	}
	free(got);
	if (pwrite(fd, "x", 1, 0) >= 0 || ftruncate(fd, (off_t)size + 1) == 0 || (size && ftruncate(fd, 0) == 0))
		ic_broken("a ready image can be written, grown or shrunk");
	x->content_checked = true;
}

static void check_image(struct mimg *x, bool content)
{
	uint64_t size = 0;
	int fd = imgcache_fd(icw.c, x->m.id, &size);
	const char *why = imgcache_error(icw.c, x->m.id);

	switch (x->st) {
	case S_NONE:
		if (fd != -ENOENT || strcmp(why, WHY_NONE) != 0)
			ic_broken("a refused manifest or an evicted image left an image behind");
		break;
	case S_FAILED:
		if (fd != -ENOENT || !strstr(why, x->why))
			ic_broken("a refused image is not refused (usable, or for another reason)");
		break;
	case S_FETCHING:
		if (fd != -EAGAIN)
			ic_broken("an image being fetched is not (ready or refused or gone)");
		if (!imgcache_active(icw.c))
			ic_broken("a fetch under way, and the cache says it needs no ticks");
		break;
	case S_READY: {
		if (fd < 0 || size != x->m.size)
			ic_broken("an image that must be ready is not (or its size is wrong)");
		int seals = fcntl(fd, F_GET_SEALS);
		if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) !=
				     (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK))
			ic_broken("a ready image's memfd is not sealed");
		if (content || !x->content_checked)
			check_content(x, fd, size);
		break;
	}
	}
}

void ic_check_state(bool content)
{
	if (imgcache_outstanding(icw.c) > IMGCACHE_WINDOW || imgcache_outstanding(icw.c) != ic_n_live())
		ic_broken("chunk requests outstanding: over the window, or not those the cache was sent answers for");
	/* RAM: exactly the images fetching or ready, never over the budget. */
	if (imgcache_used(icw.c) != ram(&icw.im[0]) + ram(&icw.im[1]) || imgcache_used(icw.c) > icw.budget)
		ic_broken("RAM accounted wrong, or over the budget");
	check_image(&icw.im[0], content);
	check_image(&icw.im[1], content);
}

void ic_link_down(void)
{
	kill_requests(NULL);
	imgcache_session_down(icw.c);
	icw.session = false;
}

void ic_link_up(void)
{
	icw.session = true;
	imgcache_session_up(icw.c);
}
