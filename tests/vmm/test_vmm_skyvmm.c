/* Integration: the skyvmm backend on this machine's /dev/kvm, with the
 * stand-in kernels of tests/skyvmm/fakekernel.py (tests/vmm/skyvmm_guests.py
 * writes them into $SKY_VMM_GUEST_DIR and skips, 77, where KVM cannot run
 * them).  $SKYVMM is the skyvmm binary (the build's).
 *
 * Everything goes through vmm.h only, as the agent does. */
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/vmm.h"
#include "vmmtest.h"

#define RUN_MS 20000u

static const struct vmm_ops *be;
static struct vmm_config cfg;

static void spec_init(struct vmm_guest_spec *s, int kernel_fd, const char *name)
{
	static char names[16][64];
	static int next;
	char *n = names[next++ % 16];
	snprintf(n, 64, "sv-%ld-%s", (long)getpid(), name);
	memset(s, 0, sizeof(*s));
	s->name = n;
	s->vcpus = 1;
	s->memory = 64ull << 20;
	s->kernel_fd = kernel_fd;
	s->initrd_fd = -1;
	s->disk_fd = -1;
	s->accel = VMM_ACCEL_AUTO;
}

static int kernel(const char *file)
{
	int fd = vt_memfd_from_file(vt_guest_file(file));
	assert_true(fd >= 0);
	return fd;
}

/* No descriptor may outlive a guest: the count after destroy is the one
 * before create. */
static void destroy_checked(struct vmm_guest *g, int fds_before)
{
	int n;
	vmm_guest_destroy(g);
	n = vt_count_fds();
	if (n != fds_before) {
		vt_list_fds();
		fail_msg("%d descriptors open after destroy, %d before create", n, fds_before);
	}
}

static struct vmm_guest *create_ok(const struct vmm_guest_spec *s)
{
	struct vmm_guest *g = NULL;
	struct vmm_error err = { "" };
	int r = vmm_guest_create(be, &cfg, s, &g, &err);
	if (r < 0)
		fail_msg("create %s: %d %s", s->name, r, err.msg);
	return g;
}

/* Create and start a guest of the stand-in file, its console in c. */
static struct vmm_guest *start_up(const char *file, const char *name, struct vt_console *c)
{
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	struct vmm_guest *g;
	int fd = kernel(file), r;

	spec_init(&s, fd, name);
	g = create_ok(&s);
	close(fd); /* the library holds its own copy */
	vt_console_init(c, vmm_console_fd(g));
	r = vmm_guest_start(g, &err);
	if (r < 0)
		fail_msg("start %s: %d %s", name, r, err.msg);
	return g;
}

static void wait_mark(struct vt_console *c, const char *mark, unsigned ms)
{
	int r = vt_console_wait(c, mark, ms);
	if (r < 0)
		fail_msg("no \"%s\" on the console (%d); console so far:\n%s", mark, r, c->buf);
}

static void wait_end(struct vmm_guest *g, struct vt_console *c, struct vmm_status *st)
{
	int r = vt_wait_end(g, c, RUN_MS, st);
	if (r < 0)
		fail_msg("the guest did not end (%d)", r);
	printf("# state %s, reason \"%s\", status %d, signal %d\n", vmm_state_name(st->state), st->reason,
	       st->exit_status, st->exit_signal);
}

/* The guest writes its line and powers off: exited, "guest-shutdown". */
static void test_poweroff(void **state)
{
	struct vt_console *c = malloc(sizeof(*c));
	struct vmm_guest_spec s;
	struct vmm_status st;
	struct vmm_guest *g;
	int fds = vt_count_fds(), fd = kernel("up.bin");
	(void)state;

	spec_init(&s, fd, "up");
	g = create_ok(&s);
	close(fd);
	/* created: nothing runs yet, the console is there */
	assert_int_equal(vmm_guest_state(g, &st), 0);
	assert_int_equal(st.state, VMM_STATE_CREATED);
	assert_true(vmm_console_fd(g) >= 0);
	assert_int_equal(vt_find_child("skyvmm"), -1);
	vt_console_init(c, vmm_console_fd(g));
	assert_int_equal(vmm_guest_start(g, NULL), 0);
	wait_mark(c, "SKYVMM-BACKEND-UP\n", RUN_MS);
	wait_end(g, c, &st);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "guest-shutdown");
	assert_int_equal(st.exit_status, 0);
	/* the console reads EOF once skyvmm has gone */
	assert_int_equal(vt_console_wait(c, "never printed", 5000), -EPIPE);
	/* an ended guest does not start again */
	assert_int_equal(vmm_guest_start(g, NULL), -ESRCH);
	destroy_checked(g, fds);
	free(c);
}

