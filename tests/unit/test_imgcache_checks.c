/* The image cache's chunk checks off the loop (agent/images.c,
 * agent/chunkcheck.c): a chunk counts only once its check is back; the
 * window counts chunks being checked with the requests; a corrupt chunk
 * fails the image and is reported; a check that comes back for an image
 * that failed, was fetched again or was freed meanwhile changes nothing
 * (and frees what it must: run under ASan); a session that drops while
 * chunks are checked does not ask for them again.  The checks are held in
 * a queue here and run when each case says, so every interleaving is
 * chosen, not hoped for. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/images.h"
#include "common/util.h"
#include "common/x509.h"

#define CH 4096u
#define NCH 12u
#define SIZE (NCH * CH - 100u) /* a short last chunk */

struct job {
	void (*work)(void *);
	void (*done)(void *);
	void *arg;
};

static struct world {
	EVP_PKEY *key;
	uint8_t pub[32];
	uint8_t image[SIZE];
	struct job jobs[64];
	unsigned njobs;
	struct {
		uint64_t req;
		uint32_t index;
	} reqs[256];
	unsigned nreqs, next_req, corrupt_reports;
	bool refuse_work;
} w;

static int t_send(void *ctx, Skyroot__Envelope *env, uint64_t *req)
{
	(void)ctx;
	*req = ++w.next_req;
	if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST) {
		assert_true(w.nreqs < 256);
		w.reqs[w.nreqs].req = *req;
		w.reqs[w.nreqs].index = env->chunk_request->index;
		w.nreqs++;
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_CORRUPT) {
		w.corrupt_reports++;
	}
	return 0;
}

static int t_work(void *ctx, void (*work)(void *), void (*done)(void *), void *arg)
{
	(void)ctx;
	if (w.refuse_work)
		return -ENOMEM;
	assert_true(w.njobs < 64);
	w.jobs[w.njobs++] = (struct job){work, done, arg};
	return 0;
}

static const struct imgcache_ops ops = {.send = t_send, .work = t_work};

/* Run the oldest held check (its work, then its done, as the loop would). */
static void run_one(void)
{
	struct job j;

	assert_true(w.njobs > 0);
	j = w.jobs[0];
	memmove(&w.jobs[0], &w.jobs[1], (w.njobs - 1) * sizeof(j));
	w.njobs--;
	j.work(j.arg);
	j.done(j.arg);
}

static void run_all(void)
{
	while (w.njobs)
		run_one();
}

static uint32_t len_of(uint32_t i)
{
	return i + 1 < NCH ? CH : SIZE - (NCH - 1) * CH;
}

static void fetch(struct imgcache *c, const char *id)
{
	Skyroot__ImageManifest m = SKYROOT__IMAGE_MANIFEST__INIT;
	Skyroot__SignedManifest sm = SKYROOT__SIGNED_MANIFEST__INIT;
	Skyroot__ImageFetch f = SKYROOT__IMAGE_FETCH__INIT;
	ProtobufCBinaryData dg[NCH];
	uint8_t dgs[NCH][32], whole[32];
	uint8_t *packed, *sig;
	size_t sig_len;

	for (uint32_t i = 0; i < NCH; i++) {
		sky_sha256(w.image + i * CH, len_of(i), dgs[i]);
		dg[i].data = dgs[i];
		dg[i].len = 32;
	}
	sky_sha256(w.image, SIZE, whole);
	m.id = (char *)id;
	m.name = "t";
	m.format = "raw";
	m.size = SIZE;
	m.chunk_size = CH;
	m.n_chunk_digests = NCH;
	m.chunk_digests = dg;
	m.sha256.data = whole;
	m.sha256.len = 32;
	packed = malloc(skyroot__image_manifest__get_packed_size(&m));
	assert_non_null(packed);
	sm.manifest.len = skyroot__image_manifest__pack(&m, packed);
	sm.manifest.data = packed;
	assert_int_equal(sky_ed25519_sign(w.key, packed, sm.manifest.len, &sig, &sig_len), 0);
	sm.signature.data = sig;
	sm.signature.len = sig_len;
	f.manifest = &sm;
	imgcache_on_fetch(c, &f);
	free(packed);
	OPENSSL_free(sig);
}

