/* Running one VMM process: see vmm/spawn.h. */
#include "vmm/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/vmm_priv.h"

/* The most descriptors a child gets at fixed numbers. */
#define SPAWN_FDS_MAX 64

int vmm_argv_add(struct vmm_argv *a, struct vmm_error *err, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (a->argc >= VMM_ARGV_MAX)
		return vmm_err(err, -E2BIG, "%s command line longer than %d arguments",
			       a->argc ? a->argv[0] : "the", VMM_ARGV_MAX);
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return vmm_err(err, -ENOMEM, "out of memory");
	a->argv[a->argc++] = s;
	a->argv[a->argc] = NULL;
	return 0;
}

void vmm_argv_free(struct vmm_argv *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->argc; i++)
		free(a->argv[i]);
	a->argc = 0;
	a->argv[0] = NULL;
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		return fd;
	}
#else
	(void)pid;
#endif
	return -1;
}

/* In the child: only async-signal-safe calls.  Every descriptor it is
 * given is at or above first_free, so no dup2 clobbers another. */
static void __attribute__((noreturn))
child(char *const argv[], const int *src, int nfds, int devnull, int out_fd, int errpipe,
      pid_t parent)
{
	const int first_free = VMM_SPAWN_FD0 + nfds;
	struct sigaction sa;
	sigset_t none;
	int e;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	/* A VMM must not outlive the agent that owns its guest. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if (dup2(devnull, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		goto fail;
	/* An empty slot is closed: the caller's descriptor of that number
	 * (not close-on-exec) must not pass for the one it stands for. */
	for (int i = 0; i < nfds; i++) {
		if (src[i] < 0)
			close(VMM_SPAWN_FD0 + i);
		else if (dup2(src[i], VMM_SPAWN_FD0 + i) < 0)
			goto fail;
	}
	/* Everything else closes at exec (the error pipe included). */
	if (syscall(SYS_close_range, first_free, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0) {
		/* kernels before 5.11 */
		for (int fd = first_free; fd < 65536; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	execv(argv[0], argv);
fail:
	e = errno;
	if (write(errpipe, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* *fd copied (close-on-exec) to at least min unless it is there already,
 * the old one closed when it is ours (own): 1 when *fd is a new copy, 0
 * when unchanged, -errno. */
static int above(int *fd, int min, bool own)
{
	int r;
	if (*fd < 0 || *fd >= min)
		return 0;
	r = vmm_dup_cloexec(*fd, min);
	if (r < 0)
		return r;
	if (own)
		close(*fd);
	*fd = r;
	return 1;
}

int vmm_spawn(char *const argv[], const int *fds, int nfds, int out_fd, struct vmm_proc *p,
	      struct vmm_error *err)
{
	const int min = VMM_SPAWN_FD0 + nfds;
	int src[SPAWN_FDS_MAX];
	bool own[SPAWN_FDS_MAX] = { false };
	int errpipe[2] = { -1, -1 }, devnull = -1, out = out_fd, e, r;
	bool own_out = false;
	pid_t parent = getpid(), pid;
	ssize_t n;

	*p = (struct vmm_proc){ .pid = -1, .pidfd = -1 };
	if (nfds < 0 || nfds > SPAWN_FDS_MAX)
		return vmm_err(err, -EINVAL, "%d descriptors for %s: at most %d", nfds, argv[0],
			       SPAWN_FDS_MAX);
	if (pipe2(errpipe, O_CLOEXEC) < 0)
		return vmm_err(err, -errno, "cannot start %s: pipe: %s", argv[0], strerror(errno));
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		r = vmm_err(err, -errno, "cannot start %s: /dev/null: %s", argv[0], strerror(errno));
		goto out;
	}
	/* Everything the child dup2s from sits above its target numbers. */
	r = above(&devnull, min, true);
	if (r >= 0)
		r = above(&errpipe[1], min, true);
	if (r >= 0) {
		r = above(&out, min, false);
		own_out = r > 0;
	}
	for (int i = 0; i < nfds && r >= 0; i++) {
		src[i] = fds[i];
		r = above(&src[i], min, false);
		own[i] = r > 0;
	}
	if (r < 0) {
		r = vmm_err(err, r, "cannot start %s: dup: %s", argv[0], strerror(-r));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = vmm_err(err, -errno, "cannot start %s: fork: %s", argv[0], strerror(errno));
		goto out;
	}
	if (pid == 0)
		child(argv, src, nfds, devnull, out, errpipe[1], parent);
	p->pid = pid;
	p->pidfd = pidfd_open_compat(pid);
	vmm_close(&errpipe[1]);
	do
		n = read(errpipe[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	r = 0;
	if (n == (ssize_t)sizeof(e)) {
		vmm_proc_reap(p, true);
		vmm_close(&p->pidfd);
		*p = (struct vmm_proc){ .pid = -1, .pidfd = -1 };
		r = vmm_err(err, -e, "cannot run %s: %s", argv[0], strerror(e));
	}
out:
	for (int i = 0; i < nfds; i++)
		if (own[i])
			close(src[i]);
	if (own_out)
		close(out);
	vmm_close(&errpipe[0]);
	vmm_close(&errpipe[1]);
	vmm_close(&devnull);
	return r;
}

bool vmm_proc_reap(struct vmm_proc *p, bool block)
{
	int ws;
	pid_t r;

	if (p->reaped || p->pid <= 0)
		return p->reaped;
	do
		r = waitpid(p->pid, &ws, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == p->pid) {
		p->reaped = true;
		p->wstatus = ws;
	} else if (r < 0 && errno == ECHILD) {
		p->reaped = true;
		p->status_lost = true;
	}
	return p->reaped;
}
