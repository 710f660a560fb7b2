/* QEMU command lines: one argv array (no shell), images as /proc/self/fd/N
 * of the inherited descriptors, QMP and console on inherited sockets,
 * accel, vfio-pci devices; finding the binary. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/qemu.h"

static void spec_base(struct vmm_guest_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->name = "web-1";
	s->vcpus = 2;
	s->memory = 256ull << 20;
	s->kernel_fd = 40;
	s->initrd_fd = 41;
	s->disk_fd = -1;
	s->cmdline = "console=ttyS0 root=/dev/vda init=\"/sbin/my init\" $(reboot) `id`; x,y";
}

/* Index of the option opt whose value is val, or -1. */
static int pair(const struct vmm_argv *a, const char *opt, const char *val)
{
	for (size_t i = 1; i + 1 < a->argc; i++)
		if (strcmp(a->argv[i], opt) == 0 && strcmp(a->argv[i + 1], val) == 0)
			return (int)i;
	return -1;
}

static int has(const struct vmm_argv *a, const char *arg)
{
	int n = 0;
	for (size_t i = 0; i < a->argc; i++)
		n += strcmp(a->argv[i], arg) == 0;
	return n;
}

static void test_tcg_guest(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_argv a;
	struct vmm_error err = { "" };
	(void)state;

	spec_base(&s);
	assert_int_equal(qemu_build_argv("/usr/bin/qemu-system-x86_64", &s, 0, &a, &err), 0);
	assert_string_equal(a.argv[0], "/usr/bin/qemu-system-x86_64");
	assert_null(a.argv[a.argc]);
	assert_true(pair(&a, "-accel", "tcg") > 0);
	assert_true(pair(&a, "-cpu", "max") > 0);
	assert_true(pair(&a, "-machine", "q35") > 0);
	assert_true(pair(&a, "-smp", "2") > 0);
	assert_true(pair(&a, "-m", "256M") > 0);
	assert_true(pair(&a, "-name", "guest=web-1,debug-threads=on") > 0);
	assert_int_equal(has(&a, "-S"), 1);          /* paused until cont */
	assert_int_equal(has(&a, "-no-reboot"), 1);
	assert_int_equal(has(&a, "-nodefaults"), 1);
	assert_true(pair(&a, "-display", "none") > 0);
	/* QMP and console on the inherited sockets: no paths, no races */
	assert_true(pair(&a, "-chardev", "socket,id=qmp,fd=3") > 0);
	assert_true(pair(&a, "-mon", "chardev=qmp,mode=control") > 0);
	assert_true(pair(&a, "-chardev", "socket,id=console,fd=4") > 0);
	assert_true(pair(&a, "-serial", "chardev:console") > 0);
	/* images from inherited memfds, at QEMU's fds 5 and 6 (not the caller's 40, 41) */
	assert_true(pair(&a, "-kernel", "/proc/self/fd/5") > 0);
	assert_true(pair(&a, "-initrd", "/proc/self/fd/6") > 0);
	assert_int_equal(has(&a, "/proc/self/fd/40"), 0);
	/* the command line is one argument, verbatim */
	assert_true(pair(&a, "-append", s.cmdline) > 0);
	assert_int_equal(has(&a, "-drive"), 0);
	assert_true(pair(&a, "-device", "pvpanic") > 0);
	assert_true(pair(&a, "-action", "panic=shutdown") > 0);
	assert_int_equal(has(&a, "-sandbox"), 1);
	vmm_argv_free(&a);
	vmm_argv_free(&a); /* twice is fine */
	vmm_argv_free(NULL);
}

static void test_kvm_disk_vfio(void **state)
{
	const char *pci[] = { "0000:01:00.0", "0000:02:00.1" };
	struct vmm_guest_spec s;
	struct vmm_argv a;
	struct vmm_error err = { "" };
	int i1, i2;
	(void)state;

	spec_base(&s);
	s.initrd_fd = -1;
	s.cmdline = NULL;
	s.disk_fd = 9;
	s.disk_format = VMM_DISK_QCOW2;
	s.pci = pci;
	s.npci = 2;
	s.memory = 4ull << 30;
	assert_int_equal(qemu_build_argv("qemu", &s, 1, &a, &err), 0);
	assert_true(pair(&a, "-accel", "kvm") > 0);
	assert_true(pair(&a, "-cpu", "host") > 0);
	assert_true(pair(&a, "-m", "4096M") > 0);
	assert_int_equal(has(&a, "-initrd"), 0);
	assert_int_equal(has(&a, "-append"), 0);
	assert_true(pair(&a, "-drive", "file=/proc/self/fd/7,format=qcow2,if=virtio,readonly=off") > 0);
	i1 = pair(&a, "-device", "vfio-pci,host=0000:01:00.0");
	i2 = pair(&a, "-device", "vfio-pci,host=0000:02:00.1");
	assert_true(i1 > 0 && i2 > i1);
	vmm_argv_free(&a);

	s.disk_format = VMM_DISK_RAW;
	s.disk_readonly = true;
	assert_int_equal(qemu_build_argv("qemu", &s, 1, &a, &err), 0);
	assert_true(pair(&a, "-drive", "file=/proc/self/fd/7,format=raw,if=virtio,readonly=on") > 0);
	vmm_argv_free(&a);
}

static void test_name_commas(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_argv a;
	struct vmm_error err = { "" };
	(void)state;

	/* vmm_spec_check refuses such names; the builder escapes anyway */
	spec_base(&s);
	s.name = "a,b,,c";
	assert_int_equal(qemu_build_argv("qemu", &s, 0, &a, &err), 0);
	assert_true(pair(&a, "-name", "guest=a,,b,,,,c,debug-threads=on") > 0);
	vmm_argv_free(&a);
}

