/* libskyvmm: run guests under a VMM backend.
 *
 * One interface, several backends, each an ops table (struct vmm_ops)
 * chosen by name with vmm_backend_find("qemu"), vmm_backend_find("libvirt")
 * or vmm_backend_find("skyvmm") (Skyroot's own KVM microVM, vmm/skyvmm/).
 * The caller never tests which backend it holds.
 *
 * Life of a guest:
 *
 *     const struct vmm_ops *be = vmm_backend_find("qemu");
 *     struct vmm_guest *g;
 *     vmm_guest_create(be, &cfg, &spec, &g, &err);   // exists, paused
 *     uv_poll_init(loop, &p, vmm_console_fd(g));     // serial console
 *     vmm_guest_start(g, &err);                      // runs
 *     ...
 *     vmm_guest_stop(g, 30000, &err);                // ACPI power button,
 *                                                    // killed after 30 s
 *     vmm_guest_state(g, &st);                       // exited/crashed + why
 *     vmm_guest_destroy(g);                          // devices go back
 *
 * Images are memfds (the agent keeps them sealed in RAM); the library dups
 * the descriptors it is given, so the caller may close its own after create.
 * Each guest is one VMM process (QEMU or skyvmm); a crashing guest or VMM never takes
 * the caller down: it shows up in vmm_guest_state() as "crashed" with the
 * reason.  The library does not log: errors come back as a negative errno
 * plus a message in struct vmm_error, warnings through vmm_guest_warning().
 *
 * Blocking: create, start, stop and state talk to QEMU or libvirtd and wait
 * for the answer (QMP waits are bounded by vmm_config.timeout_ms, stop by
 * its timeout; libvirt calls last as long as libvirtd takes).
 * From a libuv loop, call stop from uv_queue_work or with timeout_ms = 0
 * (request only) and poll the state later.  The library never installs
 * signal handlers and reaps only its own QEMU processes (waitpid on their
 * pid); do not set SIGCHLD to SIG_IGN (exit statuses would be lost).
 * A guest handle is used from one thread at a time.
 */
#ifndef SKY_VMM_VMM_H
#define SKY_VMM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

#define VMM_MSG_MAX 512
/* The shared limits of common/limits.h: what the API and skyctl accept,
 * the VMM accepts. */
#define VMM_NAME_MAX SKY_NAME_MAX               /* bytes of a guest name */
#define VMM_CMDLINE_MAX SKY_GUEST_CMDLINE_MAX   /* bytes of a kernel command line */
#define VMM_PCI_MAX SKY_GUEST_DEVICES_MAX       /* passthrough devices per guest */
#define VMM_NICS_MAX SKY_GUEST_NICS_MAX         /* network interfaces per guest */
#define VMM_VCPUS_MAX SKY_GUEST_VCPUS_MAX
#define VMM_MEMORY_MIN SKY_GUEST_MEMORY_MIN
#define VMM_MEMORY_MAX SKY_GUEST_MEMORY_MAX
#define VMM_REASON_MAX 256

/* Why the last call failed, for people: what went wrong and what to do. */
struct vmm_error {
	char msg[VMM_MSG_MAX];
};

/* Where the kernel's interfaces are.  NULL members mean the real ones
 * ("/sys", "/dev").  Tests point them at fixture trees; write_attr (NULL:
 * vmm_root_write_attr) is how every sysfs attribute is written, so a test
 * can also play the kernel's part (e.g. bind a driver on drivers_probe). */
struct vmm_root {
	const char *sysfs;
	const char *devfs;
	int (*write_attr)(const struct vmm_root *root, const char *path, const char *value);
	void *ctx;
};

/* Write value to the file at path (O_WRONLY | O_TRUNC, like a shell
 * redirection; one write): 0 or -errno. */
int vmm_root_write_attr(const struct vmm_root *root, const char *path, const char *value);

enum vmm_accel {
	VMM_ACCEL_AUTO = 0, /* KVM when usable, else TCG with a warning */
	VMM_ACCEL_KVM,      /* KVM or fail */
	VMM_ACCEL_TCG,      /* software emulation */
};

