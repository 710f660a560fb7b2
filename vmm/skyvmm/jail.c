/* skyvmm's jail: an empty root and an unprivileged user (jail.h). */
#include "vmm/skyvmm/jail.h"

#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SV_JAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SV_JAIL_ASAN 1
#endif
#endif
#ifdef SV_JAIL_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#define JAIL_DIR "/tmp"

static int failed(char *err, size_t errlen, const char *step)
{
	int e = errno;
	snprintf(err, errlen, "the jail: %s: %s%s", step, strerror(e),
		 e == EPERM ? " (the jail needs root)" : "");
	return -e;
}

int sv_jail(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	pid_t parent = getppid();
	int pdeath = 0;

	if (uid == 0 || gid == 0) {
		snprintf(err, errlen, "the jail: uid and gid must not be 0");
		return -EINVAL;
	}
#ifdef SV_JAIL_ASAN
	/* the tests' ASan build: its leak check reads /proc and ptraces, which
	 * the empty root and the new ids take away; run it now (once: the one
	 * before the seccomp filter is then a no-op) */
	__lsan_do_leak_check();
#endif
	if (prctl(PR_GET_PDEATHSIG, &pdeath) < 0)
		return failed(err, errlen, "PR_GET_PDEATHSIG");
	if (unshare(CLONE_NEWNS) < 0)
		return failed(err, errlen, "unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return failed(err, errlen, "making the mounts private");
	if (mount("skyvmm-jail", JAIL_DIR, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=4k,nr_inodes=1,mode=0555") < 0)
		return failed(err, errlen, "an empty tmpfs on " JAIL_DIR);
	if (chdir(JAIL_DIR) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return failed(err, errlen, "chroot into the empty tmpfs");
	if (setgroups(0, NULL) < 0)
		return failed(err, errlen, "setgroups");
	if (setresgid(gid, gid, gid) < 0)
		return failed(err, errlen, "setresgid");
	if (setresuid(uid, uid, uid) < 0)
		return failed(err, errlen, "setresuid");
	/* all of them, on every thread (glibc's setxid broadcast) */
	if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid || getresgid(&rg, &eg, &sg) < 0 ||
	    rg != gid || eg != gid || sg != gid) {
		snprintf(err, errlen, "the jail: the ids did not change");
		return -EPERM;
	}
	/* New ids clear the parent-death signal (prctl(2)): the one the agent's
	 * spawn set, so that skyvmm does not outlive its agent, is set again;
	 * a parent that died before that is seen by getppid(). */
	if (pdeath != 0) {
		if (prctl(PR_SET_PDEATHSIG, pdeath) < 0)
			return failed(err, errlen, "PR_SET_PDEATHSIG");
		if (getppid() != parent) {
			snprintf(err, errlen, "the jail: the parent process is gone");
			return -ESRCH;
		}
	}
	return 0;
}
