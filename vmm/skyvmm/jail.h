/* skyvmm's jail, as Firecracker's jailer does it: once the guest is set up
 * (every descriptor open, memory mapped) and before the seccomp filter,
 * skyvmm leaves the filesystem for an empty one and becomes an
 * unprivileged user.
 *
 *   1. a mount namespace of its own (unshare CLONE_NEWNS, all mounts made
 *      private: nothing it does is seen outside);
 *   2. an empty tmpfs (read-only, no device, setuid or exec; one inode, its
 *      root) mounted over /tmp in that namespace, and chroot into it: "/"
 *      is empty, nothing of the host's files can be named;
 *   3. no supplementary groups, then setresgid and setresuid to gid and uid
 *      (real, effective and saved: there is no way back, and the
 *      capabilities go with uid 0).
 * Needs root (CAP_SYS_ADMIN for the mounts, CAP_SETUID/CAP_SETGID). */
#ifndef SKY_SKYVMM_JAIL_H
#define SKY_SKYVMM_JAIL_H

#include <stddef.h>
#include <sys/types.h>

/* 0, or -errno with err saying which step failed.  uid and gid must not
 * be 0. */
int sv_jail(uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
