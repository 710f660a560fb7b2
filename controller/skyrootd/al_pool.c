/* The chunk buffer pool: every byte of an image chunk on its way to a
 * board lives in one of these buffers, allocated once and recycled, never
 * malloc'd and freed per chunk (that left freed megabytes in every
 * thread's malloc arena: the controller's RSS grew far past its budget).
 *
 * A buffer holds a chunk with the room for its frame prefix in front
 * (al_chunks.c reads it there, al_session.c sends it as it is), or the TLS
 * records of such a frame (al_conn.c seals it into a second buffer, then
 * gives the first back).  How many there are at most, and why that bound
 * holds, is written in agentlink_priv.h (AL_POOL_*).
 *
 * Threads: main takes buffers for chunk jobs (al_pool_get, not transient);
 * the session loops take the one a frame is sealed into (transient) and
 * give buffers back; so does the thread pool's error path.  A mutex guards
 * the free list and the counts.  When main found the pool empty, the next
 * give-back posts `ready` to the main loop (loops_post), which dispatches
 * the chunk jobs that waited.  Without loops (the fuzzer, tests/fuzz)
 * everything runs on one thread and its caller dispatches after each
 * give-back itself. */
#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/loops.h"

struct al_pool_free {
	struct al_pool_free *next;
};

struct al_pool {
	uv_mutex_t mu;
	struct loops *loops;
	void (*ready)(void *arg);     /* main loop: buffers are back */
	void *ready_arg;
	struct al_pool_free *free;    /* buffers not in use */
	unsigned jobs_max;            /* main may hold this many at once */
	unsigned max;                 /* buffers at most: jobs_max + transients */
	unsigned made;                /* buffers allocated (in use or free) */
	unsigned out;                 /* in use */
	unsigned peak;                /* highest `made` so far */
	unsigned posted;              /* `ready` messages not yet run */
	bool waiting;                 /* main found no buffer: tell it */
	bool dying;                   /* al_pool_free called: the last one frees */
};

int al_pool_new(struct loops *loops, unsigned jobs_max, unsigned transients, void (*ready)(void *arg),
		void *ready_arg, struct al_pool **out)
{
	struct al_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	if (uv_mutex_init(&p->mu) < 0) {
		free(p);
		return -ENOMEM;
	}
	p->loops = loops;
	p->ready = ready;
	p->ready_arg = ready_arg;
	p->jobs_max = jobs_max;
	p->max = jobs_max + transients;
	*out = p;
	return 0;
}

static void pool_destroy(struct al_pool *p)
{
	while (p->free) {
		struct al_pool_free *f = p->free;
		p->free = f->next;
		free(f);
	}
	uv_mutex_destroy(&p->mu);
	free(p);
}

/* Once dying: nothing in use, nothing posted. */
static bool pool_done(const struct al_pool *p)
{
	return p->dying && p->out == 0 && p->posted == 0;
}

uint8_t *al_pool_get(struct al_pool *p, bool transient)
{
	struct al_pool_free *f = NULL;
	bool make = false;

	uv_mutex_lock(&p->mu);
	/* A chunk job leaves room for the transients: each session loop seals
	 * one frame at a time, and gives its plaintext buffer back at once. */
	if (!transient && p->out >= p->jobs_max) {
		p->waiting = true;
	} else if (p->free) {
		f = p->free;
		p->free = f->next;
		p->out++;
	} else if (p->made < p->max) {
		make = true;
		p->made++;
		p->out++;
		if (p->made > p->peak)
			p->peak = p->made;
	} else if (!transient) {
		p->waiting = true;
	}
	uv_mutex_unlock(&p->mu);
	if (make) {
		f = malloc(AL_POOL_BUF);
		if (!f) {
			uv_mutex_lock(&p->mu);
			p->made--;
			p->out--;
			if (!transient)
				p->waiting = true;
			uv_mutex_unlock(&p->mu);
		}
	}
	return (uint8_t *)f;
}

static void pool_ready(void *arg)
{
	struct al_pool *p = arg;
	bool done, dying;

	uv_mutex_lock(&p->mu);
	p->posted--;
	dying = p->dying;
	done = pool_done(p);
	uv_mutex_unlock(&p->mu);
	if (done)
		pool_destroy(p);
	else if (!dying)
		p->ready(p->ready_arg);
}

void al_pool_put(struct al_pool *p, uint8_t *buf)
{
	struct al_pool_free *f = (struct al_pool_free *)buf;
	bool tell = false, done;

	if (!buf)
		return;
	uv_mutex_lock(&p->mu);
	f->next = p->free;
	p->free = f;
	p->out--;
	if (p->waiting && !p->dying && p->loops) {
		p->waiting = false;
		p->posted++;
		tell = true;
	}
	done = pool_done(p);
	uv_mutex_unlock(&p->mu);
	if (done) {
		pool_destroy(p);
		return;
	}
	if (tell && loops_post(p->loops, 0, pool_ready, p) < 0) {
		uv_mutex_lock(&p->mu);
		p->posted--;
		p->waiting = true; /* the next give-back tries again */
		done = pool_done(p);
		uv_mutex_unlock(&p->mu);
		log_warn("agent link: out of memory waking the main loop for the chunk buffers");
		if (done)
			pool_destroy(p);
	}
}

void al_pool_put_cb(void *ctx, uint8_t *buf)
{
	al_pool_put(ctx, buf);
}

void al_pool_stats(struct al_pool *p, struct agentlink_pool_stats *st)
{
	uv_mutex_lock(&p->mu);
	st->in_use_bytes = (uint64_t)p->out * AL_POOL_BUF;
	st->allocated_bytes = (uint64_t)p->made * AL_POOL_BUF;
	st->peak_bytes = (uint64_t)p->peak * AL_POOL_BUF;
	st->limit_bytes = (uint64_t)p->max * AL_POOL_BUF;
	uv_mutex_unlock(&p->mu);
}

void al_pool_free(struct al_pool *p)
{
	bool done;

	if (!p)
		return;
	uv_mutex_lock(&p->mu);
	p->dying = true;
	p->waiting = false;
	done = pool_done(p);
	uv_mutex_unlock(&p->mu);
	if (done)
		pool_destroy(p);
}
