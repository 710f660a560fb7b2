/* Running one VMM process (a QEMU, a skyvmm): its command line, the fork
 * and exec with descriptors at fixed numbers, and reaping it.  Shared by
 * the qemu and skyvmm backends; exported for the unit tests. */
#ifndef SKY_VMM_SPAWN_H
#define SKY_VMM_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vmm/vmm.h"

#define VMM_ARGV_MAX 128
/* The child's descriptors: fds[i] becomes its VMM_SPAWN_FD0 + i. */
#define VMM_SPAWN_FD0 3

struct vmm_argv {
	size_t argc;
	char *argv[VMM_ARGV_MAX + 1]; /* NULL-terminated, each malloc'd */
};

/* Append one argument, formatted: 0, or -E2BIG / -ENOMEM with a message. */
int vmm_argv_add(struct vmm_argv *a, struct vmm_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Frees the arguments; a may be NULL, freed twice is fine. */
void vmm_argv_free(struct vmm_argv *a);

/* One child process and how it ended. */
struct vmm_proc {
	pid_t pid;              /* -1: none */
	int pidfd;              /* -1 when pidfd_open is unavailable */
	bool reaped;
	bool status_lost;       /* someone else reaped it (SIGCHLD ignored?) */
	int wstatus;            /* when reaped and not status_lost */
};

/* Fork and exec argv[0] with argv: fds[i] (when >= 0) as the child's
 * descriptor VMM_SPAWN_FD0 + i (nfds of them), stdin /dev/null, stdout and
 * stderr out_fd, every other descriptor closed at exec; default signal
 * dispositions, an empty signal mask, a session of its own, and SIGKILL
 * when the calling thread ends.  The caller's descriptors are untouched.
 * 0 with p filled (not reaped), or -errno with a message; when the exec
 * failed the child is reaped and p->pid is -1. */
int vmm_spawn(char *const argv[], const int *fds, int nfds, int out_fd, struct vmm_proc *p,
	      struct vmm_error *err);

/* waitpid for p (blocking or not): true once p has ended and is reaped
 * (status_lost when someone else reaped it). */
bool vmm_proc_reap(struct vmm_proc *p, bool block);

#endif
