/* The qemu backend's pure parts, exported for the unit tests: finding the
 * binary and the command line of one guest. */
#ifndef SKY_VMM_QEMU_H
#define SKY_VMM_QEMU_H

#include <stddef.h>

#include "vmm/spawn.h"
#include "vmm/vmm.h"

/* Descriptor numbers as QEMU sees them (its fds 3..7, then the taps). */
#define QEMU_FD_QMP 3
#define QEMU_FD_CONSOLE 4
#define QEMU_FD_KERNEL 5
#define QEMU_FD_INITRD 6
#define QEMU_FD_DISK 7
#define QEMU_FD_NIC0 8          /* NIC i's tap: QEMU_FD_NIC0 + i */
#define QEMU_FD_FIRST_FREE (QEMU_FD_NIC0 + (int)VMM_NICS_MAX)

/* The argv of one QEMU process for spec: q35, -S (paused until "cont"),
 * QMP and the serial console on inherited sockets, kernel/initrd/disk as
 * /proc/self/fd/N of inherited descriptors, one -device vfio-pci per PCI
 * address (canonical form), one -netdev tap,fd=N + -device virtio-net-pci
 * with its MAC per NIC, pvpanic with panic=shutdown, -no-reboot.
 * 0 or -errno with a message; out untouched on failure. */
int qemu_build_argv(const char *qemu, const struct vmm_guest_spec *spec, int kvm,
		    struct vmm_argv *out, struct vmm_error *err);

/* Resolve name ("qemu-system-x86_64" in PATH, or a path) to an executable
 * file: 0 and out, or -ENOENT with a message saying what to install. */
int qemu_find_binary(const char *name, char *out, size_t outlen, struct vmm_error *err);

#endif
