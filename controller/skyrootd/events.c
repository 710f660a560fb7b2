/* The event log (events.h): rows of the store, and handing the committed
 * ones to watchers. */
#include "controller/skyrootd/events.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_json.h"
#include "controller/skyrootd/fleet.h"
#include "controller/skyrootd/sql.h"

/* Rows read back from the store at a time to hand to watchers. */
#define EVENTS_FAN_BATCH 256
/* A transaction is open across loop callbacks (an upload): look again. */
#define EVENTS_RETRY_MS 20
/* Events noted with events_add_soon waiting for the end of the loop turn. */
#define EVENTS_PENDING_MAX 1024u

enum ev_stmt { E_INSERT, E_TRIM, E_OLDEST, E_LAST, E_AFTER, E_LIST, E_COUNT };

static const char *const ev_sql[E_COUNT] = {
	[E_INSERT] = "INSERT INTO events(at, type, kind, object_id, detail) VALUES(?,?,?,?,?) RETURNING rv",
	[E_TRIM] = "DELETE FROM events WHERE rv <= ?",
	[E_OLDEST] = "SELECT COALESCE(MIN(rv), 0) FROM events",
	/* The newest rv: trimming keeps at least the newest row, so the
	 * largest is the last one given out (rv is never reused). */
	[E_LAST] = "SELECT COALESCE(MAX(rv), 0) FROM events",
	[E_AFTER] = "SELECT rv, at, type, kind, object_id, detail FROM events WHERE rv > ? ORDER BY rv LIMIT ?",
	/* ?3..?5 empty: any. */
	[E_LIST] = "SELECT rv, at, type, kind, object_id, detail FROM events WHERE rv > ?1 AND rv <= ?2 "
		   "AND (type = ?3 OR ?3 = '') AND (kind = ?4 OR ?4 = '') AND (object_id = ?5 OR ?5 = '') "
		   "ORDER BY rv LIMIT ?6",
};

/* An event noted to be written with the others of this loop turn. */
struct ev_pending {
	int64_t at_ms;
	char type[EVENTS_TYPE_MAX];
	char kind[EVENTS_KIND_MAX];
	char id[DB_NAME_MAX];
	char *text;
};

struct events_watcher {
	struct events_watcher *next;
	events_watch_cb cb;           /* NULL: unwatched while handing out */
	void *ctx;
};

struct events {
	struct db *db;
	struct sql_stmt *q[E_COUNT];
	uint64_t keep;
	int64_t fanned;               /* the newest rv watchers were handed */
	bool dirty;                   /* rows were added since */
	bool fanning;                 /* handing out now: unwatch only marks */
	bool has_loop;
	uv_idle_t idle;               /* hand out after the callback that added */
	uv_timer_t retry;             /* ... or later, out of a transaction */
	struct events_watcher *watchers;
	unsigned n_watchers;
	int closing;                  /* handles left to close */
	struct ev_pending *pending;   /* events_add_soon's, EVENTS_PENDING_MAX */
	unsigned n_pending;
	struct fleet *fleet;          /* other controllers on the store (events_set_fleet) */
};

static struct sql_stmt *ev__q(struct events *ev, enum ev_stmt id)
{
	struct sql_stmt *s = ev->q[id];

	sql_reset(s);
	return s;
}

static int64_t ev__one_int(struct events *ev, enum ev_stmt id, int *err)
{
	struct sql_stmt *s = ev__q(ev, id);
	int rc = sql_step(s);
	int64_t v = 0;

	*err = 0;
	if (rc == SQL_ROW)
		v = sql_col_int64(s, 0);
	else if (rc != SQL_DONE)
		*err = rc < 0 ? rc : -EIO;
	sql_reset(s);
	return v;
}

static void ev__idle(uv_idle_t *h);
static void ev__retry(uv_timer_t *t);
static void ev__flush(struct events *ev);

int events_open(struct db *db, uv_loop_t *loop, uint64_t keep, struct events **out)
{
	struct events *ev = calloc(1, sizeof(*ev));
	int r = 0;

	if (!ev)
		return -ENOMEM;
	ev->db = db;
	ev->keep = keep ? keep : EVENTS_KEEP_DEFAULT;
	ev->pending = calloc(EVENTS_PENDING_MAX, sizeof(*ev->pending));
	if (!ev->pending)
		r = -ENOMEM;
	for (int i = 0; i < E_COUNT && r == 0; i++) {
		r = sql_prepare(db_sql(db), ev_sql[i], &ev->q[i]);
		if (r < 0)
			log_error("events: cannot prepare '%s': %s", ev_sql[i], sql_errmsg(db_sql(db)));
	}
	if (r == 0)
		ev->fanned = ev__one_int(ev, E_LAST, &r);
	if (r == 0 && loop) {
		uv_idle_init(loop, &ev->idle);
		uv_timer_init(loop, &ev->retry);
		ev->idle.data = ev;
		ev->retry.data = ev;
		ev->has_loop = true;
	}
	if (r < 0) {
		for (int i = 0; i < E_COUNT; i++)
			sql_finalize(ev->q[i]);
		free(ev->pending);
		free(ev);
		return r;
	}
	*out = ev;
	return 0;
}