/* Answer the k-th request the cache sent, in pieces, spoiling one byte
 * when asked. */
static void answer(struct imgcache *c, const char *id, unsigned k, bool spoil)
{
	Skyroot__ChunkData d = SKYROOT__CHUNK_DATA__INIT;
	uint32_t i = w.reqs[k].index, len = len_of(i);
	uint8_t buf[CH];

	memcpy(buf, w.image + i * CH, len);
	if (spoil)
		buf[len / 2] ^= 1;
	d.image_id = (char *)id;
	d.index = i;
	assert_true(imgcache_chunk_begin(c, w.reqs[k].req, &d, len));
	imgcache_chunk_data(c, buf, 1000);
	imgcache_chunk_data(c, buf + 1000, len - 1000);
	imgcache_chunk_end(c);
}

static struct imgcache *setup_cache(void)
{
	struct imgcache *c;

	memset(&w.jobs, 0, sizeof(w.jobs));
	w.njobs = w.nreqs = w.corrupt_reports = 0;
	w.refuse_work = false;
	assert_int_equal(imgcache_new(&ops, NULL, 64u << 20, &c), 0);
	imgcache_set_signing_key(c, w.pub);
	imgcache_session_up(c);
	return c;
}

static int group_setup(void **state)
{
	size_t n = 32;
	(void)state;
	if (sky_key_new_ed25519(&w.key) < 0 || sky_key_raw_public(w.key, w.pub, &n) < 0)
		return -1;
	for (size_t i = 0; i < SIZE; i++)
		w.image[i] = (uint8_t)(i * 131u + (i >> 9));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(w.key);
	return 0;
}

/* Every chunk in, none checked yet: not ready, nothing more asked for
 * than the window; the checks back: ready, sealed, the image's bytes. */
static void test_counts_only_after_check(void **state)
{
	struct imgcache *c = setup_cache();
	uint64_t size;
	uint8_t back[SIZE];
	int fd;
	(void)state;

	fetch(c, "img-a");
	assert_int_equal(w.nreqs, IMGCACHE_WINDOW);
	for (unsigned k = 0; k < IMGCACHE_WINDOW; k++)
		answer(c, "img-a", k, false);
	/* the window is full of chunks being checked: no new request */
	assert_int_equal(w.nreqs, IMGCACHE_WINDOW);
	assert_int_equal(w.njobs, IMGCACHE_WINDOW);
	assert_int_equal(imgcache_fd(c, "img-a", &size), -EAGAIN);
	run_one(); /* one back: one more request */
	assert_int_equal(w.nreqs, IMGCACHE_WINDOW + 1);
	for (unsigned k = IMGCACHE_WINDOW; k < w.nreqs; k++) {
		answer(c, "img-a", k, false);
		run_all();
	}
	assert_int_equal(w.nreqs, NCH);
	fd = imgcache_fd(c, "img-a", &size);
	assert_true(fd >= 0);
	assert_int_equal(size, SIZE);
	assert_int_equal(pread(fd, back, SIZE, 0), SIZE);
	assert_memory_equal(back, w.image, SIZE);
	assert_true(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE);
	imgcache_free(c);
}

/* A spoiled chunk: the check fails the image, names the reason, reports
 * the chunk to the controller. */
static void test_corrupt_chunk_fails_image(void **state)
{
	struct imgcache *c = setup_cache();
	(void)state;

	fetch(c, "img-b");
	answer(c, "img-b", 0, false);
	answer(c, "img-b", 1, true);
	assert_int_equal(imgcache_fd(c, "img-b", NULL), -EAGAIN); /* not yet: still checking */
	run_all();
	assert_int_equal(imgcache_fd(c, "img-b", NULL), -ENOENT);
	assert_non_null(strstr(imgcache_error(c, "img-b"), "failed its SHA-256 check"));
	assert_int_equal(w.corrupt_reports, 1);
	imgcache_free(c);
}

