/* A board with no token (agent/pending.c): what it makes of the
 * controller's pending and rejected answers, whatever they hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/pending.h"

static Skyroot__EnrollResponse answer(Skyroot__EnrollState st, const char *id, uint32_t retry_ms, uint8_t *key,
				      size_t keylen)
{
	Skyroot__EnrollResponse er = SKYROOT__ENROLL_RESPONSE__INIT;

	er.state = st;
	er.pending_id = (char *)id;
	er.retry_ms = retry_ms;
	er.key_sha256.data = key;
	er.key_sha256.len = keylen;
	return er;
}

static void test_pending(void **state)
{
	uint8_t key[32];
	struct agent_pending p;
	(void)state;

	memset(key, 0xab, sizeof(key));
	Skyroot__EnrollResponse er = answer(SKYROOT__ENROLL_STATE__ENROLL_PENDING, "pnd-0123456789ab", 3000, key, 32);
	agent_pending_read(&er, &p);
	assert_false(p.rejected);
	assert_int_equal(p.retry_ms, 3000);
	assert_string_equal(p.id, "pnd-0123456789ab");
	assert_non_null(strstr(p.text, "pending as pnd-0123456789ab with key sha256:abababab"));
	assert_non_null(strstr(p.text, "skyctl board accept pnd-0123456789ab"));
	/* The controller's word is bounded both ways. */
	er.retry_ms = 0;
	agent_pending_read(&er, &p);
	assert_int_equal(p.retry_ms, AGENT_PENDING_RETRY_MIN_MS);
	er.retry_ms = UINT32_MAX;
	agent_pending_read(&er, &p);
	assert_int_equal(p.retry_ms, AGENT_PENDING_RETRY_MAX_MS);
}

static void test_rejected(void **state)
{
	uint8_t key[32] = { 0 };
	struct agent_pending p;
	(void)state;

	Skyroot__EnrollResponse er = answer(SKYROOT__ENROLL_STATE__ENROLL_REJECTED, "pnd-1", 3000, key, 32);
	agent_pending_read(&er, &p);
	assert_true(p.rejected);
	/* A rejected board waits long, even when told otherwise. */
	assert_int_equal(p.retry_ms, AGENT_REJECTED_RETRY_MIN_MS);
	assert_non_null(strstr(p.text, "rejected"));
	er.retry_ms = UINT32_MAX;
	agent_pending_read(&er, &p);
	assert_int_equal(p.retry_ms, AGENT_REJECTED_RETRY_MAX_MS);
}

static void test_malformed(void **state)
{
	char long_id[200];
	struct agent_pending p;
	(void)state;

	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	/* No key, an id too long, none at all: "?" and no overrun. */
	Skyroot__EnrollResponse er = answer(SKYROOT__ENROLL_STATE__ENROLL_PENDING, long_id, 3000, NULL, 0);
	agent_pending_read(&er, &p);
	assert_string_equal(p.id, "?");
	assert_non_null(strstr(p.text, "key sha256:?"));
	er.pending_id = NULL;
	agent_pending_read(&er, &p);
	assert_string_equal(p.id, "?");
	er.pending_id = "";
	agent_pending_read(&er, &p);
	assert_string_equal(p.id, "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
