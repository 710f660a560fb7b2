/* The skyvmm backend's pure parts, exported for the unit tests: finding
 * the binary, the command line of one guest, and what an ended skyvmm
 * process means (vmm/skyvmm/README.md, "Exit statuses"). */
#ifndef SKY_VMM_SV_BACKEND_H
#define SKY_VMM_SV_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/spawn.h"
#include "vmm/vmm.h"

/* Descriptor numbers as skyvmm sees them (its fds 3..6, and the taps of
 * the NICs from 7 on, NIC i at SV_FD_NIC0 + i). */
#define SV_FD_CONSOLE 3
#define SV_FD_KERNEL 4
#define SV_FD_INITRD 5
#define SV_FD_DISK 6
#define SV_FD_NIC0 7
#define SV_FD_FIRST_FREE (SV_FD_NIC0 + (int)VMM_NICS_MAX)

/* The firmware's place for it (fwimage/build.sh), tried after the
 * build's own libexec path (SKY_SKYVMM_PATH, from meson). */
#define SV_FIRMWARE_PATH "/usr/libexec/skyroot/skyvmm"
/* PCI devices passed through at most (skyvmm's --vfio) */
#define SV_VFIO_MAX 4
/* Run as root (the agent on a board), skyvmm jails itself once set up:
 * an empty root in a mount namespace of its own, as this unprivileged
 * user and group (nobody:nogroup), before its seccomp filter. */
#define SV_JAIL_ID 65534

/* skyvmm's exit statuses (vmm/skyvmm/README.md). */
#define SV_EXIT_SHUTDOWN 0
#define SV_EXIT_ERROR 1
#define SV_EXIT_USAGE 2
#define SV_EXIT_RESET 3
#define SV_EXIT_CRASH 4

/* What this backend cannot run (beyond vmm_spec_check, which create has
 * already passed): qcow2 disks, TCG, PCI passthrough, less than 32 MiB.
 * NICs it takes (up to VMM_NICS_MAX, skyvmm's virtio-net each).
 * The ops table's check: vmm_guest_create calls it before claiming any PCI
 * device, so a refused guest never moves a device off its host driver.
 * 0 or -errno with a message saying what to do instead. */
int sv_spec_check(const struct vmm_guest_spec *spec, struct vmm_error *err);

/* The argv of one skyvmm process for spec: descriptors at SV_FD_*,
 * --disk-ro for a read-only disk (else skyvmm's RAM overlay), and for NIC
 * i "--tap-fd SV_FD_NIC0+i --mac MAC" (the MAC in canonical form; -EINVAL
 * for one that is not a MAC). */
int sv_build_argv(const char *bin, const struct vmm_guest_spec *spec, struct vmm_argv *out,
		  struct vmm_error *err);

/* path (when set: it must be an executable file), else SKY_SKYVMM_PATH,
 * else SV_FIRMWARE_PATH: 0 and out, or -ENOENT saying what was tried. */
int sv_find_binary(const char *path, char *out, size_t outlen, struct vmm_error *err);

/* The state and reason of an ended skyvmm: wstatus as from waitpid,
 * last_line its last stderr line, killed_reason non-NULL when the backend
 * killed it itself (the stop timeout).  Fills st. */
void sv_status_from_exit(int wstatus, const char *last_line, const char *killed_reason,
			 struct vmm_status *st);

#endif