/* The image fails (the controller cannot send a chunk) while two of its
 * chunks are checked; then it is fetched again.  The old checks change
 * nothing; the new fetch completes on its own chunks. */
static void test_stale_checks_ignored(void **state)
{
	struct imgcache *c = setup_cache();
	Skyroot__Error e = SKYROOT__ERROR__INIT;
	unsigned first;
	(void)state;

	fetch(c, "img-c");
	answer(c, "img-c", 0, false);
	answer(c, "img-c", 1, true); /* would fail it, but comes back too late */
	e.code = SKYROOT__ERROR_CODE__ERROR_NOT_FOUND;
	e.message = "gone";
	assert_true(imgcache_on_error(c, w.reqs[2].req, &e));
	assert_int_equal(imgcache_fd(c, "img-c", NULL), -ENOENT);
	assert_non_null(strstr(imgcache_error(c, "img-c"), "could not send chunk"));
	first = w.nreqs;
	fetch(c, "img-c"); /* again: a new fetch */
	assert_int_equal(imgcache_fd(c, "img-c", NULL), -EAGAIN);
	/* the new fetch's chunks 0 and 1 arrive and wait for their checks,
	 * behind the old fetch's checks of the same chunks */
	assert_int_equal(w.reqs[first].index, w.reqs[0].index);
	assert_int_equal(w.reqs[first + 1].index, w.reqs[1].index);
	answer(c, "img-c", first, false);
	answer(c, "img-c", first + 1, false);
	run_all();
	assert_int_equal(imgcache_fd(c, "img-c", NULL), -EAGAIN);
	assert_int_equal(w.corrupt_reports, 0);
	for (unsigned k = first + 2; k < w.nreqs; k++) {
		answer(c, "img-c", k, false);
		run_all();
	}
	assert_true(imgcache_fd(c, "img-c", NULL) >= 0);
	imgcache_free(c);
}

/* The cache is freed with checks in flight: they end later and the last
 * frees it (ASan: no leak, no use after free). */
static void test_free_with_checks_in_flight(void **state)
{
	struct imgcache *c = setup_cache();
	(void)state;

	fetch(c, "img-d");
	answer(c, "img-d", 0, false);
	answer(c, "img-d", 1, false);
	assert_int_equal(w.njobs, 2);
	imgcache_free(c);
	run_all();
}

/* The session drops while chunks are checked: on the next session they
 * are not asked for again, and count when their checks come back. */
static void test_session_drop_keeps_checks(void **state)
{
	struct imgcache *c = setup_cache();
	unsigned before;
	(void)state;

	fetch(c, "img-e");
	answer(c, "img-e", 0, false);
	answer(c, "img-e", 1, false);
	imgcache_session_down(c);
	before = w.nreqs;
	imgcache_session_up(c);
	for (unsigned k = before; k < w.nreqs; k++)
		assert_true(w.reqs[k].index != w.reqs[0].index && w.reqs[k].index != w.reqs[1].index);
	run_all();
	for (unsigned k = before; k < w.nreqs; k++) {
		answer(c, "img-e", k, false);
		run_all();
	}
	assert_true(imgcache_fd(c, "img-e", NULL) >= 0);
	imgcache_free(c);
}

/* Without a worker (ops.work refused) each check runs at once. */
static void test_inline_when_work_refused(void **state)
{
	struct imgcache *c = setup_cache();
	(void)state;

	w.refuse_work = true;
	fetch(c, "img-f");
	for (unsigned k = 0; k < w.nreqs; k++)
		answer(c, "img-f", k, false);
	assert_int_equal(w.njobs, 0);
	assert_true(imgcache_fd(c, "img-f", NULL) >= 0);
	imgcache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_only_after_check),
		cmocka_unit_test(test_corrupt_chunk_fails_image),
		cmocka_unit_test(test_stale_checks_ignored),
		cmocka_unit_test(test_free_with_checks_in_flight),
		cmocka_unit_test(test_session_drop_keeps_checks),
		cmocka_unit_test(test_inline_when_work_refused),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
