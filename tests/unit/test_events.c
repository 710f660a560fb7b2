/* The event log (controller/skyrootd/events.c): rows, filters, retention,
 * and watchers told only of committed events, in order, on the loop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "controller/skyrootd/db.h"
#include "controller/skyrootd/events.h"

struct seen {
	int64_t rv[64];
	char type[64][EVENTS_TYPE_MAX];
	unsigned n;
};

static void on_event(void *ctx, const struct event *e)
{
	struct seen *s = ctx;

	if (s->n < 64) {
		s->rv[s->n] = e->rv;
		snprintf(s->type[s->n], sizeof(s->type[0]), "%s", e->type);
	}
	s->n++;
}

static int count_cb(void *ctx, const struct event *e)
{
	struct seen *s = ctx;

	on_event(ctx, e);
	return s->n >= 1000 ? 1 : 0;
}

/* The detail of a board.refused event of test_detail. */
static int reason_cb(void *ctx, const struct event *e)
{
	json_t *d = json_loads(e->detail, 0, NULL);
	const char *r = json_string_value(json_object_get(d, "reason"));

	(void)ctx;
	assert_non_null(r);
	assert_int_equal(strlen(r), EVENTS_REASON_MAX);
	assert_memory_equal(r, "xxx?xxxx", 8);
	json_decref(d);
	return 0;
}

/* The detail of the token.used event of test_detail. */
static int detail_cb(void *ctx, const struct event *e)
{
	(void)ctx;
	assert_string_equal(e->detail, "{\"l\":\"[1]\",\"n\":\"5\",\"ok\":\"true\",\"s\":\"x\"}");
	return 0;
}

static struct db *open_db(char *dir, size_t len)
{
	char path[256];
	struct db *db;

	snprintf(dir, len, "/tmp/sky-test-events-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/skyroot.db", dir);
	assert_int_equal(db_open(path, &db), 0);
	return db;
}

