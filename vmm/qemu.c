/* The qemu backend: one qemu-system-x86_64 process per guest, driven over
 * QMP on an inherited socket; the serial console on another inherited
 * socket; images as /proc/self/fd/N of inherited memfds.  Nothing of the
 * guest touches the file system. */
#include "vmm/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"
#include "common/util.h"
#include "vmm/qmp.h"
#include "vmm/vmm_priv.h"

/* The descriptors the child gets: QMP, console, kernel, initrd, disk, taps. */
#define QEMU_NFDS (5 + (int)VMM_NICS_MAX)

_Static_assert(QEMU_FD_QMP == VMM_SPAWN_FD0 && QEMU_FD_DISK == VMM_SPAWN_FD0 + 4 &&
		       QEMU_FD_NIC0 == VMM_SPAWN_FD0 + 5 && QEMU_FD_FIRST_FREE == VMM_SPAWN_FD0 + QEMU_NFDS,
	       "the child's descriptors are handed to vmm_spawn in QEMU_FD_* order");
#define QEMU_KILL_WAIT_MS 5000u
/* After its SHUTDOWN event a QEMU gets this long to exit by itself. */
#define QEMU_EXIT_GRACE_MS 3000u

struct qemu_guest {
	char name[VMM_NAME_MAX + 1];
	struct vmm_proc proc;
	struct qmp qmp;
	int console_fd;
	int stderr_fd;          /* memfd holding QEMU's stdout and stderr */
	unsigned timeout_ms;
	bool started;
	bool stop_requested;
	bool killed_by_us;
	bool hung_exiting;      /* killed after its SHUTDOWN: it hung exiting */
	char kill_reason[64];
};

/* ---- command line ---- */

/* QemuOpts values double their commas. */
static int opt_escape(const char *s, char *out, size_t outlen)
{
	size_t j = 0;
	for (size_t i = 0; s[i]; i++) {
		size_t need = s[i] == ',' ? 2 : 1;
		if (j + need >= outlen)
			return -ENAMETOOLONG;
		out[j++] = s[i];
		if (s[i] == ',')
			out[j++] = ',';
	}
	out[j] = '\0';
	return 0;
}

int qemu_build_argv(const char *qemu, const struct vmm_guest_spec *spec, int kvm,
		    struct vmm_argv *out, struct vmm_error *err)
{
	struct vmm_argv a = { 0 };
	char name[2 * VMM_NAME_MAX + 1];
	int r = 0;

#define ADD(...)                                          \
	do {                                              \
		if ((r = vmm_argv_add(&a, err, __VA_ARGS__)) < 0) \
			goto fail;                        \
	} while (0)

