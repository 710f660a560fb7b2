/* /v1/events (docs/api.md "Events"): the event log as a list, and a watch:
 * a chunked answer of JSON lines (application/x-ndjson), or of Event
 * messages each after its length as a varint (application/x-protobuf, as
 * protobuf's writeDelimitedTo), that first sends every stored event after
 * `since`, paced by what the client takes, then each new one as it
 * commits, with heartbeat lines between.  A watcher
 * that lets more than its buffer queue up is cut with a last line that
 * says where to resume; a `since` older than what is kept is 410 Gone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/events.h"

/* Stored events sent at a time while a watch catches up. */
#define API_EVENTS_CATCHUP_PAGE 128
/* A cut or ended watch's client has this long to take its last bytes. */
#define API_EVENTS_LINGER_MS 5000
/* The least send buffer a watch's socket gets (SO_SNDBUF). */
#define API_EVENTS_SNDBUF_MIN (16u * 1024u)

/* A watcher past its buffer is cut with a last line saying where to
 * resume; past the HTTP layer's bound it would be dropped without one
 * (config.c bounds --events-watch-buffer to it). */
_Static_assert(EVENTS_BUFFER_DEFAULT <= HTTP_STREAM_QUEUE_MAX, "a watch's buffer is within a stream's bound");

struct api_watch {
	struct api *api;
	struct http_conn *c;
	struct events_watcher *w;
	uv_timer_t hb;
	uint64_t hb_ms;
	size_t buffer_max;
	char type[API_EVENTS_TYPE_MAX], kind[API_EVENTS_KIND_MAX], id[DB_NAME_MAX];
	int64_t last;                 /* every event up to this one was sent or filtered out */
	bool pb;                      /* length-delimited Event messages, not JSON lines */
	bool catching_up;             /* reading stored events, paced by the client */
	bool ended;
};

static void api_events__gone(struct api_reply *rep, int64_t since, int64_t oldest)
{
	json_t *inner;

	api_reply_error(rep, 410, "gone",
			"resource version %lld is older than the oldest event kept (%lld): events in between are "
			"gone; list again (GET /v1/events) and watch from its resource_version",
			(long long)since, (long long)oldest);
	inner = json_object_get(rep->body, "error");
	if (inner)
		json_object_set_new(inner, "oldest_resource_version", json_integer(oldest));
}

/* Is since one the log can resume from: 0, or 410 / 400 answered. */
static int api_events__since_ok(struct api_call *call, struct api_reply *rep, int64_t since)
{
	struct events *ev = call->ctl->events;
	int64_t oldest = 0, newest = events_newest(ev);
	int r = events_oldest(ev, &oldest);

	if (r < 0) {
		api_reply_internal(rep, r, "read the event log");
		return r;
	}
	if (since > newest) {
		api_reply_error(rep, 400, "bad_request",
				"resource version %lld is newer than the newest event (%lld); watch from a "
				"resource_version this controller gave", (long long)since, (long long)newest);
		return -EINVAL;
	}
	/* Events since+1 .. oldest-1 were deleted (only the newest
	 * --events-keep are kept). */
	if ((oldest > 0 && since < oldest - 1) || (oldest == 0 && since < newest)) {
		api_events__gone(rep, since, oldest ? oldest : newest + 1);
		return -ESTALE;
	}
	return 0;
}

/* ---- the list ---- */

struct api_events_page {
	json_t *arr;
	uint32_t n;
	int64_t last;
};

static int api_events__page_cb(void *ctx, const struct event *e)
{
	struct api_events_page *p = ctx;
	json_t *o = events_json(e);

	if (!o || json_array_append_new(p->arr, o) < 0)
		return -ENOMEM;
	p->n++;
	p->last = e->rv;
	return 0;
}