static void ev__free(struct events *ev)
{
	while (ev->watchers) {
		struct events_watcher *w = ev->watchers;
		ev->watchers = w->next;
		free(w);
	}
	for (int i = 0; i < E_COUNT; i++)
		sql_finalize(ev->q[i]);
	for (unsigned i = 0; i < ev->n_pending; i++)
		free(ev->pending[i].text);
	free(ev->pending);
	free(ev);
}

static void ev__closed(uv_handle_t *h)
{
	struct events *ev = h->data;

	if (--ev->closing == 0)
		ev__free(ev);
}

void events_close(struct events *ev)
{
	if (!ev)
		return;
	if (!sql_in_tx(db_sql(ev->db)))
		ev__flush(ev); /* what was noted is kept */
	if (!ev->has_loop) {
		ev__free(ev);
		return;
	}
	ev->closing = 2;
	uv_close((uv_handle_t *)&ev->idle, ev__closed);
	uv_close((uv_handle_t *)&ev->retry, ev__closed);
}

void events_set_keep(struct events *ev, uint64_t keep)
{
	if (ev)
		ev->keep = keep ? keep : EVENTS_KEEP_DEFAULT;
}

bool events_type_ok(const char *type)
{
	size_t n = strlen(type);

	if (n == 0 || n >= EVENTS_TYPE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = type[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
			return false;
	}
	return true;
}

int events_add_kv(struct events *ev, const char *type, const char *kind, const char *id, ...)
{
	json_t *d;
	va_list ap;
	const char *k;

	if (!ev)
		return 0;
	d = json_object();
	if (!d)
		return -ENOMEM;
	va_start(ap, id);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);
		if (v && v[0])
			json_object_set_new(d, k, api_json_strn(v, EVENTS_REASON_MAX));
	}
	va_end(ap);
	return events_add(ev, type, kind, id, d);
}

int events_add_pairs(struct events *ev, bool soon, const char *type, const char *kind, const char *id,
		     const char *const *kv)
{
	json_t *d;

	if (!ev)
		return 0;
	d = json_object();
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; kv && kv[i]; i += 2)
		if (kv[i + 1] && kv[i + 1][0])
			json_object_set_new(d, kv[i], api_json_strn(kv[i + 1], EVENTS_REASON_MAX));
	return soon ? events_add_soon(ev, type, kind, id, d) : events_add(ev, type, kind, id, d);
}

static void ev__wake(struct events *ev)
{
	ev->dirty = true;
	if (ev->has_loop && !ev->closing)
		uv_idle_start(&ev->idle, ev__idle);
}

/* Another controller committed events: read them (the argument is not
 * needed: the rows after ev->fanned are). */
static void ev__on_fleet(void *ctx, const char *arg)
{
	(void)arg;
	ev__wake(ctx);
}

void events_set_fleet(struct events *ev, struct fleet *f)
{
	if (!ev)
		return;
	if (f && !ev->fleet && fleet_subscribe(f, "events", ev__on_fleet, ev) < 0)
		log_warn("events: other controllers' events reach watchers here only at the next local one");
	ev->fleet = f;
}

/* The detail's text, bounded (each value is: a longer one is a bug).
 * Its values are strings (the API's Event.detail is map<string, string>:
 * another value would end every protobuf watch): any other is stored as
 * its JSON text. */
static char *ev__text(json_t *detail)
{
	const char *k;
	json_t *v;
	char *text;

	if (!detail)
		detail = json_object();
	json_object_foreach(detail, k, v) {
		if (json_is_string(v))
			continue;
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text || json_object_set_new(detail, k, json_string(text)) < 0) {
			free(text);
			json_decref(detail);
			return NULL;
		}
		free(text);
	}
	text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(detail);
	if (text && strlen(text) > EVENTS_DETAIL_MAX) {
		free(text);
		text = strdup("{}");
	}
	return text;
}

