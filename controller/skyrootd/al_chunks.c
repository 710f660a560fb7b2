/* Image chunks for boards.
 *
 * A board pulls chunks with a window of requests.  Each request becomes a
 * job: a worker thread reads the chunk with its own read-only connection
 * (incremental blob I/O straight into the job's buffer, not hashed: the
 * board checks every chunk against the signed manifest, and `image verify`
 * re-hashes the store) -- or, with the chunk cache on (chunk_cache.h; by
 * default on PostgreSQL), copies it from there, and on a miss reads it,
 * hashes it and keeps it (a chunk that does not hash right is corrupt: it
 * is quarantined and not sent); the quarantine is checked before either,
 * on the loop, so a quarantined chunk is never served from the cache
 * either.  The loop sends it from that buffer, in the frame's
 * tail form when the board asked for it (no re-pack, no copy of the bytes
 * on our side before TLS).  The buffers come from the pool (al_pool.c),
 * allocated once and reused.  All jobs together hold at most
 * AL_CHUNK_BUDGET bytes, counting both chunks being read and chunks queued
 * behind sockets, and one board at most AL_SESSION_CHUNK_MAX, so control
 * messages never wait long (agentlink_priv.h has the arithmetic). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/chunk_cache.h"
#include "controller/skyrootd/metrics.h"
#include "controller/skyrootd/scrub.h"

#include "controller/skyrootd/store.h"

static void chunk_job_unlink(struct chunk_job *j)
{
	if (j->sprev) {
		*j->sprev = j->snext;
		if (j->snext)
			j->snext->sprev = j->sprev;
		j->sprev = NULL;
		j->snext = NULL;
	}
}

static void chunk_work(uv_work_t *w)
{
	struct chunk_job *j = w->data;
	struct chunk_cache *cc = j->al->ctl->chunk_cache;
	uint8_t *data = j->buf + SKY_FRAME_TAIL_PREFIX_MAX;
	int r;

	if (chunk_cache_get(cc, j->digest, data, j->size)) {
		j->result = 0;
		return;
	}
	j->result = store_chunk_load(j->al->ctl->db_path, j->rowid, data, j->size);
	if (j->result == 0) {
		/* Kept only once it hashes right (-EFBIG, no hash: the cache is
		 * off); when it does not, it is corrupt in the store: not sent,
		 * quarantined (chunk_after). */
		r = chunk_cache_put(cc, j->digest, data, j->size);
		if (r == -EBADMSG)
			j->result = r;
	}
}

static void chunk_after(uv_work_t *w, int status)
{
	struct chunk_job *j = w->data;
	struct agentlink *al = j->al;
	struct session *s = j->s;
	char hex[65];

	al->chunk_bytes -= j->size;
	al->chunk_reading--;
	if (s)
		s->chunk_reading -= j->size;
	if (status < 0)
		j->result = status;
	if (j->result == -EBADMSG) {
		sky_format_hex(j->digest, 32, hex);
		log_error("chunk %u of image %s (sha256 %s) is corrupt in the store and was not sent; "
			  "run 'skyctl image verify %s'", j->index, j->image_id, hex, j->image_id);
		scrub_quarantine(al->ctl, j->rowid, j->digest, j->image_id, j->index, METRICS_FOUND_SEND);
	}
	if (s) {
		s->chunk_inflight--;
		chunk_job_unlink(j);
		if (j->result == 0 && al_sess_ready(s)) {
			Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
			Skyroot__ChunkData cd = SKYROOT__CHUNK_DATA__INIT;
			uint8_t *data = j->buf + SKY_FRAME_TAIL_PREFIX_MAX;
			size_t before = al_sess_queued(s);
			int sr;
			cd.image_id = j->image_id;
			cd.index = j->index;
			env.request_id = j->req;
			env.body_case = SKYROOT__ENVELOPE__BODY_CHUNK_DATA;
			env.chunk_data = &cd;
			if (j->raw_tail) {
				sr = al_session_send_tail(s, &env, data, j->size, &j->buf);
			} else {
				cd.data.data = data;
				cd.data.len = j->size;
				sr = al_session_send(s, &env);
			}
			if (sr == 0) {
				size_t added = al_sess_queued(s) - before;
				metrics_chunk_sent(j->size);
				s->charged += added;
				al->chunk_bytes += added;
			}
		} else if (j->result == -EBADMSG) {
			metrics_chunk_fail(METRICS_CHUNK_CORRUPT);
			al_session_error(s, j->req, SKYROOT__ERROR_CODE__ERROR_CHUNK_CORRUPT,
				      "chunk %u of image %s is corrupt in the controller's store; it was not sent",
				      j->index, j->image_id);
		} else if (j->result < 0) {
			metrics_chunk_fail(METRICS_CHUNK_READ);
			al_session_error(s, j->req, SKYROOT__ERROR_CODE__ERROR_INTERNAL,
				      "cannot read chunk %u of image %s: %s", j->index, j->image_id,
				      strerror(-j->result));
		}
	}
	al_pool_put(al->pool, j->buf); /* unless it went to the session's loop */
	free(j);
	if (al->stopping) {
		al_maybe_free(al);
		return;
	}
	al_chunk_dispatch(al);
}

