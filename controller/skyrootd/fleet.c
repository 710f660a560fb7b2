/* Several controllers on one store (fleet.h): presence rows, the relay's
 * outbox, wake-ups and fleet-wide jobs.  The bus itself (a connection of
 * its own on PostgreSQL) is fleet_pg.c; here is what travels on it and
 * what the store keeps of it.
 *
 * Presence: a row per board held here, written when its session says
 * hello, its seen refreshed for all of them at once every
 * FLEET_PRESENCE_STALE_S / 3 s, deleted when the session ends and, for all
 * of them, at a clean stop.  A controller killed leaves its rows: they go
 * stale, and the board's next session anywhere takes its row over.
 *
 * Relay: an order for a board held elsewhere is an outbox row and an
 * "outbox BOARD" wake-up; the holder takes the board's rows in one
 * statement (DELETE ... RETURNING: taken once in the fleet) and sends them
 * oldest first.  A wake-up lost (the bus was down) is made up for by the
 * same timer that refreshes presence: it takes what waits for every board
 * held here. */
#include "controller/skyrootd/fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/sql.h"
#ifdef SKY_HAVE_PG
#include "controller/skyrootd/fleet_pg.h"
#endif

#define FLEET_SUBS_MAX 8
#define FLEET_TOPIC_MAX 16
#define FLEET_ARG_MAX 128
#define FLEET_QUEUE_MAX 1024    /* local wake-ups waiting for the next turn */
#define FLEET_TAKE_BATCH 32     /* outbox rows taken per statement (its LIMIT) */
/* The advisory locks' keys: fixed, "SkyR" in the high half. */
#define FLEET_LOCK_BASE ((int64_t)0x536b7952 << 32)
#define FLEET_LOCK_EVENTS (FLEET_LOCK_BASE + 100)

/* The statements of a shared store (PostgreSQL), prepared once at start:
 * a one-off statement there is three round trips (prepare, run,
 * deallocate), and presence and relay run per board session and order. */
enum fleet_q {
	FQ_NOTIFY,
	FQ_EVENTS_LOCK,
	FQ_REFRESH,
	FQ_UP,
	FQ_DOWN,
	FQ_HOLDER,
	FQ_RELAY,
	FQ_TAKE,
	FQ_WAITING,
	FQ_SWEEP,
	FQ_LEAVE,
	FQ_COUNT
};

static const char *const fleet_sql[FQ_COUNT] = {
	[FQ_NOTIFY] = "SELECT pg_notify('skyroot', ?)",
	[FQ_EVENTS_LOCK] = "SELECT pg_advisory_xact_lock(?)",
	[FQ_REFRESH] = "UPDATE board_presence SET seen = ? WHERE controller = ?",
	[FQ_UP] = "INSERT INTO board_presence (board_id, controller, since, seen) VALUES (?1, ?2, ?3, ?3) "
		  "ON CONFLICT (board_id) DO UPDATE SET controller = excluded.controller, since = excluded.since, "
		  "seen = excluded.seen",
	[FQ_DOWN] = "DELETE FROM board_presence WHERE board_id = ? AND controller = ?",
	[FQ_HOLDER] = "SELECT controller, seen FROM board_presence WHERE board_id = ? AND seen >= ?",
	[FQ_RELAY] = "INSERT INTO board_outbox (board_id, kind, data, created_at) VALUES (?, ?, ?, ?)",
	[FQ_TAKE] = "DELETE FROM board_outbox WHERE seq IN (SELECT seq FROM board_outbox WHERE board_id = ? "
		    "ORDER BY seq LIMIT 32) RETURNING seq, kind, data",
	[FQ_WAITING] = "SELECT DISTINCT o.board_id FROM board_outbox o JOIN board_presence p "
		       "ON p.board_id = o.board_id WHERE p.controller = ? ORDER BY o.board_id LIMIT 64",
	[FQ_SWEEP] = "DELETE FROM board_outbox WHERE created_at < ?",
	[FQ_LEAVE] = "DELETE FROM board_presence WHERE controller = ?",
};

struct fleet_sub {
	char topic[FLEET_TOPIC_MAX];
	fleet_cb cb;
	void *ctx;
};

struct fleet_msg {
	struct fleet_msg *next;
	char topic[FLEET_TOPIC_MAX];
	char arg[FLEET_ARG_MAX];
};