static void api_events__list(struct api_call *call, struct api_reply *rep, const struct api_events_query *q)
{
	struct events *ev = call->ctl->events;
	struct api_events_page page = { .arr = json_array() };
	struct events_filter f = {
		.after = q->has_since ? q->since : 0,
		.upto = events_newest(ev),
		.type = q->type, .kind = q->kind, .id = q->id,
		.limit = q->limit + 1,
	};
	char tok[API_PAGE_TOKEN_MAX + 1], last[DB_ID_MAX];
	json_t *o;
	int r;

	if (!page.arr) {
		api_reply_internal(rep, -ENOMEM, "list the events");
		return;
	}
	if (q->after > f.after)
		f.after = q->after;
	if (f.upto == 0) { /* no event ever */
		o = json_pack("{s:o, s:I}", "events", page.arr, "resource_version", (json_int_t)0);
		api_reply_ok(rep, 200, o);
		return;
	}
	r = events_list(ev, &f, api_events__page_cb, &page);
	if (r < 0) {
		json_decref(page.arr);
		api_reply_internal(rep, r, "list the events");
		return;
	}
	o = json_object();
	if (!o)
		goto oom;
	if (page.n > q->limit) {
		json_t *lastobj;
		json_array_remove(page.arr, q->limit);
		lastobj = json_array_get(page.arr, q->limit - 1);
		snprintf(last, sizeof(last), "evt-%lld",
			 (long long)json_integer_value(json_object_get(lastobj, "resource_version")));
		if (api_page_token_encode(call->api->page_key, "events", last, tok, sizeof(tok)) < 0 ||
		    json_object_set_new(o, "next_page_token", json_string(tok)) < 0)
			goto oom;
	}
	if (json_object_set_new(o, "events", page.arr) < 0) {
		page.arr = NULL;
		goto oom;
	}
	page.arr = NULL;
	/* Watch from here to miss nothing after this list. */
	json_object_set_new(o, "resource_version", json_integer(f.upto));
	api_reply_ok(rep, 200, o);
	return;
oom:
	json_decref(page.arr);
	json_decref(o);
	api_reply_internal(rep, -ENOMEM, "list the events");
}

/* ---- the watch ---- */

static bool api_watch__wants(const struct api_watch *aw, const struct event *e)
{
	return (!aw->type[0] || strcmp(aw->type, e->type) == 0) && (!aw->kind[0] || strcmp(aw->kind, e->kind) == 0) &&
	       (!aw->id[0] || strcmp(aw->id, e->id) == 0);
}

/* One item of the stream from o (owned): a JSON line, or a packed Event
 * after its length as a varint, into *out (malloc'd) and *len.  -EPROTO
 * (logged) when o does not fit Event (strict), -ENOMEM, or pbjson's error
 * (logged). */
