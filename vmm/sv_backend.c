/* The skyvmm backend: one skyvmm process (vmm/skyvmm/, Skyroot's own KVM
 * microVM) per guest.  skyvmm has no control channel: it is given
 * everything on its command line and inherited descriptors (kernel, initrd
 * and disk memfds, the console socket, the taps of its NICs), SIGTERM presses the guest's ACPI
 * power button, and its exit status says how the guest ended.
 *
 * "Created, paused" is the process not yet spawned: create checks the spec,
 * finds the binary, dups the descriptors and makes the console socket pair
 * (so the console fd exists from create on); start forks and execs skyvmm.
 * Nothing of the guest touches the file system. */
#include "vmm/sv_backend.h"

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
#include "vmm/vmm_priv.h"

#ifndef SKY_SKYVMM_PATH
#define SKY_SKYVMM_PATH SV_FIRMWARE_PATH
#endif

/* Our copies of the child's descriptors live at or above this, clear of
 * its numbers (SV_FD_*), so that vmm_spawn need not copy them again. */
#define SV_PARENT_FD_MIN 16
/* The child's descriptors, in SV_FD_* order: console peer, kernel, initrd,
 * disk, then the NICs' taps. */
#define SV_NSRC (4 + (int)VMM_NICS_MAX)

_Static_assert(SV_FD_CONSOLE == VMM_SPAWN_FD0 && SV_FD_KERNEL == VMM_SPAWN_FD0 + 1 &&
		       SV_FD_INITRD == VMM_SPAWN_FD0 + 2 && SV_FD_DISK == VMM_SPAWN_FD0 + 3 &&
		       SV_FD_NIC0 == VMM_SPAWN_FD0 + 4 && SV_FD_FIRST_FREE == VMM_SPAWN_FD0 + SV_NSRC &&
		       SV_FD_FIRST_FREE <= SV_PARENT_FD_MIN,
	       "src[] is handed to vmm_spawn in SV_FD_* order");
#define SV_KILL_WAIT_MS 5000u
/* After its console closed, a skyvmm gets this long to be reaped. */
#define SV_EXIT_WAIT_MS 2000u
#define SV_MEMORY_MIN (32ull << 20)

struct sv_guest {
	char name[VMM_NAME_MAX + 1];
	char bin[PATH_MAX];
	struct vmm_argv argv;
	int src[SV_NSRC];       /* console peer, kernel, initrd, disk, taps:
				   the child's, held until start */
	int console_fd;         /* ours */
	int stderr_fd;          /* memfd holding skyvmm's stdout and stderr */
	struct vmm_proc proc;   /* pid -1 until start */
	bool stopped_unstarted; /* stopped before it was ever started */
	bool stop_requested;
	char kill_reason[64];   /* set when we killed it */
};

/* ---- pure parts ---- */

int sv_spec_check(const struct vmm_guest_spec *spec, struct vmm_error *err)
{
	if (spec->accel == VMM_ACCEL_TCG)
		return vmm_err(err, -ENOTSUP,
			       "guest %s: the skyvmm backend runs guests on KVM only: use the qemu "
			       "backend for TCG software emulation", spec->name);
	if (spec->memory < SV_MEMORY_MIN)
		return vmm_err(err, -EINVAL, "guest %s: the skyvmm backend needs at least 32M of memory",
			       spec->name);
	if (spec->disk_fd >= 0 && spec->disk_format != VMM_DISK_RAW)
		return vmm_err(err, -ENOTSUP,
			       "guest %s: the skyvmm backend serves raw disk images only: convert it "
			       "(qemu-img convert -O raw) or use the qemu backend", spec->name);
	if (spec->npci > SV_VFIO_MAX)
		return vmm_err(err, -E2BIG, "guest %s: %zu PCI devices: the skyvmm backend passes at most %u through",
			       spec->name, spec->npci, SV_VFIO_MAX);
	if (spec->nnics > VMM_NICS_MAX)
		return vmm_err(err, -E2BIG, "guest %s: %zu NICs: the skyvmm backend takes at most %u",
			       spec->name, spec->nnics, VMM_NICS_MAX);
	return 0;
}