/* Each NIC: a tap netdev on its inherited descriptor and a virtio-net
 * device with its MAC (canonical), in order. */
static void test_nics(void **state)
{
	const struct vmm_nic nics[] = { { .tap_fd = 50, .mac = "02:53:4B:00:00:01" }, { .tap_fd = 51, .mac = "0a:bc:de:f0:12:34" } };
	const struct vmm_nic bad[] = { { .tap_fd = 50, .mac = "02:53:4b:00:00" } };
	struct vmm_guest_spec s;
	struct vmm_argv a;
	struct vmm_error err = { "" };
	int i0, i1;
	(void)state;

	spec_base(&s);
	assert_int_equal(qemu_build_argv("qemu", &s, 1, &a, &err), 0);
	assert_int_equal(has(&a, "-netdev"), 0); /* none without NICs: no user network either */
	vmm_argv_free(&a);
	s.nics = nics;
	s.nnics = 2;
	assert_int_equal(qemu_build_argv("qemu", &s, 1, &a, &err), 0);
	assert_int_equal(has(&a, "-netdev"), 2);
	i0 = pair(&a, "-netdev", "tap,id=nic0,fd=8");
	i1 = pair(&a, "-netdev", "tap,id=nic1,fd=9");
	assert_true(i0 > 0 && i1 > i0);
	assert_int_equal(pair(&a, "-device", "virtio-net-pci,netdev=nic0,mac=02:53:4b:00:00:01"), i0 + 2);
	assert_int_equal(pair(&a, "-device", "virtio-net-pci,netdev=nic1,mac=0a:bc:de:f0:12:34"), i1 + 2);
	assert_int_equal(QEMU_FD_NIC0 + 1, 9);
	assert_true(QEMU_FD_FIRST_FREE >= QEMU_FD_NIC0 + (int)VMM_NICS_MAX);
	vmm_argv_free(&a);
	s.nics = bad;
	s.nnics = 1;
	assert_int_equal(qemu_build_argv("qemu", &s, 1, &a, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "MAC"));
}

static void test_most_devices_fit(void **state)
{
	const char *pci[VMM_PCI_MAX];
	struct vmm_nic nics[VMM_NICS_MAX];
	char macs[VMM_NICS_MAX][18];
	char bdfs[VMM_PCI_MAX][16];
	struct vmm_guest_spec s;
	struct vmm_argv a;
	struct vmm_error err = { "" };
	(void)state;

	for (unsigned i = 0; i < VMM_PCI_MAX; i++) {
		snprintf(bdfs[i], sizeof(bdfs[i]), "0000:%02x:00.0", i + 1);
		pci[i] = bdfs[i];
	}
	spec_base(&s);
	s.disk_fd = 3;
	s.pci = pci;
	s.npci = VMM_PCI_MAX;
	for (unsigned i = 0; i < VMM_NICS_MAX; i++) {
		snprintf(macs[i], sizeof(macs[i]), "02:00:00:00:00:%02x", i);
		nics[i] = (struct vmm_nic){ .tap_fd = 60 + (int)i, .mac = macs[i] };
	}
	s.nics = nics;
	s.nnics = VMM_NICS_MAX;
	assert_int_equal(qemu_build_argv("qemu", &s, 0, &a, &err), 0);
	assert_true(a.argc <= VMM_ARGV_MAX);
	assert_true(pair(&a, "-netdev", "tap,id=nic7,fd=15") > 0);
	assert_true(pair(&a, "-device", "vfio-pci,host=0000:08:00.0") > 0); /* the last: SKY_GUEST_DEVICES_MAX */
	vmm_argv_free(&a);
}

static void test_find_binary(void **state)
{
	char dir[] = "/tmp/skyvmm-bin-XXXXXX";
	char path[PATH_MAX], out[PATH_MAX], envpath[PATH_MAX * 2];
	char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	struct vmm_error err = { "" };
	int fd;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fake-qemu", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(envpath, sizeof(envpath), "/nonexistent::%s", dir);
	setenv("PATH", envpath, 1);
	/* not executable: not found */
	assert_int_equal(qemu_find_binary("fake-qemu", out, sizeof(out), &err), -ENOENT);
	assert_non_null(strstr(err.msg, "apt-get install qemu-system-x86"));
	assert_int_equal(qemu_find_binary(path, out, sizeof(out), &err), -ENOENT);
	chmod(path, 0755);
	assert_int_equal(qemu_find_binary("fake-qemu", out, sizeof(out), &err), 0);
	assert_string_equal(out, path);
	assert_int_equal(qemu_find_binary(path, out, sizeof(out), &err), 0);
	/* a directory is not a QEMU */
	assert_int_equal(qemu_find_binary(dir, out, sizeof(out), &err), -ENOENT);
	assert_int_equal(qemu_find_binary("qemu-system-none", out, sizeof(out), &err), -ENOENT);
	assert_non_null(strstr(err.msg, "QEMU not found: qemu-system-none is not in PATH"));
	unlink(path);
	rmdir(dir);
	if (old)
		setenv("PATH", old, 1);
	free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcg_guest),
		cmocka_unit_test(test_kvm_disk_vfio),
		cmocka_unit_test(test_name_commas),
		cmocka_unit_test(test_nics),
		cmocka_unit_test(test_most_devices_fit),
		cmocka_unit_test(test_find_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
