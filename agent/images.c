/* The board's image cache: see images.h. */
#include "agent/images.h"

#include "agent/chunkcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/x509.h"

#define ID_MAX 32
#define DIGEST_BUCKETS 4096

enum cimg_state { CIMG_FETCHING, CIMG_READY, CIMG_FAILED };
enum chunk_state { CH_MISSING = 0, CH_REQUESTED = 1, CH_HAVE = 2, CH_CHECKING = 3 };

struct cimg {
	struct cimg *next;
	char id[ID_MAX];
	Skyroot__ImageManifest *m;
	int fd;
	uint64_t size;
	uint32_t nchunks;
	uint32_t chunk_size;
	uint8_t *chunk;                /* enum chunk_state per chunk */
	uint32_t n_have;
	uint32_t scan;                 /* first chunk that may still be missing */
	enum cimg_state state;
	char error[256];
	uint64_t last_used;
	unsigned holds;
	bool indexed;
	uint64_t serial;               /* this fetch of the id: checks of an older one are ignored */
};

/* Chunks of READY images by digest: chunks the board holds are never
 * fetched again. */
struct dentry {
	struct dentry *next;
	const uint8_t *digest;         /* points into the image's manifest */
	struct cimg *img;
	uint32_t index;
};

struct pending {
	uint64_t req;                  /* 0 = free slot */
	struct cimg *img;
	uint32_t index;
};

/* The chunk arriving now (imgcache_chunk_begin .. _end): its bytes go
 * into a check buffer as they come (chunkcheck.h). */
struct rx {
	bool active;
	bool sink;                     /* not wanted: its bytes are dropped */
	bool overrun;                  /* more bytes than announced */
	struct cimg *img;
	uint32_t index;
	struct chunkcheck *ck;
};

struct imgcache {
	struct imgcache_ops ops;
	void *ctx;
	uint64_t budget;
	uint64_t used;
	uint8_t signing_pub[32];
	bool have_key;
	bool session;
	bool dirty;                    /* a report is due */
	struct cimg *images;
	unsigned n_images;
	struct pending pend[IMGCACHE_WINDOW];
	unsigned n_pend;
	struct dentry *buckets[DIGEST_BUCKETS];
	uint64_t clock;
	uint64_t serial;
	struct rx rx;
	/* Chunks received or being received and not yet checked: they count
	 * in the window with the requests (n_pend + n_check <= WINDOW). */
	unsigned n_check;
	unsigned n_jobs;               /* handed to ops.work, not yet done */
	bool freeing;                  /* imgcache_free() waits for the jobs */
	struct chunkcheck_spares spares;
};

static unsigned dbucket(const uint8_t *d)
{
	return ((unsigned)d[0] << 8 | d[1]) % DIGEST_BUCKETS;
}

static void index_add(struct imgcache *c, struct cimg *img)
{
	for (uint32_t i = 0; i < img->nchunks; i++) {
		struct dentry *e = malloc(sizeof(*e));
		if (!e)
			return;
		e->digest = img->m->chunk_digests[i].data;
		e->img = img;
		e->index = i;
		unsigned b = dbucket(e->digest);
		e->next = c->buckets[b];
		c->buckets[b] = e;
	}
	img->indexed = true;
}

