/* Integration: real guests (Debian's cloud kernel + a busybox initramfs,
 * from tests/vmm/fetch-guest.sh) through one backend, with TCG here.
 *
 *   test_vmm_boot qemu       the qemu backend
 *   test_vmm_boot libvirt    the libvirt backend ($SKY_VMM_LIBVIRT_URI,
 *                            tests/vmm/libvirtd.py starts a private daemon)
 *
 * $SKY_VMM_TEST_FILTER picks cases by glob: "test_life_*" (boot, console,
 * ACPI power-off, disk), "test_crash_*" (panic, QEMU killed, stop timeout),
 * "test_err_*" (refusals before or at start).
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/vmm.h"
#include "vmmtest.h"

#define BOOT_MS 60000u
#define CMDLINE "console=ttyS0 panic=-1 quiet"

static const char *backend_name = "qemu";
static const struct vmm_ops *be;
static struct vmm_config cfg;

struct guest_fds {
	int kernel, initrd, disk;
};

static void fds_open(struct guest_fds *f)
{
	f->kernel = vt_memfd_from_file(vt_guest_file("vmlinuz"));
	f->initrd = vt_memfd_from_file(vt_guest_file("initrd.img"));
	f->disk = -1;
	assert_true(f->kernel >= 0);
	assert_true(f->initrd >= 0);
}

static void fds_close(struct guest_fds *f)
{
	if (f->kernel >= 0)
		close(f->kernel);
	if (f->initrd >= 0)
		close(f->initrd);
	if (f->disk >= 0)
		close(f->disk);
}

static void spec_init(struct vmm_guest_spec *s, const struct guest_fds *f, const char *name,
		      const char *cmdline)
{
	static char names[16][64];
	static int next;
	char *n = names[next++ % 16];
	snprintf(n, 64, "skyvmm-%ld-%s", (long)getpid(), name);
	memset(s, 0, sizeof(*s));
	s->name = n;
	s->vcpus = 1;
	s->memory = 256ull << 20;
	s->kernel_fd = f->kernel;
	s->initrd_fd = f->initrd;
	s->disk_fd = f->disk;
	s->cmdline = cmdline;
	s->accel = VMM_ACCEL_AUTO;
}

/* No descriptor may outlive a guest.  The libvirt backend keeps a few for
 * the life of the process (its event loop), so the count is taken after
 * the first guest has gone and must not grow from there; libvirt closes a
 * connection's socket on its event loop's next turn, hence the short wait. */
static void destroy_checked(struct vmm_guest *g)
{
	static int settled = -1;
	int n;
	vmm_guest_destroy(g);
	n = vt_count_fds();
	if (settled < 0) {
		usleep(500 * 1000);
		settled = vt_count_fds();
		return;
	}
	for (int i = 0; i < 30 && n > settled; i++) {
		usleep(100 * 1000);
		n = vt_count_fds();
	}
	if (n > settled) {
		vt_list_fds();
		fail_msg("%d descriptors open after destroy, %d after the first guest", n, settled);
	}
}

static struct vmm_guest *create_ok(const struct vmm_guest_spec *s)
{
	struct vmm_guest *g = NULL;
	struct vmm_error err = { "" };
	unsigned long long t0 = vt_ms();
	int r = vmm_guest_create(be, &cfg, s, &g, &err);
	if (r < 0)
		fail_msg("create %s: %d %s", s->name, r, err.msg);
	printf("# %s: created in %llu ms; warning: %s\n", s->name, vt_ms() - t0, vmm_guest_warning(g));
	return g;
}

static void start_ok(struct vmm_guest *g)
{
	struct vmm_error err = { "" };
	int r = vmm_guest_start(g, &err);
	if (r < 0)
		fail_msg("start: %d %s", r, err.msg);
}

static void wait_mark(struct vt_console *c, const char *mark, unsigned ms)
{
	int r = vt_console_wait(c, mark, ms);
	if (r < 0)
		fail_msg("no \"%s\" on the console (%d); console so far:\n%s", mark, r, c->buf);
}

/* Create a guest named name with the test kernel and cmdline (no disk),
 * attach c to its console and start it. */