struct fleet {
	struct controller *ctl;
	struct sql *c;                /* the store's connection */
	char self[FLEET_ID_MAX];
	bool shared;
	const struct fleet_local_ops *local;
	void *local_ctx;
	struct fleet_sub subs[FLEET_SUBS_MAX];
	size_t n_subs;
	/* SQLite: wake-ups for this controller, handed out on the next turn */
	struct fleet_msg *q_head, *q_tail;
	size_t q_len;
	uv_idle_t idle;
	uv_timer_t timer;             /* presence refresh, missed wake-ups, outbox sweep */
	int closing;
	struct sql_stmt *q[FQ_COUNT]; /* shared only */
#ifdef SKY_HAVE_PG
	struct fleet_pg *bus;
#endif
};

static struct sql_stmt *fq(struct fleet *f, enum fleet_q id)
{
	sql_reset(f->q[id]);
	return f->q[id];
}

/* Run a statement of one int64 parameter that returns at most a row
 * nobody reads (pg_notify, a lock). */
static int fleet_run1(struct fleet *f, enum fleet_q id, const char *text, int64_t v)
{
	struct sql_stmt *s = fq(f, id);
	int r;

	if (text)
		sql_bind_text(s, 1, text);
	else
		sql_bind_int64(s, 1, v);
	r = sql_step(s);
	sql_reset(s);
	return r < 0 ? r : 0;
}

const char *fleet_self(const struct fleet *f)
{
	return f->self;
}

bool fleet_shared(const struct fleet *f)
{
	return f && f->shared;
}

/* ---- wake-ups */

static bool fleet_topic_ok(const char *t, size_t n)
{
	if (n == 0 || n >= FLEET_TOPIC_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (t[i] < 'a' || t[i] > 'z')
			return false;
	return true;
}

/* An id as the store makes them ("brd-...", "gst-..."), or a number. */
static bool fleet_arg_ok(const char *a, size_t n)
{
	if (n >= FLEET_ARG_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z') || (a[i] >= '0' && a[i] <= '9') ||
		      a[i] == '-' || a[i] == '_' || a[i] == '.'))
			return false;
	return true;
}

static void fleet_deliver(struct fleet *f, const char *topic, const char *arg)
{
	for (size_t i = 0; i < f->n_subs; i++)
		if (strcmp(f->subs[i].topic, topic) == 0)
			f->subs[i].cb(f->subs[i].ctx, arg);
}

/* "TOPIC ARG" from the bus: anyone with the database's password can send
 * one, so it only ever wakes a subscriber up to read the store. */
static void fleet_on_payload(void *ctx, const char *payload)
{
	struct fleet *f = ctx;
	size_t len = strnlen(payload, FLEET_PAYLOAD_MAX + 1);
	const char *sp;
	char topic[FLEET_TOPIC_MAX], arg[FLEET_ARG_MAX];

	if (len > FLEET_PAYLOAD_MAX)
		goto bad;
	sp = memchr(payload, ' ', len);
	if (!sp || !fleet_topic_ok(payload, (size_t)(sp - payload)) ||
	    !fleet_arg_ok(sp + 1, len - (size_t)(sp - payload) - 1))
		goto bad;
	memcpy(topic, payload, (size_t)(sp - payload));
	topic[sp - payload] = '\0';
	memcpy(arg, sp + 1, len - (size_t)(sp - payload) - 1);
	arg[len - (size_t)(sp - payload) - 1] = '\0';
	fleet_deliver(f, topic, arg);
	return;
bad:
	log_debug("fleet: a wake-up not of ours ignored");
}

int fleet_subscribe(struct fleet *f, const char *topic, fleet_cb cb, void *ctx)
{
	if (!fleet_topic_ok(topic, strlen(topic)))
		return -EINVAL;
	if (f->n_subs >= FLEET_SUBS_MAX)
		return -ENOSPC;
	snprintf(f->subs[f->n_subs].topic, FLEET_TOPIC_MAX, "%s", topic);
	f->subs[f->n_subs].cb = cb;
	f->subs[f->n_subs].ctx = ctx;
	f->n_subs++;
	return 0;
}

