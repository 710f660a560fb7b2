/* Integrity at rest: the background scrub and the re-check of boards'
 * reports (scrub.h).  Hashing happens on worker threads only; the loop
 * quarantines what they found. */
#include "controller/skyrootd/scrub.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/chunk_cache.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/fleet.h"
#include "controller/skyrootd/store.h"

/* A batch reads about an eighth of a second's worth at the rate, at least
 * one chunk, at most this. */
#define SCRUB_BATCH_MAX (16ull << 20)
/* A pass over the whole store ends with a pause of at least this (a small
 * or empty store is not re-read in a spin). */
#define SCRUB_PASS_PAUSE_MS 1000
/* After a failed batch (the store could not be read). */
#define SCRUB_RETRY_MS 10000
/* How often the scrub's place is written to the store. */
#define SCRUB_SAVE_MS 60000

struct scrub {
	struct controller *ctl;
	uv_timer_t timer;
	uv_work_t work;
	uint8_t *buf;                 /* one chunk, for the worker */
	uint64_t rate;                /* bytes a second; 0 = paused */
	int64_t cursor;               /* the last row scrubbed */
	uint64_t started;             /* uv_now() when the batch in flight was queued */
	uint64_t saved_at;
	uint64_t pass_bytes;
	uint32_t pass_chunks, pass_bad;
	struct store_scrub_batch b;
	int result;
	bool busy, stopping, closed;
	bool mine;                    /* this controller runs the fleet's scrub (fleet.h) */
};

static const char *const scrub_found_words[METRICS_FOUND_COUNT] = {
	[METRICS_FOUND_SCRUB] = "the background scrub",
	[METRICS_FOUND_BOARD] = "a board's report, re-checked in the store",
	[METRICS_FOUND_SEND] = "the check before a send",
	[METRICS_FOUND_VERIFY] = "image verify",
};

int scrub_quarantine(struct controller *ctl, int64_t rowid, const uint8_t digest[32], const char *image_id,
		     uint32_t index, enum metrics_found_by by)
{
	char hex[65], why[160], where[200] = "", users[160] = "";
	int r;

	sky_format_hex(digest, 32, hex);
	snprintf(why, sizeof(why), "chunk sha256 %.16s... is corrupt in the store (found by %s)", hex,
		 scrub_found_words[by]);
	r = store_chunk_quarantine(ctl->db, rowid, digest, why);
	if (r < 0) {
		log_error("cannot quarantine the corrupt chunk sha256 %s: %s", hex, strerror(-r));
		return r;
	}
	/* Never sent again, from the store or from the cache: al_chunks.c
	 * checks the quarantine first; the cached copy (good bytes) goes too. */
	chunk_cache_drop(ctl->chunk_cache, digest);
	if (r == 0)
		return 0; /* already quarantined (or healed and gone) */
	metrics_chunk_quarantined(by);
	if (image_id) {
		snprintf(where, sizeof(where), " (chunk %u of image %s)", index, image_id);
	} else {
		if (store_chunk_users(ctl->db, rowid, users, sizeof(users)) == 0 && users[0])
			snprintf(where, sizeof(where), " (%s)", users);
	}
	events_add_kv(ctl->events, "image.damaged", "image", image_id ? image_id : "", "chunk", hex, "found_by",
		      scrub_found_words[by], "images", users, NULL);
	log_error("chunk sha256 %s%s is corrupt in the store, found by %s: quarantined, never served again; the "
		  "images using it are damaged (skyctl image list) until it is pushed again with the same bytes",
		  hex, where, scrub_found_words[by]);
	return 1;
}

/* ---- the background scrub ---- */

static void scrub__next(struct scrub *sc);

/* The timer's callback gets the timer: its data is the scrub. */
static void scrub__tick(uv_timer_t *t)
{
	scrub__next(t->data);
}


static void scrub__work(uv_work_t *w)
{
	struct scrub *sc = w->data;

	sc->result = store_scrub_batch(sc->ctl->db_path, &sc->b, sc->buf);
}

static void scrub__free(struct scrub *sc)
{
	free(sc->buf);
	free(sc);
}

static void scrub__save(struct scrub *sc)
{
	int r = store_scrub_cursor_set(sc->ctl->db, sc->cursor);

	if (r < 0)
		log_warn("scrub: cannot keep its place in the store: %s", strerror(-r));
	sc->saved_at = uv_now(sc->ctl->loop);
}