int sv_build_argv(const char *bin, const struct vmm_guest_spec *spec, struct vmm_argv *out,
		  struct vmm_error *err)
{
	struct vmm_argv a = { 0 };
	int r = 0;

#define ADD(...)                                          \
	do {                                              \
		if ((r = vmm_argv_add(&a, err, __VA_ARGS__)) < 0) \
			goto fail;                        \
	} while (0)

	ADD("%s", bin);
	ADD("--kernel-fd");
	ADD("%d", SV_FD_KERNEL);
	if (spec->initrd_fd >= 0) {
		ADD("--initrd-fd");
		ADD("%d", SV_FD_INITRD);
	}
	/* NULL: skyvmm's own default ("console=ttyS0 panic=-1") */
	if (spec->cmdline) {
		ADD("--cmdline");
		ADD("%s", spec->cmdline);
	}
	ADD("--memory");
	ADD("%lluM", (unsigned long long)(spec->memory >> 20));
	ADD("--cpus");
	ADD("%u", spec->vcpus);
	ADD("--console-fd");
	ADD("%d", SV_FD_CONSOLE);
	if (spec->disk_fd >= 0) {
		ADD("--disk-fd");
		ADD("%d", SV_FD_DISK);
		if (spec->disk_readonly)
			ADD("--disk-ro");
	}
	/* each NIC a virtio-net device on its tap (skyvmm's --tap-fd), in order */
	for (size_t i = 0; i < spec->nnics; i++) {
		uint8_t mac[6];
		char canon[SKY_MAC_LEN];

		if (i >= VMM_NICS_MAX || !spec->nics || !spec->nics[i].mac ||
		    sky_parse_mac(spec->nics[i].mac, mac) < 0) {
			r = vmm_err(err, -EINVAL, "NIC %zu: not a MAC address (or more than %u NICs)", i,
				    VMM_NICS_MAX);
			goto fail;
		}
		sky_format_mac(mac, canon);
		ADD("--tap-fd");
		ADD("%d", SV_FD_NIC0 + (int)i);
		ADD("--mac");
		ADD("%s", canon);
	}
	/* each PCI device passed through (claimed on vfio-pci by vmm.c) */
	for (size_t i = 0; i < spec->npci; i++) {
		char bdf[SKY_PCI_ADDR_LEN];

		if (i >= SV_VFIO_MAX || !spec->pci || !spec->pci[i] ||
		    sky_parse_pci(spec->pci[i], bdf, sizeof(bdf)) < 0) {
			r = vmm_err(err, -EINVAL, "PCI device %zu: not a PCI address (or more than %u)", i,
				    SV_VFIO_MAX);
			goto fail;
		}
		ADD("--vfio");
		ADD("%s", bdf);
	}
	if (geteuid() == 0) {
		ADD("--jail-uid");
		ADD("%d", SV_JAIL_ID);
		ADD("--jail-gid");
		ADD("%d", SV_JAIL_ID);
	}
#undef ADD
	*out = a;
	return 0;

fail:
	vmm_argv_free(&a);
	return r;
}

int sv_find_binary(const char *path, char *out, size_t outlen, struct vmm_error *err)
{
	if (path && path[0]) {
		if (vmm_executable(path) && vmm_fmt(out, outlen, "%s", path) == 0)
			return 0;
		return vmm_err(err, -ENOENT,
			       "skyvmm not found: %s is not an executable file; fix the configured "
			       "skyvmm path", path);
	}
	if (vmm_executable(SKY_SKYVMM_PATH) && vmm_fmt(out, outlen, "%s", SKY_SKYVMM_PATH) == 0)
		return 0;
	if (vmm_executable(SV_FIRMWARE_PATH) && vmm_fmt(out, outlen, "%s", SV_FIRMWARE_PATH) == 0)
		return 0;
	return vmm_err(err, -ENOENT,
		       "skyvmm not found at %s nor %s: install it (ninja -C build install) or "
		       "configure the path of the skyvmm binary", SKY_SKYVMM_PATH, SV_FIRMWARE_PATH);
}

