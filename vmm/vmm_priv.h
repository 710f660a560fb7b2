/* Internals shared by the files of libskyvmm; not for callers. */
#ifndef SKY_VMM_PRIV_H
#define SKY_VMM_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/vmm.h"

#define VMM_DEFAULT_TIMEOUT_MS 15000u
#define VMM_DEFAULT_QEMU "qemu-system-x86_64"
#define VMM_DEFAULT_LIBVIRT_URI "qemu:///system"
/* A stop presses the guest's ACPI power button again this often until it
 * powers off or the stop's time is up: a press can go unseen while the
 * guest is still bringing up its button driver or acpid. */
#define VMM_POWERDOWN_REPEAT_MS 5000u

extern const struct vmm_ops vmm_qemu_ops;
extern const struct vmm_ops vmm_libvirt_ops;
extern const struct vmm_ops vmm_skyvmm_ops;

/* Format a message into err (when not NULL) and return r (a -errno). */
int vmm_err(struct vmm_error *err, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* snprintf that reports truncation: 0 or -ENAMETOOLONG. */
int vmm_fmt(char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const char *vmm_root_sysfs(const struct vmm_root *root);
const char *vmm_root_devfs(const struct vmm_root *root);
/* root->write_attr, or vmm_root_write_attr. */
int vmm_root_write(const struct vmm_root *root, const char *path, const char *value);

unsigned vmm_cfg_timeout(const struct vmm_config *cfg);

/* vmm_kvm_usable without the hardware check: 1 when root's /dev/kvm opens
 * read-write and speaks KVM API 12, else 0 and why. */
int vmm_kvm_opens(const struct vmm_root *root, char *why, size_t whylen);

/* 1 when the KVM behind /dev/kvm is hardware virtualization (kvm_intel,
 * kvm_amd), 0 with why filled in when it is one that cannot run a stock
 * guest kernel (kvm_pvm).  Looks only at root's sysfs. */
int vmm_kvm_hw_backed(const struct vmm_root *root, char *why, size_t whylen);

/* Decide KVM or TCG for spec->accel: 0 and *kvm set, warn filled when
 * AUTO falls back; -ENODEV (with a message) when KVM is required but not
 * usable.  usable/why come from the backend's own probe. */
int vmm_accel_pick(const struct vmm_guest_spec *spec, int usable, const char *why,
		   int *kvm, char *warn, size_t warnlen, struct vmm_error *err);

/* path is a regular file this process may execute. */
bool vmm_executable(const char *path);

/* dup(fd) onto a descriptor >= min, close-on-exec: the new fd or -errno. */
int vmm_dup_cloexec(int fd, int min);
void vmm_close(int *fd);

/* The end of the text of fd, read from its start (a memfd written by a
 * VMM as its stdout and stderr; its last 2 KiB), trailing blanks dropped,
 * NUL-terminated in out, control characters replaced by spaces: the last
 * line(s) that fit, or with last_line the last line only (from its start,
 * cut at outlen).  "" when there is none. */
void vmm_fd_tail(int fd, char *out, size_t outlen, bool last_line);

#endif