enum vmm_disk_format {
	VMM_DISK_RAW = 0,
	VMM_DISK_QCOW2,
};

/* A network interface: a tap the caller opened (IFF_TAP | IFF_NO_PI, with
 * IFF_VNET_HDR or not: QEMU asks the tap), given to the guest as a
 * virtio-net device with this MAC.  The library dups the descriptor. */
struct vmm_nic {
	int tap_fd;
	const char *mac;        /* "02:53:4b:0a:1b:2c": unicast */
};

/* What to run.  Nothing here is kept after vmm_guest_create returns. */
struct vmm_guest_spec {
	const char *name;       /* a name (sky_name_ok, common/parse.h):
				   1..VMM_NAME_MAX of [A-Za-z0-9._-], not
				   starting with '.' or '-' */
	unsigned vcpus;         /* 1..VMM_VCPUS_MAX */
	uint64_t memory;        /* bytes, a multiple of 1 MiB, >= 16 MiB */
	int kernel_fd;          /* Linux bzImage (memfd), required */
	int initrd_fd;          /* initramfs, or -1 */
	int disk_fd;            /* disk image (virtio-blk, /dev/vda), or -1 */
	enum vmm_disk_format disk_format;
	bool disk_readonly;     /* required for a memfd sealed against writes */
	const char *cmdline;    /* kernel command line, or NULL */
	const char *const *pci; /* npci host PCI addresses ("0000:01:00.0" or
				   "01:00.0") to pass through with VFIO */
	size_t npci;
	enum vmm_accel accel;
	const struct vmm_nic *nics; /* nnics network interfaces, in order */
	size_t nnics;
};

/* How to reach the host's VMM.  Zero/NULL members take the defaults. */
struct vmm_config {
	const char *qemu_path;    /* qemu: "qemu-system-x86_64" looked up in
				     PATH, or an absolute path */
	const char *libvirt_uri;  /* libvirt: "qemu:///system" */
	const char *skyvmm_path;  /* skyvmm: the build's libexec/skyroot/skyvmm,
				     else /usr/libexec/skyroot/skyvmm (the
				     firmware's); or this path */
	const struct vmm_root *root; /* real /sys and /dev */
	unsigned timeout_ms;      /* per QMP/libvirt exchange: 15000 */
};

enum vmm_state {
	VMM_STATE_CREATED = 0,  /* exists, no guest code has run yet */
	VMM_STATE_RUNNING,
	VMM_STATE_PAUSED,
	VMM_STATE_SHUTTING_DOWN, /* a power-off was requested, still running */
	VMM_STATE_EXITED,        /* ended: guest powered off, or stopped */
	VMM_STATE_CRASHED,       /* ended: guest panic, VMM died or failed */
};

const char *vmm_state_name(enum vmm_state s); /* "created", "running", ... */

struct vmm_status {
	enum vmm_state state;
	int exit_status;   /* the VMM process's exit status; -1 if unknown or
			      still running */
	int exit_signal;   /* the signal that ended the VMM process, or 0 */
	/* Why it ended, "" while it runs: QMP SHUTDOWN reasons
	 * ("guest-shutdown", "host-signal", "guest-reset", ...),
	 * "guest-panicked", "killed after stop timeout", "qemu killed by signal
	 * SIGSEGV", "qemu exited with status 1: <its last stderr line>",
	 * libvirt's "shutoff: crashed", "skyvmm exited with status 2: <its last
	 * stderr line>", "skyvmm killed by signal SIGKILL", ... */
	char reason[VMM_REASON_MAX];
};

/* A backend: what vmm_backend_find returns.  priv is the backend's own
 * guest object.  Filled with designated initializers, one per backend. */