/* The guest resets (0xFE to port 0x64): exited, "guest-reset". */
static void test_reset(void **state)
{
	struct vt_console *c = malloc(sizeof(*c));
	struct vmm_status st;
	struct vmm_guest *g;
	int fds = vt_count_fds();
	(void)state;

	g = start_up("reset.bin", "reset", c);
	wait_mark(c, "SKYVMM-BACKEND-RESET\n", RUN_MS);
	wait_end(g, c, &st);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "guest-reset");
	assert_int_equal(st.exit_status, 3);
	destroy_checked(g, fds);
	free(c);
}

/* kill -9 of skyvmm: crashed, with the signal as the reason. */
static void test_killed(void **state)
{
	struct vt_console *c = malloc(sizeof(*c));
	struct vmm_status st;
	struct vmm_guest *g;
	pid_t pid;
	int fds = vt_count_fds();
	(void)state;

	g = start_up("spin.bin", "kill9", c);
	wait_mark(c, "SKYVMM-BACKEND-SPIN\n", RUN_MS);
	assert_int_equal(vmm_guest_state(g, &st), 0);
	assert_int_equal(st.state, VMM_STATE_RUNNING);
	pid = vt_find_child("skyvmm");
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	wait_end(g, c, &st);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	assert_int_equal(st.exit_signal, SIGKILL);
	assert_string_equal(st.reason, "skyvmm killed by signal SIGKILL");
	destroy_checked(g, fds);
	free(c);
}

/* A guest that ignores the power button (SIGTERM) is killed when the
 * stop's time is up: exited, "killed after stop timeout". */
static void test_stop_timeout(void **state)
{
	struct vt_console *c = malloc(sizeof(*c));
	struct vmm_error err = { "" };
	struct vmm_status st;
	struct vmm_guest *g;
	unsigned long long t0, took;
	int fds = vt_count_fds(), r;
	(void)state;

	g = start_up("spin.bin", "deaf", c);
	wait_mark(c, "SKYVMM-BACKEND-SPIN\n", RUN_MS);
	/* a request only: the button is pressed, the guest runs on */
	assert_int_equal(vmm_guest_stop(g, 0, &err), 0);
	usleep(300 * 1000);
	assert_int_equal(vmm_guest_state(g, &st), 0);
	assert_int_equal(st.state, VMM_STATE_SHUTTING_DOWN);
	t0 = vt_ms();
	r = vmm_guest_stop(g, 1500, &err);
	took = vt_ms() - t0;
	printf("# stop -> %d after %llu ms: %s\n", r, took, err.msg);
	assert_int_equal(r, -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "did not power off within 1500 ms"));
	assert_true(took >= 1500 && took < 1500 + 5000);
	assert_int_equal(vmm_guest_state(g, &st), 0);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "killed after stop timeout");
	assert_int_equal(st.exit_signal, SIGKILL);
	/* skyvmm saw the presses: its stderr is not ours to read, but it is
	 * gone and reaped (no child left) */
	assert_int_equal(vt_find_child("skyvmm"), -1);
	destroy_checked(g, fds);
	free(c);
}

/* A header vmm_check_bzimage takes but skyvmm refuses (boot protocol
 * 2.06): skyvmm's own words end up in the guest's reason. */
static void test_refused_kernel(void **state)
{
	struct vt_console *c = malloc(sizeof(*c));
	struct vmm_status st;
	struct vmm_guest *g;
	int fds = vt_count_fds();
	(void)state;

	g = start_up("proto.bin", "proto", c);
	wait_end(g, c, &st);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	assert_int_equal(st.exit_status, 2);
	assert_non_null(strstr(st.reason, "skyvmm exited with status 2: skyvmm: the kernel image uses boot "
					  "protocol 2.06: skyvmm needs 2.12 or newer"));
	assert_int_equal(c->len, 0); /* no guest ran */
	destroy_checked(g, fds);
	free(c);
}

