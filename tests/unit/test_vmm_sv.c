/* The skyvmm backend's pure parts: its command line (descriptors at fixed
 * numbers, no shell), what it refuses, finding the binary, and what an
 * ended skyvmm means (exit statuses and signals to states and reasons). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/sv_backend.h"
#include "vmm/vmm_priv.h"

static void spec_base(struct vmm_guest_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->name = "web-1";
	s->vcpus = 2;
	s->memory = 256ull << 20;
	s->kernel_fd = 40;
	s->initrd_fd = 41;
	s->disk_fd = -1;
	s->cmdline = "console=ttyS0 init=\"/sbin/my init\" $(reboot) `id`; x,y";
}

static int pair(const struct vmm_argv *a, const char *opt, const char *val)
{
	for (size_t i = 1; i + 1 < a->argc; i++)
		if (strcmp(a->argv[i], opt) == 0 && strcmp(a->argv[i + 1], val) == 0)
			return (int)i;
	return -1;
}

static int has(const struct vmm_argv *a, const char *opt)
{
	for (size_t i = 1; i < a->argc; i++)
		if (strcmp(a->argv[i], opt) == 0)
			return 1;
	return 0;
}

static void test_argv(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_argv a;
	(void)state;

	spec_base(&s);
	assert_int_equal(sv_build_argv("/x/skyvmm", &s, &a, NULL), 0);
	assert_string_equal(a.argv[0], "/x/skyvmm");
	assert_true(pair(&a, "--kernel-fd", "4") > 0);
	assert_true(pair(&a, "--initrd-fd", "5") > 0);
	assert_true(pair(&a, "--console-fd", "3") > 0);
	assert_true(pair(&a, "--memory", "256M") > 0);
	assert_true(pair(&a, "--cpus", "2") > 0);
	/* the command line is one argument, as given */
	assert_true(pair(&a, "--cmdline", s.cmdline) > 0);
	assert_false(has(&a, "--disk-fd"));
	/* as root (the agent on a board), jailed as nobody:nogroup */
	assert_int_equal(pair(&a, "--jail-uid", "65534") > 0, geteuid() == 0);
	assert_int_equal(pair(&a, "--jail-gid", "65534") > 0, geteuid() == 0);
	assert_null(a.argv[a.argc]);
	vmm_argv_free(&a);

	/* no initrd, no command line (skyvmm's default), a read-only disk */
	s.initrd_fd = -1;
	s.cmdline = NULL;
	s.disk_fd = 42;
	s.disk_readonly = true;
	assert_int_equal(sv_build_argv("skyvmm", &s, &a, NULL), 0);
	assert_false(has(&a, "--initrd-fd"));
	assert_false(has(&a, "--cmdline"));
	assert_true(pair(&a, "--disk-fd", "6") > 0);
	assert_true(has(&a, "--disk-ro"));
	vmm_argv_free(&a);

	/* writable: skyvmm's RAM overlay, no --disk-ro */
	s.disk_readonly = false;
	assert_int_equal(sv_build_argv("skyvmm", &s, &a, NULL), 0);
	assert_true(pair(&a, "--disk-fd", "6") > 0);
	assert_false(has(&a, "--disk-ro"));
	vmm_argv_free(&a);
}

