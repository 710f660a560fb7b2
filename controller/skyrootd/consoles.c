/* Guests' serial consoles: see consoles.h. */
#include "controller/skyrootd/consoles.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/fleet.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/sql.h"

/* Bytes of rows a catch-up reads at once (rows of GUEST_CONSOLE_RING at
 * most each); what is left is read in the next round. */
#define CONSOLE_CATCHUP_MAX (4u * GUEST_CONSOLE_RING)
#define CONSOLE_CATCHUP_ROUNDS 4

/* The statements of a shared store (PostgreSQL only, as fleet.c's),
 * prepared once at start. */
enum console_q {
	CQ_APPEND,
	CQ_TAIL,
	CQ_AFTER,
	CQ_COUNT
};

static const char *const console_sql[CQ_COUNT] = {
	/* One statement, one transaction: the row (only while the guest
	 * exists: its row is locked against a delete until this commits, and
	 * a delete that went first leaves nothing to insert) and the trim of
	 * the older rows, so that the guest keeps ?5 bytes and ?6 rows at
	 * most with the new one.  The trim's view of the table is from before
	 * the insert: ?4 is the new row's length. */
	[CQ_APPEND] = "WITH ins AS ("
		      "  INSERT INTO guest_console (guest_id, seq, data, at)"
		      "  SELECT g.id, COALESCE((SELECT MAX(c.seq) FROM guest_console c WHERE c.guest_id = g.id), 0) + 1,"
		      "    CAST(?2 AS BYTEA), CAST(?3 AS BIGINT)"
		      "  FROM guests g WHERE g.id = ?1 FOR KEY SHARE"
		      "  RETURNING seq"
		      "), old AS ("
		      "  SELECT seq, SUM(octet_length(data)) OVER (ORDER BY seq DESC) AS tail,"
		      "    row_number() OVER (ORDER BY seq DESC) AS n"
		      "  FROM guest_console WHERE guest_id = ?1"
		      ") "
		      "DELETE FROM guest_console c USING old WHERE c.guest_id = ?1 AND c.seq = old.seq "
		      "AND EXISTS (SELECT 1 FROM ins) "
		      "AND (old.tail + CAST(?4 AS BIGINT) > CAST(?5 AS BIGINT) OR old.n >= CAST(?6 AS BIGINT))",
	[CQ_TAIL] = "SELECT seq, data FROM guest_console WHERE guest_id = ?1 ORDER BY seq DESC LIMIT ?2",
	[CQ_AFTER] = "SELECT seq, data FROM guest_console WHERE guest_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
};

struct console_follower {
	struct console_follower *next;
	consoles_cb cb;
	void *ctx;
	int64_t seq;                  /* shared: the last row it got */
};

struct console {
	struct console *next;
	char guest_id[DB_ID_MAX];
	uint8_t *ring;                /* GUEST_CONSOLE_RING bytes; NULL until a board sends here */
	size_t start, len;
	size_t unflushed;             /* shared: the ring's newest bytes not in the store yet */
	struct console_follower *followers;
};

struct console_rows {
	uint8_t *buf;
	size_t len;
	size_t n;
	int64_t seq[CONSOLE_ROWS_MAX];
	size_t off[CONSOLE_ROWS_MAX]; /* where row i starts in buf */
};

struct consoles {
	struct guests *guests;
	struct fleet *fleet;
	bool shared;
	struct console *list;
	struct sql_stmt *q[CQ_COUNT]; /* shared only */
	uv_timer_t flush, poll;
	int closing;
	bool flush_failing;           /* logged once until a flush works again */
	uint8_t *scratch;             /* shared: a flush's bytes, made contiguous */
	struct console_rows *rows;    /* shared: a catch-up's, made on the first */
	bool delivering;              /* in followers' callbacks: no console goes */
};

static struct sql_stmt *cq(struct consoles *cs, enum console_q id)
{
	sql_reset(cs->q[id]);
	return cs->q[id];
}

static struct console *console_get(struct consoles *cs, const char *guest_id, bool create)
{
	struct console *c;

	for (c = cs->list; c; c = c->next)
		if (strcmp(c->guest_id, guest_id) == 0)
			return c;
	if (!create)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	snprintf(c->guest_id, sizeof(c->guest_id), "%s", guest_id);
	c->next = cs->list;
	cs->list = c;
	return c;
}

static void console_free(struct console *c)
{
	while (c->followers) {
		struct console_follower *f = c->followers;
		c->followers = f->next;
		free(f);
	}
	free(c->ring);
	free(c);
}

/* The ring's newest n bytes (n <= c->len) into out. */
static void ring_copy(const struct console *c, size_t n, uint8_t *out)
{
	size_t from = (c->start + c->len - n) % GUEST_CONSOLE_RING;
	size_t first = GUEST_CONSOLE_RING - from < n ? GUEST_CONSOLE_RING - from : n;

	memcpy(out, c->ring + from, first);
	memcpy(out + first, c->ring, n - first);
}