static struct vmm_guest *start_up(const char *name, const char *cmdline, struct vmm_guest_spec *s,
				  struct vt_console *c)
{
	struct guest_fds f;
	struct vmm_guest *g;

	fds_open(&f);
	spec_init(s, &f, name, cmdline);
	g = create_ok(s);
	fds_close(&f); /* the library holds its own copies */
	vt_console_init(c, vmm_console_fd(g));
	start_ok(g);
	return g;
}

/* start_up, then wait for the guest's boot marker. */
static struct vmm_guest *boot_up(const char *name, const char *cmdline, struct vmm_guest_spec *s,
				 struct vt_console *c)
{
	struct vmm_guest *g = start_up(name, cmdline, s, c);
	wait_mark(c, VT_MARK_UP, BOOT_MS);
	return g;
}

/* Boot to the marker, echo a line through the console, ACPI power-off. */
static void test_life_boot_echo_powerdown(void **state)
{
	struct guest_fds f;
	struct vmm_guest_spec s;
	struct vmm_guest *g;
	struct vmm_status st;
	struct vmm_error err = { "" };
	struct vt_console *c = malloc(sizeof(*c));
	unsigned long long t0;
	const char *line = "hello <skyroot> & 'vmm'\n";
	int r;
	(void)state;

	fds_open(&f);
	spec_init(&s, &f, "boot", CMDLINE);
	g = create_ok(&s);
	fds_close(&f); /* the library holds its own copies */
	assert_string_equal(vmm_guest_name(g), s.name);
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		assert_non_null(strstr(vmm_guest_warning(g), "TCG"));
	assert_int_equal(vmm_guest_state(g, &st), 0);
	assert_int_equal(st.state, VMM_STATE_CREATED);

	vt_console_init(c, vmm_console_fd(g));
	assert_true(c->fd >= 0);
	t0 = vt_ms();
	start_ok(g);
	wait_mark(c, VT_MARK_UP, BOOT_MS);
	printf("# %s: marker after %llu ms\n", s.name, vt_ms() - t0);
	assert_int_equal(vmm_guest_state(g, &st), 0);
	assert_int_equal(st.state, VMM_STATE_RUNNING);

	assert_int_equal(send(c->fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	wait_mark(c, "SKYROOT-VMM-ECHO: hello <skyroot> & 'vmm'", 20000);

	t0 = vt_ms();
	r = vmm_guest_stop(g, 30000, &err);
	if (r < 0)
		fail_msg("stop: %d %s", r, err.msg);
	printf("# %s: ACPI power-off took %llu ms\n", s.name, vt_ms() - t0);
	wait_mark(c, VT_MARK_POWERDOWN, 5000);
	assert_int_equal(vt_wait_end(g, c, 10000, &st), 0);
	printf("# %s: state %s, reason %s, exit status %d\n", s.name, vmm_state_name(st.state), st.reason,
	       st.exit_status);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "guest-shutdown");
	/* the console ends with the guest */
	for (int i = 0; i < 50 && !c->eof; i++)
		vt_console_read(c, 100);
	assert_true(c->eof);
	/* asking again is fine */
	assert_int_equal(vmm_guest_stop(g, 1000, &err), 0);
	assert_int_equal(vmm_guest_start(g, &err), -ESRCH);
	destroy_checked(g);
	free(c);
}

/* A read-only raw disk from a sealed memfd; the guest powers itself off. */
static void test_life_disk_guest_poweroff(void **state)
{
	static const char disk_magic[] = "SKYROOT-DISK-0123456789";
	char disk[64 * 1024];
	struct guest_fds f;
	struct vmm_guest_spec s;
	struct vmm_guest *g;
	struct vmm_status st;
	struct vt_console *c = malloc(sizeof(*c));
	(void)state;

	memset(disk, 0, sizeof(disk));
	memcpy(disk, disk_magic, sizeof(disk_magic) - 1);
	fds_open(&f);
	f.disk = vt_memfd_from_bytes("disk", disk, sizeof(disk), 1);
	assert_true(f.disk >= 0);
	spec_init(&s, &f, "disk", CMDLINE " skyroot.test=poweroff");
	s.disk_format = VMM_DISK_RAW;
	s.disk_readonly = true;
	g = create_ok(&s);
	fds_close(&f);
	vt_console_init(c, vmm_console_fd(g));
	start_ok(g);
	wait_mark(c, VT_MARK_UP, BOOT_MS);
	wait_mark(c, "SKYROOT-VMM-DISK: SKYROOT-DISK-0123456789", 10000);
	assert_int_equal(vt_wait_end(g, c, 30000, &st), 0);
	printf("# %s: state %s, reason %s\n", s.name, vmm_state_name(st.state), st.reason);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "guest-shutdown");
	destroy_checked(g);
	free(c);
}