static void test_spec_check(void **state)
{
	const char *pci[] = { "0000:01:00.0" };
	const struct vmm_nic nics[] = { { .tap_fd = 0, .mac = "02:53:4b:00:00:01" } };
	struct vmm_guest_spec s;
	struct vmm_error err;
	(void)state;

	spec_base(&s);
	assert_int_equal(sv_spec_check(&s, &err), 0);
	s.memory = 32ull << 20;
	assert_int_equal(sv_spec_check(&s, &err), 0);
	s.memory = 31ull << 20;
	assert_int_equal(sv_spec_check(&s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "at least 32M"));
	spec_base(&s);
	s.accel = VMM_ACCEL_TCG;
	assert_int_equal(sv_spec_check(&s, &err), -ENOTSUP);
	s.accel = VMM_ACCEL_KVM;
	assert_int_equal(sv_spec_check(&s, &err), 0);
	s.disk_fd = 42;
	s.disk_format = VMM_DISK_QCOW2;
	assert_int_equal(sv_spec_check(&s, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "qemu-img convert -O raw"));
	s.disk_format = VMM_DISK_RAW;
	assert_int_equal(sv_spec_check(&s, &err), 0);
	/* PCI devices are passed through (skyvmm's --vfio), up to the most */
	s.pci = pci;
	s.npci = 1;
	assert_int_equal(sv_spec_check(&s, &err), 0);
	s.npci = SV_VFIO_MAX + 1;
	assert_int_equal(sv_spec_check(&s, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "at most 4 through"));
	/* NICs are taken (skyvmm's virtio-net on their taps), up to the most */
	spec_base(&s);
	s.nics = nics;
	s.nnics = 1;
	assert_int_equal(sv_spec_check(&s, &err), 0);
	s.nnics = VMM_NICS_MAX + 1;
	assert_int_equal(sv_spec_check(&s, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "at most 8"));
	s.nnics = 0;
	assert_int_equal(sv_spec_check(&s, &err), 0);
}

/* Each NIC: "--tap-fd N --mac MAC", N its tap's descriptor in the child
 * (SV_FD_NIC0 + i, in order), the MAC in canonical form. */
