/* A controller's own cache of image chunks in RAM (issue 14): on a store
 * in PostgreSQL every chunk sent to a board is a round trip to the
 * database server and a copy of its bytes through libpq; a chunk sent
 * again (the next board of a rollout, the same board again) comes from
 * here instead.
 *
 * Keyed by the chunk's SHA-256: chunks are content-addressed, so an entry
 * is never stale (the same digest is the same bytes, whatever image, row
 * or controller).  Only chunks whose bytes hashed to their digest after
 * they were read from the store go in (chunk_cache_put hashes them itself:
 * nothing unchecked can be put).  Bounded in bytes: each entry counts its
 * chunk's bytes, at least CHUNK_CACHE_MIN_CHARGE (a tiny tail chunk's
 * entry costs more than its bytes); the least recently used go first.
 *
 * Threads: any (chunks are read on the thread pool's workers).  A mutex
 * guards the table and the counters; entries are refcounted, so the copy
 * of a chunk out of the cache and the hashing and copy into it run without
 * the lock.  An entry evicted while being copied out is freed by the last
 * reader: the memory held may pass the bound by the chunks being copied
 * at that moment (at most one per worker thread). */
#ifndef SKY_CONTROLLER_CHUNK_CACHE_H
#define SKY_CONTROLLER_CHUNK_CACHE_H

#include <stdbool.h>
#include <stdint.h>

/* The default bound on a store in PostgreSQL (a chunk read is a network
 * round trip there); on SQLite the store is a local file whose pages the
 * kernel caches already: no cache (0) unless one is asked for. */
#define CHUNK_CACHE_DEFAULT_PG (256ull << 20)
#define CHUNK_CACHE_DEFAULT_SQLITE 0ull
/* `run --chunk-cache`: the largest bound one may give. */
#define CHUNK_CACHE_MAX (1ull << 40)
/* What an entry counts at least against the bound (its bookkeeping). */
#define CHUNK_CACHE_MIN_CHARGE 4096u

struct chunk_cache;

struct chunk_cache_stats {
	uint64_t hits;                /* chunk_cache_get found it */
	uint64_t misses;              /* chunk_cache_get did not (while the cache is on) */
	uint64_t inserts;             /* chunks put in */
	uint64_t evictions;           /* entries pushed out by the bound */
	uint64_t rejected;            /* chunks offered that did not hash to their digest */
	uint64_t bytes;               /* held now: the sum of the entries' charges */
	uint64_t entries;             /* held now */
	uint64_t limit;               /* the bound in bytes; 0: off */
};

/* A cache of at most `limit` bytes (0: off; chunk_cache_set_limit may turn
 * it on later).  0 or -ENOMEM. */
int chunk_cache_new(uint64_t limit, struct chunk_cache **out);
/* Frees every entry: nobody may use the cache any more.  Accepts NULL. */
void chunk_cache_free(struct chunk_cache *cc);
/* A new bound (SIGHUP): entries over it are evicted at once. */
void chunk_cache_set_limit(struct chunk_cache *cc, uint64_t limit);
/* The bound to use: `configured` as given, or when it is
 * CHUNK_CACHE_AUTO the engine's default. */
#define CHUNK_CACHE_AUTO UINT64_MAX
uint64_t chunk_cache_bound(uint64_t configured, bool postgresql);

/* Whether chunks go through the cache (it exists and its bound is not 0). */
bool chunk_cache_on(struct chunk_cache *cc);
/* The chunk with this digest and size, copied into buf: true on a hit
 * (it is now the most recently used), false on a miss or when the cache is
 * off (a miss is counted only when it is on).  Accepts NULL. */
bool chunk_cache_get(struct chunk_cache *cc, const uint8_t digest[32], uint8_t *buf, uint32_t size);
/* A chunk just read from the store: hashed, and kept (a copy) only when
 * its bytes hash to digest.  0 kept (or held already); -EBADMSG the bytes
 * do not hash to digest: corrupt, not kept; -EFBIG the cache is off or
 * the chunk is larger than its bound (not hashed, not kept); -ENOMEM. */
int chunk_cache_put(struct chunk_cache *cc, const uint8_t digest[32], const uint8_t *data, uint32_t size);
/* Forget the chunk with this digest (it was found corrupt in the store). */
void chunk_cache_drop(struct chunk_cache *cc, const uint8_t digest[32]);
/* The counters and gauges for /metrics; all 0 for NULL. */
void chunk_cache_stats(struct chunk_cache *cc, struct chunk_cache_stats *st);

#endif