struct vmm_ops {
	const char *name;
	/* Make the guest exist, paused, console connected.  warn (may stay
	 * empty) receives a warning for the caller, e.g. the TCG fallback. */
	int (*create)(const struct vmm_config *cfg, const struct vmm_guest_spec *spec,
		      void **priv, char *warn, size_t warnlen, struct vmm_error *err);
	int (*start)(void *priv, struct vmm_error *err);
	int (*stop)(void *priv, unsigned timeout_ms, struct vmm_error *err);
	void (*destroy)(void *priv);
	int (*state)(void *priv, struct vmm_status *st);
	int (*console)(void *priv);
	/* Optional: refuse what this backend cannot run, before anything is
	 * claimed (vmm_guest_create calls it after vmm_spec_check, before the
	 * PCI devices are taken from their host drivers).  NULL: all runs. */
	int (*check)(const struct vmm_guest_spec *spec, struct vmm_error *err);
	/* Optional: 0 when the program this backend runs is installed here
	 * (as cfg configures it), else -ENOENT saying what to install.  NULL:
	 * nothing to install (libvirt: its daemon answers at create). */
	int (*installed)(const struct vmm_config *cfg, struct vmm_error *err);
};

/* "qemu", "libvirt" or "skyvmm"; NULL if unknown or not built in. */
const struct vmm_ops *vmm_backend_find(const char *name);
/* Whether backend can run guests on this host as far as its program goes
 * (for a caller choosing a default backend): 0, or -ENOENT with what to
 * install, -ENOTSUP when backend is NULL (not built in). */
int vmm_backend_installed(const struct vmm_ops *backend, const struct vmm_config *cfg,
			  struct vmm_error *err);
/* The names built in, NULL-terminated. */
const char *const *vmm_backend_names(void);

struct vmm_guest;

/* Check the spec, the kernel image (a bzImage), claim the PCI devices for
 * vfio-pci (see vfio.h), and create the guest paused.  On failure nothing
 * is left behind (devices are given back) and *out is untouched. */
int vmm_guest_create(const struct vmm_ops *backend, const struct vmm_config *cfg,
		     const struct vmm_guest_spec *spec, struct vmm_guest **out,
		     struct vmm_error *err);
/* Let the guest run. */
int vmm_guest_start(struct vmm_guest *g, struct vmm_error *err);
/* Press the ACPI power button and wait up to timeout_ms for the guest to
 * power off; past that the VMM is killed and -ETIMEDOUT returned (the
 * guest is stopped either way).  timeout_ms 0: only press the button. */
int vmm_guest_stop(struct vmm_guest *g, unsigned timeout_ms, struct vmm_error *err);
/* Where the guest is: one QMP query bounded by timeout_ms (qemu; a QEMU
 * that is alive but does not answer gives -ETIMEDOUT, st untouched), or one
 * virDomainGetState (libvirt; -EIO when libvirtd is gone), or a waitpid
 * (skyvmm: after the console's EOF it waits up to 2 s for the exit status). */
int vmm_guest_state(struct vmm_guest *g, struct vmm_status *st);
/* The serial console (ttyS0): a non-blocking, close-on-exec stream socket
 * owned by the guest (do not close it).  Read guest output from it, write
 * input to it (use send(..., MSG_NOSIGNAL)).  Poll it with uv_poll; it
 * reads EOF when the guest ends.  Keep reading: an unread console stalls
 * the guest's console output (back-pressure, nothing is dropped). */
int vmm_console_fd(struct vmm_guest *g);
/* "" or a warning from create (e.g. "KVM is not usable (...): running with
 * TCG"). */
const char *vmm_guest_warning(const struct vmm_guest *g);
const char *vmm_guest_name(const struct vmm_guest *g);
/* Kill the VMM if it still runs, give the PCI devices back to their host
 * drivers, free everything.  NULL is fine. */
void vmm_guest_destroy(struct vmm_guest *g);

/* Checks used by create, exported for callers that want them early. */
int vmm_spec_check(const struct vmm_guest_spec *spec, struct vmm_error *err);
/* 0 when fd holds a Linux bzImage ("HdrS" at 0x202, boot protocol >= 2.00),
 * -ENOEXEC (with a message) when not, another -errno when unreadable. */
int vmm_check_bzimage(int fd, struct vmm_error *err);
/* 1 when root's /dev/kvm opens read-write and answers KVM_GET_API_VERSION
 * with 12 and is backed by hardware virtualization (vmm_kvm_hw_backed),
 * else 0 and why (what to do) in why. */
int vmm_kvm_usable(const struct vmm_root *root, char *why, size_t whylen);

#endif
