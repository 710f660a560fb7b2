/* Guests' consoles across controllers (consoles.c on a shared store)
 * against a real PostgreSQL (tests/pg/run.py starts a private one; its URI
 * in SKY_PG_URI): two controllers X and Y, each with its own loop, store
 * connection and fleet bus, on one database.
 *
 * What must hold: output X gets from a board reaches a follower on Y in
 * well under CONSOLE_POLL_MS (the wake-up, not the poll); the store keeps
 * at most GUEST_CONSOLE_RING bytes and CONSOLE_ROWS_MAX rows of a guest,
 * the newest, and Y reads exactly those; when the board's output comes to
 * Y instead (its board moved), seq goes on from X's and X's follower gets
 * it; the rows go with the guest. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "controller/skyrootd/consoles.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/fleet.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/sql.h"

#define GID "gst-00000000c0de"
#define BOARD "brd-000001"
#define WAKE_MS 1500 /* half of CONSOLE_POLL_MS: only a wake-up is that quick */

struct node {
	uv_loop_t loop;
	struct controller ctl;
	struct guests *g;
	struct consoles *cs;
	unsigned probes;              /* "probe" wake-ups heard */
};

struct got {
	uint8_t *data;
	size_t len;
};

static struct node X, Y;

static void got_cb(void *ctx, const uint8_t *data, size_t len)
{
	struct got *g = ctx;

	g->data = realloc(g->data, g->len + len);
	assert_non_null(g->data);
	memcpy(g->data + g->len, data, len);
	g->len += len;
}

static void on_probe(void *ctx, const char *arg)
{
	(void)arg;
	((struct node *)ctx)->probes++;
}

static void node_up(struct node *n, const char *u)
{
	assert_int_equal(uv_loop_init(&n->loop), 0);
	n->ctl.loop = &n->loop;
	snprintf(n->ctl.db_path, sizeof(n->ctl.db_path), "%s", u);
	assert_int_equal(db_open(u, &n->ctl.db), 0);
	assert_int_equal(fleet_start(&n->ctl, &n->ctl.fleet), 0);
	assert_true(fleet_shared(n->ctl.fleet));
	assert_int_equal(fleet_subscribe(n->ctl.fleet, "probe", on_probe, n), 0);
	assert_int_equal(guests_open(n->ctl.db, NULL, &n->g), 0);
	assert_int_equal(consoles_start(&n->loop, n->ctl.db, n->g, n->ctl.fleet, &n->cs), 0);
}

static void node_down(struct node *n)
{
	consoles_stop(n->cs);
	fleet_stop(n->ctl.fleet);
	guests_close(n->g);
	uv_run(&n->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&n->loop), 0);
	db_close(n->ctl.db);
}

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

/* Both loops turn until *len reaches want or ms pass: the time it took,
 * or -1. */
static int64_t run_until(const size_t *len, size_t want, int ms)
{
	uint64_t t0 = now_ms();

	while (*len < want) {
		if (now_ms() - t0 > (uint64_t)ms)
			return -1;
		uv_run(&X.loop, UV_RUN_NOWAIT);
		uv_run(&Y.loop, UV_RUN_NOWAIT);
		usleep(2000);
	}
	return (int64_t)(now_ms() - t0);
}

/* Both buses listen: a wake-up of X's heard by Y. */
static void buses_up(void)
{
	uint64_t t0 = now_ms();

	while (Y.probes == 0) {
		assert_true(now_ms() - t0 < 10000);
		assert_int_equal(fleet_publish(X.ctl.fleet, "probe", "x"), 0);
		for (int i = 0; i < 50 && Y.probes == 0; i++) {
			uv_run(&X.loop, UV_RUN_NOWAIT);
			uv_run(&Y.loop, UV_RUN_NOWAIT);
			usleep(2000);
		}
	}
}

static void board_says(struct node *n, const void *p, size_t len)
{
	Skyroot__ConsoleData d = SKYROOT__CONSOLE_DATA__INIT;

	d.guest_id = GID;
	d.data.data = (uint8_t *)p;
	d.data.len = len;
	consoles_on_data(n->cs, BOARD, &d);
}

/* n's read, which also writes what n has not written yet. */
static size_t read_on(struct node *n, char *buf)
{
	size_t len = 0;

	assert_int_equal(consoles_read(n->cs, GID, buf, GUEST_CONSOLE_RING, &len), 0);
	return len;
}

static int count(const char *q)
{
	return sql_count(db_sql(X.ctl.db), q);
}