void sv_status_from_exit(int ws, const char *last_line, const char *killed_reason, struct vmm_status *st)
{
	st->exit_status = -1;
	st->exit_signal = 0;
	if (WIFSIGNALED(ws)) {
		int sig = WTERMSIG(ws);
		const char *abbrev = sigabbrev_np(sig);
		st->exit_signal = sig;
		if (killed_reason && sig == SIGKILL) {
			st->state = VMM_STATE_EXITED;
			snprintf(st->reason, sizeof(st->reason), "%s", killed_reason);
		} else {
			st->state = VMM_STATE_CRASHED;
			if (sig == SIGSYS) /* its seccomp filter's kill-process action */
				snprintf(st->reason, sizeof(st->reason),
					 "skyvmm killed by seccomp (signal %d, SIGSYS): a system call outside its "
					 "allow-list", sig);
			else
				snprintf(st->reason, sizeof(st->reason), "skyvmm killed by signal SIG%s",
					 abbrev ? abbrev : "?");
		}
		return;
	}
	st->exit_status = WEXITSTATUS(ws);
	switch (st->exit_status) {
	case SV_EXIT_SHUTDOWN:
		st->state = VMM_STATE_EXITED;
		snprintf(st->reason, sizeof(st->reason), "guest-shutdown");
		break;
	case SV_EXIT_RESET:
		st->state = VMM_STATE_EXITED;
		snprintf(st->reason, sizeof(st->reason), "guest-reset");
		break;
	default:
		st->state = VMM_STATE_CRASHED;
		snprintf(st->reason, sizeof(st->reason), "skyvmm exited with status %d%s%s", st->exit_status,
			 last_line && last_line[0] ? ": " : "", last_line ? last_line : "");
		break;
	}
}

/* ---- the process ---- */

