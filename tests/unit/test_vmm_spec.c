/* The backend-independent checks: guest specs, the bzImage check, the KVM
 * probe on fixture /dev trees, accel choice, backends by name. */
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
#include <unistd.h>
#include <cmocka.h>

#include "vmm/vmm.h"
#include "vmm/vmm_priv.h"

#define STR(s) (s), strlen(s)

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("img", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static int bzimage(unsigned version)
{
	unsigned char img[0x400];
	memset(img, 0, sizeof(img));
	img[0] = 'M';
	img[1] = 'Z';
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = (unsigned char)(version & 0xff);
	img[0x207] = (unsigned char)(version >> 8);
	return memfd_with(img, sizeof(img));
}

static void spec_base(struct vmm_guest_spec *s, int kfd)
{
	memset(s, 0, sizeof(*s));
	s->name = "guest_1.a-b";
	s->vcpus = 1;
	s->memory = 256ull << 20;
	s->kernel_fd = kfd;
	s->initrd_fd = -1;
	s->disk_fd = -1;
}

static void test_bzimage(void **state)
{
	struct vmm_error err = { "" };
	unsigned char elf[0x400] = { 0x7f, 'E', 'L', 'F' };
	int fd;
	(void)state;

	fd = bzimage(0x020f);
	assert_int_equal(vmm_check_bzimage(fd, &err), 0);
	close(fd);
	fd = memfd_with(elf, sizeof(elf));
	assert_int_equal(vmm_check_bzimage(fd, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "not a Linux bzImage (no \"HdrS\" magic at offset 0x202)"));
	close(fd);
	fd = memfd_with("HdrS", 4); /* too short to hold a header */
	assert_int_equal(vmm_check_bzimage(fd, &err), -ENOEXEC);
	close(fd);
	fd = bzimage(0x0104); /* boot protocol 1.04 */
	assert_int_equal(vmm_check_bzimage(fd, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "protocol 1.04"));
	close(fd);
	assert_true(vmm_check_bzimage(-1, &err) < 0);
}

static void test_spec_checks(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	const char *pci_bad[] = { "0000:01:00.0", "zz:00.0" };
	char longname[VMM_NAME_MAX + 2];
	char *longcmd = malloc(VMM_CMDLINE_MAX + 2);
	int kfd = bzimage(0x020f);
	(void)state;

	spec_base(&s, kfd);
	assert_int_equal(vmm_spec_check(&s, &err), 0);

#define BAD(field_change, errno_, text)                                 \
	do {                                                            \
		spec_base(&s, kfd);                                     \
		field_change;                                           \
		assert_int_equal(vmm_spec_check(&s, &err), errno_);     \
		if (!strstr(err.msg, text))                             \
			fail_msg("message \"%s\" lacks \"%s\"", err.msg, text); \
	} while (0)

	BAD(s.name = NULL, -EINVAL, "invalid guest name");
	BAD(s.name = "", -EINVAL, "invalid guest name");
	BAD(s.name = "-rf", -EINVAL, "invalid guest name");
	BAD(s.name = ".hidden", -EINVAL, "invalid guest name");
	BAD(s.name = "a/b", -EINVAL, "invalid guest name");
	BAD(s.name = "a b", -EINVAL, "invalid guest name");
	BAD(s.name = "a,b", -EINVAL, "invalid guest name");
	BAD(s.name = "<x>", -EINVAL, "invalid guest name");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	BAD(s.name = longname, -EINVAL, "invalid guest name");
	longname[VMM_NAME_MAX] = '\0';
	spec_base(&s, kfd);
	s.name = longname;
	assert_int_equal(vmm_spec_check(&s, &err), 0);

	BAD(s.vcpus = 0, -EINVAL, "0 vCPUs");
	BAD(s.vcpus = SKY_GUEST_VCPUS_MAX + 1, -EINVAL, "give 1 to 64");
	spec_base(&s, kfd);
	s.vcpus = SKY_GUEST_VCPUS_MAX;
	assert_int_equal(vmm_spec_check(&s, &err), 0);
	BAD(s.memory = 0, -EINVAL, "multiple of 1M");
	BAD(s.memory = (256ull << 20) + 4096, -EINVAL, "multiple of 1M");
	BAD(s.memory = 8ull << 20, -EINVAL, "between 16M and 1T");
	BAD(s.memory = SKY_GUEST_MEMORY_MAX + (1u << 20), -EINVAL, "between 16M and 1T");
	spec_base(&s, kfd);
	s.memory = SKY_GUEST_MEMORY_MAX;
	assert_int_equal(vmm_spec_check(&s, &err), 0);
	BAD(s.kernel_fd = -1, -EBADF, "no kernel");
	BAD(s.kernel_fd = 9999, -EBADF, "not an open descriptor");
	BAD(s.initrd_fd = 9999, -EBADF, "initrd_fd");
	BAD(s.disk_fd = 9999, -EBADF, "disk_fd");
	BAD(s.disk_format = (enum vmm_disk_format)7, -EINVAL, "disk format");
	BAD(s.accel = (enum vmm_accel)7, -EINVAL, "accel");
	BAD(s.cmdline = "console=ttyS0\nrm", -EINVAL, "control character 0x0a");
	memset(longcmd, 'c', VMM_CMDLINE_MAX + 1);
	longcmd[VMM_CMDLINE_MAX + 1] = '\0';
	BAD(s.cmdline = longcmd, -E2BIG, "longer than 1023");
	longcmd[VMM_CMDLINE_MAX] = '\0';
	spec_base(&s, kfd);
	s.cmdline = longcmd;
	assert_int_equal(vmm_spec_check(&s, &err), 0);
	BAD((s.pci = pci_bad, s.npci = 2), -EINVAL, "\"zz:00.0\" is not");
	BAD((s.pci = NULL, s.npci = 1), -EINVAL, "pci is NULL");
	BAD((s.pci = pci_bad, s.npci = SKY_GUEST_DEVICES_MAX + 1), -E2BIG, "at most 8");
	{
		/* NICs: an open tap descriptor each (the kernel fd stands in) and
		 * a unicast MAC; at most 8. */
		struct vmm_nic nics[VMM_NICS_MAX + 1];

		for (unsigned i = 0; i <= VMM_NICS_MAX; i++)
			nics[i] = (struct vmm_nic){ .tap_fd = kfd, .mac = "02:53:4b:00:00:01" };
		spec_base(&s, kfd);
		s.nics = nics;
		s.nnics = VMM_NICS_MAX;
		assert_int_equal(vmm_spec_check(&s, &err), 0);
		BAD((s.nics = nics, s.nnics = VMM_NICS_MAX + 1), -E2BIG, "at most 8");
		BAD((s.nics = NULL, s.nnics = 1), -EINVAL, "nics is NULL");
		nics[1].tap_fd = 9999;
		BAD((s.nics = nics, s.nnics = 2), -EBADF, "NIC 1: tap_fd 9999");
		nics[1].tap_fd = kfd;
		nics[1].mac = "01:00:5e:00:00:01";
		BAD((s.nics = nics, s.nnics = 2), -EINVAL, "NIC 1: \"01:00:5e:00:00:01\" is not a unicast MAC");
		nics[1].mac = "02:53:4b:00:00";
		BAD((s.nics = nics, s.nnics = 2), -EINVAL, "is not a unicast MAC");
		nics[1].mac = NULL;
		BAD((s.nics = nics, s.nnics = 2), -EINVAL, "(null)");
	}
	BAD(s.name = "x" /* ok */, 0, "");
	assert_int_equal(vmm_spec_check(NULL, &err), -EINVAL);
#undef BAD
	free(longcmd);
	close(kfd);
}

/* create refuses before any backend work (NULL backend, bad kernel). */
static void test_create_refusals(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	struct vmm_guest *g = (struct vmm_guest *)&s;
	unsigned char junk[0x400] = { 0 };
	int kfd = memfd_with(junk, sizeof(junk));
	(void)state;

	spec_base(&s, kfd);
	assert_int_equal(vmm_guest_create(NULL, NULL, &s, &g, &err), -EINVAL);
	assert_int_equal(vmm_guest_create(vmm_backend_find("qemu"), NULL, &s, &g, &err), -ENOEXEC);
	assert_ptr_equal(g, (struct vmm_guest *)&s);
	vmm_guest_destroy(NULL);
	close(kfd);
}

static void test_kvm_probe(void **state)
{
	char dir[] = "/tmp/skyvmm-dev-XXXXXX", sys[] = "/tmp/skyvmm-sys-XXXXXX", path[64], amd[64];
	char why[VMM_MSG_MAX];
	struct vmm_root root = { 0 };
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	char warn[VMM_MSG_MAX] = "";
	int fd, kvm = -1;
	(void)state;

	assert_non_null(mkdtemp(dir));
	root.devfs = dir;
	assert_int_equal(vmm_kvm_usable(&root, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "does not exist"));
	assert_non_null(strstr(why, "modprobe kvm_intel or kvm_amd"));
	/* a file that is not the KVM device */
	snprintf(path, sizeof(path), "%s/kvm", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(vmm_kvm_usable(&root, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "KVM_GET_API_VERSION"));
	unlink(path);
	rmdir(dir);

	/* which KVM: hardware (kvm_intel/kvm_amd) or PVM, which cannot run a stock kernel */
	assert_non_null(mkdtemp(sys));
	root.sysfs = sys;
	root.devfs = "/nonexistent";
	assert_int_equal(vmm_kvm_hw_backed(&root, why, sizeof(why)), 1); /* nothing to tell: trust /dev/kvm */
	snprintf(path, sizeof(path), "%s/module", sys);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/module/kvm_pvm", sys);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(vmm_kvm_hw_backed(&root, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "PVM"));
	assert_non_null(strstr(why, "kvm_intel or kvm_amd"));
	snprintf(amd, sizeof(amd), "%s/module/kvm_amd", sys);
	assert_int_equal(mkdir(amd, 0755), 0);
	assert_int_equal(vmm_kvm_hw_backed(&root, why, sizeof(why)), 1);
	assert_string_equal(why, "");
	rmdir(amd);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/module", sys);
	rmdir(path);
	rmdir(sys);

	/* the choice: AUTO falls back with a warning, KVM refuses, TCG asks nothing */
	spec_base(&s, 0);
	s.accel = VMM_ACCEL_AUTO;
	assert_int_equal(vmm_accel_pick(&s, 0, "no /dev/kvm", &kvm, warn, sizeof(warn), &err), 0);
	assert_int_equal(kvm, 0);
	assert_non_null(strstr(warn, "KVM is not usable (no /dev/kvm)"));
	assert_non_null(strstr(warn, "TCG"));
	warn[0] = '\0';
	assert_int_equal(vmm_accel_pick(&s, 1, "", &kvm, warn, sizeof(warn), &err), 0);
	assert_int_equal(kvm, 1);
	assert_string_equal(warn, "");
	s.accel = VMM_ACCEL_KVM;
	kvm = -1;
	assert_int_equal(vmm_accel_pick(&s, 0, "no /dev/kvm", &kvm, warn, sizeof(warn), &err), -ENODEV);
	assert_int_equal(kvm, -1);
	assert_non_null(strstr(err.msg, "needs KVM"));
	s.accel = VMM_ACCEL_TCG;
	assert_int_equal(vmm_accel_pick(&s, 1, "", &kvm, warn, sizeof(warn), &err), 0);
	assert_int_equal(kvm, 0);
	assert_string_equal(warn, "");
}

static void test_backends(void **state)
{
	const char *const *names = vmm_backend_names();
	(void)state;
	assert_non_null(vmm_backend_find("qemu"));
	assert_string_equal(vmm_backend_find("qemu")->name, "qemu");
#if SKY_TEST_LIBVIRT
	assert_non_null(vmm_backend_find("libvirt"));
#else
	assert_null(vmm_backend_find("libvirt")); /* -Dlibvirt=disabled: qemu alone */
#endif
	assert_null(vmm_backend_find("xen"));
	assert_null(vmm_backend_find(""));
	assert_null(vmm_backend_find(NULL));
	for (size_t i = 0; names[i]; i++) {
		const struct vmm_ops *o = vmm_backend_find(names[i]);
		assert_non_null(o);
		assert_non_null(o->create);
		assert_non_null(o->start);
		assert_non_null(o->stop);
		assert_non_null(o->destroy);
		assert_non_null(o->state);
		assert_non_null(o->console);
		o->destroy(NULL); /* destructors take NULL */
	}
	assert_string_equal(vmm_state_name(VMM_STATE_CRASHED), "crashed");
	assert_string_equal(vmm_state_name((enum vmm_state)99), "unknown");
}

static void test_fd_tail(void **state)
{
	char out[32];
	int fd;
	(void)state;
	fd = memfd_with(STR("line one\nqemu: an error\x1b[0m here\n\n"));
	vmm_fd_tail(fd, out, sizeof(out), false);
	assert_string_equal(out, "qemu: an error [0m here");
	close(fd);
	fd = memfd_with(STR("short\n"));
	vmm_fd_tail(fd, out, sizeof(out), false);
	assert_string_equal(out, "short");
	close(fd);
	vmm_fd_tail(-1, out, sizeof(out), false);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage),
		cmocka_unit_test(test_spec_checks),
		cmocka_unit_test(test_create_refusals),
		cmocka_unit_test(test_kvm_probe),
		cmocka_unit_test(test_backends),
		cmocka_unit_test(test_fd_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
