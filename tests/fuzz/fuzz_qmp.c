/* libFuzzer target: the QMP client's reading side (vmm/qmp.c), fed what a
 * misbehaving or hostile qemu could write to the monitor socket.
 *
 * The input goes through a socketpair into qmp_pump, which splits lines,
 * drops oversized ones, parses each with jansson and notes events; then
 * every line is also given to qmp_parse on its own.  Nothing may crash or
 * leak, a parsed message must be of a kind we know, and the noted event
 * names must stay bounded and NUL-terminated. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void pump_stream(const uint8_t *data, size_t size)
{
	struct vmm_error err = { "" };
	struct qmp q;
	int sv[2], r = 0;
	size_t off = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	qmp_init(&q, sv[0]);
	while (off < size) {
		ssize_t w = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			abort();
		if (w > 0)
			off += (size_t)w;
		r = qmp_pump(&q, 0, &err);
		if (r < 0 && r != -EPROTO && r != -EMSGSIZE)
			abort();
	}
	close(sv[1]);
	for (int i = 0; i < 64; i++) {
		r = qmp_pump(&q, 0, &err);
		if (r == -EPIPE)
			break;
		if (r < 0 && r != -EPROTO && r != -EMSGSIZE)
			abort();
	}
	if (strnlen(q.last_event, sizeof(q.last_event)) >= sizeof(q.last_event) ||
	    strnlen(q.shutdown_reason, sizeof(q.shutdown_reason)) >= sizeof(q.shutdown_reason) ||
	    strnlen(err.msg, sizeof(err.msg)) >= sizeof(err.msg))
		abort();
	qmp_close(&q);
}

static void parse_lines(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct qmp_msg m;
		struct vmm_error err = { "" };
		if (qmp_parse(p, len, &m, &err) == 0) {
			if (m.kind != QMP_GREETING && m.kind != QMP_RETURN && m.kind != QMP_ERROR &&
			    m.kind != QMP_EVENT)
				abort();
			if ((m.kind == QMP_EVENT && !m.event) ||
			    (m.kind == QMP_ERROR && (!m.err_class || !m.err_desc)))
				abort();
			qmp_msg_clear(&m);
		} else if (!err.msg[0]) {
			abort(); /* a refusal always says why */
		}
		p += len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pump_stream(data, size);
	parse_lines(data, size);
	return 0;
}
