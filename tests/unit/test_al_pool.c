/* The chunk buffer pool (controller/skyrootd/al_pool.c): never more than
 * jobs + transients buffers; a job's get is refused at jobs, a transient
 * one may go past it up to the bound; buffers are reused, not allocated
 * again; a give-back after a refused get wakes the main loop, from another
 * thread too; the pool outlives al_pool_free until its last buffer is back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/loops.h"

#define JOBS 4
#define TRANSIENTS 2

static unsigned readies;

static void on_ready(void *arg)
{
	(void)arg;
	readies++;
}

static void test_bound(void **state)
{
	struct al_pool *p;
	struct agentlink_pool_stats st;
	uint8_t *b[JOBS + TRANSIENTS + 1];

	(void)state;
	assert_int_equal(al_pool_new(NULL, JOBS, TRANSIENTS, NULL, NULL, &p), 0);
	for (unsigned i = 0; i < JOBS; i++) {
		b[i] = al_pool_get(p, false);
		assert_non_null(b[i]);
		memset(b[i], 0xa5, AL_POOL_BUF); /* the whole buffer is ours */
	}
	assert_null(al_pool_get(p, false)); /* jobs hold their share */
	for (unsigned i = JOBS; i < JOBS + TRANSIENTS; i++)
		assert_non_null(b[i] = al_pool_get(p, true));
	assert_null(al_pool_get(p, true)); /* and never past the bound */
	al_pool_stats(p, &st);
	assert_int_equal(st.limit_bytes, (uint64_t)(JOBS + TRANSIENTS) * AL_POOL_BUF);
	assert_int_equal(st.in_use_bytes, st.limit_bytes);
	assert_int_equal(st.peak_bytes, st.limit_bytes);
	/* Jobs hold their share still; given back, the same buffers are taken
	 * again, none allocated. */
	al_pool_put(p, b[JOBS]);
	al_pool_put(p, b[JOBS + 1]);
	assert_null(al_pool_get(p, false));
	al_pool_put(p, b[0]);
	assert_ptr_equal(al_pool_get(p, false), b[0]);
	assert_non_null(b[JOBS] = al_pool_get(p, true));
	assert_non_null(b[JOBS + 1] = al_pool_get(p, true));
	assert_null(al_pool_get(p, true));
	for (unsigned i = 0; i < JOBS + TRANSIENTS; i++)
		al_pool_put(p, b[i]);
	al_pool_stats(p, &st);
	assert_int_equal(st.in_use_bytes, 0);
	assert_int_equal(st.allocated_bytes, st.limit_bytes);
	assert_int_equal(st.peak_bytes, st.limit_bytes);
	al_pool_free(p);
}

struct giver {
	struct al_pool *p;
	uint8_t *buf;
};

static bool timed_out;

static void on_timeout(uv_timer_t *t)
{
	(void)t;
	timed_out = true;
}

static void give_back(void *arg)
{
	struct giver *g = arg;

	al_pool_put(g->p, g->buf);
}

static void test_ready_from_another_loop(void **state)
{
	uv_loop_t loop;
	struct loops *l;
	struct al_pool *p;
	struct giver g;
	uint8_t *b[JOBS];
	uv_timer_t timer;

	(void)state;
	readies = 0;
	timed_out = false;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(loops_start(&loop, 2, &l), 0);
	assert_int_equal(al_pool_new(l, JOBS, 1, on_ready, NULL, &p), 0);
	for (unsigned i = 0; i < JOBS; i++)
		assert_non_null(b[i] = al_pool_get(p, false));
	al_pool_put(p, b[1]); /* nobody waited: nothing to tell */
	b[1] = al_pool_get(p, false);
	assert_null(al_pool_get(p, false)); /* main waits now */
	g.p = p;
	g.buf = b[0];
	assert_int_equal(uv_timer_init(&loop, &timer), 0);
	assert_int_equal(uv_timer_start(&timer, on_timeout, 5000, 0), 0);
	assert_int_equal(loops_post(l, 1, give_back, &g), 0);
	while (readies == 0 && !timed_out)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(readies, 1);
	assert_non_null(b[0] = al_pool_get(p, false));
	/* Freed with buffers out: it goes with the last one, ready() no more. */
	al_pool_free(p);
	for (unsigned i = 0; i < JOBS; i++)
		al_pool_put(p, b[i]);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(readies, 1);
	loops_stop(l);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_ready_from_another_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
