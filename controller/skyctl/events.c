/* skyctl events: list the controller's event log, or --follow it; and the
 * watch that guest create --wait follows (events.h). */
#include "controller/skyctl/events.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/verbs.h"
#include "controller/skyctl/yamlout.h"

#define EVENTS_LINE_MAX (64u * 1024u)  /* bytes of one line of a watch */
#define EVENTS_BACKOFF_MIN_MS 1000u
#define EVENTS_BACKOFF_MAX_MS 30000u
#define EVENTS_HEARTBEAT "5s"          /* asked of the controller: a dead one shows in seconds */
#define EVENTS_DETAIL_COLUMNS 60       /* columns of an event's detail in a table */

/* ---- the watch ---- */

struct events_stream {
	struct skyctl_watch *w;
	char *buf;
	size_t len;
	int end;                      /* 1: the controller cut or ended the watch */
	int gone;                     /* the events to resume from are deleted */
	int result;                   /* what w->event ended it with */
};

static int events__line(struct events_stream *s, const char *line, size_t n)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, n, 0, &jerr), *rv;
	const char *type;
	int r = 0;

	if (!json_is_object(o)) {
		json_decref(o);
		skyctl_err("a line of the controller's event stream is not a JSON object (%s); is it a Skyroot "
			   "controller of the same version (%s)?", jerr.text, SKY_VERSION);
		return -EPROTO;
	}
	type = json_string_value(json_object_get(o, "type"));
	rv = json_object_get(o, "resource_version");
	if (type == NULL || !json_is_integer(rv)) {
		json_decref(o);
		return skyctl_answer_lacks("event type and resource_version");
	}
	if (json_integer_value(rv) > s->w->last)
		s->w->last = json_integer_value(rv);
	if (strcmp(type, "watch.cut") == 0 || strcmp(type, "watch.gone") == 0) {
		s->end = 1;
		s->gone = strcmp(type, "watch.gone") == 0;
		if (s->gone) {
			fputs("skyctl: the controller ended the watch: ", stderr);
			skyctl_put_clean(stderr, json_string_value(json_object_get(o, "reason")));
			fputc('\n', stderr);
		}
	} else if (strncmp(type, "watch.", 6) != 0) {
		r = s->w->event(s->w->ud, o);
		if (r > 0)
			s->result = r;
	}
	json_decref(o);
	if (r == 0 && s->w->deadline_ms && skyctl_now_ms() >= s->w->deadline_ms) {
		s->w->timed_out = 1;
		return 1;
	}
	return r;
}

/* The sink's taker: split into lines, each a JSON object.  A line cut
 * between pieces is held in buf, never more than EVENTS_LINE_MAX bytes of
 * it, whatever size the pieces come in. */
static int events__take(void *ud, const char *data, size_t len)
{
	struct events_stream *s = ud;
	const char *end = data + len;

	while (data < end) {
		const char *nl = memchr(data, '\n', (size_t)(end - data));
		size_t n = (size_t)((nl != NULL ? nl : end) - data);
		int r;

		if (s->len + n > EVENTS_LINE_MAX) {
			skyctl_err("a line of the controller's event stream is longer than %u bytes", EVENTS_LINE_MAX);
			return -EPROTO;
		}
		if (nl == NULL) { /* the start of a line: the rest comes in the next piece */
			memcpy(s->buf + s->len, data, n);
			s->len += n;
			return 0;
		}
		if (s->len > 0) {
			memcpy(s->buf + s->len, data, n);
			r = events__line(s, s->buf, s->len + n);
			s->len = 0;
		} else {
			r = events__line(s, data, n);
		}
		data = nl + 1;
		if (r != 0 || s->end)
			return r != 0 ? r : 1;
	}
	return 0;
}

static uint64_t events__backoff_ms(unsigned attempt)
{
	uint64_t cap = attempt >= 5 ? EVENTS_BACKOFF_MAX_MS : (uint64_t)EVENTS_BACKOFF_MIN_MS << attempt;

	if (cap > EVENTS_BACKOFF_MAX_MS)
		cap = EVENTS_BACKOFF_MAX_MS;
	/* Half fixed, half jitter: watchers of a restarted controller do not
	 * come back in step (rand() unseeded gave every skyctl the same). */
	return cap / 2 + sky_random_below(cap / 2 + 1);
}