static void close_db(struct db *db, const char *dir)
{
	char path[256];

	db_close(db);
	snprintf(path, sizeof(path), "%s/skyroot.db", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/skyroot.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/skyroot.db-shm", dir);
	unlink(path);
	rmdir(dir);
}

static void test_rows(void **state)
{
	char dir[64];
	struct db *db = open_db(dir, sizeof(dir));
	struct events *ev;
	struct seen s = { 0 };
	struct events_filter all = { 0 }, f = { 0 };
	int64_t oldest;
	(void)state;

	assert_int_equal(events_open(db, NULL, 4, &ev), 0);
	assert_int_equal(events_newest(ev), 0);
	assert_int_equal(events_oldest(ev, &oldest), 0);
	assert_int_equal(oldest, 0);
	assert_int_equal(events_add_kv(ev, "guest.created", "guest", "gst-1", "name", "web", "empty", "", NULL), 0);
	assert_int_equal(events_add_kv(ev, "guest.state", "guest", "gst-1", "new", "running", NULL), 0);
	assert_int_equal(events_add(ev, "token.used", "token", "tok-1", NULL), 0);
	assert_int_equal(events_list(ev, &all, count_cb, &s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.rv[0], 1);
	assert_int_equal(s.rv[2], 3);
	assert_string_equal(s.type[1], "guest.state");
	/* Filters and bounds. */
	memset(&s, 0, sizeof(s));
	f.kind = "guest";
	f.after = 1;
	assert_int_equal(events_list(ev, &f, count_cb, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.rv[0], 2);
	memset(&s, 0, sizeof(s));
	f = (struct events_filter){ .id = "gst-1", .limit = 1 };
	assert_int_equal(events_list(ev, &f, count_cb, &s), 0);
	assert_int_equal(s.n, 1);
	memset(&s, 0, sizeof(s));
	f = (struct events_filter){ .upto = 2, .type = "token.used" };
	assert_int_equal(events_list(ev, &f, count_cb, &s), 0);
	assert_int_equal(s.n, 0);
	/* Keep 4: the fifth and sixth delete the first two; the versions go on. */
	assert_int_equal(events_add(ev, "token.used", "token", "tok-2", NULL), 0);
	assert_int_equal(events_add(ev, "token.used", "token", "tok-3", NULL), 0);
	assert_int_equal(events_add(ev, "token.used", "token", "tok-4", NULL), 0);
	assert_int_equal(events_oldest(ev, &oldest), 0);
	assert_int_equal(oldest, 3);
	memset(&s, 0, sizeof(s));
	assert_int_equal(events_list(ev, &all, count_cb, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.rv[3], 6);
	events_close(ev);
	/* Reopened: rv goes on from the last one given, not from the rows. */
	assert_int_equal(events_open(db, NULL, 0, &ev), 0);
	assert_int_equal(events_newest(ev), 6);
	events_close(ev);
	close_db(db, dir);
}

static void test_detail(void **state)
{
	char dir[64], big[2 * EVENTS_REASON_MAX];
	struct db *db = open_db(dir, sizeof(dir));
	struct events *ev;
	struct events_filter all = { 0 };
	struct seen s = { 0 };
	(void)state;

	assert_int_equal(events_open(db, NULL, 0, &ev), 0);
	/* A board's words: not UTF-8, too long. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[3] = (char)0xff;
	assert_int_equal(events_add_kv(ev, "board.refused", "board", "brd-1", "reason", big, NULL), 0);
	assert_int_equal(events_list(ev, &all, count_cb, &s), 0);
	assert_int_equal(s.n, 1);
	/* Stored cut to EVENTS_REASON_MAX bytes, the byte that is not UTF-8 a '?'. */
	assert_int_equal(events_list(ev, &all, reason_cb, &s), 0);
	/* A detail's values are strings (Event.detail is map<string, string>). */
	assert_int_equal(events_add(ev, "token.used", "token", "tok-1",
				    json_pack("{s:i, s:b, s:s, s:[i]}", "n", 5, "ok", 1, "s", "x", "l", 1)), 0);
	{
		struct events_filter one = { .after = 1 };
		assert_int_equal(events_list(ev, &one, detail_cb, NULL), 0);
	}
	{
		struct event e = { .rv = 7, .at_ms = 1764684000123, .type = "board.refused", .kind = "board", .id = "brd-1",
				   .detail = "{\"reason\":\"xxx?xx\"}" };
		json_t *o = events_json(&e);
		char *text;

		assert_non_null(o);
		text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		assert_non_null(text);
		assert_non_null(strstr(text, "\"created_at\":\"2025-12-02T14:00:00.123Z\""));
		assert_non_null(strstr(text, "\"resource_version\":7"));
		assert_non_null(strstr(text, "\"object_id\":\"brd-1\""));
		free(text);
		json_decref(o);
	}
	assert_true(events_type_ok("guest.state"));
	assert_false(events_type_ok("Guest"));
	assert_false(events_type_ok(""));
	events_close(ev);
	close_db(db, dir);
}

struct fan {
	struct events *ev;
	struct db *db;
	struct seen s;
	struct events_watcher *w;
	int step;
};

static void fan_tick(uv_timer_t *t)
{
	struct fan *fa = t->data;

	switch (fa->step++) {
	case 0:
		/* Inside a transaction: not told until it commits. */
		assert_int_equal(db_begin(fa->db), 0);
		assert_int_equal(events_add(fa->ev, "board.enrolled", "board", "brd-1", NULL), 0);
		assert_int_equal(events_add(fa->ev, "token.used", "token", "tok-1", NULL), 0);
		break;
	case 1:
		assert_int_equal(fa->s.n, 0);
		assert_int_equal(db_commit(fa->db), 0);
		break;
	case 2:
		assert_int_equal(fa->s.n, 2);
		assert_int_equal(fa->s.rv[0], 1);
		assert_int_equal(fa->s.rv[1], 2);
		assert_int_equal(events_newest(fa->ev), 2);
		/* A rolled-back event is never told. */
		assert_int_equal(db_begin(fa->db), 0);
		assert_int_equal(events_add(fa->ev, "board.online", "board", "brd-1", NULL), 0);
		db_rollback(fa->db);
		/* Noted for the end of the turn, but before what comes next. */
		assert_int_equal(events_add_soon(fa->ev, "board.online", "board", "brd-2", NULL), 0);
		assert_int_equal(events_add(fa->ev, "board.offline", "board", "brd-1", NULL), 0);
		break;
	case 3:
		assert_int_equal(fa->s.n, 4);
		assert_string_equal(fa->s.type[2], "board.online");
		assert_string_equal(fa->s.type[3], "board.offline");
		assert_int_equal(fa->s.rv[3], 4);
		events_unwatch(fa->ev, fa->w);
		assert_int_equal(events_watchers(fa->ev), 1); /* the other one */
		/* Noted alone: written and told at the end of the turn. */
		assert_int_equal(events_add_soon(fa->ev, "board.online", "board", "brd-1", NULL), 0);
		assert_int_equal(events_add_soon(fa->ev, "board.online", "board", "brd-3", NULL), 0);
		break;
	default:
		assert_int_equal(fa->s.n, 4); /* unwatched */
		uv_timer_stop(t);
		uv_close((uv_handle_t *)t, NULL);
		events_close(fa->ev);
		break;
	}
}

static void test_fan_out(void **state)
{
	char dir[64];
	struct fan fa = { 0 };
	uv_loop_t loop;
	uv_timer_t t;
	struct events_watcher *w2;
	struct seen s2 = { 0 };
	(void)state;

	fa.db = open_db(dir, sizeof(dir));
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(events_open(fa.db, &loop, 0, &fa.ev), 0);
	assert_int_equal(events_watch(fa.ev, 2, on_event, &fa.s, &fa.w), 0);
	assert_int_equal(events_watch(fa.ev, 2, on_event, &s2, &w2), 0);
	assert_int_equal(events_watch(fa.ev, 2, on_event, &s2, &w2), -EUSERS);
	uv_timer_init(&loop, &t);
	t.data = &fa;
	uv_timer_start(&t, fan_tick, 30, 30);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_run(&loop, UV_RUN_DEFAULT); /* the close callbacks */
	assert_int_equal(fa.step, 5);
	assert_int_equal(s2.n, 6); /* still watching: the last ones too */
	assert_int_equal(s2.rv[5], 6);
	assert_int_equal(uv_loop_close(&loop), 0);
	close_db(fa.db, dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_detail),
		cmocka_unit_test(test_fan_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
