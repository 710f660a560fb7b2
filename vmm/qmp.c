/* QMP client: bounded lines, deadlines, jansson for the JSON. */
#include "vmm/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "vmm/vmm_priv.h"

#define QMP_READ_CHUNK 4096

/* A short printable excerpt of a line for messages. */
static void excerpt(const char *s, size_t len, char *out, size_t outlen)
{
	size_t n = len < outlen - 1 ? len : outlen - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[n] = '\0';
}

int qmp_parse(const char *line, size_t len, struct qmp_msg *m, struct vmm_error *err)
{
	struct qmp_msg msg = { .id = -1 };
	json_error_t jerr;
	json_t *root, *v;
	char ex[72];

	excerpt(line, len, ex, sizeof(ex));
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return vmm_err(err, -EPROTO, "malformed QMP message from qemu (%s): %s", jerr.text, ex);
	if (!json_is_object(root)) {
		json_decref(root);
		return vmm_err(err, -EPROTO, "QMP message from qemu is not a JSON object: %s", ex);
	}
	msg.root = root;
	v = json_object_get(root, "id");
	if (json_is_integer(v))
		msg.id = json_integer_value(v);

	if ((v = json_object_get(root, "QMP"))) {
		if (!json_is_object(v))
			goto bad;
		msg.kind = QMP_GREETING;
	} else if ((v = json_object_get(root, "event"))) {
		json_t *data = json_object_get(root, "data");
		if (!json_is_string(v) || (data && !json_is_object(data)))
			goto bad;
		msg.kind = QMP_EVENT;
		msg.event = json_string_value(v);
		msg.data = data;
	} else if ((v = json_object_get(root, "return"))) {
		msg.kind = QMP_RETURN;
		msg.ret = v;
	} else if ((v = json_object_get(root, "error"))) {
		json_t *cls = json_object_get(v, "class"), *desc = json_object_get(v, "desc");
		if (!json_is_object(v) || !json_is_string(cls) || !json_is_string(desc))
			goto bad;
		msg.kind = QMP_ERROR;
		msg.err_class = json_string_value(cls);
		msg.err_desc = json_string_value(desc);
	} else {
		goto bad;
	}
	*m = msg;
	return 0;

bad:
	json_decref(root);
	return vmm_err(err, -EPROTO, "unexpected QMP message from qemu (wrong members or types): %s", ex);
}

void qmp_msg_clear(struct qmp_msg *m)
{
	json_decref(m->root);
	memset(m, 0, sizeof(*m));
	m->id = -1;
}

void qmp_init(struct qmp *q, int fd)
{
	int fl;
	memset(q, 0, sizeof(*q));
	q->fd = fd;
	q->next_id = 1;
	sky_buf_init(&q->in, QMP_LINE_MAX);
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void qmp_close(struct qmp *q)
{
	vmm_close(&q->fd);
	sky_buf_free(&q->in);
}

static void copy_str(char *out, size_t outlen, const char *s)
{
	excerpt(s, strlen(s), out, outlen);
}

static void note_event(struct qmp *q, const struct qmp_msg *m)
{
	q->events++;
	copy_str(q->last_event, sizeof(q->last_event), m->event);
	if (strcmp(m->event, "SHUTDOWN") == 0) {
		json_t *reason = json_object_get(m->data, "reason");
		json_t *guest = json_object_get(m->data, "guest");
		q->shutdown = true;
		q->shutdown_guest = json_is_true(guest);
		copy_str(q->shutdown_reason, sizeof(q->shutdown_reason),
			 json_is_string(reason) ? json_string_value(reason) : "unknown");
	} else if (strcmp(m->event, "GUEST_PANICKED") == 0) {
		q->panicked = true;
	} else if (strcmp(m->event, "POWERDOWN") == 0) {
		q->powerdown = true;
	}
}

static int remaining(uint64_t deadline)
{
	uint64_t now = sky_now_ms();
	if (now >= deadline)
		return 0;
	return deadline - now > 60u * 60 * 1000 ? 60 * 60 * 1000 : (int)(deadline - now);
}

/* Take one complete line out of the buffer: 1 and m, 0 when there is none
 * yet, -errno. */
static int take_line(struct qmp *q, struct qmp_msg *m, struct vmm_error *err)
{
	uint8_t *nl;

	while (q->skipping) {
		nl = q->in.len ? memchr(q->in.data, '\n', q->in.len) : NULL;
		if (!nl) {
			sky_buf_reset(&q->in);
			return 0;
		}
		sky_buf_consume(&q->in, (size_t)(nl - q->in.data) + 1);
		q->skipping = false;
	}
	for (;;) {
		size_t len;
		int r;
		nl = q->in.len ? memchr(q->in.data, '\n', q->in.len) : NULL;
		if (!nl) {
			if (q->in.len >= q->in.max) {
				sky_buf_reset(&q->in);
				q->skipping = true;
				return vmm_err(err, -EMSGSIZE,
					       "QMP message from qemu longer than %d bytes: dropped",
					       QMP_LINE_MAX);
			}
			return 0;
		}
		len = (size_t)(nl - q->in.data);
		if (len > 0 && q->in.data[len - 1] == '\r')
			len--;
		if (len == 0) { /* blank line */
			sky_buf_consume(&q->in, (size_t)(nl - q->in.data) + 1);
			continue;
		}
		r = qmp_parse((const char *)q->in.data, len, m, err);
		sky_buf_consume(&q->in, (size_t)(nl - q->in.data) + 1);
		return r < 0 ? r : 1;
	}
}

/* Next message before the deadline: 0, -ETIMEDOUT, -EPIPE, ... */
static int read_msg(struct qmp *q, uint64_t deadline, struct qmp_msg *m, struct vmm_error *err)
{
	for (;;) {
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		size_t room;
		ssize_t n;
		int r = take_line(q, m, err);
		if (r != 0)
			return r < 0 ? r : 0;
		if (q->eof)
			return vmm_err(err, -EPIPE, "qemu closed its QMP connection (it exited?)");
		if (q->fd < 0)
			return vmm_err(err, -EBADF, "QMP connection is closed");
		r = poll(&p, 1, remaining(deadline));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return vmm_err(err, -errno, "poll on QMP: %s", strerror(errno));
		}
		if (r == 0)
			return vmm_err(err, -ETIMEDOUT, "qemu did not answer on QMP in time");
		room = q->in.max - q->in.len;
		if (room > QMP_READ_CHUNK)
			room = QMP_READ_CHUNK;
		if (room == 0)
			continue; /* take_line handles the full buffer */
		if ((r = sky_buf_reserve(&q->in, room)) < 0)
			return vmm_err(err, r, "out of memory for QMP");
		n = recv(q->fd, q->in.data + q->in.len, room, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET) {
				q->eof = true;
				continue;
			}
			return vmm_err(err, -errno, "reading QMP: %s", strerror(errno));
		}
		if (n == 0) {
			q->eof = true;
			continue;
		}
		q->in.len += (size_t)n;
	}
}

