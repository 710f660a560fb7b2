/* skyvmm's seccomp sandbox (libseccomp): the allow-list of the system
 * calls its run loop makes once the guest is set up (memory mapped, fds
 * open, vCPUs created, devices ready), and KVM's ioctls by request number.
 * Anything else kills the whole process (SCMP_ACT_KILL_PROCESS): the
 * parent sees skyvmm end by SIGSYS.  See README.md, "Sandbox". */
#ifndef SKY_SKYVMM_SANDBOX_H
#define SKY_SKYVMM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/* The filter: installed on every thread of the process (TSYNC) and
 * inherited by the threads made after it (vCPUs, virtio-net's rx), with
 * no_new_privs.  0, or -errno with err saying what failed. */
int sv_seccomp_install(char *err, size_t errlen);
/* The same, and with passthrough true also what VFIO passthrough needs at
 * run time: pwrite64 (trapped BARs, the command register), the ioctls
 * KVM_SET_USER_MEMORY_REGION (a BAR the guest moves) and
 * VFIO_DEVICE_SET_IRQS (the guest turning MSI on and off). */
int sv_seccomp_install_for(bool passthrough, char *err, size_t errlen);

/* The number of system calls the allow-list names (for the tests and the
 * report: the list must not be empty, nor grow unnoticed). */
unsigned sv_seccomp_allowed_count(void);

/* --seccomp-selftest: installs the filter, checks that what the run loop
 * needs still works (a thread, an ioctl KVM_RUN), then makes a forbidden
 * call (openat), which must kill the process by SIGSYS.  Returns 1 (with
 * the reason on stderr) only when something is wrong. */
int sv_seccomp_selftest(void);

#endif
