/* The board's guests: see guests.h.
 *
 * Creating, starting and stopping a guest talk to QEMU (or libvirtd) and
 * wait for it, so they run in the loop's worker threads; one operation per
 * guest at a time.  The console is a socket polled by the loop; its output
 * goes to the controller in ConsoleData messages.
 *
 * Who frees what: a guest is freed by free_guest() only, on the loop,
 * never while a worker holds it (busy); a worker hands it back in its
 * done callback.  The worker gets its own duplicates of the image memfds
 * (fds[]), so the cache may go (agent shutdown) while a start is in flight.
 * After guestmgr_free() the manager lives on while a worker holds a guest
 * or a console handle is closing; it is freed by mgr_release() alone, at
 * the end of the last of those callbacks (or of guestmgr_free itself),
 * never from inside free_guest: a walk of the guests must not see the
 * manager go under it. */
#include "agent/guests.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/answer.h"
#include "agent/nics.h"
#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm.h"

#define ID_MAX 32
#define CONSOLE_CHUNK (16u * 1024u)
#define STOP_TIMEOUT_MS 30000u

enum ag_state { AG_PENDING, AG_FETCHING, AG_STARTING, AG_RUNNING, AG_STOPPING, AG_STOPPED, AG_FAILED };

struct aguest {
	struct aguest *next;
	struct guestmgr *m;
	char id[ID_MAX];
	Skyroot__GuestSpec *spec;      /* owned copy */
	bool want_running;
	bool destroy;                  /* forget it once stopped */
	enum ag_state state;
	char error[512];
	struct vmm_guest *vm;
	uv_poll_t *poll;               /* console */
	uv_work_t work;
	bool busy;                     /* a worker holds this guest */
	int work_result;
	struct vmm_error work_err;
	int fds[3];                    /* the worker's own dups of the image memfds, or -1 */
	bool held;                     /* images held in the cache */
	bool disk_qcow2;               /* the disk image's manifest says qcow2 */
	unsigned ntaps;                /* the taps made for its NICs (nics.h): gone with it */
	char taps[VMM_NICS_MAX][NICS_IFNAME_MAX];
};

struct guestmgr {
	uv_loop_t *loop;
	struct guestmgr_config cfg;
	struct vmm_root root;
	struct vmm_config vcfg;
	const char *default_backend;   /* for guests that name none */
	struct imgcache *cache;
	struct guestmgr_ops ops;
	void *ctx;
	struct aguest *guests;
	bool freeing;                  /* the agent let go: see mgr_release() */
	unsigned pending_handles;      /* console handles being closed */
	/* bare metal */
	bool bm_active;
	uint64_t bm_req;               /* the controller's request id, echoed in the answers */
	char bm_kernel[ID_MAX], bm_initrd[ID_MAX];
	char bm_cmdline[4096];
};

static const char *const state_words[] = {
	[AG_PENDING] = "pending", [AG_FETCHING] = "fetching", [AG_STARTING] = "starting",
	[AG_RUNNING] = "running", [AG_STOPPING] = "stopping", [AG_STOPPED] = "stopped",
	[AG_FAILED] = "failed",
};

static Skyroot__GuestStateCode wire_state(enum ag_state s)
{
	switch (s) {
	case AG_FETCHING:
		return SKYROOT__GUEST_STATE_CODE__GUEST_FETCHING;
	case AG_RUNNING:
	case AG_STOPPING:
		return SKYROOT__GUEST_STATE_CODE__GUEST_RUNNING;
	case AG_STOPPED:
		return SKYROOT__GUEST_STATE_CODE__GUEST_STOPPED;
	case AG_FAILED:
		return SKYROOT__GUEST_STATE_CODE__GUEST_FAILED;
	default:
		return SKYROOT__GUEST_STATE_CODE__GUEST_PENDING;
	}
}

