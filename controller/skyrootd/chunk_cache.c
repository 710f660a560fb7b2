/* The controller's cache of verified image chunks in RAM: see
 * chunk_cache.h.  A hash table on the digest (its first 8 bytes: SHA-256
 * output is uniform) and a doubly linked list in order of use (the head
 * the most recent, the tail the next to go). */
#include "controller/skyrootd/chunk_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/util.h"

#define CC_BUCKETS_MIN 64u

struct cc_entry {
	struct cc_entry *hnext;       /* the hash chain; the free list once unlinked */
	struct cc_entry *prev, *next; /* the order of use: prev more recent */
	uint64_t charge;              /* what it counts against the bound */
	uint32_t size;
	uint32_t refs;                /* readers copying it out without the lock */
	bool dead;                    /* unlinked while read: the last reader frees it */
	uint8_t digest[32];
	uint8_t data[];
};

struct chunk_cache {
	uv_mutex_t mu;
	struct cc_entry **buckets;
	size_t nbuckets;              /* a power of two */
	struct cc_entry *head, *tail;
	struct chunk_cache_stats st;  /* bytes, entries and limit included */
};

static size_t cc_bucket(const struct chunk_cache *cc, const uint8_t digest[32])
{
	uint64_t h;

	memcpy(&h, digest, sizeof(h));
	return (size_t)h & (cc->nbuckets - 1);
}

static struct cc_entry *cc_find(const struct chunk_cache *cc, const uint8_t digest[32])
{
	for (struct cc_entry *e = cc->buckets[cc_bucket(cc, digest)]; e; e = e->hnext)
		if (memcmp(e->digest, digest, 32) == 0)
			return e;
	return NULL;
}

static void cc_list_unlink(struct chunk_cache *cc, struct cc_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		cc->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		cc->tail = e->prev;
	e->prev = e->next = NULL;
}

static void cc_list_front(struct chunk_cache *cc, struct cc_entry *e)
{
	e->prev = NULL;
	e->next = cc->head;
	if (cc->head)
		cc->head->prev = e;
	cc->head = e;
	if (!cc->tail)
		cc->tail = e;
}

/* Twice the buckets when the chains grow long; on no memory the chains
 * just stay longer. */
static void cc_grow(struct chunk_cache *cc)
{
	size_t n = cc->nbuckets * 2;
	struct cc_entry **b;

	if (cc->st.entries <= cc->nbuckets * 2)
		return;
	b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < cc->nbuckets; i++) {
		struct cc_entry *e = cc->buckets[i], *next;
		for (; e; e = next) {
			uint64_t h;
			next = e->hnext;
			memcpy(&h, e->digest, sizeof(h));
			e->hnext = b[(size_t)h & (n - 1)];
			b[(size_t)h & (n - 1)] = e;
		}
	}
	free(cc->buckets);
	cc->buckets = b;
	cc->nbuckets = n;
}

/* Take e out of the table and the list; it goes on *gone to be freed
 * after the lock, unless a reader holds it (then the last reader frees it). */
