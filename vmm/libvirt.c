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
 * The console stream is non-blocking and pumped to and from a socketpair
 * (vmm_console_fd) by callbacks on libvirt's default event loop, which the
 * backend registers (virEventRegisterDefaultImpl) and runs in one thread of
 * its own, started at first use and kept for the life of the process.  A
 * blocking virStreamRecv in one thread and virStreamSend in another
 * deadlock in libvirt's client (seen with 9.0), and a non-blocking stream
 * only moves data when an event loop runs.  A program that registers its
 * own libvirt event implementation must do so before the first guest.
 * Each direction has a bounded buffer (LV_CON_BUF); when it is full the
 * source is not read (back-pressure, like the qemu backend).
 */
#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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
#define LV_CON_BUF (64 * 1024)

/* The console pump, shared by the guest and the event loop's callbacks;
 * freed when the last of them lets go. */
struct lv_console {
	pthread_mutex_t lock;
	pthread_cond_t released; /* signalled when a reference goes */
	int refs;
	virStreamPtr st;
	int fd;                 /* our end of the socketpair, non-blocking */
	int watch;              /* virEventAddHandle id, or -1 */
	bool st_cb;             /* stream callback registered */
	bool st_eof;            /* the guest side ended */
	bool fd_eof;            /* the caller shut down its writing side */
	bool dead;              /* stop everything */
	size_t out_len;         /* stream -> fd */
	size_t in_len;          /* fd -> stream */
	char out[LV_CON_BUF];
	char in[LV_CON_BUF];
};