static void test_across_controllers(void **state)
{
	static char buf[GUEST_CONSOLE_RING], first[GUEST_CONSOLE_RING];
	static uint8_t big[3 * 30000];
	struct got on_y = { 0 }, on_x = { 0 };
	const char *u = getenv("SKY_PG_URI"), *slash;
	char uri[512], q[128];
	struct sql *c = NULL;
	size_t n;
	int64_t took;
	int max_seq;
	(void)state;

	if (!u)
		fail_msg("SKY_PG_URI is not set: run through tests/pg/run.py");
	assert_int_equal(sql_open(u, 0, &c), 0);
	assert_int_equal(sql_exec(c, "DROP DATABASE IF EXISTS sky_consoles"), 0);
	assert_int_equal(sql_exec(c, "CREATE DATABASE sky_consoles"), 0);
	sql_close(c);
	slash = strrchr(u, '/');
	snprintf(uri, sizeof(uri), "%.*s/sky_consoles", (int)(slash - u), u);
	node_up(&X, uri);
	node_up(&Y, uri);
	assert_int_equal(sql_exec(db_sql(X.ctl.db),
				  "INSERT INTO guests (id, name, board_id, kernel, vcpus, memory, backend, desired, state, "
				  "created_at) VALUES ('" GID "', 'web1', '" BOARD "', 'img-1', 1, 67108864, 'qemu', "
				  "'running', 'running', 1)"),
		  0);
	buses_up();

	/* Followers on Y and on X (the holder's own is served the same way). */
	assert_int_equal(consoles_follow(Y.cs, GID, got_cb, &on_y, first, sizeof(first), &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(consoles_follow(X.cs, GID, got_cb, &on_x, first, sizeof(first), &n), 0);
	assert_int_equal(n, 0);

	/* X holds the board: its output on Y's follower, by a wake-up. */
	board_says(&X, "hello ", 6);
	took = run_until(&on_y.len, 6, WAKE_MS);
	if (took < 0)
		fail_msg("X's output not on Y's follower within %d ms (a wake-up is that quick, the poll is not)",
			 WAKE_MS);
	fprintf(stderr, "X's output on Y's follower in %lld ms\n", (long long)took);
	assert_memory_equal(on_y.data, "hello ", 6);
	assert_int_equal(run_until(&on_x.len, 6, WAKE_MS) >= 0, 1);
	assert_int_equal(read_on(&Y, buf), 6);
	assert_memory_equal(buf, "hello ", 6);

	/* The bound in bytes: the newest GUEST_CONSOLE_RING, whatever came. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + 5);
	for (int i = 0; i < 3; i++) {
		board_says(&X, big + i * 30000, 30000);
		read_on(&X, buf); /* one row each */
	}
	assert_true(count("SELECT CAST(SUM(octet_length(data)) AS BIGINT) FROM guest_console WHERE guest_id = '" GID
			  "'") <= (int)GUEST_CONSOLE_RING);
	n = read_on(&Y, buf);
	assert_int_equal(n, 60000); /* two whole rows: the first two went */
	assert_memory_equal(buf, big + 30000, 60000);

	/* The bound in rows: many small flushes. */
	for (int i = 0; i < CONSOLE_ROWS_MAX + 40; i++) {
		char ch = (char)('a' + i % 26);
		board_says(&X, &ch, 1);
		read_on(&X, buf);
	}
	assert_int_equal(count("SELECT count(*) FROM guest_console WHERE guest_id = '" GID "'"), CONSOLE_ROWS_MAX);
	n = read_on(&Y, buf);
	assert_int_equal(n, CONSOLE_ROWS_MAX);
	for (int i = 0; i < CONSOLE_ROWS_MAX; i++)
		assert_int_equal(buf[i], 'a' + (i + 40) % 26);
	max_seq = count("SELECT MAX(seq) FROM guest_console WHERE guest_id = '" GID "'");
	assert_int_equal(max_seq, 1 + 3 + CONSOLE_ROWS_MAX + 40);

	/* The followers catch up (what was trimmed before they read it is
	 * lost to them, the newest is not). */
	assert_true(run_until(&on_y.len, SIZE_MAX, 500) < 0);
	assert_true(on_x.len >= CONSOLE_ROWS_MAX && on_y.len >= CONSOLE_ROWS_MAX);
	assert_memory_equal(on_x.data + on_x.len - CONSOLE_ROWS_MAX, buf, CONSOLE_ROWS_MAX);
	assert_memory_equal(on_y.data + on_y.len - CONSOLE_ROWS_MAX, buf, CONSOLE_ROWS_MAX);

	/* The board moves to Y: Y writes now, seq goes on, X's follower gets it. */
	n = on_x.len;
	board_says(&Y, "from-y", 6);
	assert_true(run_until(&on_x.len, n + 6, WAKE_MS) >= 0);
	assert_memory_equal(on_x.data + on_x.len - 6, "from-y", 6);
	snprintf(q, sizeof(q), "SELECT count(*) FROM guest_console WHERE guest_id = '" GID "' AND seq = %d",
		 max_seq + 1);
	assert_int_equal(count(q), 1);
	n = read_on(&X, buf);
	assert_memory_equal(buf + n - 6, "from-y", 6);
	assert_true(run_until(&on_y.len, SIZE_MAX, 300) < 0); /* let Y's follower settle */
	assert_memory_equal(on_y.data + on_y.len - 6, "from-y", 6);

	/* Gone with the guest. */
	consoles_unfollow(X.cs, GID, &on_x);
	consoles_unfollow(Y.cs, GID, &on_y);
	assert_int_equal(guests_delete(X.g, GID), 0);
	assert_int_equal(count("SELECT count(*) FROM guest_console"), 0);
	board_says(&Y, "late", 4);
	assert_int_equal(read_on(&Y, buf), 0); /* not written: the guest is gone */
	assert_int_equal(count("SELECT count(*) FROM guest_console"), 0);

	node_down(&X);
	node_down(&Y);
	free(on_x.data);
	free(on_y.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_across_controllers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