static int send_all(struct qmp *q, const char *data, size_t len, uint64_t deadline,
		    struct vmm_error *err)
{
	while (len > 0) {
		ssize_t n = send(q->fd, data, len, MSG_NOSIGNAL);
		if (n < 0) {
			struct pollfd p = { .fd = q->fd, .events = POLLOUT };
			int r;
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return vmm_err(err, -EPIPE, "qemu closed its QMP connection (it exited?)");
			if (errno != EAGAIN)
				return vmm_err(err, -errno, "writing QMP: %s", strerror(errno));
			r = poll(&p, 1, remaining(deadline));
			if (r == 0)
				return vmm_err(err, -ETIMEDOUT, "qemu does not read its QMP socket");
			continue;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int qmp_command(struct qmp *q, const char *cmd, json_t *args, unsigned timeout_ms,
		json_t **ret, struct vmm_error *err)
{
	uint64_t deadline = sky_now_ms() + timeout_ms;
	int64_t id = q->next_id++;
	json_t *req;
	char *text;
	int r;

	req = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)id);
	if (!req)
		return vmm_err(err, -ENOMEM, "out of memory");
	if (args && json_object_set(req, "arguments", args) < 0) {
		json_decref(req);
		return vmm_err(err, -ENOMEM, "out of memory");
	}
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return vmm_err(err, -ENOMEM, "out of memory");
	r = send_all(q, text, strlen(text), deadline, err);
	if (r == 0)
		r = send_all(q, "\n", 1, deadline, err);
	free(text);
	if (r < 0)
		return r;

	for (;;) {
		struct qmp_msg m;
		r = read_msg(q, deadline, &m, err);
		if (r < 0)
			return r;
		switch (m.kind) {
		case QMP_EVENT:
			note_event(q, &m);
			if (q->abort_on_shutdown && q->shutdown) {
				qmp_msg_clear(&m);
				return vmm_err(err, -ESHUTDOWN, "qemu is shutting down");
			}
			break;
		case QMP_GREETING:
			qmp_msg_clear(&m);
			return vmm_err(err, -EPROTO, "unexpected QMP greeting in reply to %s", cmd);
		case QMP_RETURN:
		case QMP_ERROR:
			if (m.id != id)
				break; /* a stale reply to a command that timed out */
			if (m.kind == QMP_ERROR) {
				r = vmm_err(err, -EREMOTEIO, "qemu refused %s: %.200s (%.48s)", cmd,
					    m.err_desc, m.err_class);
				qmp_msg_clear(&m);
				return r;
			}
			if (ret)
				*ret = json_incref(m.ret);
			qmp_msg_clear(&m);
			return 0;
		}
		qmp_msg_clear(&m);
	}
}

int qmp_handshake(struct qmp *q, unsigned timeout_ms, struct vmm_error *err)
{
	uint64_t deadline = sky_now_ms() + timeout_ms;
	struct qmp_msg m;
	int r;

	r = read_msg(q, deadline, &m, err);
	if (r < 0)
		return r;
	if (m.kind != QMP_GREETING) {
		qmp_msg_clear(&m);
		return vmm_err(err, -EPROTO, "qemu did not greet on QMP (not a QMP monitor?)");
	}
	qmp_msg_clear(&m);
	return qmp_command(q, "qmp_capabilities", NULL, remaining(deadline), NULL, err);
}

int qmp_pump(struct qmp *q, unsigned timeout_ms, struct vmm_error *err)
{
	uint64_t deadline = sky_now_ms() + timeout_ms;
	for (;;) {
		struct qmp_msg m;
		int r = read_msg(q, deadline, &m, err);
		if (r == -ETIMEDOUT)
			return 0;
		if (r < 0)
			return r;
		if (m.kind == QMP_EVENT)
			note_event(q, &m);
		qmp_msg_clear(&m);
	}
}
