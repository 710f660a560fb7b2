/* A board with no token (agent/pending.c): what it makes of the
 * controller's pending and rejected answers, whatever they hold; and what
 * it shows the operator of itself (hello_claims, agent/hello.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/hello.h"
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

static struct inventory inv; /* large: keep it off the stack */

static void test_claims(void **state)
{
	struct hello_claims c;
	(void)state;

	memset(&inv, 0, sizeof(inv));
	snprintf(inv.dmi_serial, sizeof(inv.dmi_serial), "%s", "SKY\001A\177");
	static const char *const macs[] = {
		"52:54:00:AA:BB:01",               /* upper case: sent canonical */
		"52-54-00-aa-bb-02",               /* not the form: left out */
		"52:54:00:aa:bb:0",                /* short */
		"80:00:02:08:fe:80:00:00:00:00",   /* InfiniBand: longer */
		"52:54:00:aa:bb:03",
	};
	for (size_t i = 0; i < sizeof(macs) / sizeof(macs[0]); i++)
		snprintf(inv.nics[inv.n_nics++].mac, sizeof(inv.nics[0].mac), "%s", macs[i]);
	hello_claims(&inv, &c);
	assert_string_equal(c.serial, "SKY?A?");
	assert_int_equal(c.n_macs, 2);
	assert_string_equal(c.macs[0], "52:54:00:aa:bb:01");
	assert_string_equal(c.macs[1], "52:54:00:aa:bb:03");

	/* at most HELLO_MACS_MAX addresses, the serial cut to HELLO_SERIAL_MAX */
	memset(&inv, 0, sizeof(inv));
	memset(inv.dmi_serial, 's', HELLO_SERIAL_MAX + 10);
	for (unsigned i = 0; i < HELLO_MACS_MAX + 3; i++)
		snprintf(inv.nics[inv.n_nics++].mac, sizeof(inv.nics[0].mac), "02:00:00:00:00:%02x", i);
	hello_claims(&inv, &c);
	assert_int_equal(strlen(c.serial), HELLO_SERIAL_MAX);
	assert_int_equal(c.n_macs, HELLO_MACS_MAX);
	assert_string_equal(c.macs[HELLO_MACS_MAX - 1], "02:00:00:00:00:0f");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_claims),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
