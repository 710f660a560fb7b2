/* The controller's cache of verified chunks (controller/skyrootd/chunk_cache.c):
 * its bound in bytes holds whatever is put, a chunk larger than the bound is
 * not kept; the least recently used go first (a get counts as a use); bytes
 * that do not hash to their digest are never kept; a smaller bound evicts at
 * once and 0 turns it off; a dropped chunk is gone; and threads getting,
 * putting, dropping and resizing at once never see a torn or wrong chunk
 * (each copy out is re-hashed) while the bound holds. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "controller/skyrootd/chunk_cache.h"

#define MIB (1u << 20)

struct chunk {
	uint8_t digest[32];
	uint8_t *data;
	uint32_t size;
};

/* Bytes of its own for chunk i (a cheap generator: distinct for each i). */
static void chunk_make(struct chunk *c, unsigned i, uint32_t size)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);

	c->size = size;
	c->data = malloc(size ? size : 1);
	assert_non_null(c->data);
	for (uint32_t k = 0; k < size; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		c->data[k] = (uint8_t)x;
	}
	sky_sha256(c->data, size, c->digest);
}

static void chunk_free(struct chunk *c)
{
	free(c->data);
	c->data = NULL;
}

/* Is c in the cache, with its bytes?  (A get: it counts as a use.) */
static bool held(struct chunk_cache *cc, const struct chunk *c)
{
	uint8_t *buf = malloc(c->size ? c->size : 1);
	bool hit;

	assert_non_null(buf);
	hit = chunk_cache_get(cc, c->digest, buf, c->size);
	if (hit)
		assert_memory_equal(buf, c->data, c->size);
	free(buf);
	return hit;
}

static struct chunk_cache_stats stats(struct chunk_cache *cc)
{
	struct chunk_cache_stats st;

	chunk_cache_stats(cc, &st);
	return st;
}

/* Ten chunks of 1 MiB into a cache of 3 MiB: never more than 3 MiB held,
 * the last three kept; a chunk larger than the whole bound is refused
 * before it is even hashed, and changes nothing. */
static void test_bound(void **state)
{
	struct chunk_cache *cc;
	struct chunk c[10], big;
	struct chunk_cache_stats st;

	(void)state;
	assert_int_equal(chunk_cache_new(3 * MIB, &cc), 0);
	for (unsigned i = 0; i < 10; i++) {
		chunk_make(&c[i], i, MIB);
		assert_int_equal(chunk_cache_put(cc, c[i].digest, c[i].data, c[i].size), 0);
		st = stats(cc);
		assert_true(st.bytes <= 3 * MIB);
		assert_int_equal(st.entries, i < 3 ? i + 1 : 3);
	}
	st = stats(cc);
	assert_int_equal(st.bytes, 3 * MIB);
	assert_int_equal(st.inserts, 10);
	assert_int_equal(st.evictions, 7);
	for (unsigned i = 0; i < 7; i++)
		assert_false(held(cc, &c[i]));
	for (unsigned i = 7; i < 10; i++)
		assert_true(held(cc, &c[i]));

	chunk_make(&big, 100, 3 * MIB + 1);
	assert_int_equal(chunk_cache_put(cc, big.digest, big.data, big.size), -EFBIG);
	st = stats(cc);
	assert_int_equal(st.bytes, 3 * MIB);
	assert_int_equal(st.entries, 3);
	assert_false(held(cc, &big));
	for (unsigned i = 7; i < 10; i++)
		assert_true(held(cc, &c[i])); /* nothing was pushed out for it */

	/* The same chunk twice is held once. */
	assert_int_equal(chunk_cache_put(cc, c[9].digest, c[9].data, c[9].size), 0);
	assert_int_equal(stats(cc).entries, 3);
	assert_int_equal(stats(cc).bytes, 3 * MIB);

	chunk_free(&big);
	for (unsigned i = 0; i < 10; i++)
		chunk_free(&c[i]);
	chunk_cache_free(cc);
}

/* Tiny chunks count at least CHUNK_CACHE_MIN_CHARGE each: their number is
 * bounded too. */
static void test_min_charge(void **state)
{
	struct chunk_cache *cc;
	struct chunk c[8];

	(void)state;
	assert_int_equal(chunk_cache_new(4 * CHUNK_CACHE_MIN_CHARGE, &cc), 0);
	for (unsigned i = 0; i < 8; i++) {
		chunk_make(&c[i], 200 + i, i); /* 0 .. 7 bytes */
		assert_int_equal(chunk_cache_put(cc, c[i].digest, c[i].data, c[i].size), 0);
	}
	assert_int_equal(stats(cc).entries, 4);
	assert_int_equal(stats(cc).bytes, 4 * CHUNK_CACHE_MIN_CHARGE);
	assert_false(held(cc, &c[3]));
	assert_true(held(cc, &c[4]));
	assert_true(held(cc, &c[7]));
	for (unsigned i = 0; i < 8; i++)
		chunk_free(&c[i]);
	chunk_cache_free(cc);
}