static void scrub__after(uv_work_t *w, int status)
{
	struct scrub *sc = w->data;
	struct store_scrub_batch *b = &sc->b;
	uint64_t now, due, delay = 0;

	sc->busy = false;
	if (sc->stopping) {
		if (sc->closed)
			scrub__free(sc);
		return;
	}
	now = uv_now(sc->ctl->loop);
	if (status < 0 || sc->result < 0) {
		log_error("scrub: cannot read the store: %s; trying again in %d s",
			  status < 0 ? uv_strerror(status) : strerror(-sc->result), SCRUB_RETRY_MS / 1000);
		uv_timer_start(&sc->timer, scrub__tick, SCRUB_RETRY_MS, 0);
		return;
	}
	metrics_scrub(b->bytes, b->chunks);
	sc->pass_bytes += b->bytes;
	sc->pass_chunks += b->chunks;
	for (uint32_t i = 0; i < b->n_bad && i < STORE_SCRUB_BAD_MAX; i++)
		if (scrub_quarantine(sc->ctl, b->bad_row[i], b->bad_digest[i], NULL, 0, METRICS_FOUND_SCRUB) > 0)
			sc->pass_bad++;
	sc->cursor = b->last;
	if (b->n_bad > STORE_SCRUB_BAD_MAX) {
		/* More than a batch could name: the rest again, at once. */
		sc->cursor = b->bad_row[STORE_SCRUB_BAD_MAX - 1];
	} else if (b->end) {
		if (sc->pass_bad)
			log_warn("scrub: a pass over the store is done: %u chunks, %" PRIu64 " bytes, %u quarantined",
				 sc->pass_chunks, sc->pass_bytes, sc->pass_bad);
		else
			log_debug("scrub: a pass over the store is done: %u chunks, %" PRIu64 " bytes, all sound",
				  sc->pass_chunks, sc->pass_bytes);
		metrics_scrub_pass();
		sc->cursor = 0;
		sc->pass_bytes = 0;
		sc->pass_chunks = sc->pass_bad = 0;
		delay = SCRUB_PASS_PAUSE_MS;
	}
	if (b->end || now - sc->saved_at >= SCRUB_SAVE_MS)
		scrub__save(sc);
	if (sc->rate == 0)
		return; /* paused meanwhile */
	/* At most rate bytes a second, counted from the batch's start. */
	due = b->bytes > UINT64_MAX / 1000 ? UINT64_MAX : b->bytes * 1000 / sc->rate;
	if (due > now - sc->started && due - (now - sc->started) > delay)
		delay = due - (now - sc->started);
	uv_timer_start(&sc->timer, scrub__tick, delay, 0);
}

static void scrub__next(struct scrub *sc)
{
	uint64_t want;
	int r;

	if (sc->stopping || sc->busy || sc->rate == 0)
		return;
	/* One controller of a fleet scrubs the shared store; another takes
	 * over (from the saved cursor) when it goes. */
	if (!fleet_job_mine(sc->ctl->fleet, FLEET_JOB_SCRUB)) {
		if (sc->mine)
			log_info("scrub: left to another controller of the fleet");
		sc->mine = false;
		uv_timer_start(&sc->timer, scrub__tick, SCRUB_RETRY_MS, 0);
		return;
	}
	if (!sc->mine && fleet_shared(sc->ctl->fleet)) {
		r = store_scrub_cursor_get(sc->ctl->db, &sc->cursor);
		log_info("scrub: this controller scrubs the fleet's store, from chunk row %" PRId64 "%s", sc->cursor,
			 r < 0 ? " (where it stopped cannot be read)" : "");
	}
	sc->mine = true;
	want = sc->rate / 8;
	if (want > SCRUB_BATCH_MAX)
		want = SCRUB_BATCH_MAX;
	if (want == 0)
		want = 1;
	sc->b = (struct store_scrub_batch){ .after = sc->cursor, .want = want };
	sc->started = uv_now(sc->ctl->loop);
	sc->work.data = sc;
	r = uv_queue_work(sc->ctl->loop, &sc->work, scrub__work, scrub__after);
	if (r < 0) {
		log_error("scrub: cannot queue work: %s", uv_strerror(r));
		uv_timer_start(&sc->timer, scrub__tick, SCRUB_RETRY_MS, 0);
		return;
	}
	sc->busy = true;
}

int scrub_start(struct controller *ctl, uint64_t rate, struct scrub **out)
{
	struct scrub *sc = calloc(1, sizeof(*sc));
	int r;

	if (!sc || !(sc->buf = malloc(STORE_CHUNK_SIZE))) {
		free(sc);
		return -ENOMEM;
	}
	sc->ctl = ctl;
	sc->rate = rate;
	r = store_scrub_cursor_get(ctl->db, &sc->cursor);
	if (r < 0)
		log_warn("scrub: cannot read where it stopped (%s); starting at the beginning", strerror(-r));
	uv_timer_init(ctl->loop, &sc->timer);
	sc->timer.data = sc;
	sc->saved_at = uv_now(ctl->loop);
	if (rate) {
		char sz[32];
		sky_format_size_exact(rate, sz, sizeof(sz));
		log_info("scrub: re-verifying the store at %s/s, from chunk row %" PRId64, sz, sc->cursor);
		uv_timer_start(&sc->timer, scrub__tick, 0, 0);
	} else {
		log_info("scrub: off (--scrub-rate 0)");
	}
	*out = sc;
	return 0;
}

