/* skyrootd's event loops (controller/skyrootd/loops.c): what is posted to a
 * loop runs on that loop's thread, in the order one thread posted it, from
 * any number of threads at once; the main loop keeps running while held;
 * sessions go round-robin over the session loops; stop joins every thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <uv.h>

#include "controller/skyrootd/loops.h"

#define PER_PRODUCER 2000

struct run {
	struct loops *l;
	unsigned n;
	uv_thread_t main_thread;
	uv_thread_t loop_thread[8];   /* seen running loop k's messages */
	bool seen[8];
	unsigned next_seq[8][8];      /* [target loop][producer loop]: only the target's thread writes it */
	unsigned got_main;
	unsigned expect_main;
	unsigned bad;
};

struct item {
	struct run *r;
	unsigned target, from, seq;
};

static void check_thread(struct run *r, unsigned k)
{
	uv_thread_t self = uv_thread_self();

	if (k == 0) {
		if (!uv_thread_equal(&self, &r->main_thread))
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		return;
	}
	/* The same thread for every message of loop k, never main's. */
	if (uv_thread_equal(&self, &r->main_thread))
		__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
	if (!r->seen[k]) {
		r->loop_thread[k] = self;
		r->seen[k] = true;
	} else if (!uv_thread_equal(&self, &r->loop_thread[k])) {
		__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
	}
}

static void on_item(void *arg)
{
	struct item *it = arg;
	struct run *r = it->r;

	check_thread(r, it->target);
	if (r->next_seq[it->target][it->from] != it->seq)
		__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
	r->next_seq[it->target][it->from] = it->seq + 1;
	if (it->target == 0 && ++r->got_main == r->expect_main)
		loops_hold(r->l, false); /* everything arrived: main may end */
	free(it);
}

struct producer {
	struct run *r;
	unsigned self;
};

/* On session loop self: post to main and to every other loop. */
static void produce(void *arg)
{
	struct producer *p = arg;
	struct run *r = p->r;

	check_thread(r, p->self);
	for (unsigned seq = 0; seq < PER_PRODUCER; seq++)
		for (unsigned k = 0; k < r->n; k++) {
			struct item *it = malloc(sizeof(*it));
			assert_non_null(it);
			*it = (struct item){ .r = r, .target = k, .from = p->self, .seq = seq };
			assert_int_equal(loops_post(r->l, k, on_item, it), 0);
		}
	free(p);
}

static void run_with(unsigned n)
{
	struct run *r = calloc(1, sizeof(*r));
	uv_loop_t loop;

	assert_non_null(r);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(loops_start(&loop, n, &r->l), 0);
	assert_int_equal(loops_count(r->l), n);
	r->n = n;
	r->main_thread = uv_thread_self();
	/* Producers: every session loop, or main alone. */
	unsigned producers = n == 1 ? 1 : n - 1;
	r->expect_main = producers * PER_PRODUCER;
	loops_hold(r->l, true);
	for (unsigned k = n == 1 ? 0 : 1; k < n; k++) {
		struct producer *p = malloc(sizeof(*p));
		assert_non_null(p);
		*p = (struct producer){ .r = r, .self = k };
		assert_int_equal(loops_post(r->l, k, produce, p), 0);
	}
	/* Nothing but the held wake-up handle keeps main running. */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(r->got_main, r->expect_main);
	loops_stop(r->l);
	assert_int_equal(uv_loop_close(&loop), 0);
	/* After the joins every loop's counters are ours to read. */
	for (unsigned k = 0; k < n; k++)
		for (unsigned f = n == 1 ? 0 : 1; f < n; f++)
			assert_int_equal(r->next_seq[k][f], PER_PRODUCER);
	assert_int_equal(__atomic_load_n(&r->bad, __ATOMIC_RELAXED), 0);
	free(r);
}

static void test_one_loop(void **state)
{
	(void)state;
	run_with(1);
}

static void test_four_loops(void **state)
{
	(void)state;
	run_with(4);
}

static void test_pick_round_robin(void **state)
{
	struct loops *l;
	uv_loop_t loop;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(loops_start(&loop, 3, &l), 0);
	assert_int_equal(loops_pick(l), 1);
	assert_int_equal(loops_pick(l), 2);
	assert_int_equal(loops_pick(l), 1);
	assert_true(loops_loop(l, 0) == &loop);
	assert_true(loops_loop(l, 1) != &loop);
	loops_stop(l);
	assert_int_equal(loops_start(&loop, 1, &l), 0);
	assert_int_equal(loops_pick(l), 0);
	assert_int_equal(loops_pick(l), 0);
	loops_stop(l);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_true(loops_cpus() >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_loop),
		cmocka_unit_test(test_four_loops),
		cmocka_unit_test(test_pick_round_robin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
