/* Unit tests for agent/answer.c: the result of a Reboot or BareMetalBoot
 * order goes out in the envelope of that order's kind, with the request id,
 * the outcome and the reason; the reason is logged (refused or failed,
 * naming the order) and an accepted order without a reason logs nothing.
 *
 * Environment: none needed.   ./test_answer
 */
#include "agent/answer.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

/* What one send saw, copied out of the envelope (which lives on the
 * sender's stack). */
struct seen {
	int sends;
	uint64_t req;
	Skyroot__Envelope__BodyCase body;
	Skyroot__BootOutcome outcome;
	char error[1024];
	bool wire_ok;
};

static int capture(void *ctx, Skyroot__Envelope *env)
{
	struct seen *s = ctx;

	s->sends++;
	s->req = env->request_id;
	s->body = env->body_case;
	if (env->body_case == SKYROOT__ENVELOPE__BODY_REBOOT_RESULT) {
		s->outcome = env->reboot_result->outcome;
		snprintf(s->error, sizeof(s->error), "%s", env->reboot_result->error);
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT) {
		s->outcome = env->bare_metal_boot_result->outcome;
		snprintf(s->error, sizeof(s->error), "%s", env->bare_metal_boot_result->error);
	}
	/* What goes on the wire: the envelope packs and reads back the same.
	 * (No assert here: stderr may be redirected while this runs.) */
	size_t n = skyroot__envelope__get_packed_size(env);
	uint8_t *buf = malloc(n ? n : 1);
	Skyroot__Envelope *back = NULL;
	if (buf) {
		skyroot__envelope__pack(env, buf);
		back = skyroot__envelope__unpack(NULL, n, buf);
	}
	s->wire_ok = back && back->body_case == env->body_case && back->request_id == env->request_id;
	if (back)
		skyroot__envelope__free_unpacked(back, NULL);
	free(buf);
	return 0;
}

/* Run fn with stderr going to a file; what was logged into out. */
static void logged(void (*fn)(struct seen *), struct seen *s, char *out, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn(s);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, len - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

static void reboot_refused(struct seen *s)
{
	agent_answer_order(capture, s, SKYROOT__ENVELOPE__BODY_REBOOT_RESULT, 41, SKYROOT__BOOT_OUTCOME__BOOT_REFUSED,
			   "no --allow-reboot (%d)", 7);
}

static void bm_failed(struct seen *s)
{
	agent_answer_order(capture, s, SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT, 42,
			   SKYROOT__BOOT_OUTCOME__BOOT_FAILED, "kexec_file_load failed: %s", "Operation not permitted");
}

static void bm_accepted(struct seen *s)
{
	agent_answer_order(capture, s, SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT, 43,
			   SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED, NULL);
}

static void test_reboot(void **state)
{
	(void)state;
	struct seen s = { 0 };
	char log[4096];

	logged(reboot_refused, &s, log, sizeof(log));
	assert_int_equal(s.sends, 1);
	assert_true(s.wire_ok);
	assert_int_equal(s.req, 41);
	assert_int_equal(s.body, SKYROOT__ENVELOPE__BODY_REBOOT_RESULT);
	assert_int_equal(s.outcome, SKYROOT__BOOT_OUTCOME__BOOT_REFUSED);
	assert_string_equal(s.error, "no --allow-reboot (7)");
	assert_non_null(strstr(log, "reboot refused: no --allow-reboot (7)"));
}

static void test_bare_metal(void **state)
{
	(void)state;
	struct seen s = { 0 };
	char log[4096];

	logged(bm_failed, &s, log, sizeof(log));
	assert_int_equal(s.sends, 1);
	assert_true(s.wire_ok);
	assert_int_equal(s.req, 42);
	assert_int_equal(s.body, SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT);
	assert_int_equal(s.outcome, SKYROOT__BOOT_OUTCOME__BOOT_FAILED);
	assert_string_equal(s.error, "kexec_file_load failed: Operation not permitted");
	assert_non_null(strstr(log, "bare-metal boot failed: kexec_file_load failed: Operation not permitted"));

	memset(&s, 0, sizeof(s));
	logged(bm_accepted, &s, log, sizeof(log));
	assert_int_equal(s.sends, 1);
	assert_int_equal(s.req, 43);
	assert_int_equal(s.outcome, SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED);
	assert_string_equal(s.error, "");
	assert_string_equal(log, "");
}

static void test_long_reason_and_other_bodies(void **state)
{
	(void)state;
	struct seen s = { 0 };
	char big[2000];

	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sky_log_set_level(SKY_LOG_NONE);
	agent_answer_order(capture, &s, SKYROOT__ENVELOPE__BODY_REBOOT_RESULT, 1, SKYROOT__BOOT_OUTCOME__BOOT_FAILED,
			   "%s", big);
	assert_int_equal(s.sends, 1);
	assert_int_equal(strlen(s.error), 511);
	/* Not an order's result: nothing goes out. */
	memset(&s, 0, sizeof(s));
	agent_answer_order(capture, &s, SKYROOT__ENVELOPE__BODY_HEARTBEAT, 2, SKYROOT__BOOT_OUTCOME__BOOT_FAILED, "x");
	agent_answer_order(capture, &s, SKYROOT__ENVELOPE__BODY__NOT_SET, 3, SKYROOT__BOOT_OUTCOME__BOOT_FAILED, "x");
	assert_int_equal(s.sends, 0);
	sky_log_set_level(SKY_LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reboot),
		cmocka_unit_test(test_bare_metal),
		cmocka_unit_test(test_long_reason_and_other_bodies),
	};
	sky_log_init("test_answer", SKY_LOG_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