static void report(struct guestmgr *m, bool complete)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__GuestReport rep = SKYROOT__GUEST_REPORT__INIT;
	Skyroot__GuestState *st = NULL, **stp = NULL;
	size_t n = 0, i = 0;

	if (m->freeing)
		return; /* the agent is going away */
	for (struct aguest *g = m->guests; g; g = g->next)
		n++;
	if (n) {
		st = calloc(n, sizeof(*st));
		stp = calloc(n, sizeof(*stp));
		if (!st || !stp)
			goto out;
	}
	for (struct aguest *g = m->guests; g; g = g->next, i++) {
		skyroot__guest_state__init(&st[i]);
		st[i].id = g->id;
		st[i].state = wire_state(g->state);
		st[i].error = g->error;
		stp[i] = &st[i];
	}
	rep.n_guests = n;
	rep.guests = stp;
	rep.complete = complete;
	env.body_case = SKYROOT__ENVELOPE__BODY_GUEST_REPORT;
	env.guest_report = &rep;
	m->ops.send(m->ctx, &env);
out:
	free(st);
	free(stp);
}

static void set_state(struct aguest *g, enum ag_state s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_state(struct aguest *g, enum ag_state s, const char *fmt, ...)
{
	char why[512] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	if (g->state == s && strcmp(why, g->error) == 0)
		return;
	g->state = s;
	snprintf(g->error, sizeof(g->error), "%s", why);
	if (s == AG_FAILED)
		log_error("guest %s: failed: %s", g->id, why);
	else
		log_info("guest %s: %s%s%s", g->id, state_words[s], why[0] ? ": " : "", why);
	report(g->m, false);
}

static struct aguest *find(struct guestmgr *m, const char *id)
{
	for (struct aguest *g = m->guests; g; g = g->next)
		if (strcmp(g->id, id) == 0)
			return g;
	return NULL;
}

static void hold_images(struct aguest *g, bool hold)
{
	const char *ids[3];
	if (g->held == hold || !g->spec || !g->m->cache)
		return;
	ids[0] = g->spec->kernel_image;
	ids[1] = g->spec->initrd_image;
	ids[2] = g->spec->disk_image;
	for (int i = 0; i < 3; i++)
		if (ids[i] && ids[i][0])
			imgcache_hold(g->m->cache, ids[i], hold);
	g->held = hold;
}

/* After guestmgr_free(): the manager goes once nothing points at it. */
static void mgr_release(struct guestmgr *m)
{
	if (m->freeing && m->pending_handles == 0 && !m->guests)
		free(m);
}

/* ---- console ---- */

static void poll_closed(uv_handle_t *h)
{
	struct guestmgr *m = h->data;
	free(h);
	m->pending_handles--;
	mgr_release(m);
}

static void console_stop(struct aguest *g)
{
	if (!g->poll)
		return;
	uv_poll_stop(g->poll);
	g->poll->data = g->m;
	uv_close((uv_handle_t *)g->poll, poll_closed);
	g->poll = NULL;
}

static void guest_ended(struct aguest *g);

static void console_cb(uv_poll_t *p, int status, int events)
{
	struct aguest *g = p->data;
	uint8_t buf[CONSOLE_CHUNK];
	ssize_t n;
	(void)events;
	if (status < 0) {
		console_stop(g);
		return;
	}
	n = recv(vmm_console_fd(g->vm), buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0) {
		Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
		Skyroot__ConsoleData cd = SKYROOT__CONSOLE_DATA__INIT;
		cd.guest_id = g->id;
		cd.data.data = buf;
		cd.data.len = (size_t)n;
		env.body_case = SKYROOT__ENVELOPE__BODY_CONSOLE_DATA;
		env.console_data = &cd;
		/* Offline: the output is dropped, the guest never stalls. */
		g->m->ops.send(g->m->ctx, &env);
		if (sky_log_get_level() >= SKY_LOG_DEBUG)
			log_debug("guest %s console: %.*s", g->id, (int)n, (const char *)buf);
		return;
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		console_stop(g);
		if (g->state == AG_RUNNING)
			guest_ended(g);
	}
}

static void console_start(struct aguest *g)
{
	int fd = vmm_console_fd(g->vm);
	if (fd < 0)
		return;
	g->poll = malloc(sizeof(*g->poll));
	if (!g->poll)
		return;
	if (uv_poll_init(g->m->loop, g->poll, fd) < 0) {
		free(g->poll);
		g->poll = NULL;
		return;
	}
	g->m->pending_handles++;
	g->poll->data = g;
	uv_poll_start(g->poll, UV_READABLE | UV_DISCONNECT, console_cb);
}

/* ---- lifecycle ---- */

static void try_advance(struct aguest *g);

static void close_fds(struct aguest *g)
{
	for (int i = 0; i < 3; i++)
		if (g->fds[i] >= 0) {
			close(g->fds[i]);
			g->fds[i] = -1;
		}
}

/* The guest's taps go (its VMM, which held them, is gone). */
static void remove_taps(struct aguest *g)
{
	for (unsigned i = 0; i < g->ntaps; i++) {
		int r = nics_tap_remove(g->taps[i]);
		if (r < 0)
			log_warn("guest %s: cannot remove tap %s: %s", g->id, g->taps[i], strerror(-r));
	}
	g->ntaps = 0;
}

/* Make a tap on the bridge for each of the guest's NICs (worker thread):
 * 0 with their descriptors in fds and nics, or -errno with work_err. */
static int open_taps(struct aguest *g, struct vmm_nic *nics, int *fds)
{
	const char *bridge = g->m->cfg.bridge ? g->m->cfg.bridge : "br0";
	size_t n = g->spec->n_nics;
	int r = 0;

	if (n > VMM_NICS_MAX) {
		snprintf(g->work_err.msg, sizeof(g->work_err.msg), "%zu NICs: at most %u", n, VMM_NICS_MAX);
		return -E2BIG;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		const Skyroot__GuestNic *nic = g->spec->nics[i];
		if (nic->vlan > SKY_VLAN_MAX) {
			snprintf(g->work_err.msg, sizeof(g->work_err.msg), "NIC %zu: VLAN %u is out of range", i, nic->vlan);
			r = -EINVAL;
			break;
		}
		nics_tap_name(g->id, (unsigned)i, g->taps[i]);
		nics_tap_remove(g->taps[i]); /* a stale one of an agent that died */
		r = nics_tap_open(g->m->cfg.devfs_root, bridge, g->taps[i], (uint16_t)nic->vlan, &fds[i],
				  g->work_err.msg, sizeof(g->work_err.msg));
		if (r == 0) {
			g->ntaps = (unsigned)i + 1;
			nics[i].tap_fd = fds[i];
			nics[i].mac = nic->mac;
			log_info("guest %s: NIC %zu (%s, network '%s', VLAN %u) on tap %s of bridge %s", g->id, i,
				 nic->mac, nic->network ? nic->network : "", nic->vlan, g->taps[i], bridge);
		}
	}
	return r;
}

/* Frees the guest, never the manager (see mgr_release). */
static void free_guest(struct aguest *g)
{
	struct guestmgr *m = g->m;
	for (struct aguest **pp = &m->guests; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	hold_images(g, false);
	console_stop(g);
	vmm_guest_destroy(g->vm);
	remove_taps(g);
	close_fds(g);
	if (g->spec)
		skyroot__guest_spec__free_unpacked(g->spec, NULL);
	free(g);
}

/* A worker is done with a guest the agent let go of meanwhile: the guest
 * (its QEMU killed) goes now, and the manager if that was the last hold. */
static bool worker_done_orphaned(struct aguest *g)
{
	struct guestmgr *m = g->m;
	if (!m->freeing)
		return false;
	free_guest(g);
	mgr_release(m);
	return true;
}

static void guest_ended(struct aguest *g)
{
	struct vmm_status st = {0};
	vmm_guest_state(g->vm, &st);
	console_stop(g);
	/* Give the devices back now: the guest is gone. */
	vmm_guest_destroy(g->vm);
	g->vm = NULL;
	remove_taps(g);
	if (st.state == VMM_STATE_CRASHED)
		set_state(g, AG_FAILED, "the guest ended: %s", st.reason[0] ? st.reason : "crashed");
	else
		set_state(g, AG_STOPPED, "%s", st.reason[0] ? st.reason : "");
	if (g->destroy)
		free_guest(g);
}

static void start_work(uv_work_t *w)
{
	struct aguest *g = w->data;
	struct guestmgr *m = g->m;
	const char *pci[16];
	struct vmm_nic nics[VMM_NICS_MAX];
	int tapfds[VMM_NICS_MAX];
	struct vmm_guest_spec spec = {0};
	const char *backend = g->spec->backend && g->spec->backend[0] ? g->spec->backend : m->default_backend;
	const struct vmm_ops *be = vmm_backend_find(backend);
	struct vmm_guest *vm = NULL;
	int r;

	if (!be) {
		g->work_result = -EPROTONOSUPPORT;
		snprintf(g->work_err.msg, sizeof(g->work_err.msg),
			 "this firmware has no '%s' VMM backend", backend);
		return;
	}
	for (size_t i = 0; i < g->spec->n_devices && i < 16; i++)
		pci[i] = g->spec->devices[i];
	spec.name = g->spec->name && g->spec->name[0] ? g->spec->name : g->id;
	spec.vcpus = g->spec->vcpus;
	spec.memory = g->spec->memory_bytes;
	spec.kernel_fd = g->fds[0];
	spec.initrd_fd = g->fds[1];
	spec.disk_fd = g->fds[2];
	spec.disk_format = g->disk_qcow2 ? VMM_DISK_QCOW2 : VMM_DISK_RAW;
	spec.disk_readonly = true; /* a sealed memfd */
	spec.cmdline = g->spec->cmdline;
	spec.pci = pci;
	spec.npci = g->spec->n_devices < 16 ? g->spec->n_devices : 16;
	spec.accel = VMM_ACCEL_AUTO;
	g->ntaps = 0;
	r = open_taps(g, nics, tapfds);
	if (r < 0) {
		for (unsigned i = 0; i < g->ntaps; i++)
			close(tapfds[i]);
		g->work_result = r;
		return; /* start_done removes the taps made */
	}
	spec.nics = nics;
	spec.nnics = g->ntaps;
	r = vmm_guest_create(be, &m->vcfg, &spec, &vm, &g->work_err);
	for (unsigned i = 0; i < g->ntaps; i++)
		close(tapfds[i]); /* the VMM holds its own */
	if (r == 0) {
		r = vmm_guest_start(vm, &g->work_err);
		if (r < 0) {
			vmm_guest_destroy(vm);
			vm = NULL;
		}
	}
	g->work_result = r;
	g->vm = vm;
}

static void start_done(uv_work_t *w, int status)
{
	struct aguest *g = w->data;
	g->busy = false;
	close_fds(g); /* the VMM holds its own */
	if (worker_done_orphaned(g))
		return;
	if (status < 0 && g->work_result == 0)
		g->work_result = status;
	if (g->work_result < 0) {
		remove_taps(g);
		set_state(g, AG_FAILED, "%s", g->work_err.msg[0] ? g->work_err.msg : strerror(-g->work_result));
		if (g->destroy)
			free_guest(g);
		return;
	}
	if (vmm_guest_warning(g->vm)[0])
		log_warn("guest %s: %s", g->id, vmm_guest_warning(g->vm));
	console_start(g);
	set_state(g, AG_RUNNING, NULL);
	try_advance(g); /* it may have been told to stop meanwhile */
}

static void stop_work(uv_work_t *w)
{
	struct aguest *g = w->data;
	g->work_result = vmm_guest_stop(g->vm, STOP_TIMEOUT_MS, &g->work_err);
}

static void stop_done(uv_work_t *w, int status)
{
	struct aguest *g = w->data;
	(void)status;
	g->busy = false;
	if (worker_done_orphaned(g))
		return;
	console_stop(g);
	vmm_guest_destroy(g->vm);
	g->vm = NULL;
	remove_taps(g);
	set_state(g, AG_STOPPED, "%s", g->work_result == -ETIMEDOUT ? "killed after the stop timeout" : "");
	if (g->destroy) {
		free_guest(g);
		return;
	}
	try_advance(g);
}

/* Move the guest one step toward what it should be. */
static void try_advance(struct aguest *g)
{
	struct guestmgr *m = g->m;
	if (g->busy)
		return;
	if (!g->want_running || g->destroy) {
		if (g->vm && (g->state == AG_RUNNING || g->state == AG_STARTING)) {
			set_state(g, AG_STOPPING, NULL);
			g->busy = true;
			g->work.data = g;
			if (uv_queue_work(m->loop, &g->work, stop_work, stop_done) < 0)
				g->busy = false;
			return;
		}
		if (g->destroy) {
			free_guest(g);
			return;
		}
		if (g->state != AG_STOPPED && g->state != AG_FAILED)
			set_state(g, AG_STOPPED, NULL);
		hold_images(g, false);
		return;
	}
	if (g->state == AG_RUNNING || g->state == AG_STARTING || g->state == AG_STOPPING)
		return;
	/* Images first. */
	const char *ids[3] = {g->spec->kernel_image, g->spec->initrd_image, g->spec->disk_image};
	const char *what[3] = {"kernel", "initrd", "disk"};
	int cached[3] = {-1, -1, -1}; /* borrowed from the cache */
	bool waiting = false;
	hold_images(g, true);
	for (int i = 0; i < 3; i++) {
		if (!ids[i] || !ids[i][0])
			continue;
		int fd = imgcache_fd(m->cache, ids[i], NULL);
		if (fd == -EAGAIN) {
			waiting = true;
		} else if (fd < 0) {
			if (g->state != AG_FAILED)
				set_state(g, AG_FAILED, "the %s image %s could not be loaded into RAM: %s", what[i], ids[i],
					  imgcache_error(m->cache, ids[i]));
			return;
		} else {
			cached[i] = fd;
		}
	}
	if (waiting) {
		if (g->state != AG_FETCHING)
			set_state(g, AG_FETCHING, NULL);
		return;
	}
	/* The worker's own descriptors: the cache may close its own meanwhile. */
	for (int i = 0; i < 3; i++)
		if (cached[i] >= 0 && (g->fds[i] = fcntl(cached[i], F_DUPFD_CLOEXEC, 0)) < 0) {
			int e = errno;
			close_fds(g);
			set_state(g, AG_FAILED, "cannot keep the %s image open: %s", what[i], strerror(e));
			return;
		}
	g->disk_qcow2 = ids[2] && ids[2][0] && strcmp(imgcache_format(m->cache, ids[2]), "qcow2") == 0;
	set_state(g, AG_STARTING, NULL);
	g->busy = true;
	g->work.data = g;
	memset(&g->work_err, 0, sizeof(g->work_err));
	if (uv_queue_work(m->loop, &g->work, start_work, start_done) < 0) {
		g->busy = false;
		close_fds(g);
		set_state(g, AG_FAILED, "cannot start a worker");
	}
}

static Skyroot__GuestSpec *spec_copy(const Skyroot__GuestSpec *s)
{
	size_t n = skyroot__guest_spec__get_packed_size(s);
	uint8_t *buf = malloc(n ? n : 1);
	Skyroot__GuestSpec *c;
	if (!buf)
		return NULL;
	skyroot__guest_spec__pack(s, buf);
	c = skyroot__guest_spec__unpack(NULL, n, buf);
	free(buf);
	return c;
}

void guestmgr_on_command(struct guestmgr *m, const Skyroot__GuestCommand *cmd)
{
	const Skyroot__GuestSpec *spec = cmd->spec;
	struct aguest *g;

	if (!spec || !spec->id || !spec->id[0] || strlen(spec->id) >= ID_MAX) {
		log_error("guest command without a usable guest id; ignored");
		return;
	}
	g = find(m, spec->id);
	if (cmd->action == SKYROOT__GUEST_ACTION__GUEST_DESTROY) {
		/* Already going: its report of the stop in progress draws a
		 * repeat of this command, which must not draw another report. */
		if (!g || g->destroy)
			return;
		g->destroy = true;
		g->want_running = false;
		log_info("guest %s: deleted by the controller", g->id);
		try_advance(g);
		report(m, false);
		return;
	}
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return;
		g->m = m;
		g->fds[0] = g->fds[1] = g->fds[2] = -1;
		snprintf(g->id, sizeof(g->id), "%s", spec->id);
		g->state = AG_PENDING;
		g->next = m->guests;
		m->guests = g;
	}
	if (!g->busy && !g->vm) {
		/* Take the (new) spec while nothing runs from the old one. */
		Skyroot__GuestSpec *copy = spec_copy(spec);
		if (copy) {
			hold_images(g, false);
			if (g->spec)
				skyroot__guest_spec__free_unpacked(g->spec, NULL);
			g->spec = copy;
		}
	}
	if (!g->spec) {
		set_state(g, AG_FAILED, "out of memory");
		return;
	}
	g->want_running = cmd->action == SKYROOT__GUEST_ACTION__GUEST_ENSURE_RUNNING;
	if (g->want_running) {
		if (g->state == AG_FAILED || g->state == AG_STOPPED)
			g->state = AG_PENDING;
		/* Fetch what is not in RAM yet (idempotent for what is). */
		for (size_t i = 0; i < spec->n_manifests; i++) {
			Skyroot__ImageFetch f = SKYROOT__IMAGE_FETCH__INIT;
			f.manifest = spec->manifests[i];
			imgcache_on_fetch(m->cache, &f);
		}
	}
	try_advance(g);
}

void guestmgr_session_up(struct guestmgr *m)
{
	report(m, true);
}

/* ---- bare metal ---- */

/* Tell the controller what became of its boot order (and log it). */
#define baremetal_answer(m, req, outcome, ...)                                                                 \
	agent_answer_order((m)->ops.send, (m)->ctx, SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT, req, outcome, \
			   __VA_ARGS__)

/* The order is over without a kexec: its images may be evicted again. */
static void baremetal_release(struct guestmgr *m)
{
	imgcache_hold(m->cache, m->bm_kernel, false);
	if (m->bm_initrd[0])
		imgcache_hold(m->cache, m->bm_initrd, false);
}

static void baremetal_try(struct guestmgr *m)
{
	int kfd, ifd = -1, r;
	if (!m->bm_active)
		return;
	kfd = imgcache_fd(m->cache, m->bm_kernel, NULL);
	if (m->bm_initrd[0])
		ifd = imgcache_fd(m->cache, m->bm_initrd, NULL);
	if (kfd == -EAGAIN || ifd == -EAGAIN)
		return;
	m->bm_active = false;
	if (kfd < 0 || (m->bm_initrd[0] && ifd < 0)) {
		baremetal_answer(m, m->bm_req, SKYROOT__BOOT_OUTCOME__BOOT_FAILED,
				 "image %s could not be loaded (%s)", kfd < 0 ? m->bm_kernel : m->bm_initrd,
				 imgcache_error(m->cache, kfd < 0 ? m->bm_kernel : m->bm_initrd));
		baremetal_release(m);
		return;
	}
	unsigned long flags = m->bm_initrd[0] ? 0 : 0x4 /* KEXEC_FILE_NO_INITRAMFS */;
	log_info("bare metal: loading kernel %s%s%s with kexec_file_load; rebooting into it", m->bm_kernel,
		 m->bm_initrd[0] ? " and initrd " : "", m->bm_initrd);
	r = (int)syscall(SYS_kexec_file_load, kfd, ifd, strlen(m->bm_cmdline) + 1, m->bm_cmdline, flags);
	if (r < 0) {
		baremetal_answer(m, m->bm_req, SKYROOT__BOOT_OUTCOME__BOOT_FAILED,
				 "kexec_file_load failed: %s (the board's kernel must allow kexec: no lockdown, "
				 "CONFIG_KEXEC_FILE; and the image must be a kernel it can load)", strerror(errno));
		baremetal_release(m);
		return;
	}
	sync();
	reboot(LINUX_REBOOT_CMD_KEXEC);
	baremetal_answer(m, m->bm_req, SKYROOT__BOOT_OUTCOME__BOOT_FAILED,
			 "reboot into the loaded kernel failed: %s", strerror(errno));
}

void guestmgr_on_baremetal(struct guestmgr *m, uint64_t req, const Skyroot__BareMetalBoot *bm)
{
	if (!bm->kernel) {
		baremetal_answer(m, req, SKYROOT__BOOT_OUTCOME__BOOT_REFUSED, "the order names no kernel");
		return;
	}
	if (!m->cfg.allow_kexec) {
		baremetal_answer(m, req, SKYROOT__BOOT_OUTCOME__BOOT_REFUSED,
				 "this agent runs without --allow-kexec (the firmware's init passes it; on any "
				 "other host it would replace the running OS)");
		return;
	}
	Skyroot__ImageManifest *km = skyroot__image_manifest__unpack(NULL, bm->kernel->manifest.len,
								      bm->kernel->manifest.data);
	Skyroot__ImageManifest *im = bm->initrd ? skyroot__image_manifest__unpack(NULL, bm->initrd->manifest.len,
										   bm->initrd->manifest.data) : NULL;
	if (!km || !km->id || strlen(km->id) >= ID_MAX || (bm->initrd && (!im || !im->id || strlen(im->id) >= ID_MAX))) {
		baremetal_answer(m, req, SKYROOT__BOOT_OUTCOME__BOOT_REFUSED, "the order's image manifest is malformed");
		goto out;
	}
	if (m->bm_active) {
		baremetal_answer(m, m->bm_req, SKYROOT__BOOT_OUTCOME__BOOT_FAILED,
				 "a newer boot order replaced this one");
		baremetal_release(m);
	}
	snprintf(m->bm_kernel, sizeof(m->bm_kernel), "%s", km->id);
	snprintf(m->bm_initrd, sizeof(m->bm_initrd), "%s", im ? im->id : "");
	snprintf(m->bm_cmdline, sizeof(m->bm_cmdline), "%s", bm->cmdline ? bm->cmdline : "");
	m->bm_active = true;
	m->bm_req = req;
	baremetal_answer(m, req, SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED, NULL);
	Skyroot__ImageFetch f = SKYROOT__IMAGE_FETCH__INIT;
	f.manifest = bm->kernel;
	imgcache_on_fetch(m->cache, &f); /* verifies the signature */
	if (bm->initrd) {
		f.manifest = bm->initrd;
		imgcache_on_fetch(m->cache, &f);
	}
	imgcache_hold(m->cache, m->bm_kernel, true);
	if (m->bm_initrd[0])
		imgcache_hold(m->cache, m->bm_initrd, true);
	log_info("bare metal: fetching kernel %s to kexec", m->bm_kernel);
	baremetal_try(m);
out:
	if (km)
		skyroot__image_manifest__free_unpacked(km, NULL);
	if (im)
		skyroot__image_manifest__free_unpacked(im, NULL);
}

void guestmgr_tick(struct guestmgr *m)
{
	for (struct aguest *g = m->guests, *next; g; g = next) {
		next = g->next;
		if (g->state == AG_FETCHING || g->state == AG_PENDING)
			try_advance(g);
	}
	baremetal_try(m);
}

int guestmgr_new(uv_loop_t *loop, const struct guestmgr_config *cfg, struct imgcache *cache,
		 const struct guestmgr_ops *ops, void *ctx, struct guestmgr **out)
{
	struct guestmgr *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->cfg = *cfg;
	m->root.sysfs = cfg->sysfs_root;
	m->root.devfs = cfg->devfs_root;
	m->vcfg.root = &m->root;
	m->vcfg.qemu_path = cfg->qemu_path;
	m->vcfg.skyvmm_path = cfg->skyvmm_path;
	/* A guest that names no backend runs under QEMU where this firmware
	 * carries it (--qemu given, or qemu-system-x86_64 in PATH: the full
	 * profile), else under skyvmm (the flash profile has no QEMU). */
	m->default_backend = cfg->qemu_path || vmm_backend_installed(vmm_backend_find("qemu"), &m->vcfg, NULL) == 0
				     ? "qemu" : "skyvmm";
	log_info("guests that name no VMM backend run under %s", m->default_backend);
	m->cache = cache;
	m->ops = *ops;
	m->ctx = ctx;
	*out = m;
	return 0;
}

void guestmgr_free(struct guestmgr *m)
{
	if (!m)
		return;
	m->freeing = true;
	m->cache = NULL; /* it goes with the agent */
	for (struct aguest *g = m->guests, *next; g; g = next) {
		next = g->next;
		g->destroy = true;
		/* Nothing of a guest may reach the agent from here on: its
		 * console goes now, even when a worker still holds it. */
		console_stop(g);
		if (g->busy)
			continue; /* its worker finishes, then it is freed */
		/* Guests die with the agent: the controller re-drives them. */
		free_guest(g);
	}
	mgr_release(m);
}

bool guestmgr_active(const struct guestmgr *m)
{
	if (m->bm_active)
		return true;
	for (const struct aguest *g = m->guests; g; g = g->next)
		if (g->state == AG_PENDING || g->state == AG_FETCHING)
			return true;
	return false;
}
