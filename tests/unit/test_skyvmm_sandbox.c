/* skyvmm's seccomp filter (vmm/skyvmm/sandbox.c): it builds and loads;
 * under it, what the run loop needs works (threads, the KVM ioctls, send
 * on a connected socket, clone3 answered ENOSYS for glibc to fall back),
 * and what it does not need kills the whole process by SIGSYS: opening a
 * file, another ioctl, a fork, an executable mapping, a signal to another
 * process, a socket, exec.  Each case runs in a child of its own. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/skyvmm/sandbox.h"

static bool passthrough; /* the filter with VFIO passthrough's calls */

/* Run fn in a child under the filter; its wait status. */
static int under_filter(void (*fn)(void))
{
	char err[256] = "";
	pid_t pid = fork();
	int ws = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		if ((passthrough ? sv_seccomp_install_for(true, err, sizeof(err))
				 : sv_seccomp_install(err, sizeof(err))) < 0) {
			dprintf(2, "%s\n", err);
			_exit(100);
		}
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	return ws;
}

static void assert_sigsys(int ws)
{
	if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGSYS)
		fail_msg("the child was not killed by SIGSYS: %s %d", WIFSIGNALED(ws) ? "signal" : "exit",
			 WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
}

static void *thread_fn(void *arg)
{
	return arg;
}

/* Made before the filter, as skyvmm's setup makes its descriptors. */
static int sv[2] = { -1, -1 };

/* Each failed expectation exits with its own status (the parent says). */
static void allowed(void)
{
	static int marker;
	pthread_t t;
	void *ret = NULL;
	char c = 'x';

	/* a thread: clone3 is answered ENOSYS, glibc falls back to clone */
	if (pthread_create(&t, NULL, thread_fn, &marker) != 0 || pthread_join(t, &ret) != 0 || ret != &marker)
		_exit(1);
	/* the KVM ioctls of the run loop: on no descriptor, EBADF, not death */
	if (ioctl(-1, KVM_RUN, 0) != -1 || errno != EBADF)
		_exit(2);
	if (ioctl(-1, KVM_IRQ_LINE, 0) != -1 || errno != EBADF)
		_exit(3);
	if (ioctl(-1, KVM_SET_GSI_ROUTING, 0) != -1 || errno != EBADF)
		_exit(4);
	/* the console: send on the connected socket, read, write, poll */
	if (send(sv[0], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
		_exit(5);
	if (read(sv[1], &c, 1) != 1 || write(sv[1], &c, 1) != 1)
		_exit(6);
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		_exit(7);
	/* memory that is not executable */
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || munmap(m, 4096) != 0)
		_exit(8);
}

static void do_openat(void)
{
	int fd = openat(AT_FDCWD, "/", O_RDONLY | O_CLOEXEC);
	(void)fd;
}

static void do_other_ioctl(void)
{
	struct termios t;
	int r = ioctl(-1, TCGETS, &t); /* not a KVM request: killed, whatever the fd */
	(void)r;
}

static void do_fork(void)
{
	/* a clone without CLONE_THREAD */
	pid_t p = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, 0UL, 0UL, 0UL);
	if (p == 0)
		_exit(0);
}

static void do_exec_mapping(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	(void)m;
}

static void do_kill_other(void)
{
	/* a signal 0 to init: tgkill outside skyvmm's own process */
	long r = syscall(SYS_tgkill, 1L, 1L, 0L);
	(void)r;
}

static void do_socket(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	(void)s;
}

static void do_sendto_address(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX, .sun_path = "x" };
	char c = 0;
	ssize_t r = sendto(sv[0], &c, 1, MSG_DONTWAIT, (struct sockaddr *)&a, sizeof(a));
	(void)r;
}

static void do_execve(void)
{
	char *argv[] = { "/bin/true", NULL };
	execve(argv[0], argv, NULL);
}

static void do_sigaction_other(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGTERM, &sa, NULL);
}

/* VFIO passthrough's calls at run time */
static void do_pwrite(void)
{
	char c = 0;
	ssize_t r = pwrite(-1, &c, 1, 0);
	if (r != -1 || errno != EBADF)
		_exit(1);
}

static void do_memslot(void)
{
	if (ioctl(-1, KVM_SET_USER_MEMORY_REGION, 0) != -1 || errno != EBADF)
		_exit(1);
}

static void do_set_irqs(void)
{
	if (ioctl(-1, VFIO_DEVICE_SET_IRQS, 0) != -1 || errno != EBADF)
		_exit(1);
}

static void test_passthrough(void **state)
{
	static const struct {
		const char *what;
		void (*fn)(void);
	} cases[] = {
		{ "pwrite64", do_pwrite },
		{ "ioctl KVM_SET_USER_MEMORY_REGION", do_memslot },
		{ "ioctl VFIO_DEVICE_SET_IRQS", do_set_irqs },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ws;
		/* without a passed-through device: killed */
		passthrough = false;
		assert_sigsys(under_filter(cases[i].fn));
		/* with one: allowed */
		passthrough = true;
		ws = under_filter(cases[i].fn);
		passthrough = false;
		if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
			fail_msg("%s under the passthrough filter: %s %d", cases[i].what,
				 WIFSIGNALED(ws) ? "killed by signal" : "exit",
				 WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
	}
	/* and the rest of the list still holds with it */
	passthrough = true;
	assert_sigsys(under_filter(do_openat));
	assert_sigsys(under_filter(do_other_ioctl));
	passthrough = false;
}

static void test_allowed(void **state)
{
	int ws;
	(void)state;

	assert_true(sv_seccomp_allowed_count() > 10);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ws = under_filter(allowed);
	close(sv[0]);
	close(sv[1]);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		fail_msg("allowed calls under the filter: %s %d (an exit status names the step)",
			 WIFSIGNALED(ws) ? "killed by signal" : "exit", WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
}

static void test_forbidden(void **state)
{
	static const struct {
		const char *what;
		void (*fn)(void);
	} cases[] = {
		{ "openat", do_openat },
		{ "ioctl TCGETS", do_other_ioctl },
		{ "clone without CLONE_THREAD", do_fork },
		{ "mmap PROT_EXEC", do_exec_mapping },
		{ "tgkill to another process", do_kill_other },
		{ "socket", do_socket },
		{ "sendto with an address", do_sendto_address },
		{ "execve", do_execve },
		{ "rt_sigaction SIGTERM", do_sigaction_other },
	};
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ws = under_filter(cases[i].fn);
		if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGSYS)
			fail_msg("%s under the filter: %s %d, not SIGSYS", cases[i].what,
				 WIFSIGNALED(ws) ? "killed by signal" : "exit",
				 WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
	}
	close(sv[0]);
	close(sv[1]);
}

/* skyvmm's own --seccomp-selftest path: the thread and KVM_RUN pass, the
 * openat after them kills. */
static void test_selftest(void **state)
{
	pid_t pid;
	int ws = 0;
	(void)state;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(sv_seccomp_selftest());
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_sigsys(ws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_passthrough),
		cmocka_unit_test(test_forbidden),
		cmocka_unit_test(test_selftest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