void al_chunk_dispatch(struct agentlink *al)
{
	struct chunk_job **pp = &al->chunk_head;

	while (*pp) {
		struct chunk_job *j = *pp;
		if (!j->s) { /* its board went away */
			*pp = j->next;
			free(j);
			continue;
		}
		size_t mine = j->s->chunk_reading + al_sess_queued(j->s);

		if (al->chunk_bytes + j->size > AL_CHUNK_BUDGET && al->chunk_bytes > 0)
			break;
		if (mine + j->size > AL_SESSION_CHUNK_MAX && mine > 0) {
			pp = &j->next; /* that board has its share in flight: let others go */
			continue;
		}
		j->buf = al_pool_get(al->pool, false);
		if (!j->buf)
			break; /* al_chunk_pool_ready() dispatches again */
		*pp = j->next;
		j->next = NULL;
		al->chunk_bytes += j->size;
		al->chunk_reading++;
		j->s->chunk_reading += j->size;
		j->work.data = j;
		if (uv_queue_work(al->ctl->loop, &j->work, chunk_work, chunk_after) < 0) {
			j->result = -EIO;
			al->chunk_reading--;
			al->chunk_bytes -= j->size;
			j->s->chunk_reading -= j->size;
			j->s->chunk_inflight--;
			chunk_job_unlink(j);
			al_pool_put(al->pool, j->buf);
			free(j);
		}
	}
	/* keep the tail pointer right after removals */
	al->chunk_tail = &al->chunk_head;
	while (*al->chunk_tail)
		al->chunk_tail = &(*al->chunk_tail)->next;
}

void al_chunk_pool_ready(void *arg)
{
	struct agentlink *al = arg;

	if (!al->stopping && al->chunk_head)
		al_chunk_dispatch(al);
}

void al_chunk_request(struct session *s, uint64_t req, const Skyroot__ChunkRequest *cr)
{
	struct agentlink *al = s->al;
	struct chunk_job *j;
	int r;

	if (!al_str_ok(cr->image_id, DB_ID_MAX - 1)) {
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "image id over its limit");
		return;
	}
	if (s->chunk_inflight >= AL_CHUNK_WINDOW) {
		metrics_chunk_fail(METRICS_CHUNK_BUSY);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BUSY, "more than %u chunk requests outstanding",
			      AL_CHUNK_WINDOW);
		return;
	}
	/* Only images the controller sent to this board (store_image_manifest). */
	r = db_board_image_granted(al->ctl->db, s->board_id, cr->image_id);
	if (r <= 0) {
		metrics_chunk_fail(r == 0 ? METRICS_CHUNK_NOT_GRANTED : METRICS_CHUNK_READ);
		log_warn("board %s asked for chunk %u of image %s, which was not sent to it; refused", s->board_id,
			 cr->index, cr->image_id);
		al_session_error(s, req, r == 0 ? SKYROOT__ERROR_CODE__ERROR_NOT_GRANTED : SKYROOT__ERROR_CODE__ERROR_INTERNAL,
			      "image %s was not sent to board %s: the controller serves only images it ordered "
			      "this board to fetch, run or boot", cr->image_id, s->board_id);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "out of memory");
		return;
	}
	r = store_image_chunk(al->ctl->store, cr->image_id, cr->index, &j->rowid, j->digest, &j->size);
	if (r < 0 || j->size > STORE_CHUNK_SIZE) {
		metrics_chunk_fail(METRICS_CHUNK_NOT_FOUND);
		free(j);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_NOT_FOUND, "image %s has no chunk %u",
			      cr->image_id, cr->index);
		return;
	}
	/* A chunk found corrupt in the store is never served again. */
	r = store_chunk_quarantined(al->ctl->store, j->rowid);
	if (r > 0) {
		metrics_chunk_fail(METRICS_CHUNK_QUARANTINED);
		free(j);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_CHUNK_CORRUPT,
			      "chunk %u of image %s is quarantined: it is corrupt in the controller's store; push "
			      "the same bytes again (any name) to heal it", cr->index, cr->image_id);
		return;
	}
	if (r < 0) {
		metrics_chunk_fail(METRICS_CHUNK_READ);
		free(j);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "cannot read chunk %u of image %s: %s",
			      cr->index, cr->image_id, strerror(-r));
		return;
	}
	j->al = al;
	j->s = s;
	j->req = req;
	j->index = cr->index;
	j->raw_tail = cr->raw_tail;
	snprintf(j->image_id, sizeof(j->image_id), "%s", cr->image_id);
	j->snext = s->jobs;
	if (s->jobs)
		s->jobs->sprev = &j->snext;
	s->jobs = j;
	j->sprev = &s->jobs;
	s->chunk_inflight++;
	*al->chunk_tail = j;
	al->chunk_tail = &j->next;
	al_chunk_dispatch(al);
}

void al_chunks_drained(struct session *s)
{
	struct agentlink *al = s->al;

	al->chunk_bytes -= s->charged;
	s->charged = 0;
	if (al->chunk_head)
		al_chunk_dispatch(al);
}

void al_chunks_session_gone(struct session *s)
{
	/* Jobs still queued or being read: they must not touch s again. */
	while (s->jobs) {
		struct chunk_job *j = s->jobs;
		j->s = NULL;
		chunk_job_unlink(j);
	}
	s->al->chunk_bytes -= s->charged;
	s->charged = 0;
	s->chunk_reading = 0; /* its jobs being read count for nobody now */
}