static void index_remove(struct imgcache *c, struct cimg *img)
{
	if (!img->indexed)
		return;
	for (unsigned b = 0; b < DIGEST_BUCKETS; b++) {
		struct dentry **pp = &c->buckets[b];
		while (*pp) {
			if ((*pp)->img == img) {
				struct dentry *e = *pp;
				*pp = e->next;
				free(e);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	img->indexed = false;
}

static struct dentry *index_find(struct imgcache *c, const uint8_t *digest)
{
	for (struct dentry *e = c->buckets[dbucket(digest)]; e; e = e->next)
		if (memcmp(e->digest, digest, 32) == 0)
			return e;
	return NULL;
}

int imgcache_new(const struct imgcache_ops *ops, void *ctx, uint64_t budget, struct imgcache **out)
{
	struct imgcache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ops = *ops;
	c->ctx = ctx;
	if (!budget) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		budget = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 2 : (1ull << 30);
	}
	c->budget = budget;
	*out = c;
	return 0;
}

static void cimg_free(struct imgcache *c, struct cimg *img)
{
	index_remove(c, img);
	if (img->fd >= 0)
		close(img->fd);
	if (img->m)
		skyroot__image_manifest__free_unpacked(img->m, NULL);
	free(img->chunk);
	free(img);
}

static void pend_drop_image(struct imgcache *c, struct cimg *img)
{
	for (unsigned i = 0; i < IMGCACHE_WINDOW; i++)
		if (c->pend[i].req && c->pend[i].img == img) {
			c->pend[i].req = 0;
			c->n_pend--;
		}
}

static void cimg_unlink(struct imgcache *c, struct cimg *img)
{
	if (c->rx.img == img) {
		c->rx.img = NULL;
		c->rx.sink = true;
	}
	for (struct cimg **pp = &c->images; *pp; pp = &(*pp)->next)
		if (*pp == img) {
			*pp = img->next;
			break;
		}
	c->n_images--;
	if (img->fd >= 0)
		c->used -= img->size;
	pend_drop_image(c, img);
	cimg_free(c, img);
}

static void rx_drop(struct imgcache *c)
{
	if (c->rx.ck) {
		chunkcheck_put(&c->spares, c->rx.ck, IMGCACHE_WINDOW);
		c->rx.ck = NULL;
		c->n_check--;
	}
	c->rx.active = false;
	c->rx.img = NULL;
}

void imgcache_free(struct imgcache *c)
{
	if (!c)
		return;
	rx_drop(c);
	while (c->images)
		cimg_unlink(c, c->images);
	chunkcheck_drop_spares(&c->spares);
	/* Checks still running end in check_done, which frees c after the
	 * last; they only touch their own buffers and descriptors. */
	if (c->n_jobs) {
		c->freeing = true;
		return;
	}
	free(c);
}

void imgcache_set_signing_key(struct imgcache *c, const uint8_t pub[32])
{
	memcpy(c->signing_pub, pub, 32);
	c->have_key = true;
}

uint64_t imgcache_used(const struct imgcache *c)
{
	return c->used;
}

unsigned imgcache_outstanding(const struct imgcache *c)
{
	return c->n_pend;
}

static struct cimg *find(struct imgcache *c, const char *id)
{
	for (struct cimg *i = c->images; i; i = i->next)
		if (strcmp(i->id, id) == 0)
			return i;
	return NULL;
}

static void fail(struct imgcache *c, struct cimg *img, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(struct imgcache *c, struct cimg *img, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(img->error, sizeof(img->error), fmt, ap);
	va_end(ap);
	log_error("image %s refused: %s", img->id, img->error);
	img->state = CIMG_FAILED;
	pend_drop_image(c, img);
	if (c->rx.img == img) { /* the rest of its chunk is dropped */
		c->rx.img = NULL;
		c->rx.sink = true;
	}
	/* Give the RAM back; the manifest and the error stay for the report. */
	if (img->fd >= 0) {
		close(img->fd);
		img->fd = -1;
		c->used -= img->size;
	}
	c->dirty = true;
	imgcache_report(c);
}

/* Make room for need bytes by evicting least-recently-used READY images
 * nobody holds; none when that would not make room enough. */
static int make_room(struct imgcache *c, uint64_t need)
{
	uint64_t freeable = 0;
	for (struct cimg *i = c->images; i; i = i->next)
		if (i->state == CIMG_READY && !i->holds)
			freeable += i->size;
	if (c->used + need > c->budget && c->used - freeable + need > c->budget)
		return -ENOSPC;
	while (c->used + need > c->budget) {
		struct cimg *victim = NULL;
		for (struct cimg *i = c->images; i; i = i->next)
			if (i->state == CIMG_READY && !i->holds && (!victim || i->last_used < victim->last_used))
				victim = i;
		if (!victim)
			return -ENOSPC;
		log_info("image cache: evicting %s (%llu bytes) to make room", victim->id,
			 (unsigned long long)victim->size);
		cimg_unlink(c, victim);
		c->dirty = true;
	}
	return 0;
}

static int manifest_check(const Skyroot__ImageManifest *m, char *why, size_t whylen)
{
	uint64_t n;
	if (!m->id || !m->id[0] || strlen(m->id) >= ID_MAX) {
		snprintf(why, whylen, "manifest has no usable image id");
		return -EINVAL;
	}
	if (m->chunk_size == 0 || m->chunk_size > IMGCACHE_MAX_CHUNK) {
		snprintf(why, whylen, "manifest chunk size %u is out of range", m->chunk_size);
		return -EINVAL;
	}
	n = m->size / m->chunk_size + (m->size % m->chunk_size ? 1 : 0);
	if (n != m->n_chunk_digests || m->sha256.len != 32) {
		snprintf(why, whylen, "manifest lists %zu chunks for %llu bytes", m->n_chunk_digests,
			 (unsigned long long)m->size);
		return -EINVAL;
	}
	for (size_t i = 0; i < m->n_chunk_digests; i++)
		if (m->chunk_digests[i].len != 32) {
			snprintf(why, whylen, "manifest chunk digest %zu is not SHA-256", i);
			return -EINVAL;
		}
	return 0;
}

static uint32_t chunk_len(const struct cimg *img, uint32_t i)
{
	uint64_t off = (uint64_t)i * img->chunk_size;
	uint64_t left = img->size - off;
	return left < img->chunk_size ? (uint32_t)left : img->chunk_size;
}

/* Every chunk is in, each checked against its digest in the signed
 * manifest.  The manifest's whole-image SHA-256 is not computed again: the
 * signature covers the ordered chunk digests and the size, so the image is
 * exactly those chunks in that order, and hashing it once more would be a
 * second pass over every byte for nothing. */
static void finish(struct imgcache *c, struct cimg *img)
{
	if (fcntl(img->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		fail(c, img, "cannot seal the image's memfd: %s", strerror(errno));
		return;
	}
	img->state = CIMG_READY;
	img->last_used = ++c->clock;
	index_add(c, img);
	log_info("image %s ready: %llu bytes in RAM, sealed", img->id, (unsigned long long)img->size);
	c->dirty = true;
	imgcache_report(c);
}

static int pread_all(int fd, uint8_t *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Copy chunk i from a chunk this board already holds. */
static bool copy_local(struct imgcache *c, struct cimg *img, uint32_t i)
{
	struct dentry *e = index_find(c, img->m->chunk_digests[i].data);
	uint8_t *buf;
	uint32_t len = chunk_len(img, i);
	bool ok = false;
	if (!e || chunk_len(e->img, e->index) != len)
		return false;
	buf = malloc(len ? len : 1);
	if (!buf)
		return false;
	if (pread_all(e->img->fd, buf, len, (off_t)e->index * e->img->chunk_size) == 0) {
		uint8_t got[32];
		sky_sha256(buf, len, got);
		if (memcmp(got, img->m->chunk_digests[i].data, 32) == 0 &&
		    chunkcheck_pwrite_all(img->fd, buf, len, (off_t)i * img->chunk_size) == 0) {
			img->chunk[i] = CH_HAVE;
			img->n_have++;
			ok = true;
		}
	}
	free(buf);
	return ok;
}

/* Keep the window full. */
static void pump(struct imgcache *c)
{
	if (!c->session)
		return;
	for (struct cimg *img = c->images; img && c->n_pend + c->n_check < IMGCACHE_WINDOW; img = img->next) {
		if (img->state != CIMG_FETCHING)
			continue;
		while (img->scan < img->nchunks && c->n_pend + c->n_check < IMGCACHE_WINDOW) {
			uint32_t i = img->scan;
			if (img->chunk[i] != CH_MISSING) {
				img->scan++;
				continue;
			}
			Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
			Skyroot__ChunkRequest cr = SKYROOT__CHUNK_REQUEST__INIT;
			uint64_t req = 0;
			cr.image_id = img->id;
			cr.index = i;
			cr.raw_tail = true; /* received straight into its place */
			env.body_case = SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST;
			env.chunk_request = &cr;
			if (c->ops.send(c->ctx, &env, &req) < 0)
				return;
			for (unsigned k = 0; k < IMGCACHE_WINDOW; k++)
				if (!c->pend[k].req) {
					c->pend[k] = (struct pending){.req = req, .img = img, .index = i};
					break;
				}
			c->n_pend++;
			img->chunk[i] = CH_REQUESTED;
			img->scan++;
		}
	}
}

void imgcache_on_fetch(struct imgcache *c, const Skyroot__ImageFetch *f)
{
	Skyroot__ImageManifest *m = NULL;
	struct cimg *img;
	char why[160];
	int r;

	if (!f->manifest || !c->have_key) {
		log_error("image fetch without a manifest or before enrollment; ignored");
		return;
	}
	if (sky_ed25519_verify(c->signing_pub, f->manifest->manifest.data, f->manifest->manifest.len,
			       f->manifest->signature.data, f->manifest->signature.len) < 0) {
		log_error("image fetch refused: the manifest's signature does not verify against the "
			  "controller's image-signing key");
		/* Report it under the id the manifest claims, if it parses. */
		m = skyroot__image_manifest__unpack(NULL, f->manifest->manifest.len, f->manifest->manifest.data);
		img = calloc(1, sizeof(*img));
		if (img && m && m->id && strlen(m->id) < ID_MAX) {
			struct cimg *old = find(c, m->id);
			if (old && old->state != CIMG_READY)
				cimg_unlink(c, old);
			if (!find(c, m->id)) {
				snprintf(img->id, sizeof(img->id), "%s", m->id);
				img->fd = -1;
				img->next = c->images;
				c->images = img;
				c->n_images++;
				fail(c, img, "the manifest's signature does not verify against the controller's "
					     "image-signing key");
				img = NULL;
			}
		}
		free(img);
		if (m)
			skyroot__image_manifest__free_unpacked(m, NULL);
		return;
	}
	m = skyroot__image_manifest__unpack(NULL, f->manifest->manifest.len, f->manifest->manifest.data);
	if (!m) {
		log_error("image fetch refused: the manifest does not parse");
		return;
	}
	if (manifest_check(m, why, sizeof(why)) < 0) {
		log_error("image fetch refused: %s", why);
		skyroot__image_manifest__free_unpacked(m, NULL);
		return;
	}
	img = find(c, m->id);
	if (img && img->state != CIMG_FAILED) {
		/* Already held or on its way. */
		if (img->state == CIMG_READY)
			img->last_used = ++c->clock;
		skyroot__image_manifest__free_unpacked(m, NULL);
		c->dirty = true;
		imgcache_report(c);
		return;
	}
	if (img)
		cimg_unlink(c, img); /* a failed one: start over */
	if (c->n_images >= IMGCACHE_MAX_IMAGES) {
		log_error("image fetch refused: the cache holds %u images already", c->n_images);
		skyroot__image_manifest__free_unpacked(m, NULL);
		return;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		skyroot__image_manifest__free_unpacked(m, NULL);
		return;
	}
	img->m = m;
	img->fd = -1;
	img->serial = ++c->serial;
	snprintf(img->id, sizeof(img->id), "%s", m->id);
	img->size = m->size;
	img->chunk_size = m->chunk_size;
	img->nchunks = (uint32_t)m->n_chunk_digests;
	img->next = c->images;
	c->images = img;
	c->n_images++;
	img->chunk = calloc(img->nchunks ? img->nchunks : 1, 1);
	if (!img->chunk) {
		fail(c, img, "out of memory");
		return;
	}
	r = make_room(c, img->size);
	if (r < 0) {
		fail(c, img, "the image cache is full: %llu bytes needed, %llu of %llu in use by images guests hold "
			     "(raise --cache-max)",
		     (unsigned long long)img->size, (unsigned long long)c->used, (unsigned long long)c->budget);
		return;
	}
	/* RAM only: a sealed memfd, never a file on a disk. */
	img->fd = memfd_create(img->id, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (img->fd < 0 || ftruncate(img->fd, (off_t)img->size) < 0) {
		fail(c, img, "cannot make a memfd of %llu bytes: %s", (unsigned long long)img->size, strerror(errno));
		return;
	}
	c->used += img->size;
	img->state = CIMG_FETCHING;
	log_info("fetching image %s '%s' (%llu bytes, %u chunks)", img->id, m->name ? m->name : "",
		 (unsigned long long)img->size, img->nchunks);
	for (uint32_t i = 0; i < img->nchunks; i++)
		copy_local(c, img, i);
	if (img->n_have)
		log_info("image %s: %u of %u chunks were already on this board", img->id, img->n_have, img->nchunks);
	c->dirty = true;
	if (img->n_have == img->nchunks)
		finish(c, img);
	if (img->state == CIMG_FETCHING) {
		imgcache_report(c);
		pump(c);
	}
}

static struct pending *pend_take(struct imgcache *c, uint64_t req)
{
	for (unsigned i = 0; i < IMGCACHE_WINDOW; i++)
		if (c->pend[i].req == req)
			return &c->pend[i];
	return NULL;
}

/* Tell the controller which chunk did not match: it re-checks its store
 * and quarantines the chunk when its copy is corrupt. */
static void report_corrupt(struct imgcache *c, const struct cimg *img, uint32_t i)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__ChunkCorrupt cc = SKYROOT__CHUNK_CORRUPT__INIT;
	uint64_t req = 0;

	cc.image_id = (char *)img->id;
	cc.index = i;
	cc.expected_sha256 = img->m->chunk_digests[i];
	env.body_case = SKYROOT__ENVELOPE__BODY_CHUNK_CORRUPT;
	env.chunk_corrupt = &cc;
	if (c->ops.send(c->ctx, &env, &req) < 0)
		log_warn("cannot report corrupt chunk %u of image %s to the controller", i, img->id);
}

/* A chunk's check is back (on the loop): it counts, or fails its image --
 * if that image is still the fetch the chunk was asked for. */
static void check_done(void *arg)
{
	struct chunkcheck *ck = arg;
	struct imgcache *c = ck->owner;
	struct cimg *img = c->freeing ? NULL : find(c, ck->id);
	uint32_t i = ck->index;

	c->n_jobs--;
	c->n_check--;
	if (img && img->serial == ck->serial && img->state == CIMG_FETCHING && img->chunk[i] == CH_CHECKING) {
		if (ck->result == -EBADMSG) {
			img->chunk[i] = CH_MISSING;
			report_corrupt(c, img, i);
			fail(c, img, "chunk %u failed its SHA-256 check against the signed manifest", i);
		} else if (ck->result < 0) {
			img->chunk[i] = CH_MISSING;
			fail(c, img, "cannot write chunk %u into the memfd: %s", i, strerror(-ck->result));
		} else {
			img->chunk[i] = CH_HAVE;
			img->n_have++;
			if (img->n_have == img->nchunks)
				finish(c, img);
		}
	}
	if (c->freeing) {
		chunkcheck_put(&c->spares, ck, 0);
		if (!c->n_jobs)
			free(c);
		return;
	}
	chunkcheck_put(&c->spares, ck, IMGCACHE_WINDOW);
	pump(c);
}

bool imgcache_chunk_begin(struct imgcache *c, uint64_t req_id, const Skyroot__ChunkData *d, size_t len)
{
	struct pending *p = req_id ? pend_take(c, req_id) : NULL;
	struct rx *rx = &c->rx;
	struct cimg *img;
	uint32_t i;

	rx_drop(c); /* a chunk that never ended (not expected) */
	rx->active = true;
	rx->sink = true;
	rx->overrun = false;
	if (!p)
		return false;
	img = p->img;
	i = p->index;
	p->req = 0;
	c->n_pend--;
	if (img->state != CIMG_FETCHING || !d->image_id || strcmp(d->image_id, img->id) != 0 || d->index != i) {
		if (img->state == CIMG_FETCHING)
			img->chunk[i] = CH_MISSING, img->scan = img->scan < i ? img->scan : i;
		return true;
	}
	if (len != chunk_len(img, i)) {
		fail(c, img, "chunk %u arrived with %zu bytes, expected %u", i, len, chunk_len(img, i));
		return true;
	}
	rx->ck = chunkcheck_get(&c->spares, (uint32_t)len);
	if (!rx->ck) {
		fail(c, img, "out of memory");
		return true;
	}
	c->n_check++; /* its window slot passes from the request to the check */
	rx->sink = false;
	rx->img = img;
	rx->index = i;
	return true;
}

void imgcache_chunk_data(struct imgcache *c, const uint8_t *p, size_t len)
{
	struct rx *rx = &c->rx;

	if (!rx->active || rx->sink || !rx->ck)
		return;
	if (!chunkcheck_take(rx->ck, p, len))
		rx->overrun = true;
}

void imgcache_chunk_end(struct imgcache *c)
{
	struct rx *rx = &c->rx;
	struct cimg *img = rx->img;
	struct chunkcheck *ck = rx->ck;
	uint32_t i = rx->index;

	if (!rx->active)
		return;
	if (rx->sink || !ck || !img) {
		rx_drop(c);
		pump(c);
		return;
	}
	rx->ck = NULL;
	rx->active = false;
	rx->img = NULL;
	if (rx->overrun || ck->got != ck->len) {
		chunkcheck_put(&c->spares, ck, IMGCACHE_WINDOW);
		c->n_check--;
		fail(c, img, "chunk %u arrived with the wrong length", i);
		pump(c);
		return;
	}
	/* Its own descriptor: the image may fail (closing its memfd) or be
	 * fetched again while the chunk is checked. */
	ck->fd = fcntl(img->fd, F_DUPFD_CLOEXEC, 0);
	if (ck->fd < 0) {
		int e = errno;
		chunkcheck_put(&c->spares, ck, IMGCACHE_WINDOW);
		c->n_check--;
		fail(c, img, "cannot write chunk %u into the memfd: %s", i, strerror(e));
		pump(c);
		return;
	}
	ck->off = (off_t)i * img->chunk_size;
	memcpy(ck->digest, img->m->chunk_digests[i].data, 32);
	ck->owner = c;
	snprintf(ck->id, sizeof(ck->id), "%s", img->id);
	ck->serial = img->serial;
	ck->index = i;
	img->chunk[i] = CH_CHECKING;
	c->n_jobs++;
	if (!c->ops.work || c->ops.work(c->ctx, chunkcheck_run, check_done, ck) < 0) {
		chunkcheck_run(ck);
		check_done(ck); /* pumps */
		return;
	}
	pump(c);
}

bool imgcache_on_chunk(struct imgcache *c, uint64_t req_id, const Skyroot__ChunkData *d)
{
	bool mine = imgcache_chunk_begin(c, req_id, d, d->data.len);

	imgcache_chunk_data(c, d->data.data, d->data.len);
	imgcache_chunk_end(c);
	return mine;
}

bool imgcache_on_error(struct imgcache *c, uint64_t req_id, const Skyroot__Error *e)
{
	struct pending *p = req_id ? pend_take(c, req_id) : NULL;
	struct cimg *img;
	uint32_t i;

	if (!p)
		return false;
	img = p->img;
	i = p->index;
	p->req = 0;
	c->n_pend--;
	if (img->state == CIMG_FETCHING) {
		if (e->code == SKYROOT__ERROR_CODE__ERROR_BUSY) {
			img->chunk[i] = CH_MISSING; /* ask again */
			if (img->scan > i)
				img->scan = i;
		} else {
			fail(c, img, "the controller could not send chunk %u: %s", i,
			     e->message ? e->message : "no reason given");
		}
	}
	pump(c);
	return true;
}

void imgcache_session_up(struct imgcache *c)
{
	c->session = true;
	c->dirty = true;
	imgcache_report(c);
	pump(c);
}

void imgcache_session_down(struct imgcache *c)
{
	c->session = false;
	/* A chunk cut off mid-way is not held; it is asked for again.  Chunks
	 * received whole are still being checked and count when done. */
	if (c->rx.active && !c->rx.sink && c->rx.img && c->rx.img->state == CIMG_FETCHING) {
		c->rx.img->chunk[c->rx.index] = CH_MISSING;
		if (c->rx.img->scan > c->rx.index)
			c->rx.img->scan = c->rx.index;
	}
	rx_drop(c);
	/* Requests on the old connection are lost: ask again next time. */
	for (unsigned k = 0; k < IMGCACHE_WINDOW; k++)
		if (c->pend[k].req) {
			struct cimg *img = c->pend[k].img;
			if (img->state == CIMG_FETCHING) {
				img->chunk[c->pend[k].index] = CH_MISSING;
				if (img->scan > c->pend[k].index)
					img->scan = c->pend[k].index;
			}
			c->pend[k].req = 0;
		}
	c->n_pend = 0;
}

void imgcache_report(struct imgcache *c)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__ImageStatus st = SKYROOT__IMAGE_STATUS__INIT;
	Skyroot__CachedImage ci[IMGCACHE_MAX_IMAGES], *cip[IMGCACHE_MAX_IMAGES];
	Skyroot__ImageProgress pr[IMGCACHE_MAX_IMAGES], *prp[IMGCACHE_MAX_IMAGES];
	Skyroot__ImageError er[IMGCACHE_MAX_IMAGES], *erp[IMGCACHE_MAX_IMAGES];
	uint64_t req;

	if (!c->session || !c->dirty)
		return;
	for (struct cimg *img = c->images; img; img = img->next) {
		if (img->state == CIMG_READY) {
			skyroot__cached_image__init(&ci[st.n_images]);
			ci[st.n_images].id = img->id;
			ci[st.n_images].sha256 = img->m->sha256;
			ci[st.n_images].size = img->size;
			cip[st.n_images] = &ci[st.n_images];
			st.n_images++;
		} else if (img->state == CIMG_FETCHING) {
			skyroot__image_progress__init(&pr[st.n_fetching]);
			pr[st.n_fetching].id = img->id;
			pr[st.n_fetching].done_chunks = img->n_have;
			pr[st.n_fetching].chunks = img->nchunks;
			prp[st.n_fetching] = &pr[st.n_fetching];
			st.n_fetching++;
		} else {
			skyroot__image_error__init(&er[st.n_errors]);
			er[st.n_errors].id = img->id;
			er[st.n_errors].error = img->error;
			erp[st.n_errors] = &er[st.n_errors];
			st.n_errors++;
		}
	}
	st.images = cip;
	st.fetching = prp;
	st.errors = erp;
	env.body_case = SKYROOT__ENVELOPE__BODY_IMAGE_STATUS;
	env.image_status = &st;
	if (c->ops.send(c->ctx, &env, &req) == 0)
		c->dirty = false;
}

void imgcache_tick(struct imgcache *c)
{
	bool fetching = false;

	for (struct cimg *img = c->images; img; img = img->next)
		if (img->state == CIMG_FETCHING)
			fetching = c->dirty = true;
	/* Between fetches the check buffers go back (up to a window of
	 * chunks: 8 MiB at 1 MiB chunks). */
	if (!fetching)
		chunkcheck_drop_spares(&c->spares);
	imgcache_report(c);
}

int imgcache_fd(struct imgcache *c, const char *image_id, uint64_t *size)
{
	struct cimg *img = find(c, image_id);
	if (!img || img->state == CIMG_FAILED)
		return -ENOENT;
	if (img->state != CIMG_READY)
		return -EAGAIN;
	img->last_used = ++c->clock;
	if (size)
		*size = img->size;
	return img->fd;
}

void imgcache_hold(struct imgcache *c, const char *image_id, bool hold)
{
	struct cimg *img = find(c, image_id);
	if (!img)
		return;
	if (hold)
		img->holds++;
	else if (img->holds)
		img->holds--;
}

const char *imgcache_format(struct imgcache *c, const char *image_id)
{
	struct cimg *img = find(c, image_id);
	return img && img->m && img->m->format ? img->m->format : "";
}

const char *imgcache_error(struct imgcache *c, const char *image_id)
{
	struct cimg *img = find(c, image_id);
	if (!img)
		return "the board was never sent its manifest";
	return img->error[0] ? img->error : "no error";
}

bool imgcache_active(const struct imgcache *c)
{
	for (const struct cimg *img = c->images; img; img = img->next)
		if (img->state == CIMG_FETCHING)
			return true;
	return c->dirty;
}
