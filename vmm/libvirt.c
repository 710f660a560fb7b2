/* The libvirt backend: the same guest through libvirt's C API.
 *
 * Images: libvirt wants paths, and for the kernel and initrd QEMU opens the
 * path itself.  The backend dups the memfds it is given and names them
 * /proc/<agent pid>/fd/<n>.  Opening another process's /proc/PID/fd/N
 * passes the kernel's ptrace access check (same uid, and the opener's
 * capabilities must cover the target's), which libvirt's default QEMU user
 * (libvirt-qemu) fails.  So the domain carries a static DAC label
 * "+0:+0" with relabel='no': QEMU runs as root (still inside libvirt's
 * seccomp sandbox and mount namespace) and libvirt does not chown the
 * memfds.  This needs the agent and libvirtd on the same host, in the same
 * PID namespace, with the agent running as root - which is the board.  The
 * alternative, copying images to files on a tmpfs for QEMU to read, would
 * double their RAM and leave paths behind; disks could be passed as real
 * descriptors with virDomainFDAssociate (libvirt >= 9.0) later.
 *
 * The domain is defined (persistent) so that after it stops its shut-off
 * reason can still be read, and undefined by destroy.  It is started
 * paused, the console stream (virDomainOpenConsole on the pty serial) is
 * opened, and only start resumes it, so no console output is lost.
 *
 * The console stream is pumped by two threads per guest into a socketpair
 * (libvirt's remote streams need either blocking calls or libvirt's own
 * event loop; a thread per direction keeps the library free of a global
 * loop): guest output -> vmm_console_fd(), vmm_console_fd() -> guest input.
 */
#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "vmm/lv_xml.h"
#include "vmm/vmm_priv.h"

#define LV_POLL_MS 50
#define LV_CHUNK 4096

struct lv_guest {
	char name[VMM_NAME_MAX + 1];
	virConnectPtr conn;
	virDomainPtr dom;
	virStreamPtr st;
	int img[3];             /* our dups of kernel, initrd, disk: -1 if none */
	int console_fd;         /* the caller's end */
	int pump_fd;            /* the threads' end */
	int wake[2];            /* tells the input thread to end */
	pthread_t out_thr, in_thr;
	bool out_started, in_started;
	unsigned timeout_ms;
	bool defined;
	bool started;
	bool stop_requested;
	bool killed_by_us;
	char kill_reason[64];
};

static pthread_once_t lv_once = PTHREAD_ONCE_INIT;
static int lv_init_result;

/* libvirt prints every error to stderr unless told otherwise; the library
 * does not log, it returns the message. */
static void lv_silent(void *ctx, virErrorPtr e)
{
	(void)ctx;
	(void)e;
}

static void lv_init(void)
{
	lv_init_result = virInitialize();
	virSetErrorFunc(NULL, lv_silent);
}