/* One row, and the oldest past keep deleted: 0 or a negative errno. */
static int ev__insert(struct events *ev, int64_t at_ms, const char *type, const char *kind, const char *id,
		      const char *text)
{
	struct sql_stmt *s;
	int64_t rv = 0;
	char rvs[24];
	int r;

	/* PostgreSQL: rv comes from a sequence, drawn at the insert but seen
	 * at the commit; under this lock (held to the commit) no row with a
	 * smaller rv can commit after this one. */
	r = fleet_order_events(ev->fleet);
	if (r < 0)
		return r;
	s = ev__q(ev, E_INSERT);
	sql_bind_int64(s, 1, at_ms);
	sql_bind_text(s, 2, type);
	sql_bind_text(s, 3, kind);
	sql_bind_text(s, 4, id ? id : "");
	sql_bind_text(s, 5, text);
	r = sql_step(s);
	if (r == SQL_ROW) {
		rv = sql_col_int64(s, 0);
		r = 0;
	} else {
		r = r < 0 ? r : -EIO; /* RETURNING gives the row */
	}
	sql_reset(s);
	if (r < 0)
		return r;
	if ((uint64_t)rv > ev->keep) {
		s = ev__q(ev, E_TRIM);
		sql_bind_int64(s, 1, rv - (int64_t)(ev->keep > INT64_MAX ? INT64_MAX : ev->keep));
		r = sql_run(s);
	}
	if (r == 0 && fleet_shared(ev->fleet)) {
		snprintf(rvs, sizeof(rvs), "%lld", (long long)rv);
		r = fleet_publish(ev->fleet, "events", rvs); /* heard at the commit */
	}
	ev__wake(ev);
	return r;
}

/* The events noted with events_add_soon, in one transaction. */
static void ev__flush(struct events *ev)
{
	unsigned n = ev->n_pending;
	int r;

	if (n == 0)
		return;
	ev->n_pending = 0;
	r = db_begin(ev->db);
	for (unsigned i = 0; i < n; i++) {
		struct ev_pending *p = &ev->pending[i];
		if (r == 0)
			r = ev__insert(ev, p->at_ms, p->type, p->kind, p->id, p->text);
		free(p->text);
		p->text = NULL;
	}
	if (r == 0)
		r = db_commit(ev->db);
	if (r < 0) {
		db_rollback(ev->db);
		log_error("events: cannot record %u events of boards' sessions: %s", n, strerror(-r));
	}
}

int events_add(struct events *ev, const char *type, const char *kind, const char *id, json_t *detail)
{
	char *text;
	int r;

	if (!ev) {
		json_decref(detail);
		return 0;
	}
	/* What was noted before goes first, when that is its own transaction. */
	if (ev->n_pending && !sql_in_tx(db_sql(ev->db)))
		ev__flush(ev);
	text = ev__text(detail);
	if (text && fleet_shared(ev->fleet) && !sql_in_tx(db_sql(ev->db))) {
		/* its own transaction: the events lock is held to its commit */
		r = db_begin(ev->db);
		if (r == 0)
			r = ev__insert(ev, (int64_t)sky_unix_now_ms(), type, kind, id, text);
		if (r == 0)
			r = db_commit(ev->db);
		if (r < 0)
			db_rollback(ev->db);
	} else {
		r = text ? ev__insert(ev, (int64_t)sky_unix_now_ms(), type, kind, id, text) : -ENOMEM;
	}
	free(text);
	if (r < 0)
		log_error("events: cannot record %s of %s %s: %s", type, kind, id ? id : "", strerror(-r));
	return r;
}

int events_add_soon(struct events *ev, const char *type, const char *kind, const char *id, json_t *detail)
{
	struct ev_pending *p;

	if (!ev) {
		json_decref(detail);
		return 0;
	}
	if (!ev->has_loop || ev->closing)
		return events_add(ev, type, kind, id, detail);
	if (ev->n_pending == EVENTS_PENDING_MAX && !sql_in_tx(db_sql(ev->db)))
		ev__flush(ev);
	if (ev->n_pending == EVENTS_PENDING_MAX)
		return events_add(ev, type, kind, id, detail);
	p = &ev->pending[ev->n_pending];
	p->text = ev__text(detail);
	if (!p->text) {
		log_error("events: cannot record %s of %s %s: %s", type, kind, id ? id : "", strerror(ENOMEM));
		return -ENOMEM;
	}
	p->at_ms = (int64_t)sky_unix_now_ms();
	snprintf(p->type, sizeof(p->type), "%s", type);
	snprintf(p->kind, sizeof(p->kind), "%s", kind);
	snprintf(p->id, sizeof(p->id), "%s", id ? id : "");
	ev->n_pending++;
	ev__wake(ev);
	return 0;
}

static void ev__row(struct sql_stmt *s, struct event *e)
{
	const char *d;

	e->rv = sql_col_int64(s, 0);
	e->at_ms = sql_col_int64(s, 1);
	sql_copy_text(e->type, sizeof(e->type), s, 2);
	sql_copy_text(e->kind, sizeof(e->kind), s, 3);
	sql_copy_text(e->id, sizeof(e->id), s, 4);
	d = sql_col_text(s, 5);
	e->detail = d ? d : "{}";
}