/* No "HdrS": refused at create by the library's shared check. */
static void test_not_bzimage(void **state)
{
	struct vmm_error err = { "" };
	struct vmm_guest_spec s;
	struct vmm_guest *g = NULL;
	int fds = vt_count_fds(), fd = kernel("magic.bin");
	(void)state;

	spec_init(&s, fd, "magic");
	assert_int_equal(vmm_guest_create(be, &cfg, &s, &g, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "not a Linux bzImage"));
	assert_null(g);
	close(fd);
	assert_int_equal(vt_count_fds(), fds);
}

/* Console input reaches the guest (it echoes a line, then powers off). */
static void test_console_input(void **state)
{
	static const char line[] = "typed on the console socket, longer than a FIFO\n";
	struct vt_console *c = malloc(sizeof(*c));
	struct vmm_status st;
	struct vmm_guest *g;
	int fds = vt_count_fds();
	(void)state;

	g = start_up("echo.bin", "echo", c);
	wait_mark(c, "SKYVMM-BACKEND-ECHO\n", RUN_MS);
	assert_int_equal(send(vmm_console_fd(g), line, sizeof(line) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(line) - 1);
	wait_mark(c, line, RUN_MS);
	wait_end(g, c, &st);
	assert_string_equal(st.reason, "guest-shutdown");
	destroy_checked(g, fds);
	free(c);
}

/* An unread console: the guest waits (back-pressure), the caller does not
 * (state answers at once), and once read every byte is there, in order. */
static void test_backpressure(void **state)
{
	struct vt_console *c = malloc(sizeof(*c));
	struct vmm_status st;
	struct vmm_guest *g;
	const char *flood_env = getenv("SKY_SV_FLOOD");
	long flood = flood_env ? atol(flood_env) : 0;
	unsigned long long t0;
	int fds = vt_count_fds(), queued[4];
	(void)state;

	assert_true(flood > 100000 && flood < VT_CONSOLE_KEEP - 100);
	g = start_up("flood.bin", "flood", c);
	for (int i = 0; i < 4; i++) {
		usleep(500 * 1000);
		t0 = vt_ms();
		assert_int_equal(vmm_guest_state(g, &st), 0);
		assert_true(vt_ms() - t0 < 200);
		/* the guest is held up by the unread console, not ended */
		assert_int_equal(st.state, VMM_STATE_RUNNING);
		assert_int_equal(ioctl(vmm_console_fd(g), FIONREAD, &queued[i]), 0);
	}
	/* the socket filled and stays full: the guest waits for the reader
	 * (it writes tens of thousands of bytes a second when read) */
	printf("# console bytes waiting unread: %d %d %d %d of %ld\n", queued[0], queued[1], queued[2], queued[3],
	       flood);
	assert_true(queued[3] > 0 && queued[3] == queued[2] && queued[3] < flood / 2);
	/* two port exits a byte: slow on a loaded or nested host */
	wait_mark(c, "SKYVMM-BACKEND-FLOOD\n", 90000);
	wait_end(g, c, &st);
	assert_string_equal(st.reason, "guest-shutdown");
	assert_true(c->len >= (size_t)flood + 21);
	for (long i = 0; i < flood; i++) {
		char want = (char)(((flood - i) & 0x3f) + 0x30);
		if (c->buf[i] != want)
			fail_msg("console byte %ld is 0x%02x, not 0x%02x", i, (unsigned char)c->buf[i],
				 (unsigned char)want);
	}
	assert_memory_equal(c->buf + flood, "SKYVMM-BACKEND-FLOOD\n", 21);
	destroy_checked(g, fds);
	free(c);
}

/* Created, never started, stopped: ends without running anything. */
static void test_stop_before_start(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_status st;
	struct vmm_guest *g;
	struct vmm_error err = { "" };
	int fds = vt_count_fds(), fd = kernel("up.bin");
	(void)state;

	spec_init(&s, fd, "never");
	g = create_ok(&s);
	close(fd);
	assert_int_equal(vmm_guest_stop(g, 10000, &err), 0);
	assert_int_equal(vmm_guest_state(g, &st), 0);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "stopped before it started");
	assert_int_equal(vmm_guest_start(g, &err), -ESRCH);
	assert_int_equal(vt_find_child("skyvmm"), -1);
	destroy_checked(g, fds);
}

/* A read-only disk and an initramfs are handed to skyvmm (it checks both
 * and boots with them). */