static const char *lv_msg(void)
{
	const char *m = virGetLastErrorMessage();
	return m ? m : "unknown libvirt error";
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void *out_thread(void *arg)
{
	struct lv_guest *g = arg;
	char buf[LV_CHUNK];
	for (;;) {
		int n = virStreamRecv(g->st, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (send_all(g->pump_fd, buf, (size_t)n) < 0)
			break;
	}
	shutdown(g->pump_fd, SHUT_WR); /* the caller reads EOF */
	return NULL;
}

static void *in_thread(void *arg)
{
	struct lv_guest *g = arg;
	char buf[LV_CHUNK];
	for (;;) {
		struct pollfd p[2] = { { .fd = g->pump_fd, .events = POLLIN },
				       { .fd = g->wake[0], .events = POLLIN } };
		ssize_t n;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		n = recv(g->pump_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		for (ssize_t off = 0; off < n;) {
			int w = virStreamSend(g->st, buf + off, (size_t)(n - off));
			if (w < 0)
				return NULL;
			off += w;
		}
	}
	return NULL;
}

static void lv_destroy(void *priv)
{
	struct lv_guest *g = priv;
	if (!g)
		return;
	if (g->dom && virDomainIsActive(g->dom) == 1) {
		if (!g->killed_by_us) {
			g->killed_by_us = true;
			snprintf(g->kill_reason, sizeof(g->kill_reason), "destroyed");
		}
		virDomainDestroy(g->dom);
	}
	if (g->in_started) {
		if (write(g->wake[1], "x", 1) < 0) {
			/* the pipe cannot be full: one byte, once */
		}
		pthread_join(g->in_thr, NULL);
	}
	if (g->out_started)
		pthread_join(g->out_thr, NULL); /* the stream ended with the domain */
	if (g->st) {
		virStreamAbort(g->st);
		virStreamFree(g->st);
	}
	if (g->dom) {
		if (g->defined)
			virDomainUndefine(g->dom);
		virDomainFree(g->dom);
	}
	if (g->conn)
		virConnectClose(g->conn);
	for (int i = 0; i < 3; i++)
		vmm_close(&g->img[i]);
	vmm_close(&g->console_fd);
	vmm_close(&g->pump_fd);
	vmm_close(&g->wake[0]);
	vmm_close(&g->wake[1]);
	free(g);
}

static int img_path(int fd, char *out, size_t outlen)
{
	return vmm_fmt(out, outlen, "/proc/%ld/fd/%d", (long)getpid(), fd);
}

static int lv_create(const struct vmm_config *cfg, const struct vmm_guest_spec *spec,
		     void **priv, char *warn, size_t warnlen, struct vmm_error *err)
{
	const char *uri = cfg->libvirt_uri ? cfg->libvirt_uri : VMM_DEFAULT_LIBVIRT_URI;
	char paths[3][64], why[VMM_MSG_MAX / 2];
	const int want[3] = { spec->kernel_fd, spec->initrd_fd, spec->disk_fd };
	struct lv_xml_in xin = { 0 };
	struct lv_guest *g;
	virDomainPtr other;
	char *xml = NULL;
	int sv[2], kvm, usable = 0, r;

	pthread_once(&lv_once, lv_init);
	if (lv_init_result < 0)
		return vmm_err(err, -EIO, "cannot initialise libvirt: %s", lv_msg());

	g = calloc(1, sizeof(*g));
	if (!g)
		return vmm_err(err, -ENOMEM, "out of memory");
	snprintf(g->name, sizeof(g->name), "%s", spec->name);
	g->img[0] = g->img[1] = g->img[2] = -1;
	g->console_fd = g->pump_fd = g->wake[0] = g->wake[1] = -1;
	g->timeout_ms = vmm_cfg_timeout(cfg);

	g->conn = virConnectOpen(uri);
	if (!g->conn) {
		r = vmm_err(err, -ECONNREFUSED,
			    "cannot connect to libvirt at %s: %s; is libvirtd running? (apt-get install "
			    "libvirt-daemon-system, then start libvirtd)", uri, lv_msg());
		goto fail;
	}
	other = virDomainLookupByName(g->conn, spec->name);
	if (other) {
		virDomainFree(other);
		r = vmm_err(err, -EEXIST,
			    "libvirt at %s already has a domain named %s: remove it (virsh undefine %s) "
			    "or pick another name", uri, spec->name, spec->name);
		goto fail;
	}

	if (spec->accel != VMM_ACCEL_TCG) {
		char *caps = virConnectGetDomainCapabilities(g->conn, NULL, "x86_64", "q35", "kvm", 0);
		usable = caps != NULL;
		if (caps)
			free(caps);
		else
			snprintf(why, sizeof(why), "libvirt at %s offers no kvm domains: %s", uri, lv_msg());
	}
	r = vmm_accel_pick(spec, usable, why, &kvm, warn, warnlen, err);
	if (r < 0)
		goto fail;

	for (int i = 0; i < 3; i++) {
		if (want[i] < 0)
			continue;
		g->img[i] = vmm_dup_cloexec(want[i], 3);
		if (g->img[i] < 0) {
			r = vmm_err(err, g->img[i], "dup: %s", strerror(-g->img[i]));
			goto fail;
		}
		img_path(g->img[i], paths[i], sizeof(paths[i]));
	}
	xin.spec = spec;
	xin.domain_type = kvm ? "kvm" : "qemu";
	xin.kernel_path = paths[0];
	xin.initrd_path = g->img[1] >= 0 ? paths[1] : NULL;
	xin.disk_path = g->img[2] >= 0 ? paths[2] : NULL;
	xin.dac_label = "+0:+0";
	r = lv_domain_xml(&xin, &xml, err);
	if (r < 0)
		goto fail;

	g->dom = virDomainDefineXML(g->conn, xml);
	free(xml);
	if (!g->dom) {
		r = vmm_err(err, -EINVAL, "libvirt refused the definition of guest %s: %s", spec->name, lv_msg());
		goto fail;
	}
	g->defined = true;
	if (virDomainCreateWithFlags(g->dom, VIR_DOMAIN_START_PAUSED) < 0) {
		r = vmm_err(err, -EIO, "libvirt could not start guest %s: %s", spec->name, lv_msg());
		goto fail;
	}

	g->st = virStreamNew(g->conn, 0);
	if (!g->st || virDomainOpenConsole(g->dom, NULL, g->st, VIR_DOMAIN_CONSOLE_FORCE) < 0) {
		r = vmm_err(err, -EIO, "cannot open the console of guest %s: %s", spec->name, lv_msg());
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = vmm_err(err, -errno, "socketpair: %s", strerror(errno));
		goto fail;
	}
	g->console_fd = sv[0];
	g->pump_fd = sv[1];
	if (fcntl(g->console_fd, F_SETFL, fcntl(g->console_fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    pipe2(g->wake, O_CLOEXEC) < 0) {
		r = vmm_err(err, -errno, "console setup: %s", strerror(errno));
		goto fail;
	}
	r = pthread_create(&g->out_thr, NULL, out_thread, g);
	if (r) {
		r = vmm_err(err, -r, "pthread_create: %s", strerror(r));
		goto fail;
	}
	g->out_started = true;
	r = pthread_create(&g->in_thr, NULL, in_thread, g);
	if (r) {
		r = vmm_err(err, -r, "pthread_create: %s", strerror(r));
		goto fail;
	}
	g->in_started = true;
	*priv = g;
	return 0;

fail:
	lv_destroy(g);
	return r;
}

static int lv_start(void *priv, struct vmm_error *err)
{
	struct lv_guest *g = priv;
	if (virDomainIsActive(g->dom) != 1)
		return vmm_err(err, -ESRCH, "guest %s has ended; destroy it and create it again", g->name);
	if (virDomainResume(g->dom) < 0)
		return vmm_err(err, -EIO, "libvirt could not resume guest %s: %s", g->name, lv_msg());
	g->started = true;
	return 0;
}

static int domain_off(struct lv_guest *g)
{
	int state, reason;
	if (virDomainGetState(g->dom, &state, &reason, 0) < 0)
		return -EIO;
	return state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_CRASHED;
}

static int lv_stop(void *priv, unsigned timeout_ms, struct vmm_error *err)
{
	struct lv_guest *g = priv;
	uint64_t deadline;
	int off;

	off = domain_off(g);
	if (off < 0)
		return vmm_err(err, -EIO, "cannot read the state of guest %s: %s", g->name, lv_msg());
	if (off)
		return 0;
	if (!g->started) {
		g->killed_by_us = true;
		snprintf(g->kill_reason, sizeof(g->kill_reason), "stopped before it started");
		if (virDomainDestroy(g->dom) < 0 && domain_off(g) != 1)
			return vmm_err(err, -EIO, "libvirt could not stop guest %s: %s", g->name, lv_msg());
		return 0;
	}
	if (virDomainShutdownFlags(g->dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0) {
		if (domain_off(g) == 1)
			return 0;
		return vmm_err(err, -EIO, "libvirt could not press the power button of guest %s: %s",
			       g->name, lv_msg());
	}
	g->stop_requested = true;
	if (timeout_ms == 0)
		return 0;
	deadline = sky_now_ms() + timeout_ms;
	while (sky_now_ms() < deadline) {
		struct timespec ts = { 0, LV_POLL_MS * 1000000L };
		off = domain_off(g);
		if (off != 0)
			return off < 0 ? vmm_err(err, -EIO, "cannot read the state of guest %s: %s", g->name,
						 lv_msg())
				       : 0;
		nanosleep(&ts, NULL);
	}
	g->killed_by_us = true;
	snprintf(g->kill_reason, sizeof(g->kill_reason), "killed after stop timeout");
	virDomainDestroy(g->dom);
	return vmm_err(err, -ETIMEDOUT,
		       "guest %s did not power off within %u ms (does it handle the ACPI power "
		       "button, e.g. with acpid?): it was destroyed", g->name, timeout_ms);
}

static const char *shutoff_reason(int reason)
{
	switch (reason) {
	case VIR_DOMAIN_SHUTOFF_SHUTDOWN:
		return "guest-shutdown";
	case VIR_DOMAIN_SHUTOFF_DESTROYED:
		return "destroyed";
	case VIR_DOMAIN_SHUTOFF_CRASHED:
		return "shutoff: crashed (guest panic, or QEMU died)";
	case VIR_DOMAIN_SHUTOFF_FAILED:
		return "shutoff: failed to start";
	case VIR_DOMAIN_SHUTOFF_SAVED:
		return "shutoff: saved";
	case VIR_DOMAIN_SHUTOFF_MIGRATED:
		return "shutoff: migrated";
	case VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT:
		return "shutoff: from snapshot";
	case VIR_DOMAIN_SHUTOFF_DAEMON:
		return "shutoff: by libvirtd";
	default:
		return "shutoff: unknown reason";
	}
}

static int lv_state(void *priv, struct vmm_status *st)
{
	struct lv_guest *g = priv;
	struct vmm_status s = { .exit_status = -1 };
	int state, reason;

	if (virDomainGetState(g->dom, &state, &reason, 0) < 0)
		return -EIO;
	switch (state) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED:
		s.state = g->stop_requested ? VMM_STATE_SHUTTING_DOWN : VMM_STATE_RUNNING;
		break;
	case VIR_DOMAIN_PAUSED:
		s.state = g->started ? VMM_STATE_PAUSED : VMM_STATE_CREATED;
		break;
	case VIR_DOMAIN_SHUTDOWN:
		s.state = VMM_STATE_SHUTTING_DOWN;
		break;
	case VIR_DOMAIN_PMSUSPENDED:
		s.state = VMM_STATE_PAUSED;
		snprintf(s.reason, sizeof(s.reason), "pmsuspended");
		break;
	case VIR_DOMAIN_CRASHED:
		s.state = VMM_STATE_CRASHED;
		snprintf(s.reason, sizeof(s.reason), "%s",
			 reason == VIR_DOMAIN_CRASHED_PANICKED ? "guest-panicked" : "crashed");
		break;
	case VIR_DOMAIN_SHUTOFF:
		if (reason == VIR_DOMAIN_SHUTOFF_CRASHED || reason == VIR_DOMAIN_SHUTOFF_FAILED) {
			s.state = VMM_STATE_CRASHED;
		} else {
			s.state = VMM_STATE_EXITED;
		}
		if (reason == VIR_DOMAIN_SHUTOFF_DESTROYED && g->killed_by_us)
			snprintf(s.reason, sizeof(s.reason), "%s", g->kill_reason);
		else
			snprintf(s.reason, sizeof(s.reason), "%s", shutoff_reason(reason));
		break;
	default:
		s.state = VMM_STATE_PAUSED;
		snprintf(s.reason, sizeof(s.reason), "libvirt state %d", state);
		break;
	}
	*st = s;
	return 0;
}

static int lv_console(void *priv)
{
	struct lv_guest *g = priv;
	return g->console_fd >= 0 ? g->console_fd : -EBADF;
}

const struct vmm_ops vmm_libvirt_ops = {
	.name = "libvirt",
	.create = lv_create,
	.start = lv_start,
	.stop = lv_stop,
	.destroy = lv_destroy,
	.state = lv_state,
	.console = lv_console,
};