static void ring_append(struct console *c, const uint8_t *p, size_t n)
{
	if (n >= GUEST_CONSOLE_RING) {
		memcpy(c->ring, p + n - GUEST_CONSOLE_RING, GUEST_CONSOLE_RING);
		c->start = 0;
		c->len = GUEST_CONSOLE_RING;
		return;
	}
	while (n > 0) {
		size_t at = (c->start + c->len) % GUEST_CONSOLE_RING;
		size_t k = GUEST_CONSOLE_RING - at < n ? GUEST_CONSOLE_RING - at : n;
		memcpy(c->ring + at, p, k);
		p += k;
		n -= k;
		c->len += k;
		if (c->len > GUEST_CONSOLE_RING) {
			c->start = (c->start + c->len - GUEST_CONSOLE_RING) % GUEST_CONSOLE_RING;
			c->len = GUEST_CONSOLE_RING;
		}
	}
}

/* ---- the store (shared only) ---- */

/* The ring's bytes not in the store yet go there as one row, and every
 * controller hears of it. */
static int console_flush(struct consoles *cs, struct console *c)
{
	struct sql_stmt *s;
	size_t n;
	int r;

	if (!cs->shared || !c->ring || c->unflushed == 0)
		return 0;
	n = c->unflushed < c->len ? c->unflushed : c->len;
	ring_copy(c, n, cs->scratch);
	s = cq(cs, CQ_APPEND);
	sql_bind_text(s, 1, c->guest_id);
	sql_bind_blob(s, 2, cs->scratch, n);
	sql_bind_int64(s, 3, sky_unix_now());
	sql_bind_int64(s, 4, (int64_t)n);
	sql_bind_int64(s, 5, GUEST_CONSOLE_RING);
	sql_bind_int64(s, 6, CONSOLE_ROWS_MAX);
	r = sql_run(s);
	if (r < 0)
		return r; /* kept for the next try (-EEXIST: another controller took that seq) */
	c->unflushed = 0;
	r = fleet_publish(cs->fleet, "console", c->guest_id);
	if (r < 0)
		log_debug("guest %s: console wake-up not sent: %s", c->guest_id, strerror(-r));
	return 0;
}

static void console_flush_all(struct consoles *cs)
{
	int r, bad = 0;

	for (struct console *c = cs->list; c; c = c->next) {
		r = console_flush(cs, c);
		if (r < 0 && !bad++ && !cs->flush_failing)
			log_warn("guest %s: console output not written to the store: %s; other controllers see it "
				 "when a later try works", c->guest_id, strerror(-r));
	}
	if (!bad && cs->flush_failing)
		log_info("consoles: output written to the store again");
	cs->flush_failing = bad > 0;
}

static void console_on_flush(uv_timer_t *t)
{
	struct consoles *cs = t->data;

	console_flush_all(cs);
	if (cs->flush_failing)
		uv_timer_start(&cs->flush, console_on_flush, CONSOLE_RETRY_MS, 0);
}

static void console_flush_soon(struct consoles *cs)
{
	if (!uv_is_active((uv_handle_t *)&cs->flush))
		uv_timer_start(&cs->flush, console_on_flush, CONSOLE_FLUSH_MS, 0);
}

/* The guest's newest rows, up to outlen bytes, into out (oldest first);
 * *seq the newest row's (0: none). */
static int console_tail(struct consoles *cs, const char *guest_id, char *out, size_t outlen, size_t *len,
			int64_t *seq)
{
	struct sql_stmt *s = cq(cs, CQ_TAIL);
	size_t pos = outlen;
	int r = SQL_DONE;

	*seq = 0;
	sql_bind_text(s, 1, guest_id);
	sql_bind_int64(s, 2, CONSOLE_ROWS_MAX);
	while (pos > 0 && (r = sql_step(s)) == SQL_ROW) {
		size_t n = sql_col_bytes(s, 1), k;
		const uint8_t *p = sql_col_blob(s, 1);

		if (*seq == 0)
			*seq = sql_col_int64(s, 0);
		if (n > GUEST_CONSOLE_RING || (n && !p)) {
			log_warn("guest %s: a console row of %zu bytes in the store skipped", guest_id, n);
			continue;
		}
		k = n < pos ? n : pos;
		memcpy(out + pos - k, p + n - k, k);
		pos -= k;
	}
	if (pos == 0)
		r = SQL_DONE; /* full: older rows are not wanted */
	sql_reset(s);
	if (r != SQL_DONE)
		return r < 0 ? r : -EIO;
	memmove(out, out + pos, outlen - pos);
	*len = outlen - pos;
	return 0;
}


/* Rows after seq `after`, oldest first, up to CONSOLE_CATCHUP_MAX bytes:
 * 1 when there may be more. */
