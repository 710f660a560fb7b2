/* QMP client: parsing, the handshake, replies among events, error replies,
 * malformed and truncated messages, oversized lines, timeouts.  The "QEMU"
 * is the other end of a socketpair with its lines written in advance. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/qmp.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, \"capabilities\": [\"oob\"]}}\n"

#define STR(s) (s), strlen(s)

struct pair {
	struct qmp q;
	int peer;
};

static int setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	int sv[2];
	if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	qmp_init(&p->q, sv[0]);
	p->peer = sv[1];
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;
	qmp_close(&p->q);
	if (p->peer >= 0)
		close(p->peer);
	free(p);
	return 0;
}

static void say(struct pair *p, const char *text)
{
	size_t len = strlen(text);
	assert_int_equal(send(p->peer, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* The next request the client sent: its "execute" and "id". */
static void heard(struct pair *p, const char *cmd, int64_t id)
{
	char buf[4096];
	ssize_t n = 0;
	json_t *req;
	json_error_t jerr;
	/* read exactly one line */
	while (n < (ssize_t)sizeof(buf) - 1) {
		ssize_t r = recv(p->peer, buf + n, 1, 0);
		assert_int_equal(r, 1);
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	req = json_loads(buf, 0, &jerr);
	assert_non_null(req);
	assert_string_equal(json_string_value(json_object_get(req, "execute")), cmd);
	assert_int_equal(json_integer_value(json_object_get(req, "id")), id);
	json_decref(req);
}

static void test_parse_kinds(void **state)
{
	struct qmp_msg m;
	struct vmm_error err = { "" };
	(void)state;

	assert_int_equal(qmp_parse(GREETING, strlen(GREETING) - 1, &m, &err), 0);
	assert_int_equal(m.kind, QMP_GREETING);
	qmp_msg_clear(&m);

	assert_int_equal(qmp_parse(STR("{\"return\": {\"status\": \"running\"}, \"id\": 7}"), &m, &err), 0);
	assert_int_equal(m.kind, QMP_RETURN);
	assert_int_equal(m.id, 7);
	assert_string_equal(json_string_value(json_object_get(m.ret, "status")), "running");
	qmp_msg_clear(&m);

	const char *ev = "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"SHUTDOWN\", "
			 "\"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}";
	assert_int_equal(qmp_parse(ev, strlen(ev), &m, &err), 0);
	assert_int_equal(m.kind, QMP_EVENT);
	assert_string_equal(m.event, "SHUTDOWN");
	assert_int_equal(m.id, -1);
	qmp_msg_clear(&m);

	const char *er = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": 3}";
	assert_int_equal(qmp_parse(er, strlen(er), &m, &err), 0);
	assert_int_equal(m.kind, QMP_ERROR);
	assert_string_equal(m.err_class, "GenericError");
	assert_string_equal(m.err_desc, "no");
	qmp_msg_clear(&m);

	/* an id of the wrong type matches nothing */
	assert_int_equal(qmp_parse(STR("{\"return\": {}, \"id\": \"7\"}"), &m, &err), 0);
	assert_int_equal(m.id, -1);
	qmp_msg_clear(&m);
}

static void test_parse_malformed(void **state)
{
	static const char *const bad[] = {
		"{\"return\": {",                                   /* truncated */
		"{\"return\": {}} trailing",                        /* garbage after */
		"[1, 2, 3]",                                        /* not an object */
		"\"return\"",
		"42",
		"{}",                                               /* nothing known */
		"{\"foo\": 1}",
		"{\"event\": 5}",                                   /* wrong types */
		"{\"event\": \"SHUTDOWN\", \"data\": [1]}",
		"{\"error\": \"bad\"}",
		"{\"error\": {\"class\": 1, \"desc\": \"x\"}}",
		"{\"error\": {\"class\": \"X\"}}",
		"{\"QMP\": []}",
		"{\"return\": {}, \"return\": {}}",                 /* duplicate key */
		"{\"return\": \"a\\u0000b\"}",                      /* NUL in a string */
		"{\"return\": \"\xff\xfe\"}",                       /* not UTF-8 */
		"",
	};
	struct vmm_error err = { "" };
	struct qmp_msg m = { .kind = QMP_EVENT, .id = 12345 };
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = qmp_parse(bad[i], strlen(bad[i]), &m, &err);
		if (r != -EPROTO)
			fail_msg("\"%s\" parsed as %d", bad[i], r);
		assert_int_equal(m.id, 12345); /* untouched */
		assert_non_null(strstr(err.msg, "QMP"));
	}
}