int skyctl_events_watch(struct skyctl *ctl, struct skyctl_watch *w)
{
	char since[24];
	struct events_stream s = { .w = w };
	unsigned attempt = 0;
	int r;

	s.buf = malloc(EVENTS_LINE_MAX);
	if (s.buf == NULL) {
		skyctl_err("out of memory");
		return -ENOMEM;
	}
	w->timed_out = w->interrupted = 0;
	/* From now: from the newest resource version, so that a reconnect
	 * misses nothing either. */
	if (w->since < 0 && (r = skyctl_events_now(ctl, &w->since)) < 0) {
		free(s.buf);
		return r;
	}
	w->last = w->since;
	for (;;) {
		struct skyctl_query q[8];
		struct skyctl_sink sink = { .fd = -1, .follow = 1, .what = "the events", .take = events__take, .ud = &s };
		struct skyctl_req req = { .method = "GET", .path = "/v1/events", .query = q, .sink = &sink };
		size_t n = 0;
		uint64_t delay;

		q[n++] = (struct skyctl_query){ "watch", "true" };
		/* With a deadline, a line at least every second to notice it. */
		q[n++] = (struct skyctl_query){ "heartbeat", w->deadline_ms ? "1s" : EVENTS_HEARTBEAT };
		snprintf(since, sizeof(since), "%" PRId64, w->since);
		q[n++] = (struct skyctl_query){ "since", since };
		if (w->type != NULL)
			q[n++] = (struct skyctl_query){ "type", w->type };
		if (w->kind != NULL)
			q[n++] = (struct skyctl_query){ "kind", w->kind };
		if (w->id != NULL)
			q[n++] = (struct skyctl_query){ "id", w->id };
		q[n] = (struct skyctl_query){ NULL, NULL };
		s.len = 0;
		s.end = s.gone = 0;
		r = skyctl_call(ctl, &req, NULL);
		if (w->last > w->since)
			w->since = w->last;
		if (sink.interrupted) {
			w->interrupted = 1;
			r = 0;
			break;
		}
		if (sink.stopped && (s.result > 0 || w->timed_out)) {
			r = s.result;
			break;
		}
		if (r < 0 && sink.write_errno != 0) /* the taker failed: said already */
			break;
		if (s.gone) {
			r = -ESTALE;
			break;
		}
		/* Retry what a new connection may mend: none came (unless a
		 * --wait: it says so at once), one broke off, the controller was
		 * busy or is starting; never a refusal. */
		if (r < 0 && sink.status != 0 && sink.status != 503 && !(sink.status >= 200 && sink.status <= 299))
			break;
		if (r < 0 && sink.status == 0 && w->deadline_ms)
			break;
		if (w->deadline_ms && skyctl_now_ms() >= w->deadline_ms) {
			w->timed_out = 1;
			r = 0;
			break;
		}
		if (s.end) { /* cut for being slow: at once */
			attempt = 0;
			continue;
		}
		if (sink.written > 0)
			attempt = 0;
		delay = events__backoff_ms(attempt++);
		fprintf(stderr, "skyctl: watching the events again in %.1f s, from resource version %" PRId64 "\n",
			(double)delay / 1000.0, w->since);
		skyctl_sleep_ms((unsigned)delay);
	}
	free(s.buf);
	return r;
}

int skyctl_events_now(struct skyctl *ctl, int64_t *rv)
{
	json_t *answer = NULL, *v;
	int r = skyctl_request(ctl, "GET", "/v1/events?limit=1", NULL, NULL, &answer);

	if (r < 0)
		return r;
	v = json_object_get(answer, "resource_version");
	if (!json_is_integer(v)) {
		json_decref(answer);
		return skyctl_answer_lacks("resource_version");
	}
	*rv = json_integer_value(v);
	json_decref(answer);
	return 0;
}

/* ---- skyctl events ---- */

/* "key=value key=value" of an event's detail, cut to fit a cell. */
static const char *events__detail(json_t *e, char *buf, size_t len)
{
	json_t *d = json_object_get(e, "detail"), *v;
	const char *k;
	char line[1024];
	size_t n = 0;

	line[0] = '\0';
	json_object_foreach(d, k, v) {
		int w = snprintf(line + n, sizeof(line) - n, "%s%s=%s", n ? " " : "", k,
				 json_is_string(v) ? json_string_value(v) : "?");
		if (w < 0 || (size_t)w >= sizeof(line) - n)
			break;
		n += (size_t)w;
	}
	if (n == 0)
		return "-";
	skyctl_clean_inplace(line);
	if (skyctl_cut(line, EVENTS_DETAIL_COLUMNS, buf, len) == line) /* it fits: line is on this stack */
		snprintf(buf, len, "%s", line);
	return buf;
}