static void fleet_on_idle(uv_idle_t *h)
{
	struct fleet *f = h->data;
	struct fleet_msg *m;
	size_t n = f->q_len; /* what is published while handing out waits a turn */

	while (n-- > 0 && (m = f->q_head)) {
		f->q_head = m->next;
		if (!f->q_head)
			f->q_tail = NULL;
		f->q_len--;
		fleet_deliver(f, m->topic, m->arg);
		free(m);
	}
	if (!f->q_head)
		uv_idle_stop(&f->idle);
}

static int fleet_queue(struct fleet *f, const char *topic, const char *arg)
{
	struct fleet_msg *m;

	for (m = f->q_head; m; m = m->next)
		if (strcmp(m->topic, topic) == 0 && strcmp(m->arg, arg) == 0)
			return 0; /* one wake-up is enough */
	if (f->q_len >= FLEET_QUEUE_MAX)
		return -ENOBUFS;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	snprintf(m->topic, sizeof(m->topic), "%s", topic);
	snprintf(m->arg, sizeof(m->arg), "%s", arg);
	if (f->q_tail)
		f->q_tail->next = m;
	else
		f->q_head = m;
	f->q_tail = m;
	f->q_len++;
	uv_idle_start(&f->idle, fleet_on_idle);
	return 0;
}

int fleet_publish(struct fleet *f, const char *topic, const char *arg)
{
	char payload[FLEET_PAYLOAD_MAX + 1];
	int r;

	if (!arg)
		arg = "";
	if (!fleet_topic_ok(topic, strlen(topic)) || !fleet_arg_ok(arg, strlen(arg)))
		return -EINVAL;
	if (!f->shared)
		return fleet_queue(f, topic, arg);
	r = snprintf(payload, sizeof(payload), "%s %s", topic, arg);
	if (r < 0 || (size_t)r >= sizeof(payload))
		return -EINVAL;
	/* through the store's connection: heard when its transaction commits */
	return fleet_run1(f, FQ_NOTIFY, payload, 0);
}

/* ---- presence */

/* Its session is here. */
static bool fleet_here(struct fleet *f, const char *board_id, int64_t *last_seen)
{
	return f->local && f->local->online(f->local_ctx, board_id, last_seen);
}

void fleet_set_local(struct fleet *f, const struct fleet_local_ops *ops, void *ctx)
{
	f->local = ops;
	f->local_ctx = ctx;
}

static int fleet_presence_refresh(struct fleet *f)
{
	struct sql_stmt *s = fq(f, FQ_REFRESH);

	sql_bind_int64(s, 1, sky_unix_now());
	sql_bind_text(s, 2, f->self);
	return sql_run(s);
}

void fleet_board_up(struct fleet *f, const char *board_id)
{
	struct sql_stmt *s;
	int r;

	if (!fleet_shared(f))
		return;
	s = fq(f, FQ_UP);
	sql_bind_text(s, 1, board_id);
	sql_bind_text(s, 2, f->self);
	sql_bind_int64(s, 3, sky_unix_now());
	r = sql_run(s);
	if (r < 0)
		log_warn("board %s: presence not recorded: %s", board_id, strerror(-r));
	/* orders that waited for it (sent while it moved between controllers) */
	fleet_publish(f, "outbox", board_id);
}

void fleet_board_down(struct fleet *f, const char *board_id)
{
	struct sql_stmt *s;
	int r;

	if (!fleet_shared(f))
		return;
	s = fq(f, FQ_DOWN);
	sql_bind_text(s, 1, board_id);
	sql_bind_text(s, 2, f->self);
	r = sql_run(s);
	if (r < 0)
		log_warn("board %s: presence not cleared: %s", board_id, strerror(-r));
}

struct fleet_holder {
	char controller[FLEET_ID_MAX];
	int64_t seen;
};

/* The controller holding board_id's session by a fresh presence row. */
static int fleet_holder(struct fleet *f, const char *board_id, struct fleet_holder *h)
{
	struct sql_stmt *s = fq(f, FQ_HOLDER);
	int r;

	sql_bind_text(s, 1, board_id);
	sql_bind_int64(s, 2, sky_unix_now() - FLEET_PRESENCE_STALE_S);
	r = sql_step(s);
	if (r == SQL_ROW) {
		sql_copy_text(h->controller, sizeof(h->controller), s, 0);
		h->seen = sql_col_int64(s, 1);
		r = 0;
	} else if (r == SQL_DONE) {
		r = -ENOENT;
	}
	sql_reset(s);
	return r;
}