static void test_argv_nics(void **state)
{
	const struct vmm_nic nics[] = {
		{ .tap_fd = 50, .mac = "02:53:4B:00:00:01" },
		{ .tap_fd = 51, .mac = "02:53:4b:0a:1b:2c" },
	};
	struct vmm_nic bad[] = { { .tap_fd = 50, .mac = "02:53:4b:00:00" } };
	struct vmm_guest_spec s;
	struct vmm_error err;
	struct vmm_argv a;
	int i0, i1;
	(void)state;

	assert_int_equal(SV_FD_NIC0, 7);
	assert_true(SV_FD_FIRST_FREE >= SV_FD_NIC0 + (int)VMM_NICS_MAX);
	spec_base(&s);
	assert_int_equal(sv_build_argv("skyvmm", &s, &a, NULL), 0);
	assert_false(has(&a, "--tap-fd"));
	assert_false(has(&a, "--mac"));
	vmm_argv_free(&a);

	s.nics = nics;
	s.nnics = 2;
	assert_int_equal(sv_build_argv("skyvmm", &s, &a, &err), 0);
	i0 = pair(&a, "--tap-fd", "7");
	i1 = pair(&a, "--tap-fd", "8");
	assert_true(i0 > 0 && i1 > i0);
	/* the --mac right after its --tap-fd (skyvmm pairs them so) */
	assert_true(pair(&a, "--mac", "02:53:4b:00:00:01") == i0 + 2);
	assert_true(pair(&a, "--mac", "02:53:4b:0a:1b:2c") == i1 + 2);
	assert_int_equal(pair(&a, "--tap-fd", "9"), -1); /* two NICs, two taps */
	assert_null(a.argv[a.argc]);
	vmm_argv_free(&a);

	/* not a MAC: refused, nothing built */
	s.nics = bad;
	s.nnics = 1;
	memset(&a, 0, sizeof(a));
	assert_int_equal(sv_build_argv("skyvmm", &s, &a, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NIC 0"));
	assert_int_equal(a.argc, 0);
}

static void test_find_binary(void **state)
{
	char out[256];
	struct vmm_error err;
	(void)state;

	assert_int_equal(sv_find_binary("/bin/sh", out, sizeof(out), &err), 0);
	assert_string_equal(out, "/bin/sh");
	assert_int_equal(sv_find_binary("/etc/passwd", out, sizeof(out), &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/etc/passwd is not an executable file"));
	assert_int_equal(sv_find_binary("/nonexistent/skyvmm", out, sizeof(out), &err), -ENOENT);
}

/* What a caller choosing a default backend asks: is its program here? */
static void test_installed(void **state)
{
	struct vmm_config cfg = { .skyvmm_path = "/bin/sh", .qemu_path = "/bin/sh" };
	struct vmm_error err;
	(void)state;

	assert_int_equal(vmm_backend_installed(vmm_backend_find("skyvmm"), &cfg, &err), 0);
	assert_int_equal(vmm_backend_installed(vmm_backend_find("qemu"), &cfg, &err), 0);
	cfg.skyvmm_path = "/nonexistent/skyvmm";
	cfg.qemu_path = "/nonexistent/qemu";
	assert_int_equal(vmm_backend_installed(vmm_backend_find("skyvmm"), &cfg, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/skyvmm is not an executable file"));
	assert_int_equal(vmm_backend_installed(vmm_backend_find("qemu"), &cfg, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/qemu is not an executable file"));
	assert_int_equal(vmm_backend_installed(NULL, &cfg, &err), -ENOTSUP);
}

static void status(int ws, const char *line, const char *killed, struct vmm_status *st)
{
	memset(st, 0x55, sizeof(*st));
	sv_status_from_exit(ws, line, killed, st);
}

static void test_status(void **state)
{
	struct vmm_status st;
	(void)state;

	status(W_EXITCODE(0, 0), "skyvmm: guest-shutdown", NULL, &st);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "guest-shutdown");
	assert_int_equal(st.exit_status, 0);
	assert_int_equal(st.exit_signal, 0);

	status(W_EXITCODE(3, 0), "skyvmm: guest-reset: triple fault on vCPU 0", NULL, &st);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "guest-reset");
	assert_int_equal(st.exit_status, 3);

	status(W_EXITCODE(4, 0), "skyvmm: guest-crashed: KVM_EXIT_INTERNAL_ERROR", NULL, &st);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	assert_string_equal(st.reason, "skyvmm exited with status 4: skyvmm: guest-crashed: KVM_EXIT_INTERNAL_ERROR");

	status(W_EXITCODE(1, 0), "", NULL, &st);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	assert_string_equal(st.reason, "skyvmm exited with status 1");

	status(W_EXITCODE(0, SIGKILL), "", NULL, &st);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	assert_int_equal(st.exit_signal, SIGKILL);
	assert_int_equal(st.exit_status, -1);
	assert_string_equal(st.reason, "skyvmm killed by signal SIGKILL");

	/* killed by the backend itself: the stop's reason, not a crash */
	status(W_EXITCODE(0, SIGKILL), "", "killed after stop timeout", &st);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "killed after stop timeout");

	/* another signal than ours is a crash even after our kill */
	status(W_EXITCODE(0, SIGSEGV), "", "killed after stop timeout", &st);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	assert_string_equal(st.reason, "skyvmm killed by signal SIGSEGV");

	/* the sandbox's verdict */
	status(W_EXITCODE(0, SIGSYS), "", NULL, &st);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	assert_string_equal(st.reason, "skyvmm killed by seccomp (signal 31, SIGSYS): a system call outside its allow-list");
}

static int memfd_text(const char *s)
{
	int fd = memfd_create("t", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	return fd;
}

static void test_last_line(void **state)
{
	char out[64], big[5000];
	int fd;
	(void)state;

	fd = memfd_text("skyvmm: SIGTERM: pressing the guest's power button\nskyvmm: guest-shutdown\n\n");
	vmm_fd_tail(fd, out, sizeof(out), true);
	assert_string_equal(out, "skyvmm: guest-shutdown");
	close(fd);
	/* control characters from outside do not pass */
	fd = memfd_text("x\nskyvmm: bad\x1b[31m\tthing\r\n");
	vmm_fd_tail(fd, out, sizeof(out), true);
	assert_string_equal(out, "skyvmm: bad [31m thing");
	close(fd);
	/* longer than the room: cut at the room, from the line's start */
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 40, "\nskyvmm: the last line, long enough", 35);
	big[sizeof(big) - 5] = '\0';
	fd = memfd_text(big);
	vmm_fd_tail(fd, out, 12, true);
	assert_string_equal(out, "skyvmm: the");
	close(fd);
	fd = memfd_text("");
	vmm_fd_tail(fd, out, sizeof(out), true);
	assert_string_equal(out, "");
	close(fd);
	vmm_fd_tail(-1, out, sizeof(out), true);
	assert_string_equal(out, "");
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_spec_check),
		cmocka_unit_test(test_argv_nics),
		cmocka_unit_test(test_find_binary),
		cmocka_unit_test(test_installed),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_last_line),
	};
	return cmocka_run_group_tests_name("vmm_sv", tests, NULL, NULL);
}