struct lv_guest {
	char name[VMM_NAME_MAX + 1];
	virConnectPtr conn;
	virDomainPtr dom;
	struct lv_console *con;
	int img[3];             /* our dups of kernel, initrd, disk: -1 if none */
	int console_fd;         /* the caller's end */
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

static void *lv_event_thread(void *arg)
{
	(void)arg;
	for (;;)
		virEventRunDefaultImpl();
	return NULL;
}

static void lv_init(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	virSetErrorFunc(NULL, lv_silent);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
		lv_init_result = -EIO;
		return;
	}
	/* The loop thread takes no process signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, lv_event_thread, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	lv_init_result = r ? -r : 0;
}

static const char *lv_msg(void)
{
	const char *m = virGetLastErrorMessage();
	return m ? m : "unknown libvirt error";
}

/* ---- console pump (callbacks run on the event loop thread) ---- */

static void con_unref(void *opaque)
{
	struct lv_console *c = opaque;
	int left;
	pthread_mutex_lock(&c->lock);
	left = --c->refs;
	pthread_cond_broadcast(&c->released);
	pthread_mutex_unlock(&c->lock);
	if (left > 0)
		return;
	if (c->st)
		virStreamFree(c->st);
	vmm_close(&c->fd);
	pthread_cond_destroy(&c->released);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Stop watching; called with the lock held. */
static void con_stop(struct lv_console *c)
{
	c->dead = true;
	if (c->st_cb) {
		c->st_cb = false;
		virStreamEventRemoveCallback(c->st);
	}
	if (c->watch >= 0) {
		virEventRemoveHandle(c->watch);
		c->watch = -1;
	}
}

/* Move what can move without blocking, then ask for the right events.
 * Called with the lock held. */
static void con_pump(struct lv_console *c)
{
	int sev = 0, fev = 0;

	while (c->out_len > 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->out_len = 0; /* the caller's end is gone: drop */
			break;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	while (c->in_len > 0 && !c->st_eof) {
		int n = virStreamSend(c->st, c->in, c->in_len);
		if (n == -2)
			break;
		if (n < 0) {
			c->st_eof = true;
			break;
		}
		memmove(c->in, c->in + n, c->in_len - (size_t)n);
		c->in_len -= (size_t)n;
	}
	if (c->st_eof && c->out_len == 0) {
		/* everything the guest said is delivered: the caller reads EOF */
		shutdown(c->fd, SHUT_WR);
		con_stop(c);
		return;
	}
	if (!c->st_eof && c->out_len < sizeof(c->out))
		sev |= VIR_STREAM_EVENT_READABLE;
	if (!c->st_eof && c->in_len > 0)
		sev |= VIR_STREAM_EVENT_WRITABLE;
	if (c->out_len > 0)
		fev |= VIR_EVENT_HANDLE_WRITABLE;
	if (!c->fd_eof && c->in_len < sizeof(c->in))
		fev |= VIR_EVENT_HANDLE_READABLE;
	if (c->st_cb)
		virStreamEventUpdateCallback(c->st, sev);
	if (c->watch >= 0)
		virEventUpdateHandle(c->watch, fev);
}

static void con_stream_cb(virStreamPtr st, int events, void *opaque)
{
	struct lv_console *c = opaque;
	(void)st;
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (events & VIR_STREAM_EVENT_READABLE) {
		while (c->out_len < sizeof(c->out)) {
			int n = virStreamRecv(c->st, c->out + c->out_len, sizeof(c->out) - c->out_len);
			if (n == -2)
				break;
			if (n <= 0) {
				c->st_eof = true;
				break;
			}
			c->out_len += (size_t)n;
		}
	}
	if (events & (VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP))
		c->st_eof = true;
	con_pump(c);
	pthread_mutex_unlock(&c->lock);
}

static void con_fd_cb(int watch, int fd, int events, void *opaque)
{
	struct lv_console *c = opaque;
	(void)watch;
	(void)fd;
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if ((events & VIR_EVENT_HANDLE_READABLE) && !c->fd_eof) {
		while (c->in_len < sizeof(c->in)) {
			ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0) {
				c->fd_eof = true;
				break;
			}
			c->in_len += (size_t)n;
		}
	}
	con_pump(c);
	pthread_mutex_unlock(&c->lock);
}

/* Start pumping st <-> fd; takes both.  0 or -errno with a message. */
static int con_start(struct lv_guest *g, virStreamPtr st, int fd, struct vmm_error *err)
{
	struct lv_console *c = calloc(1, sizeof(*c));
	int r = 0;

	if (!c) {
		virStreamFree(st);
		close(fd);
		return vmm_err(err, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->released, NULL);
	c->refs = 1;
	c->st = st;
	c->fd = fd;
	c->watch = -1;
	g->con = c;
	pthread_mutex_lock(&c->lock);
	/* The fd watch holds a reference, dropped by the event loop (its
	 * thread) once the watch is gone.  The stream callback holds none:
	 * libvirt's remote driver never calls a stream callback's free
	 * function (remoteStreamCallbackFree tests !cbdata->cb), and the
	 * callback runs on that same thread, so it cannot outlive the fd
	 * watch's reference as long as it is removed first (con_stop). */
	c->refs++;
	c->watch = virEventAddHandle(fd, VIR_EVENT_HANDLE_READABLE, con_fd_cb, c, con_unref);
	if (c->watch < 0) {
		c->refs--;
		r = vmm_err(err, -EIO, "cannot watch the console socket of guest %s", g->name);
		goto out;
	}
	if (virStreamEventAddCallback(st, VIR_STREAM_EVENT_READABLE, con_stream_cb, c, NULL) < 0) {
		r = vmm_err(err, -EIO, "cannot watch the console of guest %s: %s", g->name, lv_msg());
		goto out;
	}
	c->st_cb = true;
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Stop the pump and free it before returning: the event loop drops the
 * fd watch's reference on its next turn (2 s at most is waited for it, so
 * that the descriptors are closed when destroy returns). */
static void con_close(struct lv_console *c)
{
	struct timespec until;

	if (!c)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	pthread_mutex_lock(&c->lock);
	if (!c->st_eof && c->st)
		virStreamAbort(c->st);
	con_stop(c);
	while (c->refs > 1)
		if (pthread_cond_timedwait(&c->released, &c->lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&c->lock);
	con_unref(c);
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
	con_close(g->con);
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
	free(g);
}

/* A URI naming a libvirtd on this host: no host part ("qemu:///system",
 * "qemu+unix:///system?socket=..."). */
static int lv_uri_local(const char *uri)
{
	const char *p = strstr(uri, "://");
	return p && p[3] == '/';
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
	virStreamPtr st;
	char *xml = NULL;
	int sv[2], kvm, usable = 0, r;

	/* libvirtd opens its own taps (<interface type='ethernet'>) and cannot
	 * be handed ours: a guest with NICs runs on the qemu backend. */
	if (spec->nnics)
		return vmm_err(err, -EOPNOTSUPP,
			       "guest %s: the libvirt backend does not take NICs (the agent's taps cannot be handed to "
			       "libvirtd); create the guest with backend qemu", spec->name);
	pthread_once(&lv_once, lv_init);
	if (lv_init_result < 0)
		return vmm_err(err, -EIO, "cannot initialise libvirt: %s", lv_msg());

	g = calloc(1, sizeof(*g));
	if (!g)
		return vmm_err(err, -ENOMEM, "out of memory");
	snprintf(g->name, sizeof(g->name), "%s", spec->name);
	g->img[0] = g->img[1] = g->img[2] = -1;
	g->console_fd = -1;
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

	/* libvirt offers kvm domains wherever /dev/kvm answers, and asking it
	 * about a KVM that cannot run a stock kernel (PVM) takes it about a
	 * minute: on this host (a local URI) look at the KVM first. */
	if (spec->accel != VMM_ACCEL_TCG && (!lv_uri_local(uri) || vmm_kvm_hw_backed(cfg->root, why, sizeof(why)))) {
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

	st = virStreamNew(g->conn, VIR_STREAM_NONBLOCK);
	if (!st || virDomainOpenConsole(g->dom, NULL, st, VIR_DOMAIN_CONSOLE_FORCE) < 0) {
		r = vmm_err(err, -EIO, "cannot open the console of guest %s: %s", spec->name, lv_msg());
		if (st)
			virStreamFree(st);
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
		r = vmm_err(err, -errno, "socketpair: %s", strerror(errno));
		virStreamAbort(st);
		virStreamFree(st);
		goto fail;
	}
	g->console_fd = sv[0];
	r = con_start(g, st, sv[1], err);
	if (r < 0)
		goto fail;
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
	uint64_t deadline, next_press;
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
	next_press = sky_now_ms() + VMM_POWERDOWN_REPEAT_MS;
	while (sky_now_ms() < deadline) {
		struct timespec ts = { 0, LV_POLL_MS * 1000000L };
		off = domain_off(g);
		if (off != 0)
			return off < 0 ? vmm_err(err, -EIO, "cannot read the state of guest %s: %s", g->name,
						 lv_msg())
				       : 0;
		/* the press may have gone unseen (see VMM_POWERDOWN_REPEAT_MS) */
		if (sky_now_ms() >= next_press) {
			virDomainShutdownFlags(g->dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
			next_press = sky_now_ms() + VMM_POWERDOWN_REPEAT_MS;
		}
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