int events_list(struct events *ev, const struct events_filter *f, events_cb cb, void *ctx)
{
	struct sql_stmt *s = ev__q(ev, E_LIST);
	int rc, r = 0;

	sql_bind_int64(s, 1, f->after);
	sql_bind_int64(s, 2, f->upto > 0 ? f->upto : INT64_MAX);
	sql_bind_text(s, 3, f->type ? f->type : "");
	sql_bind_text(s, 4, f->kind ? f->kind : "");
	sql_bind_text(s, 5, f->id ? f->id : "");
	sql_bind_int64(s, 6, f->limit ? (int64_t)f->limit : INT64_MAX);
	while ((rc = sql_step(s)) == SQL_ROW) {
		struct event e;

		ev__row(s, &e);
		r = cb(ctx, &e);
		if (r)
			break;
	}
	if (r == 0 && rc != SQL_DONE)
		r = rc < 0 ? rc : -EIO;
	sql_reset(s);
	return r;
}

int events_oldest(struct events *ev, int64_t *rv)
{
	int r;

	*rv = ev__one_int(ev, E_OLDEST, &r);
	return r;
}

int64_t events_newest(const struct events *ev)
{
	return ev->fanned;
}

unsigned events_watchers(const struct events *ev)
{
	return ev->n_watchers;
}

int events_watch(struct events *ev, unsigned max, events_watch_cb cb, void *ctx, struct events_watcher **out)
{
	struct events_watcher *w;

	if (ev->n_watchers >= max)
		return -EUSERS;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->ctx = ctx;
	w->next = ev->watchers;
	ev->watchers = w;
	ev->n_watchers++;
	*out = w;
	return 0;
}

static void ev__unlink(struct events *ev, struct events_watcher *w)
{
	for (struct events_watcher **pp = &ev->watchers; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			free(w);
			return;
		}
}

void events_unwatch(struct events *ev, struct events_watcher *w)
{
	if (!w || !w->cb)
		return;
	w->cb = NULL;
	ev->n_watchers--;
	if (!ev->fanning)
		ev__unlink(ev, w);
}

/* Hand every committed row after ev->fanned to the watchers, in order. */
static void ev__fan(struct events *ev)
{
	struct sql_stmt *s;
	int rc;
	bool more = true;

	ev->dirty = false;
	ev->fanning = true;
	while (more) {
		int64_t last = ev->fanned;
		unsigned n = 0;

		s = ev__q(ev, E_AFTER);
		sql_bind_int64(s, 1, ev->fanned);
		sql_bind_int64(s, 2, EVENTS_FAN_BATCH);
		while ((rc = sql_step(s)) == SQL_ROW) {
			struct event e;

			ev__row(s, &e);
			n++;
			last = e.rv;
			for (struct events_watcher *w = ev->watchers; w; w = w->next)
				if (w->cb)
					w->cb(w->ctx, &e);
		}
		if (rc != SQL_DONE)
			log_error("events: cannot read the new events: %s", sql_errmsg(db_sql(ev->db)));
		sql_reset(s);
		ev->fanned = last > ev->fanned ? last : ev->fanned;
		more = rc == SQL_DONE && n == EVENTS_FAN_BATCH;
	}
	ev->fanning = false;
	for (struct events_watcher **pp = &ev->watchers; *pp;) {
		struct events_watcher *w = *pp;
		if (w->cb) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		free(w);
	}
}

static void ev__idle(uv_idle_t *h)
{
	struct events *ev = h->data;

	uv_idle_stop(h);
	if (!ev->dirty)
		return;
	if (sql_in_tx(db_sql(ev->db))) {
		/* Rows of an open transaction are not committed yet. */
		uv_timer_start(&ev->retry, ev__retry, EVENTS_RETRY_MS, 0);
		return;
	}
	ev__flush(ev);
	ev__fan(ev);
}

static void ev__retry(uv_timer_t *t)
{
	struct events *ev = t->data;

	if (ev->dirty && !ev->closing)
		uv_idle_start(&ev->idle, ev__idle);
}

json_t *events_json(const struct event *e)
{
	char at[40];
	json_t *detail = json_loads(e->detail, 0, NULL), *o;
	size_t n;

	sky_fmt_time(e->at_ms / 1000, at, sizeof(at));
	n = strlen(at);
	if (n > 0 && at[n - 1] == 'Z') /* "...:00Z" -> "...:00.123Z" */
		snprintf(at + n - 1, sizeof(at) - (n - 1), ".%03dZ", (int)(e->at_ms % 1000));
	if (!json_is_object(detail)) {
		json_decref(detail);
		detail = json_object();
	}
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "resource_version", (json_int_t)e->rv, "type", e->type, "kind",
		      e->kind, "object_id", e->id, "created_at", at, "detail", detail);
	return o;
}
