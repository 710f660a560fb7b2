/* Unit tests for agent/backoff.c: the agent's reconnect delay is
 * exponential backoff with full jitter, 1 s doubling to 60 s (README.md,
 * "reconnects with exponential backoff and full jitter").
 *
 * Over many draws of the real function, for each attempt n: every delay
 * lies in [0, min(60 s, 1 s * 2^n)] (the ceiling computed here, not taken
 * from the code under test), both ends are reached, the draws spread over
 * the whole range (ten equal bins, none nearly empty, the mean near the
 * middle) and the ceiling never passes 60 s however many attempts failed.
 *
 * Environment: none needed.   ./test_backoff
 */
#include "agent/backoff.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#define DRAWS 20000
#define BINS 10

/* min(60000, 1000 * 2^n), without shifting past 64 bits. */
static uint64_t expected_cap(unsigned n)
{
	uint64_t cap = 1000;
	for (unsigned i = 0; i < n && cap < 60000; i++)
		cap *= 2;
	return cap > 60000 ? 60000 : cap;
}

static void check_attempt(unsigned n)
{
	uint64_t want = expected_cap(n), lo = UINT64_MAX, hi = 0, sum = 0;
	unsigned bins[BINS] = {0};

	assert_int_equal(agent_backoff_cap_ms(n), want);
	for (int i = 0; i < DRAWS; i++) {
		uint64_t d = agent_backoff_ms(n);
		if (d > want)
			fail_msg("attempt %u: draw %llu ms over the ceiling %llu ms", n, (unsigned long long)d,
				 (unsigned long long)want);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += d;
		bins[d * BINS / (want + 1)]++;
	}
	/* Full jitter: from nothing at all up to the ceiling itself. */
	if (want == 1000) {
		/* 1,001 values: each end is missed by 20,000 draws with a
		 * chance of e^-20 */
		assert_int_equal(lo, 0);
		assert_int_equal(hi, want);
	} else {
		/* within 1 % of each end: missed with a chance of e^-200 */
		assert_true(lo < want / 100);
		assert_true(hi > want - want / 100);
	}
	/* Uniform: each tenth holds about 2,000 draws (sd ~42). */
	for (int b = 0; b < BINS; b++)
		if (bins[b] < DRAWS / BINS * 8 / 10 || bins[b] > DRAWS / BINS * 12 / 10)
			fail_msg("attempt %u: bin %d of %d holds %u of %d draws", n, b, BINS, bins[b], DRAWS);
	uint64_t mean = sum / DRAWS;
	assert_true(mean > want / 2 - want / 20 && mean < want / 2 + want / 20);
}

static void test_doubling_from_one_second(void **st)
{
	(void)st;
	static const uint64_t caps[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
	for (unsigned n = 0; n < sizeof(caps) / sizeof(caps[0]); n++)
		assert_int_equal(agent_backoff_cap_ms(n), caps[n]);
}

static void test_draws_within_and_across_range(void **st)
{
	(void)st;
	for (unsigned n = 0; n <= 8; n++)
		check_attempt(n);
}

static void test_cap_holds_after_many_failures(void **st)
{
	(void)st;
	static const unsigned many[] = {31, 32, 33, 63, 64, 65, 1000, UINT_MAX};
	for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
		check_attempt(many[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubling_from_one_second),
		cmocka_unit_test(test_draws_within_and_across_range),
		cmocka_unit_test(test_cap_holds_after_many_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