static void events__row(json_t *e, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	cells[0] = skyctl_jint(e, "resource_version", scratch[0], SKYCTL_CELL_MAX);
	cells[1] = skyctl_jstr(e, "created_at", "-");
	cells[2] = skyctl_jstr(e, "type", "-");
	cells[3] = skyctl_jstr(e, "kind", "-");
	cells[4] = skyctl_jstr(e, "object_id", "-");
	cells[5] = events__detail(e, scratch[5], SKYCTL_CELL_MAX);
}

static const char *const events_header[] = { "RV", "AT", "TYPE", "KIND", "OBJECT", "DETAIL" };

/* --follow: each event as it comes, a line of the table (columns of a
 * fixed width: the rows come one by one), a JSON line or a YAML document. */
static int events__print_one(void *ud, json_t *e)
{
	struct skyctl *ctl = ud;
	const struct skyctl_opts *o = ctl->opts;
	char scratch[SKYCTL_LIST_COLS][SKYCTL_CELL_MAX];
	const char *cells[SKYCTL_LIST_COLS] = { 0 };
	int r = 0;

	if (o->output == SKYCTL_OUTPUT_JSON) {
		char *text = json_dumps(e, JSON_COMPACT);
		if (text == NULL)
			return -ENOMEM;
		r = puts(text) < 0 ? -EIO : 0;
		free(text);
	} else if (o->output == SKYCTL_OUTPUT_YAML) {
		r = fputs("---\n", stdout) < 0 ? -EIO : skyctl_yaml_write(stdout, e);
	} else {
		events__row(e, cells, scratch);
		printf("%-8s %-24s %-20s %-10s %-22s ", cells[0], cells[1], cells[2], cells[3], cells[4]);
		skyctl_put_clean(stdout, cells[5]);
		r = putchar('\n') == EOF ? -EIO : 0;
	}
	if (r == 0 && fflush(stdout) != 0)
		r = -EIO;
	return r;
}

static int events__follow(struct skyctl *ctl)
{
	const struct skyctl_opts *o = ctl->opts;
	struct skyctl_watch w = {
		.type = o->value[FLAG_TYPE], .kind = o->value[FLAG_KIND], .id = o->value[FLAG_ID],
		.since = skyctl_has(o, FLAG_SINCE) ? (int64_t)o->since : -1,
		.event = events__print_one, .ud = ctl,
	};
	int r;

	if (o->output != SKYCTL_OUTPUT_JSON && o->output != SKYCTL_OUTPUT_YAML && !skyctl_has(o, FLAG_NO_HEADERS)) {
		printf("%-8s %-24s %-20s %-10s %-22s %s\n", events_header[0], events_header[1], events_header[2],
		       events_header[3], events_header[4], events_header[5]);
		fflush(stdout);
	}
	r = skyctl_events_watch(ctl, &w);
	if (r == -ESTALE)
		fprintf(stderr, "skyctl: list the events again ('skyctl events') and follow from the newest "
				"('skyctl events --follow')\n");
	if (r == -EIO)
		skyctl_err("cannot write the events to the output");
	return r < 0 ? r : 0;
}

static int events__run(struct skyctl *ctl, const char *arg)
{
	static const struct skyctl_list list = {
		.path = "/v1/events", .key = "events", .header = events_header, .ncols = 6, .nwide = 0,
		.row = events__row, .empty = "No events (after --since, of these filters).",
	};

	(void)arg;
	if (skyctl_has(ctl->opts, FLAG_FOLLOW)) {
		if (ctl->opts->seen & FLAGS_LIST) {
			skyctl_err("--follow prints every event as it comes: it takes no --limit or --page-token");
			return -EINVAL;
		}
		return events__follow(ctl);
	}
	return skyctl_verb_list(ctl, &list);
}

static const struct skyctl_flag_note events__notes[] = {
	{ FLAG_KIND, "board|guest|image|token|credential", "only events of objects of this kind" },
	{ FLAG_FOLLOW, NULL,
	  "keep printing each new event as it commits (after --since, else from now), until Ctrl-C; a dropped "
	  "connection is made again and resumes where it left off" },
	{ FLAG__COUNT, NULL, NULL },
};

const struct skyctl_command skyctl_events_commands[] = {
	{
		.noun = "events",
		.flags = FLAGS_LIST | FLAG_BIT(FLAG_TYPE) | FLAG_BIT(FLAG_KIND) | FLAG_BIT(FLAG_ID) | FLAG_BIT(FLAG_SINCE) |
			 FLAG_BIT(FLAG_FOLLOW),
		.notes = events__notes,
		.summary = "list the controller's events (state changes of boards, guests, images, tokens and "
			   "credentials), oldest first, or --follow them",
		.example = "skyctl events --kind guest --follow",
		.run = events__run,
	},
	{ 0 },
};