/* A guest that misses the first press of the power button (as one still
 * starting acpid does) is pressed again, and stops cleanly. */
static void test_life_second_press(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_guest *g;
	struct vmm_status st;
	struct vmm_error err = { "" };
	struct vt_console *c = malloc(sizeof(*c));
	unsigned long long t0;
	int r;
	(void)state;

	g = boot_up("press", CMDLINE " skyroot.test=deaf-once", &s, c);
	t0 = vt_ms();
	r = vmm_guest_stop(g, 30000, &err);
	if (r < 0)
		fail_msg("stop: %d %s", r, err.msg);
	printf("# %s: powered off %llu ms after the first press\n", s.name, vt_ms() - t0);
	wait_mark(c, "SKYROOT-VMM-PRESS-IGNORED", 5000);
	wait_mark(c, VT_MARK_POWERDOWN, 5000);
	assert_true(vt_ms() - t0 >= 4000); /* the second press, not the first */
	assert_int_equal(vt_wait_end(g, c, 10000, &st), 0);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "guest-shutdown");
	destroy_checked(g);
	free(c);
}

/* A kernel panic is reported as a crash (pvpanic). */
static void test_crash_guest_panic(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_guest *g;
	struct vmm_status st;
	struct vt_console *c = malloc(sizeof(*c));
	(void)state;

	g = boot_up("panic", CMDLINE " skyroot.test=panic", &s, c);
	assert_int_equal(vt_wait_end(g, c, 30000, &st), 0);
	printf("# %s: state %s, reason %s, exit status %d\n", s.name, vmm_state_name(st.state), st.reason,
	       st.exit_status);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	if (strcmp(backend_name, "qemu") == 0)
		assert_string_equal(st.reason, "guest-panicked");
	else /* libvirt destroys on crash: a panic looks like a QEMU death */
		assert_true(strstr(st.reason, "crashed") || strcmp(st.reason, "guest-panicked") == 0);
	destroy_checked(g);
	free(c);
}

/* QEMU itself dies: the caller lives on and is told. */
static void test_crash_vmm_killed(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_guest *g;
	struct vmm_status st;
	struct vt_console *c = malloc(sizeof(*c));
	pid_t pid;
	(void)state;

	g = boot_up("segv", CMDLINE, &s, c);
	pid = vt_find_qemu(s.name);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGSEGV), 0);
	assert_int_equal(vt_wait_end(g, c, 20000, &st), 0);
	printf("# %s: state %s, reason %s, signal %d\n", s.name, vmm_state_name(st.state), st.reason,
	       st.exit_signal);
	assert_int_equal(st.state, VMM_STATE_CRASHED);
	if (strcmp(backend_name, "qemu") == 0) {
		assert_int_equal(st.exit_signal, SIGSEGV);
		assert_string_equal(st.reason, "qemu killed by signal SIGSEGV");
	} else {
		/* libvirt knows only that QEMU went away */
		assert_non_null(strstr(st.reason, "crashed"));
	}
	destroy_checked(g);
	free(c);
}