	if (opt_escape(spec->name, name, sizeof(name)) < 0)
		return vmm_err(err, -ENAMETOOLONG, "guest name too long");
	ADD("%s", qemu);
	ADD("-name");
	ADD("guest=%s,debug-threads=on", name);
	ADD("-machine");
	ADD("q35");
	ADD("-accel");
	ADD("%s", kvm ? "kvm" : "tcg");
	ADD("-cpu");
	ADD("%s", kvm ? "host" : "max");
	ADD("-smp");
	ADD("%u", spec->vcpus);
	ADD("-m");
	ADD("%lluM", (unsigned long long)(spec->memory >> 20));
	ADD("-nodefaults");
	ADD("-no-user-config");
	ADD("-display");
	ADD("none");
	ADD("-no-reboot");
	ADD("-S");
	ADD("-sandbox");
	ADD("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	ADD("-chardev");
	ADD("socket,id=qmp,fd=%d", QEMU_FD_QMP);
	ADD("-mon");
	ADD("chardev=qmp,mode=control");
	ADD("-chardev");
	ADD("socket,id=console,fd=%d", QEMU_FD_CONSOLE);
	ADD("-serial");
	ADD("chardev:console");
	ADD("-kernel");
	ADD("/proc/self/fd/%d", QEMU_FD_KERNEL);
	if (spec->initrd_fd >= 0) {
		ADD("-initrd");
		ADD("/proc/self/fd/%d", QEMU_FD_INITRD);
	}
	if (spec->cmdline && spec->cmdline[0]) {
		ADD("-append");
		ADD("%s", spec->cmdline);
	}
	if (spec->disk_fd >= 0) {
		ADD("-drive");
		ADD("file=/proc/self/fd/%d,format=%s,if=virtio,readonly=%s", QEMU_FD_DISK,
		    spec->disk_format == VMM_DISK_QCOW2 ? "qcow2" : "raw",
		    spec->disk_readonly ? "on" : "off");
	}
	ADD("-device");
	ADD("pvpanic");
	/* A guest panic (pvpanic) is an orderly QEMU exit after the
	 * GUEST_PANICKED event; exit-failure would exit() from the vCPU
	 * thread, which can hang QEMU. */
	ADD("-action");
	ADD("panic=shutdown");
	for (size_t i = 0; i < spec->npci; i++) {
		ADD("-device");
		ADD("vfio-pci,host=%s", spec->pci[i]);
	}
	for (size_t i = 0; i < spec->nnics && i < VMM_NICS_MAX; i++) {
		uint8_t mac[6];
		char canon[SKY_MAC_LEN];

		if (sky_parse_mac(spec->nics[i].mac, mac) < 0) {
			r = vmm_err(err, -EINVAL, "NIC %zu: not a MAC address", i);
			goto fail;
		}
		sky_format_mac(mac, canon);
		ADD("-netdev");
		ADD("tap,id=nic%zu,fd=%d", i, QEMU_FD_NIC0 + (int)i);
		ADD("-device");
		ADD("virtio-net-pci,netdev=nic%zu,mac=%s", i, canon);
	}
#undef ADD
	*out = a;
	return 0;

fail:
	vmm_argv_free(&a);
	return r;
}

int qemu_find_binary(const char *name, char *out, size_t outlen, struct vmm_error *err)
{
	const char *path, *p;

	if (!name || !name[0])
		name = VMM_DEFAULT_QEMU;
	if (strchr(name, '/')) {
		if (vmm_executable(name) && vmm_fmt(out, outlen, "%s", name) == 0)
			return 0;
		return vmm_err(err, -ENOENT,
			       "QEMU not found: %s is not an executable file; install QEMU "
			       "(apt-get install qemu-system-x86) or fix the configured QEMU path", name);
	}
	path = getenv("PATH");
	if (!path || !path[0])
		path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
	for (p = path; *p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char cand[PATH_MAX];
		if (len > 0 && vmm_fmt(cand, sizeof(cand), "%.*s/%s", (int)len, p, name) == 0 &&
		    vmm_executable(cand) && vmm_fmt(out, outlen, "%s", cand) == 0)
			return 0;
		p += len;
		if (*p == ':')
			p++;
	}
	return vmm_err(err, -ENOENT,
		       "QEMU not found: %s is not in PATH; install it (apt-get install qemu-system-x86) "
		       "or configure the path of the QEMU binary", name);
}

/* ---- the process ---- */

/* What QEMU said before it went: its last events are still readable. */
static void drain_qmp(struct qemu_guest *g)
{
	struct vmm_error ignored;
	if (g->qmp.fd >= 0 && !g->qmp.eof)
		for (int i = 0; i < 16 && qmp_pump(&g->qmp, 0, &ignored) == -EPROTO; i++)
			;
}

static void reap(struct qemu_guest *g)
{
	if (!g->proc.reaped && vmm_proc_reap(&g->proc, false))
		drain_qmp(g);
}

/* Wait up to timeout_ms for QEMU to end, noting QMP events meanwhile;
 * once its SHUTDOWN event is in, QEMU_EXIT_GRACE_MS at most. */
static void wait_exit(struct qemu_guest *g, unsigned timeout_ms)
{
	uint64_t deadline = sky_now_ms() + timeout_ms;
	struct vmm_error ignored;
	bool capped = false;

	for (;;) {
		struct pollfd p[2];
		nfds_t n = 0;
		uint64_t now;
		int left;

		reap(g);
		if (g->proc.reaped)
			return;
		now = sky_now_ms();
		if (g->qmp.shutdown && !capped) {
			capped = true;
			if (deadline > now + QEMU_EXIT_GRACE_MS)
				deadline = now + QEMU_EXIT_GRACE_MS;
		}
		if (now >= deadline)
			return;
		left = (int)(deadline - now);
		if (g->proc.pidfd >= 0)
			p[n++] = (struct pollfd){ .fd = g->proc.pidfd, .events = POLLIN };
		if (g->qmp.fd >= 0 && !g->qmp.eof)
			p[n++] = (struct pollfd){ .fd = g->qmp.fd, .events = POLLIN };
		if (g->proc.pidfd < 0 && left > 20)
			left = 20; /* no pidfd: look again every 20 ms */
		if (n == 0) {
			struct timespec ts = { 0, (long)left * 1000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(p, n, left) > 0 && g->qmp.fd >= 0 && !g->qmp.eof)
			qmp_pump(&g->qmp, 0, &ignored);
	}
}

static void kill_and_reap(struct qemu_guest *g, const char *why)
{
	reap(g);
	if (g->proc.reaped)
		return;
	g->killed_by_us = true;
	snprintf(g->kill_reason, sizeof(g->kill_reason), "%s", why);
	kill(g->proc.pid, SIGKILL);
	wait_exit(g, QEMU_KILL_WAIT_MS);
	if (!vmm_proc_reap(&g->proc, true)) {
		g->proc.status_lost = true;
		g->proc.reaped = true;
	}
}

static void status_from_exit(struct qemu_guest *g, struct vmm_status *st)
{
	char tail[96];
	int ws = g->proc.wstatus;

	st->exit_status = -1;
	st->exit_signal = 0;
	if (g->proc.status_lost) {
		if (g->qmp.shutdown && !g->qmp.panicked) {
			st->state = VMM_STATE_EXITED;
			snprintf(st->reason, sizeof(st->reason), "%s", g->qmp.shutdown_reason);
		} else {
			st->state = VMM_STATE_CRASHED;
			snprintf(st->reason, sizeof(st->reason),
				 "qemu ended, its exit status was lost (is SIGCHLD ignored?)");
		}
		return;
	}
	if (WIFSIGNALED(ws)) {
		int sig = WTERMSIG(ws);
		const char *abbrev = sigabbrev_np(sig);
		st->exit_signal = sig;
		if (g->killed_by_us && sig == SIGKILL && g->hung_exiting) {
			/* the guest had ended; QEMU only failed to exit */
			st->state = g->qmp.panicked ? VMM_STATE_CRASHED : VMM_STATE_EXITED;
			snprintf(st->reason, sizeof(st->reason), "%s",
				 g->qmp.panicked ? "guest-panicked" : g->qmp.shutdown_reason);
		} else if (g->killed_by_us && sig == SIGKILL) {
			st->state = VMM_STATE_EXITED;
			snprintf(st->reason, sizeof(st->reason), "%s", g->kill_reason);
		} else {
			st->state = VMM_STATE_CRASHED;
			snprintf(st->reason, sizeof(st->reason), "qemu killed by signal SIG%s",
				 abbrev ? abbrev : "?");
		}
		return;
	}
	st->exit_status = WEXITSTATUS(ws);
	if (g->qmp.panicked) {
		st->state = VMM_STATE_CRASHED;
		snprintf(st->reason, sizeof(st->reason), "guest-panicked");
	} else if (st->exit_status == 0) {
		st->state = VMM_STATE_EXITED;
		snprintf(st->reason, sizeof(st->reason), "%s",
			 g->qmp.shutdown ? g->qmp.shutdown_reason : "qemu exited");
	} else {
		st->state = VMM_STATE_CRASHED;
		vmm_fd_tail(g->stderr_fd, tail, sizeof(tail), false);
		snprintf(st->reason, sizeof(st->reason), "qemu exited with status %d%s%s", st->exit_status,
			 tail[0] ? ": " : "", tail);
	}
}

static void qemu_destroy(void *priv)
{
	struct qemu_guest *g = priv;
	if (!g)
		return;
	if (g->proc.pid > 0)
		kill_and_reap(g, "destroyed");
	qmp_close(&g->qmp);
	vmm_close(&g->console_fd);
	vmm_close(&g->stderr_fd);
	vmm_close(&g->proc.pidfd);
	free(g);
}

/* After a failed start: the error, with what QEMU said when it died. */
static int start_failed(struct qemu_guest *g, int r, struct vmm_error *err)
{
	char tail[VMM_MSG_MAX / 2];
	struct vmm_status st;

	wait_exit(g, 1000);
	if (!g->proc.reaped)
		return r;
	/* QEMU exited: what it said is the error. */
	vmm_fd_tail(g->stderr_fd, tail, sizeof(tail), false);
	memset(&st, 0, sizeof(st));
	status_from_exit(g, &st);
	if (tail[0])
		return vmm_err(err, -EIO, "qemu failed to start guest %s: %s", g->name, tail);
	return vmm_err(err, -EIO, "qemu failed to start guest %s: %s", g->name, st.reason);
}

static int qemu_create(const struct vmm_config *cfg, const struct vmm_guest_spec *spec,
		       void **priv, char *warn, size_t warnlen, struct vmm_error *err)
{
	char bin[PATH_MAX], why[VMM_MSG_MAX / 2];
	struct vmm_argv argv = { 0 };
	struct qemu_guest *g;
	int qmp_sv[2] = { -1, -1 }, con_sv[2] = { -1, -1 }, kvm, usable, r;
	json_t *ret = NULL;

	r = qemu_find_binary(cfg->qemu_path, bin, sizeof(bin), err);
	if (r < 0)
		return r;
	usable = spec->accel == VMM_ACCEL_TCG ? 0 : vmm_kvm_usable(cfg->root, why, sizeof(why));
	r = vmm_accel_pick(spec, usable, why, &kvm, warn, warnlen, err);
	if (r < 0)
		return r;
	r = qemu_build_argv(bin, spec, kvm, &argv, err);
	if (r < 0)
		return r;

	g = calloc(1, sizeof(*g));
	if (!g) {
		r = vmm_err(err, -ENOMEM, "out of memory");
		goto fail_argv;
	}
	snprintf(g->name, sizeof(g->name), "%s", spec->name);
	g->proc.pid = -1;
	g->proc.pidfd = -1;
	g->console_fd = -1;
	g->timeout_ms = vmm_cfg_timeout(cfg);
	qmp_init(&g->qmp, -1);

	g->stderr_fd = memfd_create("qemu-output", MFD_CLOEXEC);
	if (g->stderr_fd < 0) {
		r = vmm_err(err, -errno, "memfd_create: %s", strerror(errno));
		goto fail_guest;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp_sv) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con_sv) < 0) {
		r = vmm_err(err, -errno, "cannot make QEMU's sockets: %s", strerror(errno));
		goto fail_fds;
	}
	{
		/* in QEMU_FD_* order: QMP, console, kernel, initrd, disk, taps */
		int src[QEMU_NFDS] = { qmp_sv[1], con_sv[1], spec->kernel_fd, spec->initrd_fd, spec->disk_fd };
		for (int i = 5; i < QEMU_NFDS; i++)
			src[i] = (size_t)(i - 5) < spec->nnics ? spec->nics[i - 5].tap_fd : -1;
		r = vmm_spawn(argv.argv, src, QEMU_NFDS, g->stderr_fd, &g->proc, err);
	}
	if (r < 0)
		goto fail_fds;
	vmm_close(&qmp_sv[1]);
	vmm_close(&con_sv[1]);
	vmm_argv_free(&argv);

