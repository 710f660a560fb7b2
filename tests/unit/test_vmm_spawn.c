/* vmm/spawn.c, the one way both backends run their VMM process: the
 * child's descriptors at fixed numbers (even when the caller's sit on
 * each other's targets), nothing else inherited, stdout and stderr to the
 * caller's descriptor, an exec failure reported with the child reaped, and
 * the exit status through vmm_proc_reap. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/spawn.h"

static int memfd_text(const char *s)
{
	int fd = memfd_create("t", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	return fd;
}

static void read_all(int fd, char *out, size_t outlen)
{
	ssize_t n = pread(fd, out, outlen - 1, 0);
	assert_true(n >= 0);
	out[n] = '\0';
}

static void sh(struct vmm_argv *a, const char *script)
{
	*a = (struct vmm_argv){ 0 };
	assert_int_equal(vmm_argv_add(a, NULL, "/bin/sh"), 0);
	assert_int_equal(vmm_argv_add(a, NULL, "-c"), 0);
	assert_int_equal(vmm_argv_add(a, NULL, "%s", script), 0);
}

static void run(struct vmm_argv *a, const int *fds, int nfds, int out, int *wstatus)
{
	struct vmm_proc p;
	struct vmm_error err = { 0 };

	assert_int_equal(vmm_spawn(a->argv, fds, nfds, out, &p, &err), 0);
	assert_true(p.pid > 0);
	assert_true(vmm_proc_reap(&p, true));
	assert_false(p.status_lost);
	*wstatus = p.wstatus;
	if (p.pidfd >= 0)
		close(p.pidfd);
}

static void test_fds(void **state)
{
	/* the child's 3, 4, 5 hold "a", nothing, "c"; 6 and up nothing */
	static const char script[] =
		"cat <&3; [ -e /proc/self/fd/4 ] && echo four; cat <&5; "
		"for f in 6 7 8 9 10 11 12 13 14 15 16; do [ -e /proc/self/fd/$f ] && echo leak$f; done; "
		"echo err >&2; exit 7";
	struct vmm_argv a;
	char buf[256];
	int ma, mc, fa, fc, out, ws, stray;
	(void)state;

	/* the caller's descriptors on each other's targets: the one meant
	 * for 3 sits at 5, the one meant for 5 at 3 */
	ma = memfd_text("a\n");
	mc = memfd_text("c\n");
	fa = fcntl(ma, F_DUPFD, 20); /* out of the way of 3..5 */
	fc = fcntl(mc, F_DUPFD, 20);
	assert_true(fa >= 20 && fc >= 20);
	close(ma);
	close(mc);
	for (int n = 3; n <= 5; n++)
		assert_int_equal(fcntl(n, F_GETFD), -1); /* nothing of ours there */
	assert_int_equal(dup2(fa, 5), 5);
	assert_int_equal(dup2(fc, 3), 3);
	close(fa);
	close(fc);
	lseek(5, 0, SEEK_SET);
	lseek(3, 0, SEEK_SET);
	/* not close-on-exec, yet not inherited: one on the empty slot 4,
	 * one above the slots */
	stray = open("/dev/null", O_RDONLY);
	assert_int_equal(stray, 4);
	assert_int_equal(dup2(stray, 12), 12);
	out = memfd_text("");
	sh(&a, script);
	run(&a, (const int[]){ 5, -1, 3 }, 3, out, &ws);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 7);
	read_all(out, buf, sizeof(buf));
	assert_string_equal(buf, "a\nc\nerr\n");
	/* the caller's own are untouched */
	assert_true(fcntl(3, F_GETFD) >= 0 && fcntl(5, F_GETFD) >= 0);
	vmm_argv_free(&a);
	vmm_argv_free(&a); /* twice is fine */
	vmm_argv_free(NULL);
	close(3);
	close(5);
	close(stray);
	close(12);
	close(out);
}

static void test_exec_fails(void **state)
{
	char path[] = "/tmp/vmm_spawn_XXXXXX", msg[VMM_MSG_MAX];
	struct vmm_argv a = { 0 };
	struct vmm_error err = { 0 };
	struct vmm_proc p;
	int fd, out;
	(void)state;

	/* executable, but no format the kernel knows */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\x7f" "ELF?", 5), 5);
	assert_int_equal(fchmod(fd, 0700), 0);
	close(fd);
	out = memfd_text("");
	assert_int_equal(vmm_argv_add(&a, NULL, "%s", path), 0);
	assert_int_equal(vmm_spawn(a.argv, NULL, 0, out, &p, &err), -ENOEXEC);
	snprintf(msg, sizeof(msg), "cannot run %s: %s", path, strerror(ENOEXEC));
	assert_string_equal(err.msg, msg);
	assert_int_equal(p.pid, -1);
	assert_int_equal(p.pidfd, -1);
	/* the child is reaped: no zombie left behind */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	unlink(path);
	vmm_argv_free(&a);
	close(out);
}

static void test_argv_bound(void **state)
{
	struct vmm_argv a = { 0 };
	struct vmm_error err = { 0 };
	(void)state;

	for (int i = 0; i < VMM_ARGV_MAX; i++)
		assert_int_equal(vmm_argv_add(&a, &err, "arg%d", i), 0);
	assert_int_equal(vmm_argv_add(&a, &err, "one-too-many"), -E2BIG);
	assert_non_null(strstr(err.msg, "arg0 command line longer than 128 arguments"));
	assert_int_equal(a.argc, VMM_ARGV_MAX);
	assert_null(a.argv[VMM_ARGV_MAX]);
	vmm_argv_free(&a);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fds),
		cmocka_unit_test(test_exec_fails),
		cmocka_unit_test(test_argv_bound),
	};
	return cmocka_run_group_tests_name("vmm_spawn", tests, NULL, NULL);
}
