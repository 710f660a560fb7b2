/* A QMP (QEMU Machine Protocol) client over a connected stream socket.
 * Messages are lines of JSON parsed with jansson; every line is bounded
 * (QMP_LINE_MAX), every wait has a deadline, and what the events said
 * (SHUTDOWN and its reason, GUEST_PANICKED) is remembered for the state
 * of the guest.  Internal to libskyvmm; exported for the unit tests. */
#ifndef SKY_VMM_QMP_H
#define SKY_VMM_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "vmm/vmm.h"

#define QMP_LINE_MAX (64 * 1024)
#define QMP_NAME_MAX 48

enum qmp_kind {
	QMP_GREETING,
	QMP_RETURN,
	QMP_ERROR,
	QMP_EVENT,
};

struct qmp_msg {
	enum qmp_kind kind;
	json_t *root;           /* owns what the members below point into */
	int64_t id;             /* our request id; -1 when absent/not an integer */
	json_t *ret;            /* QMP_RETURN */
	const char *event;      /* QMP_EVENT */
	json_t *data;           /* QMP_EVENT data object, or NULL */
	const char *err_class;  /* QMP_ERROR */
	const char *err_desc;
};

/* Parse one line (without its '\n'): 0, or -EPROTO with a message for
 * anything that is not a well-formed QMP greeting, reply, error or event.
 * m is untouched on failure. */
int qmp_parse(const char *line, size_t len, struct qmp_msg *m, struct vmm_error *err);
void qmp_msg_clear(struct qmp_msg *m);

struct qmp {
	int fd;
	struct sky_buf in;
	int64_t next_id;
	bool skipping;          /* dropping an oversized line up to its '\n' */
	bool eof;
	/* what the events said */
	unsigned events;
	char last_event[QMP_NAME_MAX];
	bool shutdown;          /* SHUTDOWN seen */
	bool shutdown_guest;    /* ... caused by the guest */
	char shutdown_reason[QMP_NAME_MAX];
	bool panicked;          /* GUEST_PANICKED seen */
	bool powerdown;         /* POWERDOWN seen (ACPI button pressed) */
	/* qmp_command gives up with -ESHUTDOWN when a SHUTDOWN event comes
	 * before its reply (QEMU 7.2 may never answer a command that arrives
	 * while it shuts down: it hangs in monitor_cleanup). */
	bool abort_on_shutdown;
};

/* Take fd (made non-blocking; closed by qmp_close). */
void qmp_init(struct qmp *q, int fd);
void qmp_close(struct qmp *q);

/* Read the greeting, send qmp_capabilities, wait for its reply. */
int qmp_handshake(struct qmp *q, unsigned timeout_ms, struct vmm_error *err);

/* Run cmd with args (borrowed, may be NULL); events read meanwhile are
 * noted.  0 and *ret (a new reference; ret may be NULL) on success;
 * -EREMOTEIO for a QMP error reply, -ETIMEDOUT, -EPIPE (QEMU went away),
 * -EPROTO (malformed message), -EMSGSIZE (line over QMP_LINE_MAX),
 * -ESHUTDOWN (see abort_on_shutdown). */
int qmp_command(struct qmp *q, const char *cmd, json_t *args, unsigned timeout_ms,
		json_t **ret, struct vmm_error *err);

/* Read and note what arrives within timeout_ms (0: only what is already
 * there).  0, or -EPIPE at end of stream, or another -errno. */
int qmp_pump(struct qmp *q, unsigned timeout_ms, struct vmm_error *err);

#endif
