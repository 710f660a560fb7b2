/* skyvmm's jail (vmm/skyvmm/jail.c): in a child, sv_jail() leaves it in an
 * empty root (nothing listed, no host file reachable) as the given
 * unprivileged user, with no way back to root; from outside, the child's
 * /proc/PID/status shows the ids and /proc/PID/root is empty, and the
 * host's mounts are as they were (the tmpfs is in the child's namespace
 * only).  The parent-death signal a spawner set survives the new ids: a
 * jailed process whose parent dies is killed.  Refusals: uid or gid 0.
 *
 * Environment: root (mount namespaces, setresuid); skips (77) without.
 *   ./test_skyvmm_jail
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/skyvmm/jail.h"

#define UID 65534
#define GID 65533

/* Names in a directory other than . and .. (-1 if it cannot be read). */
static int entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_refusals(void **state)
{
	char err[256] = "";
	(void)state;
	assert_int_equal(sv_jail(0, GID, err, sizeof(err)), -EINVAL);
	assert_int_equal(sv_jail(UID, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "must not be 0"));
	assert_int_equal(getuid(), 0); /* nothing changed */
}

/* The child's checks from inside; each failure its own exit status. */
static int inside(int ready_fd, int go_fd)
{
	char err[256] = "", c = 1;
	int fd;

	if (sv_jail(UID, GID, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 10;
	}
	if (getuid() != UID || geteuid() != UID || getgid() != GID || getegid() != GID)
		return 11;
	if (getgroups(0, NULL) != 0)
		return 12;
	if (entries("/") != 0)
		return 13;
	fd = open("/etc/passwd", O_RDONLY);
	if (fd >= 0 || errno != ENOENT)
		return 14;
	if (setuid(0) == 0 || seteuid(0) == 0)
		return 15;
	/* "/.." is still the empty root */
	if (entries("/..") != 0)
		return 16;
	if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
		return 17;
	return 0;
}

static void test_jail(void **state)
{
	int ready[2], go[2], ws = 0;
	char path[64], line[256], c = 0;
	bool uid_ok = false, gid_ok = false;
	int root_before = entries("/"), n;
	FILE *f;
	pid_t pid;
	(void)state;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(inside(ready[1], go[0]));
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &c, 1) != 1) {
		assert_int_equal(waitpid(pid, &ws, 0), pid);
		fail_msg("the jailed child ended early: exit %d", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	}
	/* from outside: its ids, and its root is empty */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (strcmp(line, "Uid:\t65534\t65534\t65534\t65534\n") == 0)
			uid_ok = true;
		if (strcmp(line, "Gid:\t65533\t65533\t65533\t65533\n") == 0)
			gid_ok = true;
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	n = entries(path);
	c = 1;
	assert_int_equal(write(go[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	close(ready[0]);
	close(go[1]);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	assert_true(uid_ok);
	assert_true(gid_ok);
	assert_int_equal(n, 0);
	/* this process's root is as it was */
	assert_int_equal(entries("/"), root_before);
	assert_true(root_before > 0);
}

/* A jailed process asked for SIGKILL at its parent's death, as the
 * agent's spawn asks (vmm/spawn.c): jailed, and its parent gone, it is
 * killed by SIGKILL (not left running: new ids clear the setting unless
 * the jail sets it again).  Its alarm ends it otherwise. */
static void test_parent_death(void **state)
{
	int ready[2], ws = 0, sig = 0;
	pid_t mid, pid = 0;
	(void)state;

	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(ready), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		pid_t me = getpid(), child = fork();
		char err[256] = "";
		if (child < 0)
			_exit(1);
		if (child > 0) { /* the spawner: waits for the jail, then dies */
			close(ready[1]);
			if (read(ready[0], &child, sizeof(child)) != sizeof(child))
				_exit(2);
			_exit(0);
		}
		alarm(10);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != me)
			_exit(3);
		if (sv_jail(UID, GID, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			_exit(4);
		}
		if (prctl(PR_GET_PDEATHSIG, &sig) < 0 || sig != SIGKILL)
			_exit(5);
		child = getpid();
		if (write(ready[1], &child, sizeof(child)) != sizeof(child))
			_exit(6);
		for (;;)
			pause();
	}
	close(ready[1]);
	assert_int_equal(waitpid(mid, &ws, 0), mid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	/* the jailed one, ours now (subreaper): killed by its parent's death */
	pid = waitpid(-1, &ws, 0);
	close(ready[0]);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	assert_true(pid > 0);
	if (WIFEXITED(ws))
		fail_msg("the jailed child exited %d", WEXITSTATUS(ws));
	assert_true(WIFSIGNALED(ws));
	assert_int_equal(WTERMSIG(ws), SIGKILL);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_jail),
		cmocka_unit_test(test_parent_death),
	};
	if (geteuid() != 0) {
		printf("skip: the jail needs root (mount namespaces, setresuid)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