/* Room for three: A, B, C in; A used; D in: B (the least recently used)
 * goes, not A; then E: C goes. */
static void test_lru_order(void **state)
{
	struct chunk_cache *cc;
	struct chunk a, b, c, d, e;
	uint8_t *buf = malloc(MIB);

	(void)state;
	assert_non_null(buf);
	assert_int_equal(chunk_cache_new(3 * MIB, &cc), 0);
	chunk_make(&a, 1, MIB);
	chunk_make(&b, 2, MIB);
	chunk_make(&c, 3, MIB);
	chunk_make(&d, 4, MIB);
	chunk_make(&e, 5, MIB);
	assert_int_equal(chunk_cache_put(cc, a.digest, a.data, a.size), 0);
	assert_int_equal(chunk_cache_put(cc, b.digest, b.data, b.size), 0);
	assert_int_equal(chunk_cache_put(cc, c.digest, c.data, c.size), 0);
	assert_true(chunk_cache_get(cc, a.digest, buf, MIB)); /* A: the most recent now */
	assert_int_equal(chunk_cache_put(cc, d.digest, d.data, d.size), 0);
	assert_int_equal(stats(cc).evictions, 1);
	/* Looked at without get (a get is a use): B went. */
	assert_false(held(cc, &b));
	/* Order now, least recent first: C, D, A (held(b) missed, used
	 * nothing).  E in: C goes. */
	assert_int_equal(chunk_cache_put(cc, e.digest, e.data, e.size), 0);
	assert_false(held(cc, &c));
	assert_true(held(cc, &a));
	assert_true(held(cc, &d));
	assert_true(held(cc, &e));
	/* A get of the wrong size is a miss (and no use). */
	assert_false(chunk_cache_get(cc, a.digest, buf, MIB - 1));
	assert_int_equal(stats(cc).hits, 4);
	assert_int_equal(stats(cc).misses, 3);
	chunk_free(&a);
	chunk_free(&b);
	chunk_free(&c);
	chunk_free(&d);
	chunk_free(&e);
	free(buf);
	chunk_cache_free(cc);
}

/* Bytes that do not hash to the digest given are refused and never held,
 * nor are they served under that digest afterwards. */
static void test_mismatch_never_cached(void **state)
{
	struct chunk_cache *cc;
	struct chunk a, b;
	struct chunk_cache_stats st;

	(void)state;
	assert_int_equal(chunk_cache_new(8 * MIB, &cc), 0);
	chunk_make(&a, 7, MIB);
	chunk_make(&b, 8, MIB);
	/* One flipped bit. */
	a.data[MIB / 2] ^= 0x10;
	assert_int_equal(chunk_cache_put(cc, a.digest, a.data, a.size), -EBADMSG);
	a.data[MIB / 2] ^= 0x10;
	assert_false(held(cc, &a));
	/* Another chunk's bytes under a's digest. */
	assert_int_equal(chunk_cache_put(cc, a.digest, b.data, b.size), -EBADMSG);
	/* One byte short. */
	assert_int_equal(chunk_cache_put(cc, a.digest, a.data, a.size - 1), -EBADMSG);
	assert_false(held(cc, &a));
	st = stats(cc);
	assert_int_equal(st.rejected, 3);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.inserts, 0);
	/* The right bytes go in; wrong ones offered again are still refused
	 * (and do not replace them). */
	assert_int_equal(chunk_cache_put(cc, a.digest, a.data, a.size), 0);
	assert_int_equal(chunk_cache_put(cc, a.digest, b.data, b.size), -EBADMSG);
	assert_true(held(cc, &a));
	chunk_free(&a);
	chunk_free(&b);
	chunk_cache_free(cc);
}

/* A smaller bound evicts at once; 0 turns the cache off (no hits, no
 * misses counted, nothing kept); a bound again turns it on; a dropped chunk
 * is gone. */