void scrub_set_rate(struct scrub *sc, uint64_t rate)
{
	if (!sc || sc->rate == rate)
		return;
	sc->rate = rate;
	if (rate == 0) {
		uv_timer_stop(&sc->timer);
		scrub__save(sc);
	} else if (!sc->busy) {
		uv_timer_start(&sc->timer, scrub__tick, 0, 0);
	}
}

static void scrub__closed(uv_handle_t *h)
{
	struct scrub *sc = h->data;

	sc->closed = true;
	if (!sc->busy)
		scrub__free(sc);
}

void scrub_stop(struct scrub *sc)
{
	if (!sc || sc->stopping)
		return;
	sc->stopping = true;
	uv_timer_stop(&sc->timer);
	scrub__save(sc);
	uv_close((uv_handle_t *)&sc->timer, scrub__closed);
}

/* ---- a board's report ---- */

struct scrub_report {
	uv_work_t work;
	struct controller *ctl;
	char board_id[DB_ID_MAX];
	char image_id[DB_ID_MAX];
	uint32_t index, size;
	int64_t rowid;
	uint8_t digest[32], expected[32];
	int result;
};

static void report__work(uv_work_t *w)
{
	struct scrub_report *rp = w->data;
	uint8_t *buf = malloc(STORE_CHUNK_SIZE);

	rp->result = buf ? store_chunk_check(rp->ctl->db_path, rp->rowid, rp->digest, rp->size, buf) : -ENOMEM;
	free(buf);
}

static void report__after(uv_work_t *w, int status)
{
	struct scrub_report *rp = w->data;
	char hex[65], held[65];

	if (status < 0)
		rp->result = status;
	sky_format_hex(rp->expected, 32, hex);
	sky_format_hex(rp->digest, 32, held);
	if (rp->result == -EBADMSG) {
		metrics_chunk_report(METRICS_REPORT_CORRUPT);
		log_error("board %s reported chunk %u of image %s as corrupt, and the store's copy fails its check "
			  "too", rp->board_id, rp->index, rp->image_id);
		scrub_quarantine(rp->ctl, rp->rowid, rp->digest, rp->image_id, rp->index, METRICS_FOUND_BOARD);
	} else if (rp->result == 0 && !sky_memeq_ct(rp->expected, rp->digest, 32)) {
		/* The board's digest is not the one the store holds for that
		 * index: a board's mistake, or the store's index of the image
		 * no longer matching its signed manifest (image verify checks). */
		metrics_chunk_report(METRICS_REPORT_INTACT);
		log_warn("board %s reported chunk %u of image %s as corrupt, expecting sha256 %s; the store holds "
			 "chunk sha256 %s for that index, and it hashes right: nothing quarantined; if the board is "
			 "right, the image's index does not match its signed manifest (skyctl image verify)",
			 rp->board_id, rp->index, rp->image_id, hex, held);
	} else if (rp->result == 0) {
		metrics_chunk_report(METRICS_REPORT_INTACT);
		log_warn("board %s reported chunk %u of image %s (expected sha256 %s) as corrupt, but the store's copy "
			 "(sha256 %s) hashes right: the fault is the board's or its link's; nothing quarantined",
			 rp->board_id, rp->index, rp->image_id, hex, held);
	} else if (rp->result == -ENOENT) {
		metrics_chunk_report(METRICS_REPORT_REFUSED);
		log_info("board %s reported chunk %u of image %s as corrupt; the chunk is gone from the store",
			 rp->board_id, rp->index, rp->image_id);
	} else {
		log_error("cannot re-check chunk %u of image %s that board %s reported: %s", rp->index, rp->image_id,
			  rp->board_id, status < 0 ? uv_strerror(status) : strerror(-rp->result));
	}
	free(rp);
}

int scrub_check_report(struct controller *ctl, const char *board_id, const char *image_id, uint32_t index,
		       const uint8_t expected[32])
{
	struct scrub_report *rp = calloc(1, sizeof(*rp));
	int r;

	if (!rp)
		return -ENOMEM;
	r = store_image_chunk(ctl->store, image_id, index, &rp->rowid, rp->digest, &rp->size);
	if (r == 0 && rp->size > STORE_CHUNK_SIZE)
		r = -ENOENT;
	if (r == 0) {
		r = store_chunk_quarantined(ctl->store, rp->rowid);
		if (r > 0) {
			metrics_chunk_report(METRICS_REPORT_KNOWN);
			free(rp);
			return 0;
		}
	}
	if (r < 0) {
		free(rp);
		return r;
	}
	rp->ctl = ctl;
	rp->index = index;
	memcpy(rp->expected, expected, 32);
	snprintf(rp->board_id, sizeof(rp->board_id), "%s", board_id);
	snprintf(rp->image_id, sizeof(rp->image_id), "%s", image_id);
	rp->work.data = rp;
	r = uv_queue_work(ctl->loop, &rp->work, report__work, report__after);
	if (r < 0)
		free(rp); /* libuv's errors are negative errnos: al_report.c says which */
	return r < 0 ? r : 0;
}