static void test_handshake(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };

	say(p, GREETING "{\"return\": {}, \"id\": 1}\n");
	assert_int_equal(qmp_handshake(&p->q, 1000, &err), 0);
	heard(p, "qmp_capabilities", 1);
}

static void test_handshake_not_qmp(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };

	say(p, "{\"return\": {}, \"id\": 1}\n");
	assert_int_equal(qmp_handshake(&p->q, 1000, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "did not greet"));
}

static void test_reply_among_events(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };
	json_t *ret = NULL;

	say(p, GREETING "{\"return\": {}, \"id\": 1}\n");
	assert_int_equal(qmp_handshake(&p->q, 1000, &err), 0);
	say(p, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 0}, \"event\": \"POWERDOWN\"}\n"
	       "{\"return\": {\"status\": \"stale\"}, \"id\": 99}\n"          /* not ours */
	       "\r\n"                                                        /* blank */
	       "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\r\n"
	       "{\"return\": {\"status\": \"shutdown\", \"running\": false}, \"id\": 2}\n");
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 1000, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "shutdown");
	json_decref(ret);
	assert_true(p->q.powerdown);
	assert_true(p->q.shutdown);
	assert_true(p->q.shutdown_guest);
	assert_string_equal(p->q.shutdown_reason, "guest-shutdown");
	assert_int_equal(p->q.events, 2);
	assert_false(p->q.panicked);
}

static void test_error_reply(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };
	json_t *ret = (json_t *)p; /* must stay untouched */
	json_t *args = json_pack("{s:s}", "device", "nope");

	say(p, "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'nope' not found\"}, \"id\": 1}\n");
	assert_int_equal(qmp_command(&p->q, "device_del", args, 1000, &ret, &err), -EREMOTEIO);
	assert_ptr_equal(ret, (json_t *)p);
	assert_non_null(strstr(err.msg, "qemu refused device_del: Device 'nope' not found (DeviceNotFound)"));
	json_decref(args);
}

static void test_truncated_then_eof(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };

	say(p, "{\"return\": {\"status\": \"runn");
	shutdown(p->peer, SHUT_WR);
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 1000, NULL, &err), -EPIPE);
	assert_non_null(strstr(err.msg, "closed"));
	/* and it stays closed */
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 1000, NULL, &err), -EPIPE);
	assert_int_equal(qmp_pump(&p->q, 0, &err), -EPIPE);
}

static void test_peer_gone(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };
	close(p->peer);
	p->peer = -1;
	/* no SIGPIPE: the caller must survive a dead QEMU */
	assert_int_equal(qmp_command(&p->q, "cont", NULL, 1000, NULL, &err), -EPIPE);
}

static void test_malformed_reply(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };

	say(p, "{\"return\": {\"status\": }, \"id\": 1}\n");
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 1000, NULL, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "malformed QMP message"));
	say(p, "{\"error\": {\"class\": 7}, \"id\": 2}\n");
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 1000, NULL, &err), -EPROTO);
	/* the stream is still usable afterwards */
	say(p, "{\"return\": {}, \"id\": 3}\n");
	assert_int_equal(qmp_command(&p->q, "cont", NULL, 1000, NULL, &err), 0);
}