static void test_disk_initrd(void **state)
{
	static const char disk[1 << 16];
	static const char initrd[4096] = "070701";
	struct vt_console *c = malloc(sizeof(*c));
	struct vmm_guest_spec s;
	struct vmm_status st;
	struct vmm_guest *g;
	int fds = vt_count_fds(), fd = kernel("up.bin");
	(void)state;

	spec_init(&s, fd, "disk");
	s.disk_fd = vt_memfd_from_bytes("disk", disk, sizeof(disk), 1);
	s.disk_readonly = true;
	s.initrd_fd = vt_memfd_from_bytes("initrd", initrd, sizeof(initrd), 1);
	s.cmdline = "console=ttyS0 root=/dev/vda ro";
	s.vcpus = 2;
	assert_true(s.disk_fd >= 0 && s.initrd_fd >= 0);
	g = create_ok(&s);
	close(fd);
	close(s.disk_fd);
	close(s.initrd_fd);
	vt_console_init(c, vmm_console_fd(g));
	assert_int_equal(vmm_guest_start(g, NULL), 0);
	wait_end(g, c, &st);
	assert_string_equal(st.reason, "guest-shutdown");
	destroy_checked(g, fds);
	free(c);
}

static int no_write(const struct vmm_root *root, const char *path, const char *value)
{
	(void)root;
	fail_msg("a sysfs write (%s <- %s) for a guest the backend refuses", path, value);
	return -EIO;
}

/* What skyvmm cannot run is refused at create, saying what to do. */
static void test_refusals(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_error err;
	struct vmm_guest *g = NULL;
	struct vmm_config bad = cfg;
	int fds = vt_count_fds(), fd = kernel("up.bin");
	(void)state;

	spec_init(&s, fd, "tcg");
	s.accel = VMM_ACCEL_TCG;
	assert_int_equal(vmm_guest_create(be, &cfg, &s, &g, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "KVM only"));
	spec_init(&s, fd, "small");
	s.memory = 16ull << 20;
	assert_int_equal(vmm_guest_create(be, &cfg, &s, &g, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "at least 32M"));
	spec_init(&s, fd, "qcow");
	s.disk_fd = fd;
	s.disk_format = VMM_DISK_QCOW2;
	assert_int_equal(vmm_guest_create(be, &cfg, &s, &g, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "raw disk images only"));
	/* PCI passthrough: more devices than skyvmm's --vfio takes are refused
	 * before any is claimed; one device goes on to the claim, which finds
	 * no such device in this empty sysfs (no sysfs write either way) */
	{
		static const char *const pci[] = { "0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.0",
						   "0000:05:00.0" };
		struct vmm_root root = { .sysfs = "/nonexistent/sys", .devfs = "/dev", .write_attr = no_write };
		struct vmm_config pcfg = cfg;
		pcfg.root = &root;
		spec_init(&s, fd, "pci");
		s.pci = pci;
		s.npci = 5;
		assert_int_equal(vmm_guest_create(be, &pcfg, &s, &g, &err), -E2BIG);
		assert_non_null(strstr(err.msg, "passes at most 4 through"));
		s.npci = 1;
		assert_int_equal(vmm_guest_create(be, &pcfg, &s, &g, &err), -ENODEV);
		assert_null(strstr(err.msg, "skyvmm backend"));
		assert_null(g);
	}
	spec_init(&s, fd, "nobin");
	bad.skyvmm_path = "/nonexistent/skyvmm";
	assert_int_equal(vmm_guest_create(be, &bad, &s, &g, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/skyvmm is not an executable file"));
	assert_null(g);
	close(fd);
	assert_int_equal(vt_count_fds(), fds);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_bzimage),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_stop_before_start),
		cmocka_unit_test(test_poweroff),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_console_input),
		cmocka_unit_test(test_disk_initrd),
		cmocka_unit_test(test_refused_kernel),
		cmocka_unit_test(test_killed),
		cmocka_unit_test(test_stop_timeout),
		cmocka_unit_test(test_backpressure),
	};
	be = vmm_backend_find("skyvmm");
	if (!be) {
		fprintf(stderr, "no skyvmm backend built in\n");
		return 1;
	}
	cfg.skyvmm_path = getenv("SKYVMM");
	if (!cfg.skyvmm_path) {
		fprintf(stderr, "SKYVMM is not set\n");
		return 1;
	}
	return cmocka_run_group_tests_name("skyvmm", tests, NULL, NULL);
}