/* Wait up to timeout_ms for skyvmm to end. */
static void wait_exit(struct sv_guest *g, unsigned timeout_ms)
{
	uint64_t deadline = sky_now_ms() + timeout_ms;

	for (;;) {
		uint64_t now;
		int left;

		vmm_proc_reap(&g->proc, false);
		if (g->proc.reaped || g->proc.pid <= 0)
			return;
		now = sky_now_ms();
		if (now >= deadline)
			return;
		left = (int)(deadline - now);
		if (g->proc.pidfd >= 0) {
			struct pollfd p = { .fd = g->proc.pidfd, .events = POLLIN };
			poll(&p, 1, left);
		} else {
			/* no pidfd: look again every 20 ms */
			struct timespec ts = { 0, (long)(left < 20 ? left : 20) * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
}

/* The peer of the console socket is gone (skyvmm closed it: it ends). */
static bool console_hung_up(struct sv_guest *g)
{
	struct pollfd p = { .fd = g->console_fd, .events = POLLRDHUP };
	if (g->console_fd < 0 || g->src[0] >= 0)
		return false; /* before start we hold the peer ourselves */
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP));
}

static void kill_and_reap(struct sv_guest *g, const char *why)
{
	vmm_proc_reap(&g->proc, false);
	if (g->proc.reaped || g->proc.pid <= 0)
		return;
	snprintf(g->kill_reason, sizeof(g->kill_reason), "%s", why);
	kill(g->proc.pid, SIGKILL);
	wait_exit(g, SV_KILL_WAIT_MS);
	if (!g->proc.reaped)
		vmm_proc_reap(&g->proc, true);
	if (!g->proc.reaped) {
		g->proc.reaped = true;
		g->proc.status_lost = true;
	}
}

static void close_child_fds(struct sv_guest *g)
{
	for (int i = 0; i < SV_NSRC; i++)
		vmm_close(&g->src[i]);
}

static void sv_destroy(void *priv)
{
	struct sv_guest *g = priv;
	if (!g)
		return;
	if (g->proc.pid > 0)
		kill_and_reap(g, "destroyed");
	close_child_fds(g);
	vmm_argv_free(&g->argv);
	vmm_close(&g->console_fd);
	vmm_close(&g->stderr_fd);
	vmm_close(&g->proc.pidfd);
	free(g);
}

static int sv_create(const struct vmm_config *cfg, const struct vmm_guest_spec *spec, void **priv,
		     char *warn, size_t warnlen, struct vmm_error *err)
{
	struct vmm_guest_spec kvm_only;
	char why[VMM_MSG_MAX / 2];
	struct sv_guest *g;
	int con_sv[2] = { -1, -1 }, kvm, r;
	const int want[3] = { spec->kernel_fd, spec->initrd_fd, spec->disk_fd };

	r = sv_spec_check(spec, err);
	if (r < 0)
		return r;
	/* KVM or nothing: AUTO must not fall back to TCG here. */
	kvm_only = *spec;
	kvm_only.accel = VMM_ACCEL_KVM;
	r = vmm_accel_pick(&kvm_only, vmm_kvm_opens(cfg->root, why, sizeof(why)), why, &kvm, warn,
			   warnlen, err);
	if (r < 0)
		return r;
	/* A KVM without VT-x/AMD-V behind it (PVM) runs skyvmm and small
	 * payloads but not a stock kernel: there is nothing to fall back to,
	 * so it is said, not refused. */
	if (!vmm_kvm_hw_backed(cfg->root, why, sizeof(why)) && warn && warnlen)
		snprintf(warn, warnlen, "guest %s: %s; a stock guest kernel will not boot on it",
			 spec->name, why);

	g = calloc(1, sizeof(*g));
	if (!g)
		return vmm_err(err, -ENOMEM, "out of memory");
	snprintf(g->name, sizeof(g->name), "%s", spec->name);
	g->proc.pid = -1;
	g->proc.pidfd = -1;
	g->console_fd = -1;
	g->stderr_fd = -1;
	for (int i = 0; i < SV_NSRC; i++)
		g->src[i] = -1;

	r = sv_find_binary(cfg->skyvmm_path, g->bin, sizeof(g->bin), err);
	if (r < 0)
		goto fail;
	r = sv_build_argv(g->bin, spec, &g->argv, err);
	if (r < 0)
		goto fail;
	g->stderr_fd = memfd_create("skyvmm-output", MFD_CLOEXEC);
	if (g->stderr_fd < 0) {
		r = vmm_err(err, -errno, "memfd_create: %s", strerror(errno));
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con_sv) < 0) {
		r = vmm_err(err, -errno, "cannot make the console socket: %s", strerror(errno));
		goto fail;
	}
	g->console_fd = con_sv[0];
	g->src[0] = vmm_dup_cloexec(con_sv[1], SV_PARENT_FD_MIN);
	vmm_close(&con_sv[1]);
	if (g->src[0] < 0) {
		r = vmm_err(err, g->src[0], "dup: %s", strerror(-g->src[0]));
		goto fail;
	}
	if (fcntl(g->console_fd, F_SETFL, fcntl(g->console_fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = vmm_err(err, -errno, "fcntl: %s", strerror(errno));
		goto fail;
	}
	/* Our own copies: the caller may close its own. */
	for (int i = 0; i < 3; i++) {
		if (want[i] < 0)
			continue;
		g->src[i + 1] = vmm_dup_cloexec(want[i], SV_PARENT_FD_MIN);
		if (g->src[i + 1] < 0) {
			r = vmm_err(err, g->src[i + 1], "dup: %s", strerror(-g->src[i + 1]));
			goto fail;
		}
	}
	for (size_t i = 0; i < spec->nnics; i++) {
		int *dst = &g->src[4 + i];
		*dst = vmm_dup_cloexec(spec->nics[i].tap_fd, SV_PARENT_FD_MIN);
		if (*dst < 0) {
			r = vmm_err(err, *dst, "dup of NIC %zu's tap: %s", i, strerror(-*dst));
			goto fail;
		}
	}
	*priv = g;
	return 0;

fail:
	sv_destroy(g);
	return r;
}

static int ended(struct sv_guest *g, struct vmm_error *err)
{
	return vmm_err(err, -ESRCH, "guest %s has ended; destroy it and create it again", g->name);
}

static int sv_start(void *priv, struct vmm_error *err)
{
	struct sv_guest *g = priv;
	int r;

	if (g->proc.pid > 0 || g->stopped_unstarted)
		return g->proc.pid > 0 && !g->proc.reaped ? 0 : ended(g, err);
	r = vmm_spawn(g->argv.argv, g->src, SV_NSRC, g->stderr_fd, &g->proc, err);
	if (r < 0)
		return r;
	/* The child has its own: the console reads EOF when skyvmm ends. */
	close_child_fds(g);
	return 0;
}

static int sv_stop(void *priv, unsigned timeout_ms, struct vmm_error *err)
{
	struct sv_guest *g = priv;
	uint64_t end;

	if (g->proc.pid <= 0) {
		/* never started: nothing runs, nothing to press */
		g->stopped_unstarted = true;
		close_child_fds(g);
		return 0;
	}
	vmm_proc_reap(&g->proc, false);
	if (g->proc.reaped)
		return 0;
	/* SIGTERM presses the guest's ACPI power button. */
	kill(g->proc.pid, SIGTERM);
	g->stop_requested = true;
	if (timeout_ms == 0)
		return 0;
	/* A press can go unseen (the guest was still bringing up its ACPI
	 * button or acpid): press again every VMM_POWERDOWN_REPEAT_MS until
	 * the guest powers off or the time is up. */
	end = sky_now_ms() + timeout_ms;
	for (uint64_t now = sky_now_ms(); now < end; now = sky_now_ms()) {
		uint64_t left = end - now;
		wait_exit(g, (unsigned)(left < VMM_POWERDOWN_REPEAT_MS ? left : VMM_POWERDOWN_REPEAT_MS));
		if (g->proc.reaped || sky_now_ms() >= end)
			break;
		kill(g->proc.pid, SIGTERM);
	}
	if (g->proc.reaped)
		return 0;
	kill_and_reap(g, "killed after stop timeout");
	return vmm_err(err, -ETIMEDOUT,
		       "guest %s did not power off within %u ms (does it handle the ACPI power "
		       "button, e.g. with acpid?): its skyvmm was killed", g->name, timeout_ms);
}

static int sv_state(void *priv, struct vmm_status *st)
{
	struct sv_guest *g = priv;
	struct vmm_status s = { .exit_status = -1 };
	char line[VMM_REASON_MAX];

	if (g->proc.pid <= 0) {
		if (g->stopped_unstarted) {
			s.state = VMM_STATE_EXITED;
			snprintf(s.reason, sizeof(s.reason), "stopped before it started");
		} else {
			s.state = VMM_STATE_CREATED;
		}
		*st = s;
		return 0;
	}
	vmm_proc_reap(&g->proc, false);
	if (!g->proc.reaped && console_hung_up(g))
		/* skyvmm's end of the console is closed: it is exiting (the
		 * caller saw EOF and asks why); the exit status follows */
		wait_exit(g, SV_EXIT_WAIT_MS);
	if (!g->proc.reaped) {
		s.state = g->stop_requested ? VMM_STATE_SHUTTING_DOWN : VMM_STATE_RUNNING;
		*st = s;
		return 0;
	}
	if (g->proc.status_lost) {
		s.state = VMM_STATE_CRASHED;
		snprintf(s.reason, sizeof(s.reason),
			 "skyvmm ended, its exit status was lost (is SIGCHLD ignored?)");
		*st = s;
		return 0;
	}
	vmm_fd_tail(g->stderr_fd, line, sizeof(line), true);
	sv_status_from_exit(g->proc.wstatus, line, g->kill_reason[0] ? g->kill_reason : NULL, &s);
	*st = s;
	return 0;
}

static int sv_installed(const struct vmm_config *cfg, struct vmm_error *err)
{
	char bin[PATH_MAX];
	return sv_find_binary(cfg->skyvmm_path, bin, sizeof(bin), err);
}

static int sv_console(void *priv)
{
	struct sv_guest *g = priv;
	return g->console_fd >= 0 ? g->console_fd : -EBADF;
}

const struct vmm_ops vmm_skyvmm_ops = {
	.name = "skyvmm",
	.create = sv_create,
	.start = sv_start,
	.stop = sv_stop,
	.destroy = sv_destroy,
	.state = sv_state,
	.console = sv_console,
	.check = sv_spec_check,
	.installed = sv_installed,
};