bool fleet_board_where(struct fleet *f, const char *board_id, int64_t *last_seen, char holder[FLEET_ID_MAX])
{
	struct fleet_holder h;

	if (!f)
		return false;
	if (fleet_here(f, board_id, last_seen)) {
		if (holder)
			snprintf(holder, FLEET_ID_MAX, "%s", f->self);
		return true;
	}
	if (!f->shared || fleet_holder(f, board_id, &h) < 0 || strcmp(h.controller, f->self) == 0)
		return false;
	if (last_seen)
		*last_seen = h.seen;
	if (holder)
		snprintf(holder, FLEET_ID_MAX, "%s", h.controller);
	return true;
}

bool fleet_board_online(struct fleet *f, const char *board_id, int64_t *last_seen)
{
	return fleet_board_where(f, board_id, last_seen, NULL);
}

/* ---- relay */

static int fleet_relay(struct fleet *f, const char *board_id, const char *kind, const void *data, size_t len)
{
	struct fleet_holder h;
	struct sql_stmt *s;
	int r;

	if (!f->shared)
		return -ENOTCONN;
	r = fleet_holder(f, board_id, &h);
	if (r == -ENOENT || (r == 0 && strcmp(h.controller, f->self) == 0))
		return -ENOTCONN; /* nobody holds it (here: its session is just gone) */
	if (r < 0)
		return r;
	s = fq(f, FQ_RELAY);
	sql_bind_text(s, 1, board_id);
	sql_bind_text(s, 2, kind);
	if (data)
		sql_bind_blob(s, 3, data, len);
	else
		sql_bind_null(s, 3);
	sql_bind_int64(s, 4, sky_unix_now());
	r = sql_run(s);
	if (r == 0)
		r = fleet_publish(f, "outbox", board_id);
	if (r == 0)
		log_debug("board %s: %s relayed to %s", board_id, kind, h.controller);
	return r;
}

int fleet_board_send(struct fleet *f, const char *board_id, Skyroot__Envelope *env)
{
	size_t len;
	uint8_t *buf;
	int r;

	if (!f)
		return -ENOTCONN; /* stopping */
	r = f->local ? f->local->send(f->local_ctx, board_id, env) : -ENOTCONN;
	if (r != -ENOTCONN || !f->shared)
		return r;
	len = skyroot__envelope__get_packed_size(env);
	if (len > FLEET_ENVELOPE_MAX)
		return -EMSGSIZE;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	skyroot__envelope__pack(env, buf);
	r = fleet_relay(f, board_id, "envelope", buf, len);
	free(buf);
	return r;
}

int fleet_board_fetch(struct fleet *f, const char *board_id, const char *image_id)
{
	int r;

	if (!f)
		return -ENOTCONN;
	r = f->local ? f->local->fetch(f->local_ctx, board_id, image_id) : -ENOTCONN;
	if (r != -ENOTCONN || !f->shared)
		return r;
	return fleet_relay(f, board_id, "fetch", image_id, strlen(image_id));
}

void fleet_board_kick(struct fleet *f, const char *board_id)
{
	if (!f)
		return;
	if (fleet_here(f, board_id, NULL)) {
		f->local->kick(f->local_ctx, board_id);
		return;
	}
	if (f->shared)
		fleet_relay(f, board_id, "kick", NULL, 0);
}

struct fleet_order {
	int64_t seq;
	char kind[16];
	uint8_t *data;
	size_t len;
	bool too_big;
};