static int console_rows_after(struct consoles *cs, const char *guest_id, int64_t after, struct console_rows *rows)
{
	struct sql_stmt *s = cq(cs, CQ_AFTER);
	int r;

	rows->len = rows->n = 0;
	sql_bind_text(s, 1, guest_id);
	sql_bind_int64(s, 2, after);
	sql_bind_int64(s, 3, CONSOLE_ROWS_MAX);
	while ((r = sql_step(s)) == SQL_ROW) {
		size_t n = sql_col_bytes(s, 1);
		const uint8_t *p = sql_col_blob(s, 1);
		int64_t seq = sql_col_int64(s, 0);

		if (n > GUEST_CONSOLE_RING || (n && !p)) {
			log_warn("guest %s: a console row of %zu bytes in the store skipped", guest_id, n);
			n = 0;
		}
		if (rows->len + n > CONSOLE_CATCHUP_MAX)
			break; /* the next round starts at this row */
		rows->seq[rows->n] = seq;
		rows->off[rows->n] = rows->len;
		memcpy(rows->buf + rows->len, p, n);
		rows->len += n;
		rows->n++;
	}
	sql_reset(s);
	if (r == SQL_ROW)
		return 1;
	if (r != SQL_DONE)
		return r < 0 ? r : -EIO;
	return rows->n == CONSOLE_ROWS_MAX;
}

/* What the store has for c's followers past what each got. */
static void console_catch_up(struct consoles *cs, struct console *c)
{
	struct console_rows *rows;
	int more = 1;

	if (!c->followers)
		return;
	if (!cs->rows && (cs->rows = calloc(1, sizeof(*cs->rows))) && !(cs->rows->buf = malloc(CONSOLE_CATCHUP_MAX))) {
		free(cs->rows);
		cs->rows = NULL;
	}
	rows = cs->rows;
	if (!rows) {
		log_warn("guest %s: out of memory to stream its console", c->guest_id);
		return;
	}
	for (int round = 0; more > 0 && round < CONSOLE_CATCHUP_ROUNDS && c->followers; round++) {
		int64_t from = INT64_MAX;

		for (struct console_follower *f = c->followers; f; f = f->next)
			from = f->seq < from ? f->seq : from;
		more = console_rows_after(cs, c->guest_id, from, rows);
		if (more < 0) {
			log_debug("guest %s: console rows not read: %s", c->guest_id, strerror(-more));
			break;
		}
		if (rows->n == 0)
			break;
		cs->delivering = true;
		for (struct console_follower *f = c->followers, *next; f; f = next) {
			size_t i = 0;

			next = f->next; /* the callback may let it go */
			while (i < rows->n && rows->seq[i] <= f->seq)
				i++;
			if (i == rows->n)
				continue;
			f->seq = rows->seq[rows->n - 1];
			if (rows->len > rows->off[i])
				f->cb(f->ctx, rows->buf + rows->off[i], rows->len - rows->off[i]);
		}
		cs->delivering = false;
	}
}

static bool console_any_followed(const struct consoles *cs)
{
	for (const struct console *c = cs->list; c; c = c->next)
		if (c->followers)
			return true;
	return false;
}

/* A wake-up: arg is a guest id, only looked up. */
static void console_on_wake(void *ctx, const char *arg)
{
	struct consoles *cs = ctx;
	struct console *c = console_get(cs, arg, false);

	if (c)
		console_catch_up(cs, c);
}

/* Wake-ups lost while the bus was down are made up for here. */
static void console_on_poll(uv_timer_t *t)
{
	struct consoles *cs = t->data;

	if (!console_any_followed(cs)) {
		uv_timer_stop(&cs->poll);
		return;
	}
	for (struct console *c = cs->list; c; c = c->next)
		console_catch_up(cs, c);
}

/* ---- from boards ---- */

void consoles_on_data(struct consoles *cs, const char *board_id, const Skyroot__ConsoleData *d)
{
	char placed[DB_ID_MAX];
	struct console *c;
	const uint8_t *p = d->data.data;
	size_t n = d->data.len;

	if (!cs || !d->guest_id || strlen(d->guest_id) >= DB_ID_MAX || n > CONSOLE_CHUNK_MAX || (n && !p))
		return;
	/* Only a guest placed on this board (by its id, not its name). */
	if (guests_board_of(cs->guests, d->guest_id, placed) < 0 || strcmp(placed, board_id) != 0)
		return;
	c = console_get(cs, d->guest_id, true);
	if (!c)
		return;
	if (!c->ring && !(c->ring = malloc(GUEST_CONSOLE_RING)))
		return;
	ring_append(c, p, n);
	if (cs->shared) {
		c->unflushed = c->unflushed + n < GUEST_CONSOLE_RING ? c->unflushed + n : GUEST_CONSOLE_RING;
		console_flush_soon(cs);
		return;
	}
	cs->delivering = true;
	for (struct console_follower *f = c->followers, *next; f; f = next) {
		next = f->next; /* the callback may unfollow */
		f->cb(f->ctx, p, n);
	}
	cs->delivering = false;
}