/* A guest that ignores the power button is killed after the timeout. */
static void test_crash_stop_timeout(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_guest *g;
	struct vmm_status st;
	struct vmm_error err = { "" };
	struct vt_console *c = malloc(sizeof(*c));
	unsigned long long t0;
	int r;
	(void)state;

	/* busybox sh as init: nothing listens to ACPI */
	g = start_up("deaf", "console=ttyS0 panic=-1 quiet rdinit=/bin/sh", &s, c);
	vt_console_read(c, 1500);
	t0 = vt_ms();
	r = vmm_guest_stop(g, 2000, &err);
	printf("# %s: stop -> %d after %llu ms: %s\n", s.name, r, vt_ms() - t0, err.msg);
	assert_int_equal(r, -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "did not power off within 2000 ms"));
	assert_int_equal(vmm_guest_state(g, &st), 0);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	assert_string_equal(st.reason, "killed after stop timeout");
	destroy_checked(g);
	free(c);
}

/* Created, never started, stopped: ends without running anything. */
static void test_life_stop_before_start(void **state)
{
	struct guest_fds f;
	struct vmm_guest_spec s;
	struct vmm_guest *g;
	struct vmm_status st;
	struct vmm_error err = { "" };
	(void)state;

	fds_open(&f);
	spec_init(&s, &f, "never", CMDLINE);
	g = create_ok(&s);
	fds_close(&f);
	assert_int_equal(vmm_guest_stop(g, 10000, &err), 0);
	assert_int_equal(vt_wait_end(g, NULL, 10000, &st), 0);
	printf("# %s: state %s, reason %s\n", s.name, vmm_state_name(st.state), st.reason);
	assert_int_equal(st.state, VMM_STATE_EXITED);
	destroy_checked(g);
}

/* Not a bzImage: refused before anything starts. */
static void test_err_bad_kernel(void **state)
{
	static const char elf[] = "\x7f" "ELF\x02\x01\x01";
	struct guest_fds f = { -1, -1, -1 };
	struct vmm_guest_spec s;
	struct vmm_guest *g = (struct vmm_guest *)&f; /* must stay untouched */
	struct vmm_error err = { "" };
	char img[4096];
	(void)state;

	memset(img, 0, sizeof(img));
	memcpy(img, elf, sizeof(elf) - 1);
	f.kernel = vt_memfd_from_bytes("vmlinux", img, sizeof(img), 1);
	spec_init(&s, &f, "badkernel", CMDLINE);
	assert_int_equal(vmm_guest_create(be, &cfg, &s, &g, &err), -ENOEXEC);
	assert_ptr_equal(g, (struct vmm_guest *)&f);
	assert_non_null(strstr(err.msg, "HdrS"));
	assert_true(vt_find_qemu(s.name) < 0);
	fds_close(&f);
}

/* qemu only: the binary is missing -> says what to install. */
static void test_err_qemu_missing(void **state)
{
	struct guest_fds f;
	struct vmm_guest_spec s;
	struct vmm_guest *g = NULL;
	struct vmm_error err = { "" };
	struct vmm_config c2 = cfg;
	(void)state;

	fds_open(&f);
	spec_init(&s, &f, "noqemu", CMDLINE);
	c2.qemu_path = "/nonexistent/qemu-system-x86_64";
	assert_int_equal(vmm_guest_create(be, &c2, &s, &g, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "apt-get install qemu-system-x86"));
	c2.qemu_path = "qemu-system-skyroot-none";
	assert_int_equal(vmm_guest_create(be, &c2, &s, &g, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "not in PATH"));
	assert_null(g);
	fds_close(&f);
}

/* qemu only: QEMU refuses the machine -> its own words come back. */
static void test_err_qemu_start_failure(void **state)
{
	char disk[4096];
	struct guest_fds f;
	struct vmm_guest_spec s;
	struct vmm_guest *g = NULL;
	struct vmm_error err = { "" };
	int r;
	(void)state;

	memset(disk, 'x', sizeof(disk));
	fds_open(&f);
	f.disk = vt_memfd_from_bytes("disk", disk, sizeof(disk), 1);
	spec_init(&s, &f, "notqcow2", CMDLINE);
	s.disk_format = VMM_DISK_QCOW2; /* but it is not one */
	s.disk_readonly = true;
	r = vmm_guest_create(be, &cfg, &s, &g, &err);
	printf("# create -> %d: %s\n", r, err.msg);
	assert_true(r < 0);
	assert_null(g);
	assert_non_null(strstr(err.msg, "qemu failed to start guest"));
	assert_non_null(strstr(err.msg, "qcow2"));
	fds_close(&f);
}