static int fleet_order_cmp(const void *a, const void *b)
{
	const struct fleet_order *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void fleet_order_do(struct fleet *f, const char *board_id, struct fleet_order *o)
{
	char image[FLEET_ARG_MAX];
	Skyroot__Envelope *env;
	int r = 0;

	if (o->too_big) {
		log_warn("board %s: a relayed order over %u bytes dropped", board_id, FLEET_ENVELOPE_MAX);
		return;
	}
	if (strcmp(o->kind, "envelope") == 0) {
		env = skyroot__envelope__unpack(NULL, o->len, o->data);
		if (!env) {
			log_warn("board %s: a relayed order that does not unpack dropped", board_id);
			return;
		}
		r = f->local->send(f->local_ctx, board_id, env);
		skyroot__envelope__free_unpacked(env, NULL);
	} else if (strcmp(o->kind, "fetch") == 0) {
		if (o->len == 0 || o->len >= sizeof(image) || !fleet_arg_ok((const char *)o->data, o->len)) {
			log_warn("board %s: a relayed fetch of no image id dropped", board_id);
			return;
		}
		memcpy(image, o->data, o->len);
		image[o->len] = '\0';
		r = f->local->fetch(f->local_ctx, board_id, image);
	} else if (strcmp(o->kind, "kick") == 0) {
		f->local->kick(f->local_ctx, board_id);
	} else {
		log_warn("board %s: a relayed order of unknown kind dropped", board_id);
		return;
	}
	if (r < 0)
		log_warn("board %s: relayed %s not sent: %s", board_id, o->kind, strerror(-r));
}

/* Take (delete) what waits for board_id and send it, oldest first. */
static void fleet_take(struct fleet *f, const char *board_id)
{
	struct fleet_order o[FLEET_TAKE_BATCH];
	struct sql_stmt *s;
	size_t n;
	int r;

	if (!f->shared || !fleet_here(f, board_id, NULL))
		return; /* not ours: its holder takes them */
	s = fq(f, FQ_TAKE);
	do {
		sql_bind_text(s, 1, board_id);
		n = 0;
		while (n < FLEET_TAKE_BATCH && (r = sql_step(s)) == SQL_ROW) {
			size_t len = sql_col_bytes(s, 2);
			memset(&o[n], 0, sizeof(o[n]));
			o[n].seq = sql_col_int64(s, 0);
			sql_copy_text(o[n].kind, sizeof(o[n].kind), s, 1);
			if (len > FLEET_ENVELOPE_MAX) {
				o[n].too_big = true;
			} else if (len) {
				o[n].data = malloc(len);
				if (o[n].data)
					memcpy(o[n].data, sql_col_blob(s, 2), len);
				else
					o[n].too_big = true;
				o[n].len = len;
			}
			n++;
		}
		if (r == SQL_ROW)
			r = sql_step(s) == SQL_ROW ? -EIO : 0; /* LIMIT bounds it */
		sql_reset(s);
		qsort(o, n, sizeof(o[0]), fleet_order_cmp);
		for (size_t i = 0; i < n; i++) {
			if (r >= 0) /* a failed DELETE took nothing: the rows stay for the next try */
				fleet_order_do(f, board_id, &o[i]);
			free(o[i].data);
		}
	} while (r >= 0 && n == FLEET_TAKE_BATCH);
	if (r >= 0)
		return;
	log_warn("board %s: relayed orders not taken: %s", board_id, strerror(-r));
}

static void fleet_on_outbox(void *ctx, const char *board_id)
{
	fleet_take(ctx, board_id);
}

/* Every board held here with something waiting (a wake-up may have been
 * lost while the bus was down). */
static void fleet_take_all(struct fleet *f)
{
	char ids[64][FLEET_ARG_MAX];
	size_t n = 0;
	struct sql_stmt *s = fq(f, FQ_WAITING);

	sql_bind_text(s, 1, f->self);
	while (n < 64 && sql_step(s) == SQL_ROW)
		sql_copy_text(ids[n++], sizeof(ids[0]), s, 0);
	sql_reset(s);
	for (size_t i = 0; i < n; i++)
		fleet_take(f, ids[i]);
}

static void fleet_sweep(struct fleet *f)
{
	struct sql_stmt *s = fq(f, FQ_SWEEP);
	int r;

	sql_bind_int64(s, 1, sky_unix_now() - FLEET_OUTBOX_TTL_S);
	r = sql_run(s);
	if (r == 0 && sql_changes(f->c) > 0)
		log_warn("fleet: %" PRId64 " relayed order(s) nobody took in %d s dropped", sql_changes(f->c),
			 FLEET_OUTBOX_TTL_S);
}

static void fleet_on_timer(uv_timer_t *t)
{
	struct fleet *f = t->data;
	int r = fleet_presence_refresh(f);

	if (r < 0)
		log_debug("fleet: presence not refreshed: %s", strerror(-r));
	fleet_take_all(f);
	if (fleet_job_mine(f, FLEET_JOB_SWEEP))
		fleet_sweep(f);
}

#ifdef SKY_HAVE_PG
static void fleet_on_resumed(void *ctx)
{
	fleet_take_all(ctx);
}

static const struct fleet_pg_ops fleet_bus_ops = {
	.note = fleet_on_payload,
	.resumed = fleet_on_resumed,
};
#endif

/* ---- jobs */

bool fleet_job_mine(struct fleet *f, enum fleet_job job)
{
	if (!f || !f->shared)
		return true;
#ifdef SKY_HAVE_PG
	return fleet_pg_lock(f->bus, (unsigned)job, FLEET_LOCK_BASE + (int64_t)job);
#else
	return false;
#endif
}

int fleet_order_events(struct fleet *f)
{
	return fleet_shared(f) ? fleet_run1(f, FQ_EVENTS_LOCK, NULL, FLEET_LOCK_EVENTS) : 0;
}

/* ---- start, stop */

static void fleet_make_id(char *out, size_t n)
{
	char host[64] = "", hex[9];
	uint8_t rnd[4] = {0};
	size_t j = 0;

	gethostname(host, sizeof(host) - 1);
	/* what goes in rows and logs: letters, digits, '-' and '.' only */
	for (size_t i = 0; host[i] && j < 24; i++)
		if ((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
		    (host[i] >= '0' && host[i] <= '9') || host[i] == '-' || host[i] == '.')
			host[j++] = host[i];
	host[j] = '\0';
	sky_random(rnd, sizeof(rnd));
	sky_format_hex(rnd, sizeof(rnd), hex);
	snprintf(out, n, "ctl-%s-%s", j ? host : "host", hex);
}

int fleet_start(struct controller *ctl, struct fleet **out)
{
	struct fleet *f = calloc(1, sizeof(*f));
	int r;

	if (!f)
		return -ENOMEM;
	f->ctl = ctl;
	f->c = db_sql(ctl->db);
	f->shared = sql_target_is_pg(ctl->db_path);
	fleet_make_id(f->self, sizeof(f->self));
	uv_idle_init(ctl->loop, &f->idle);
	uv_timer_init(ctl->loop, &f->timer);
	f->idle.data = f->timer.data = f;
	r = fleet_subscribe(f, "outbox", fleet_on_outbox, f);
	if (r < 0)
		goto fail;
	for (int i = 0; f->shared && i < FQ_COUNT; i++) {
		r = sql_prepare(f->c, fleet_sql[i], &f->q[i]);
		if (r < 0)
			goto fail;
	}
	if (f->shared) {
#ifdef SKY_HAVE_PG
		r = fleet_pg_start(ctl->loop, ctl->db_path, &fleet_bus_ops, f, &f->bus);
		if (r < 0)
			goto fail;
		uv_timer_start(&f->timer, fleet_on_timer, FLEET_PRESENCE_STALE_S * 1000 / 3,
			       FLEET_PRESENCE_STALE_S * 1000 / 3);
		log_info("fleet: this controller is %s (presence and relay through the store)", f->self);
#else
		r = -EPROTONOSUPPORT;
		goto fail;
#endif
	}
	*out = f;
	return 0;
fail:
	fleet_stop(f);
	return r;
}

static void fleet_closed(uv_handle_t *h)
{
	struct fleet *f = h->data;
	struct fleet_msg *m;

	if (--f->closing > 0)
		return;
	while ((m = f->q_head)) {
		f->q_head = m->next;
		free(m);
	}
	free(f);
}

void fleet_stop(struct fleet *f)
{
	if (!f)
		return;
	if (f->shared && f->q[FQ_LEAVE]) {
		/* a clean stop: its boards are free for the others now */
		struct sql_stmt *s = fq(f, FQ_LEAVE);
		sql_bind_text(s, 1, f->self);
		sql_run(s);
	}
	for (int i = 0; i < FQ_COUNT; i++)
		sql_finalize(f->q[i]);
#ifdef SKY_HAVE_PG
	fleet_pg_stop(f->bus);
	f->bus = NULL;
#endif
	f->closing = 2;
	uv_close((uv_handle_t *)&f->idle, fleet_closed);
	uv_close((uv_handle_t *)&f->timer, fleet_closed);
}