static void test_oversized_line(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };
	size_t big = QMP_LINE_MAX + 5000;
	char *line = malloc(big + 1);
	json_t *ret = NULL;

	/* a "reply" longer than the limit (it fits the socket buffer) ... */
	memset(line, ' ', big);
	memcpy(line, "{\"return\": \"", 12);
	line[big - 3] = '"';
	line[big - 2] = '}';
	line[big - 1] = '\n';
	line[big] = '\0';
	say(p, line);
	/* ... then the real replies */
	say(p, "{\"return\": {\"status\": \"first\"}, \"id\": 1}\n"
	       "{\"return\": {\"status\": \"running\"}, \"id\": 2}\n");
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 1000, &ret, &err), -EMSGSIZE);
	assert_non_null(strstr(err.msg, "longer than 65536 bytes"));
	assert_true(p->q.in.cap <= QMP_LINE_MAX);
	/* the rest of the long line is skipped, the stale reply to 1 too */
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 1000, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "running");
	assert_true(p->q.in.cap <= QMP_LINE_MAX);
	json_decref(ret);
	free(line);
}

static void test_timeout(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 100, NULL, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "did not answer"));
	/* the late reply to 1 is skipped, the reply to 2 taken */
	say(p, "{\"return\": {\"status\": \"late\"}, \"id\": 1}\n{\"return\": {}, \"id\": 2}\n");
	assert_int_equal(qmp_command(&p->q, "cont", NULL, 1000, NULL, &err), 0);
}

static void test_event_fields_bounded(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };
	char buf[2048];
	char reason[1200];

	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	snprintf(buf, sizeof(buf),
		 "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": \"yes\", \"reason\": \"%s\"}}\n"
		 "{\"event\": \"GUEST_PANICKED\", \"data\": {\"action\": \"pause\"}}\n"
		 "{\"event\": \"SHUTDOWN\"}\n", reason);
	say(p, buf);
	assert_int_equal(qmp_pump(&p->q, 200, &err), 0);
	assert_int_equal(p->q.events, 3);
	assert_true(p->q.panicked);
	assert_true(p->q.shutdown);
	/* the last SHUTDOWN had no data */
	assert_string_equal(p->q.shutdown_reason, "unknown");
	assert_false(p->q.shutdown_guest);
	assert_true(strlen(p->q.last_event) < QMP_NAME_MAX);
	say(p, buf);
	assert_int_equal(qmp_pump(&p->q, 200, &err), 0);
	assert_int_equal(p->q.events, 6);
}

/* A command in flight when QEMU announces its shutdown is given up. */
static void test_abort_on_shutdown(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };
	json_t *ret = NULL;

	say(p, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-panic\"}}\n");
	p->q.abort_on_shutdown = true;
	assert_int_equal(qmp_command(&p->q, "query-status", NULL, 1000, &ret, &err), -ESHUTDOWN);
	assert_null(ret);
	assert_string_equal(p->q.shutdown_reason, "guest-panic");
	/* without the flag the reply is waited for */
	p->q.abort_on_shutdown = false;
	say(p, "{\"event\": \"SHUTDOWN\"}\n{\"return\": {}, \"id\": 2}\n");
	assert_int_equal(qmp_command(&p->q, "cont", NULL, 1000, NULL, &err), 0);
}

static void test_pump_skips_bad_lines(void **state)
{
	struct pair *p = *state;
	struct vmm_error err = { "" };
	say(p, "not json\n{\"event\": \"RESUME\"}\n");
	/* a malformed line is reported; the next call goes on */
	assert_int_equal(qmp_pump(&p->q, 200, &err), -EPROTO);
	assert_int_equal(qmp_pump(&p->q, 200, &err), 0);
	assert_string_equal(p->q.last_event, "RESUME");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_kinds),
		cmocka_unit_test(test_parse_malformed),
		T(test_handshake),
		T(test_handshake_not_qmp),
		T(test_reply_among_events),
		T(test_error_reply),
		T(test_truncated_then_eof),
		T(test_peer_gone),
		T(test_malformed_reply),
		T(test_oversized_line),
		T(test_timeout),
		T(test_event_fields_bounded),
		T(test_abort_on_shutdown),
		T(test_pump_skips_bad_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