/* qemu only: KVM required where there is none -> a clear refusal. */
static void test_err_kvm_required(void **state)
{
	char dir[] = "/tmp/skyvmm-nokvm-XXXXXX";
	struct vmm_root root = { 0 };
	struct vmm_config c2 = cfg;
	struct guest_fds f;
	struct vmm_guest_spec s;
	struct vmm_guest *g = NULL;
	struct vmm_error err = { "" };
	(void)state;

	assert_non_null(mkdtemp(dir));
	root.devfs = dir;
	c2.root = &root;
	fds_open(&f);
	spec_init(&s, &f, "needkvm", CMDLINE);
	s.accel = VMM_ACCEL_KVM;
	assert_int_equal(vmm_guest_create(be, &c2, &s, &g, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "needs KVM"));
	assert_non_null(strstr(err.msg, "modprobe kvm_intel"));
	assert_null(g);
	fds_close(&f);
	rmdir(dir);
}

/* libvirt only: an unreachable daemon is named in the error. */
static void test_err_libvirt_unreachable(void **state)
{
	struct vmm_config c2 = cfg;
	struct guest_fds f;
	struct vmm_guest_spec s;
	struct vmm_guest *g = NULL;
	struct vmm_error err = { "" };
	(void)state;

	c2.libvirt_uri = "qemu:///system?socket=/nonexistent/libvirt-sock";
	fds_open(&f);
	spec_init(&s, &f, "nodaemon", CMDLINE);
	assert_int_equal(vmm_guest_create(be, &c2, &s, &g, &err), -ECONNREFUSED);
	assert_non_null(strstr(err.msg, "cannot connect to libvirt"));
	assert_null(g);
	fds_close(&f);
}

/* Every backend runs the cases below; the backend-only ones are listed
 * only for their backend (main picks the list), so that no case "passes" by
 * skipping itself on the other. */
#define COMMON_CASES \
	cmocka_unit_test(test_err_bad_kernel), \
	cmocka_unit_test(test_life_stop_before_start), \
	cmocka_unit_test(test_life_boot_echo_powerdown), \
	cmocka_unit_test(test_life_disk_guest_poweroff), \
	cmocka_unit_test(test_life_second_press), \
	cmocka_unit_test(test_crash_guest_panic), \
	cmocka_unit_test(test_crash_vmm_killed), \
	cmocka_unit_test(test_crash_stop_timeout)

int main(int argc, char **argv)
{
	static const struct CMUnitTest qemu_tests[] = {
		COMMON_CASES,
		cmocka_unit_test(test_err_qemu_missing),
		cmocka_unit_test(test_err_kvm_required),
		cmocka_unit_test(test_err_qemu_start_failure),
	};
	static const struct CMUnitTest libvirt_tests[] = {
		COMMON_CASES,
		cmocka_unit_test(test_err_libvirt_unreachable),
	};
	if (argc > 1)
		backend_name = argv[1];
	if (getenv("SKY_VMM_TEST_FILTER")) /* e.g. "test_boot*" */
		cmocka_set_test_filter(getenv("SKY_VMM_TEST_FILTER"));
	be = vmm_backend_find(backend_name);
	if (!be) {
		fprintf(stderr, "no backend %s\n", backend_name);
		return 1;
	}
	cfg.libvirt_uri = getenv("SKY_VMM_LIBVIRT_URI");
	cfg.qemu_path = getenv("SKY_VMM_QEMU");
	/* A crashing QEMU must not take us down, SIGPIPE included. */
	if (strcmp(backend_name, "libvirt") == 0)
		return cmocka_run_group_tests_name("libvirt", libvirt_tests, NULL, NULL);
	if (strcmp(backend_name, "qemu") == 0)
		return cmocka_run_group_tests_name("qemu", qemu_tests, NULL, NULL);
	fprintf(stderr, "no case list for backend %s\n", backend_name);
	return 1;
}