void consoles_forget(struct consoles *cs, const char *guest_id)
{
	if (!cs || cs->delivering)
		return;
	for (struct console **pp = &cs->list; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->guest_id, guest_id) == 0) {
			struct console *c = *pp;
			if (c->followers)
				return;
			*pp = c->next;
			console_free(c);
			return;
		}
}

/* ---- readers ---- */

int consoles_read(struct consoles *cs, const char *guest_id, char *out, size_t outlen, size_t *len)
{
	struct console *c = console_get(cs, guest_id, false);
	int64_t seq;

	*len = 0;
	if (cs->shared) {
		if (c)
			console_flush(cs, c); /* what this controller has is in the answer */
		return console_tail(cs, guest_id, out, outlen, len, &seq);
	}
	if (!c || !c->ring)
		return 0;
	*len = c->len < outlen ? c->len : outlen;
	ring_copy(c, *len, (uint8_t *)out);
	return 0;
}

int consoles_follow(struct consoles *cs, const char *guest_id, consoles_cb cb, void *ctx, char *out, size_t outlen,
		    size_t *len)
{
	struct console *c = console_get(cs, guest_id, true);
	struct console_follower *f;
	int64_t seq = 0;
	int r;

	*len = 0;
	if (!c)
		return -ENOMEM;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	if (cs->shared) {
		console_flush(cs, c);
		r = console_tail(cs, guest_id, out, outlen, len, &seq);
		if (r < 0) {
			free(f);
			return r;
		}
		if (!uv_is_active((uv_handle_t *)&cs->poll))
			uv_timer_start(&cs->poll, console_on_poll, CONSOLE_POLL_MS, CONSOLE_POLL_MS);
	} else if (c->ring) {
		*len = c->len < outlen ? c->len : outlen;
		ring_copy(c, *len, (uint8_t *)out);
	}
	f->cb = cb;
	f->ctx = ctx;
	f->seq = seq;
	f->next = c->followers;
	c->followers = f;
	return 0;
}

void consoles_unfollow(struct consoles *cs, const char *guest_id, void *ctx)
{
	struct console *c = cs ? console_get(cs, guest_id, false) : NULL;

	if (!c)
		return;
	for (struct console_follower **pp = &c->followers; *pp; pp = &(*pp)->next)
		if ((*pp)->ctx == ctx) {
			struct console_follower *f = *pp;
			*pp = f->next;
			free(f);
			break;
		}
	/* A guest followed here, its board elsewhere: nothing left to keep. */
	if (!c->followers && !c->ring)
		consoles_forget(cs, guest_id);
}

/* ---- start, stop ---- */

int consoles_start(uv_loop_t *loop, struct db *db, struct guests *g, struct fleet *f, struct consoles **out)
{
	struct consoles *cs = calloc(1, sizeof(*cs));
	int r = 0;

	if (!cs)
		return -ENOMEM;
	cs->guests = g;
	cs->fleet = f;
	cs->shared = fleet_shared(f);
	uv_timer_init(loop, &cs->flush);
	uv_timer_init(loop, &cs->poll);
	cs->flush.data = cs->poll.data = cs;
	if (cs->shared) {
		cs->scratch = malloc(GUEST_CONSOLE_RING);
		if (!cs->scratch)
			r = -ENOMEM;
		for (int i = 0; i < CQ_COUNT && r == 0; i++)
			r = sql_prepare(db_sql(db), console_sql[i], &cs->q[i]);
		if (r == 0)
			r = fleet_subscribe(f, "console", console_on_wake, cs);
	}
	if (r < 0) {
		cs->shared = false; /* nothing to write on the way out */
		consoles_stop(cs);
		return r;
	}
	*out = cs;
	return 0;
}

static void consoles_closed(uv_handle_t *h)
{
	struct consoles *cs = h->data;

	if (--cs->closing > 0)
		return;
	while (cs->list) {
		struct console *c = cs->list;
		cs->list = c->next;
		console_free(c);
	}
	free(cs->scratch);
	if (cs->rows)
		free(cs->rows->buf);
	free(cs->rows);
	free(cs);
}

void consoles_stop(struct consoles *cs)
{
	if (!cs)
		return;
	if (cs->shared)
		console_flush_all(cs);
	for (int i = 0; i < CQ_COUNT; i++)
		sql_finalize(cs->q[i]);
	cs->closing = 2;
	uv_close((uv_handle_t *)&cs->flush, consoles_closed);
	uv_close((uv_handle_t *)&cs->poll, consoles_closed);
}