static void test_limit_and_drop(void **state)
{
	struct chunk_cache *cc;
	struct chunk c[4];
	uint8_t *buf = malloc(MIB);

	(void)state;
	assert_non_null(buf);
	assert_int_equal(chunk_cache_new(4 * MIB, &cc), 0);
	assert_true(chunk_cache_on(cc));
	for (unsigned i = 0; i < 4; i++) {
		chunk_make(&c[i], 40 + i, MIB);
		assert_int_equal(chunk_cache_put(cc, c[i].digest, c[i].data, c[i].size), 0);
	}
	chunk_cache_set_limit(cc, 2 * MIB);
	assert_int_equal(stats(cc).entries, 2);
	assert_int_equal(stats(cc).bytes, 2 * MIB);
	assert_false(held(cc, &c[1]));
	assert_true(held(cc, &c[3]));
	chunk_cache_drop(cc, c[3].digest);
	assert_false(held(cc, &c[3]));
	assert_int_equal(stats(cc).entries, 1);
	chunk_cache_drop(cc, c[3].digest); /* not there: nothing */

	chunk_cache_set_limit(cc, 0);
	assert_false(chunk_cache_on(cc));
	assert_int_equal(stats(cc).entries, 0);
	assert_int_equal(stats(cc).bytes, 0);
	uint64_t misses = stats(cc).misses;
	assert_false(chunk_cache_get(cc, c[2].digest, buf, MIB));
	assert_int_equal(stats(cc).misses, misses);
	assert_int_equal(chunk_cache_put(cc, c[2].digest, c[2].data, c[2].size), -EFBIG);
	assert_int_equal(stats(cc).entries, 0);

	chunk_cache_set_limit(cc, MIB);
	assert_int_equal(chunk_cache_put(cc, c[2].digest, c[2].data, c[2].size), 0);
	assert_true(held(cc, &c[2]));

	/* No cache at all (NULL): off, quietly. */
	assert_false(chunk_cache_on(NULL));
	assert_false(chunk_cache_get(NULL, c[2].digest, buf, MIB));
	assert_int_equal(chunk_cache_put(NULL, c[2].digest, c[2].data, MIB), -EFBIG);
	chunk_cache_drop(NULL, c[2].digest);
	chunk_cache_set_limit(NULL, 1);
	assert_int_equal(stats(NULL).limit, 0);

	for (unsigned i = 0; i < 4; i++)
		chunk_free(&c[i]);
	free(buf);
	chunk_cache_free(cc);
}

/* ---- threads ---- */

#define T_CHUNKS 24
#define T_SIZE (64u << 10)
#define T_THREADS 4
#define T_ROUNDS 3000

static struct chunk t_chunks[T_CHUNKS];

struct worker {
	struct chunk_cache *cc;
	unsigned seed;
	unsigned gets, hits, bad, over;
	bool resizer;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = malloc(T_SIZE);
	uint8_t got[32];
	struct chunk_cache_stats st;

	if (!buf)
		return NULL;
	for (unsigned r = 0; r < T_ROUNDS; r++) {
		unsigned i = (unsigned)rand_r(&w->seed) % T_CHUNKS;
		const struct chunk *c = &t_chunks[i];
		if (w->resizer) {
			/* Shrink and grow under the others' feet, drop some. */
			chunk_cache_set_limit(w->cc, (uint64_t)(1 + r % 8) * T_SIZE);
			if (r % 3 == 0)
				chunk_cache_drop(w->cc, c->digest);
			continue;
		}
		w->gets++;
		if (chunk_cache_get(w->cc, c->digest, buf, c->size)) {
			w->hits++;
			sky_sha256(buf, c->size, got);
			if (memcmp(got, c->digest, 32) != 0)
				w->bad++;
		} else if (chunk_cache_put(w->cc, c->digest, c->data, c->size) < 0) {
			w->bad++; /* the bound never goes below one chunk here */
		}
		chunk_cache_stats(w->cc, &st);
		if (st.bytes > 8 * T_SIZE)
			w->over++;
	}
	free(buf);
	return NULL;
}

static void test_threads(void **state)
{
	struct chunk_cache *cc;
	struct worker w[T_THREADS + 1];
	pthread_t th[T_THREADS + 1];
	struct chunk_cache_stats st;
	unsigned gets = 0, hits = 0;

	(void)state;
	for (unsigned i = 0; i < T_CHUNKS; i++)
		chunk_make(&t_chunks[i], 500 + i, T_SIZE);
	assert_int_equal(chunk_cache_new(8 * T_SIZE, &cc), 0);
	for (unsigned i = 0; i <= T_THREADS; i++) {
		w[i] = (struct worker){ .cc = cc, .seed = 1234 + i, .resizer = i == T_THREADS };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (unsigned i = 0; i <= T_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	chunk_cache_stats(cc, &st);
	for (unsigned i = 0; i < T_THREADS; i++) {
		assert_int_equal(w[i].bad, 0);  /* no torn, wrong or refused chunk */
		assert_int_equal(w[i].over, 0); /* never above the largest bound */
		gets += w[i].gets;
		hits += w[i].hits;
	}
	assert_int_equal(gets, T_THREADS * T_ROUNDS);
	assert_int_equal(st.hits, hits);
	assert_true(st.hits > 0);
	assert_int_equal(st.hits + st.misses, gets);
	assert_true(st.bytes <= st.limit);
	assert_int_equal(st.bytes, st.entries * T_SIZE);
	chunk_cache_free(cc);
	for (unsigned i = 0; i < T_CHUNKS; i++)
		chunk_free(&t_chunks[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_min_charge),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_mismatch_never_cached),
		cmocka_unit_test(test_limit_and_drop),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