	qmp_init(&g->qmp, qmp_sv[0]);
	qmp_sv[0] = -1;
	g->console_fd = con_sv[0];
	con_sv[0] = -1;
	if (fcntl(g->console_fd, F_SETFL, fcntl(g->console_fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = vmm_err(err, -errno, "fcntl: %s", strerror(errno));
		goto fail_proc;
	}

	r = qmp_handshake(&g->qmp, g->timeout_ms, err);
	if (r < 0) {
		r = start_failed(g, r, err);
		goto fail_proc;
	}
	r = qmp_command(&g->qmp, "query-status", NULL, g->timeout_ms, &ret, err);
	if (r < 0) {
		r = start_failed(g, r, err);
		goto fail_proc;
	}
	json_decref(ret);
	*priv = g;
	return 0;

fail_proc:
	qemu_destroy(g);
	return r;
fail_fds:
	vmm_close(&qmp_sv[0]);
	vmm_close(&qmp_sv[1]);
	vmm_close(&con_sv[0]);
	vmm_close(&con_sv[1]);
fail_guest:
	qemu_destroy(g);
fail_argv:
	vmm_argv_free(&argv);
	return r;
}

static int ended(struct qemu_guest *g, struct vmm_error *err)
{
	return vmm_err(err, -ESRCH, "guest %s has ended; destroy it and create it again", g->name);
}

static int qemu_start(void *priv, struct vmm_error *err)
{
	struct qemu_guest *g = priv;
	int r;

	reap(g);
	if (g->proc.reaped)
		return ended(g, err);
	r = qmp_command(&g->qmp, "cont", NULL, g->timeout_ms, NULL, err);
	if (r < 0) {
		wait_exit(g, 200);
		return g->proc.reaped ? ended(g, err) : r;
	}
	g->started = true;
	return 0;
}

static int qemu_stop(void *priv, unsigned timeout_ms, struct vmm_error *err)
{
	struct qemu_guest *g = priv;
	const char *cmd;
	uint64_t end;
	int r;

	reap(g);
	if (g->proc.reaped)
		return 0;
	/* A guest that never ran cannot answer the power button. */
	cmd = g->started ? "system_powerdown" : "quit";
	r = qmp_command(&g->qmp, cmd, NULL, g->timeout_ms, NULL, err);
	if (r < 0 && r != -EPIPE) {
		wait_exit(g, 100);
		if (g->proc.reaped)
			return 0;
		kill_and_reap(g, "killed: qemu did not answer the power-off request");
		return r;
	}
	g->stop_requested = true;
	if (timeout_ms == 0)
		return 0;
	/* A press can go unseen (the guest was still bringing up its ACPI
	 * button or acpid): press again every VMM_POWERDOWN_REPEAT_MS until
	 * the guest powers off or the time is up. */
	end = sky_now_ms() + timeout_ms;
	for (uint64_t now = sky_now_ms(); now < end; now = sky_now_ms()) {
		struct vmm_error ignored;
		uint64_t left = end - now;
		wait_exit(g, (unsigned)(left < VMM_POWERDOWN_REPEAT_MS ? left : VMM_POWERDOWN_REPEAT_MS));
		if (g->proc.reaped || g->qmp.shutdown || !g->started || sky_now_ms() >= end)
			break;
		left = end - sky_now_ms(); /* the press, too, keeps to the stop's time */
		g->qmp.abort_on_shutdown = true;
		r = qmp_command(&g->qmp, "system_powerdown", NULL, (unsigned)(left < g->timeout_ms ? left : g->timeout_ms),
				NULL, &ignored);
		g->qmp.abort_on_shutdown = false;
		if (r < 0 && r != -ESHUTDOWN) { /* QMP gone: QEMU is on its way out */
			now = sky_now_ms();
			wait_exit(g, now < end ? (unsigned)(end - now) : 0);
			break;
		}
	}
	/* The guest powered off: give QEMU its grace to exit. */
	if (!g->proc.reaped && g->qmp.shutdown)
		wait_exit(g, QEMU_EXIT_GRACE_MS);
	if (g->proc.reaped)
		return 0;
	if (g->qmp.shutdown) {
		/* the guest powered off; QEMU hangs on its way out */
		g->hung_exiting = true;
		kill_and_reap(g, "killed: qemu hung while exiting");
		return 0;
	}
	kill_and_reap(g, "killed after stop timeout");
	return vmm_err(err, -ETIMEDOUT,
		       "guest %s did not power off within %u ms (does it handle the ACPI power "
		       "button, e.g. with acpid?): its QEMU was killed", g->name, timeout_ms);
}

static int qemu_state(void *priv, struct vmm_status *st)
{
	struct qemu_guest *g = priv;
	struct vmm_error err;
	struct vmm_status s = { .exit_status = -1 };
	const char *status;
	json_t *ret = NULL;
	int r;

	if (!g->proc.reaped && g->qmp.fd >= 0 && !g->qmp.eof)
		qmp_pump(&g->qmp, 0, &err);
	reap(g);
	if (!g->proc.reaped && !g->qmp.shutdown) {
		g->qmp.abort_on_shutdown = true;
		r = qmp_command(&g->qmp, "query-status", NULL, g->timeout_ms, &ret, &err);
		g->qmp.abort_on_shutdown = false;
		if (r < 0 && r != -ESHUTDOWN) {
			/* QMP gone: QEMU is ending; give it a moment. */
			wait_exit(g, r == -EPIPE ? 2000 : 0);
			if (!g->proc.reaped)
				return r; /* alive but not answering */
		}
	}
	if (!g->proc.reaped && g->qmp.shutdown) {
		/* On its way out: never send it a command now, wait for it. */
		json_decref(ret);
		ret = NULL;
		wait_exit(g, QEMU_EXIT_GRACE_MS);
		if (!g->proc.reaped) {
			g->hung_exiting = true;
			kill_and_reap(g, "killed: qemu hung while exiting");
		}
	}
	if (g->proc.reaped) {
		json_decref(ret);
		status_from_exit(g, &s);
		*st = s;
		return 0;
	}
	status = json_string_value(json_object_get(ret, "status"));
	if (!status)
		status = "";
	if (strcmp(status, "prelaunch") == 0) {
		s.state = VMM_STATE_CREATED;
	} else if (strcmp(status, "running") == 0) {
		s.state = g->stop_requested ? VMM_STATE_SHUTTING_DOWN : VMM_STATE_RUNNING;
	} else if (strcmp(status, "shutdown") == 0) {
		s.state = VMM_STATE_SHUTTING_DOWN;
	} else if (strcmp(status, "guest-panicked") == 0 || strcmp(status, "internal-error") == 0) {
		s.state = VMM_STATE_CRASHED;
		snprintf(s.reason, sizeof(s.reason), "%s", status);
	} else {
		/* paused, suspended, io-error, watchdog, debug, ... */
		s.state = VMM_STATE_PAUSED;
		if (strcmp(status, "paused") != 0)
			snprintf(s.reason, sizeof(s.reason), "%.64s", status);
	}
	json_decref(ret);
	*st = s;
	return 0;
}

static int qemu_installed(const struct vmm_config *cfg, struct vmm_error *err)
{
	char bin[PATH_MAX];
	return qemu_find_binary(cfg->qemu_path, bin, sizeof(bin), err);
}

static int qemu_console(void *priv)
{
	struct qemu_guest *g = priv;
	return g->console_fd >= 0 ? g->console_fd : -EBADF;
}

const struct vmm_ops vmm_qemu_ops = {
	.name = "qemu",
	.create = qemu_create,
	.start = qemu_start,
	.stop = qemu_stop,
	.destroy = qemu_destroy,
	.state = qemu_state,
	.console = qemu_console,
	.installed = qemu_installed,
};