static void cc_remove(struct chunk_cache *cc, struct cc_entry *e, struct cc_entry **gone)
{
	struct cc_entry **pp = &cc->buckets[cc_bucket(cc, e->digest)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	cc_list_unlink(cc, e);
	cc->st.bytes -= e->charge;
	cc->st.entries--;
	if (e->refs) {
		e->dead = true;
		e->hnext = NULL;
	} else {
		e->hnext = *gone;
		*gone = e;
	}
}

/* The least recently used out until the bound holds. */
static void cc_evict(struct chunk_cache *cc, struct cc_entry **gone)
{
	while (cc->st.bytes > cc->st.limit && cc->tail) {
		cc_remove(cc, cc->tail, gone);
		cc->st.evictions++;
	}
}

static void cc_free_list(struct cc_entry *e)
{
	while (e) {
		struct cc_entry *next = e->hnext;
		free(e);
		e = next;
	}
}

int chunk_cache_new(uint64_t limit, struct chunk_cache **out)
{
	struct chunk_cache *cc = calloc(1, sizeof(*cc));

	if (!cc)
		return -ENOMEM;
	cc->nbuckets = CC_BUCKETS_MIN;
	cc->buckets = calloc(cc->nbuckets, sizeof(*cc->buckets));
	if (!cc->buckets || uv_mutex_init(&cc->mu) < 0) {
		free(cc->buckets);
		free(cc);
		return -ENOMEM;
	}
	cc->st.limit = limit;
	*out = cc;
	return 0;
}

void chunk_cache_free(struct chunk_cache *cc)
{
	if (!cc)
		return;
	for (struct cc_entry *e = cc->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	free(cc->buckets);
	uv_mutex_destroy(&cc->mu);
	free(cc);
}

void chunk_cache_set_limit(struct chunk_cache *cc, uint64_t limit)
{
	struct cc_entry *gone = NULL;

	if (!cc)
		return;
	uv_mutex_lock(&cc->mu);
	cc->st.limit = limit;
	cc_evict(cc, &gone);
	uv_mutex_unlock(&cc->mu);
	cc_free_list(gone);
}

uint64_t chunk_cache_bound(uint64_t configured, bool postgresql)
{
	if (configured != CHUNK_CACHE_AUTO)
		return configured;
	return postgresql ? CHUNK_CACHE_DEFAULT_PG : CHUNK_CACHE_DEFAULT_SQLITE;
}

bool chunk_cache_on(struct chunk_cache *cc)
{
	bool on;

	if (!cc)
		return false;
	uv_mutex_lock(&cc->mu);
	on = cc->st.limit > 0;
	uv_mutex_unlock(&cc->mu);
	return on;
}

bool chunk_cache_get(struct chunk_cache *cc, const uint8_t digest[32], uint8_t *buf, uint32_t size)
{
	struct cc_entry *e;
	bool last;

	if (!cc)
		return false;
	uv_mutex_lock(&cc->mu);
	if (cc->st.limit == 0) {
		uv_mutex_unlock(&cc->mu);
		return false;
	}
	e = cc_find(cc, digest);
	if (!e || e->size != size) {
		cc->st.misses++;
		uv_mutex_unlock(&cc->mu);
		return false;
	}
	cc->st.hits++;
	cc_list_unlink(cc, e);
	cc_list_front(cc, e);
	e->refs++;
	uv_mutex_unlock(&cc->mu);

	memcpy(buf, e->data, size); /* without the lock: e stays while we hold it */

	uv_mutex_lock(&cc->mu);
	e->refs--;
	last = e->dead && e->refs == 0;
	uv_mutex_unlock(&cc->mu);
	if (last)
		free(e);
	return true;
}

int chunk_cache_put(struct chunk_cache *cc, const uint8_t digest[32], const uint8_t *data, uint32_t size)
{
	uint64_t charge = size > CHUNK_CACHE_MIN_CHARGE ? size : CHUNK_CACHE_MIN_CHARGE;
	struct cc_entry *e, *gone = NULL;
	uint8_t got[32];
	bool held;

	if (!cc)
		return -EFBIG;
	uv_mutex_lock(&cc->mu);
	if (charge > cc->st.limit) { /* off (0), or too large for it */
		uv_mutex_unlock(&cc->mu);
		return -EFBIG;
	}
	uv_mutex_unlock(&cc->mu);

	/* Only bytes that are the digest's go in: checked here, by the cache. */
	sky_sha256(data, size, got);
	if (!sky_memeq_ct(got, digest, 32)) {
		uv_mutex_lock(&cc->mu);
		cc->st.rejected++;
		uv_mutex_unlock(&cc->mu);
		return -EBADMSG;
	}
	uv_mutex_lock(&cc->mu);
	held = cc_find(cc, digest) != NULL;
	uv_mutex_unlock(&cc->mu);
	if (held)
		return 0;

	e = malloc(sizeof(*e) + size);
	if (!e)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	memcpy(e->digest, digest, 32);
	e->size = size;
	e->charge = charge;
	memcpy(e->data, data, size);

	uv_mutex_lock(&cc->mu);
	held = cc_find(cc, digest) != NULL;
	if (held || charge > cc->st.limit) {
		/* Another worker put it meanwhile, or the bound shrank. */
		uv_mutex_unlock(&cc->mu);
		free(e);
		return held ? 0 : -EFBIG;
	}
	size_t b = cc_bucket(cc, digest);
	e->hnext = cc->buckets[b];
	cc->buckets[b] = e;
	cc_list_front(cc, e);
	cc->st.bytes += charge;
	cc->st.entries++;
	cc->st.inserts++;
	cc_evict(cc, &gone); /* never e: it fits alone and is the most recent */
	cc_grow(cc);
	uv_mutex_unlock(&cc->mu);
	cc_free_list(gone);
	return 0;
}

void chunk_cache_drop(struct chunk_cache *cc, const uint8_t digest[32])
{
	struct cc_entry *e, *gone = NULL;

	if (!cc)
		return;
	uv_mutex_lock(&cc->mu);
	e = cc_find(cc, digest);
	if (e)
		cc_remove(cc, e, &gone);
	uv_mutex_unlock(&cc->mu);
	cc_free_list(gone);
}

void chunk_cache_stats(struct chunk_cache *cc, struct chunk_cache_stats *st)
{
	if (!cc) {
		*st = (struct chunk_cache_stats){ 0 };
		return;
	}
	uv_mutex_lock(&cc->mu);
	*st = cc->st;
	uv_mutex_unlock(&cc->mu);
}