static int api_watch__item(struct api_watch *aw, json_t *o, char **out, size_t *len)
{
	char err[PBJSON_ERR_MAX];
	uint8_t *msg = NULL;
	char *text;
	size_t n, mlen = 0;
	int r;

	if (!o)
		return -ENOMEM;
	if (aw->api->strict && !aw->pb && pbjson_check(API_MSG(event), o, err, sizeof(err)) < 0) {
		log_error("api: request %s: a watch's item does not fit %s: %s; the watch is closed",
			  http_conn_request_id(aw->c), API_MSG(event)->name, err);
		json_decref(o);
		return -EPROTO;
	}
	if (aw->pb) {
		r = pbjson_pack(API_MSG(event), o, &msg, &mlen, err, sizeof(err));
		json_decref(o);
		if (r < 0) {
			log_error("api: request %s: cannot encode a watch's item as %s: %s; the watch is closed",
				  http_conn_request_id(aw->c), API_MSG(event)->name, err);
			return r;
		}
		text = malloc(mlen + 10);
		if (!text) {
			free(msg);
			return -ENOMEM;
		}
		n = 0;
		for (size_t v = mlen; ; v >>= 7) { /* the length as a varint */
			text[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
			if (v <= 0x7f)
				break;
		}
		memcpy(text + n, msg, mlen);
		free(msg);
		*out = text;
		*len = n + mlen;
		return 0;
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return -ENOMEM;
	n = strlen(text);
	text[n] = '\n'; /* the NUL becomes the line's end: one write */
	*out = text;
	*len = n + 1;
	return 0;
}

/* Write one item (o owned); a failure closes the connection. */
static int api_watch__line(struct api_watch *aw, json_t *o)
{
	char *item;
	size_t len;
	int r = api_watch__item(aw, o, &item, &len);

	if (r < 0) {
		http_conn_close(aw->c, r);
		return r;
	}
	r = http_stream_write(aw->c, item, len);
	free(item);
	return r;
}

/* The last line, then the end: why, and where to resume. */
static void api_watch__end(struct api_watch *aw, const char *type, const char *why)
{
	if (aw->ended)
		return;
	aw->ended = true;
	events_unwatch(aw->api->ctl->events, aw->w);
	aw->w = NULL;
	uv_timer_stop(&aw->hb);
	if (api_watch__line(aw, json_pack("{s:s, s:I, s:s}", "type", type, "resource_version", (json_int_t)aw->last,
					  "reason", why)) == 0)
		http_stream_end(aw->c, API_EVENTS_LINGER_MS);
}

static void api_watch__cut(struct api_watch *aw)
{
	log_warn("api: request %s: a watcher of the events is cut: more than %zu bytes waited for it (it may resume "
		 "from %lld)", http_conn_request_id(aw->c), aw->buffer_max, (long long)aw->last);
	api_watch__end(aw, "watch.cut",
		       "this watcher did not keep up: resume with since=resource_version (nothing after it is lost)");
}

/* An event to the watcher when it wants it.  Every watcher that wants
 * an event sends the same bytes: they are made once (per encoding) and
 * kept in struct api until the next event. */
static int api_watch__send(struct api_watch *aw, const struct event *e)
{
	struct api_watch_item *it = &aw->api->watch_item[aw->pb];
	int r = 0;

	if (!api_watch__wants(aw, e)) {
		aw->last = e->rv;
		return 0;
	}
	if (it->rv != e->rv || !it->data) {
		free(it->data);
		it->data = NULL;
		it->rv = e->rv;
		r = api_watch__item(aw, events_json(e), &it->data, &it->len);
		if (r < 0) {
			http_conn_close(aw->c, r);
			return r;
		}
	}
	r = http_stream_write(aw->c, it->data, it->len);
	if (r == 0)
		aw->last = e->rv;
	return r;
}

struct api_watch_page {
	struct api_watch *aw;
	unsigned n;
	int r;
};

static int api_watch__page_cb(void *ctx, const struct event *e)
{
	struct api_watch_page *p = ctx;

	p->n++;
	p->r = api_watch__send(p->aw, e);
	return p->r;
}

/* Send stored events while the client takes them; live once caught up. */
static void api_watch__pump(struct api_watch *aw)
{
	struct events *ev = aw->api->ctl->events;

	while (aw->catching_up && !aw->ended && http_stream_queued(aw->c) < aw->buffer_max / 2) {
		int64_t newest = events_newest(ev), oldest = 0;
		struct events_filter f = { .after = aw->last, .upto = newest, .limit = API_EVENTS_CATCHUP_PAGE };
		struct api_watch_page p = { .aw = aw };
		int r;

		if (aw->last >= newest) {
			aw->catching_up = false;
			break;
		}
		/* The oldest were deleted while this watcher lagged. */
		r = events_oldest(ev, &oldest);
		if (r == 0 && oldest > aw->last + 1) {
			api_watch__end(aw, "watch.gone",
				       "events after resource_version were deleted before this watcher took them; "
				       "list again (GET /v1/events) and watch from its resource_version");
			return;
		}
		r = r < 0 ? r : events_list(ev, &f, api_watch__page_cb, &p);
		if (r < 0 && p.r < 0)
			return; /* writing failed: the connection is closing */
		if (r < 0) {
			log_error("api: cannot read the event log for a watcher: %s", strerror(-r));
			http_conn_close(aw->c, r);
			return;
		}
		if (p.n < API_EVENTS_CATCHUP_PAGE)
			aw->last = newest; /* every row up to newest was read */
	}
}

/* A committed event: sent at once when live, or read later when catching
 * up; a client with more than its buffer queued is cut. */
static void api_watch__event(void *ctx, const struct event *e)
{
	struct api_watch *aw = ctx;

	if (aw->ended || aw->catching_up || e->rv <= aw->last)
		return;
	if (!api_watch__wants(aw, e)) {
		aw->last = e->rv;
		return;
	}
	if (http_stream_queued(aw->c) > aw->buffer_max) {
		api_watch__cut(aw);
		return;
	}
	if (api_watch__send(aw, e) < 0)
		http_conn_close(aw->c, -EIO);
}

static void api_watch__beat(uv_timer_t *t)
{
	struct api_watch *aw = t->data;
	char at[32];

	if (aw->ended)
		return;
	if (http_stream_queued(aw->c) > aw->buffer_max) {
		api_watch__cut(aw);
		return;
	}
	sky_fmt_time(sky_unix_now(), at, sizeof(at));
	/* While live, everything up to the newest was considered: a client
	 * may resume from here. */
	if (api_watch__line(aw, json_pack("{s:s, s:I, s:s}", "type", "watch.heartbeat", "resource_version",
					  (json_int_t)aw->last, "created_at", at)) < 0)
		http_conn_close(aw->c, -EIO);
}

void api_events_writable(struct api *api, struct http_conn *c)
{
	struct api_conn_state *st = http_conn_user(c);

	(void)api;
	if (st && st->watch && st->watch->catching_up)
		api_watch__pump(st->watch);
}

static void api_watch__free(uv_handle_t *h)
{
	free(h->data);
}

void api_events_stop(struct api *api)
{
	for (size_t i = 0; i < SKY_ARRAY_SIZE(api->watch_item); i++) {
		free(api->watch_item[i].data);
		api->watch_item[i].data = NULL;
	}
}

void api_events_conn_gone(struct api *api, struct api_conn_state *st)
{
	struct api_watch *aw = st->watch;

	if (!aw)
		return;
	st->watch = NULL;
	if (aw->w)
		events_unwatch(api->ctl->events, aw->w);
	uv_close((uv_handle_t *)&aw->hb, api_watch__free);
}

static void api_events__watch(struct api_call *call, struct api_reply *rep, const struct api_events_query *q)
{
	struct controller *ctl = call->ctl;
	struct api_conn_state *st = api_conn_state(call->conn);
	unsigned max = ctl->opt.events_watchers ? ctl->opt.events_watchers : EVENTS_WATCHERS_DEFAULT;
	struct api_watch *aw;
	int r;

	if (!ctl->loop) {
		api_reply_error(rep, 503, "unavailable", "this controller has no loop to watch on");
		return;
	}
	if (events_watchers(ctl->events) >= max) {
		api_reply_error(rep, 503, "unavailable",
				"%u watchers of the events already (--events-watchers); try again later or list "
				"(GET /v1/events without watch=true)", max);
		return;
	}
	aw = calloc(1, sizeof(*aw));
	if (!st || !aw || st->watch) {
		free(aw);
		api_reply_internal(rep, -ENOMEM, "watch the events");
		return;
	}
	aw->api = call->api;
	aw->c = call->conn;
	aw->pb = st->pb_answer;
	aw->hb_ms = q->heartbeat_ms;
	aw->buffer_max = ctl->opt.events_watch_buffer ? ctl->opt.events_watch_buffer : EVENTS_BUFFER_DEFAULT;
	snprintf(aw->type, sizeof(aw->type), "%s", q->type);
	snprintf(aw->kind, sizeof(aw->kind), "%s", q->kind);
	snprintf(aw->id, sizeof(aw->id), "%s", q->id);
	/* No since: from now on. */
	aw->last = q->has_since ? q->since : events_newest(ctl->events);
	aw->catching_up = aw->last < events_newest(ctl->events);
	r = events_watch(ctl->events, max, api_watch__event, aw, &aw->w);
	if (r < 0) {
		free(aw);
		api_reply_internal(rep, r, "watch the events");
		return;
	}
	uv_timer_init(ctl->loop, &aw->hb);
	aw->hb.data = aw;
	st->watch = aw;
	rep->status = 0; /* answered here */
	r = http_stream_begin(call->conn, 200, aw->pb ? API_PROTOBUF : "application/x-ndjson");
	if (r < 0)
		return; /* closing: api_events_conn_gone frees it */
	/* The kernel holds no more than the watcher's buffer either. */
	http_stream_sndbuf(call->conn, aw->buffer_max > API_EVENTS_SNDBUF_MIN ? aw->buffer_max : API_EVENTS_SNDBUF_MIN);
	uv_timer_start(&aw->hb, api_watch__beat, aw->hb_ms, aw->hb_ms);
	api_watch__pump(aw);
}

static void api__events_get(struct api_call *call, struct api_reply *rep)
{
	struct api_events_query q;
	char err[API_QUERY_ERR_MAX];
	int r;

	if (!call->ctl->events) {
		api_reply_error(rep, 503, "unavailable", "this controller keeps no event log");
		return;
	}
	r = api_query_parse_events(call->req->query, call->req->query_len, call->api->page_key, &q, err, sizeof(err));
	if (r < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	if (q.has_since && api_events__since_ok(call, rep, q.since) < 0)
		return;
	if (q.watch)
		api_events__watch(call, rep, &q);
	else
		api_events__list(call, rep, &q);
}

const struct api_route api_events_routes[] = {
	{ .path = "/v1/events", API_ALLOW("GET"), .get = api__events_get,
	  .get_s = { .answer = API_MSG(event_list), .stream = API_MSG(event) },
	  .summary = "The event log: a page, or with watch=true a stream of events (JSON lines, or length-delimited "
		     "protobuf)" },
	{ .path = NULL },
};
