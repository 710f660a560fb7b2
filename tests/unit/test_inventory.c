/* Unit tests for agent/inventory.c.
 *
 * Environment: SKY_FIXTURES must hold the absolute path of tests/fixtures
 * (the fake boards are read from $SKY_FIXTURES/boards/{a,b,c}/{sys,proc,dev}).
 * Trees for the "missing files" and "limits" cases are built at run time in
 * a temporary directory under $TMPDIR (default /tmp) and removed afterwards.
 *
 *   SKY_FIXTURES=$PWD/tests/fixtures ./test_inventory
 */
#include "agent/inventory.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers ----------------------------------------------------------- */

struct board_paths {
	char sys[PATH_MAX], proc[PATH_MAX], dev[PATH_MAX];
	struct inv_roots roots;
};

static void roots_under(struct board_paths *b, const char *base)
{
	assert_true((size_t)snprintf(b->sys, sizeof(b->sys), "%s/sys", base) < sizeof(b->sys));
	assert_true((size_t)snprintf(b->proc, sizeof(b->proc), "%s/proc", base) < sizeof(b->proc));
	assert_true((size_t)snprintf(b->dev, sizeof(b->dev), "%s/dev", base) < sizeof(b->dev));
	b->roots.sysfs = b->sys;
	b->roots.procfs = b->proc;
	b->roots.devfs = b->dev;
}

static void fixture_board(struct board_paths *b, const char *name)
{
	const char *fx = getenv("SKY_FIXTURES");
	if (!fx || fx[0] != '/')
		fail_msg("SKY_FIXTURES must be the absolute path of tests/fixtures "
			 "(e.g. SKY_FIXTURES=$PWD/tests/fixtures)");
	char base[PATH_MAX];
	assert_true((size_t)snprintf(base, sizeof(base), "%s/boards/%s", fx, name) < sizeof(base));
	roots_under(b, base);
}

static void mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	assert_true(strlen(path) < sizeof(buf));
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", buf, strerror(errno));
}

static void parent_dirs(const char *path)
{
	char dir[PATH_MAX];
	assert_true(strlen(path) < sizeof(dir));
	strcpy(dir, path);
	char *slash = strrchr(dir, '/');
	assert_non_null(slash);
	*slash = '\0';
	mkdir_p(dir);
}

/* Write `content` to <base>/<rel>, creating the parent directories. */
static void put(const char *base, const char *rel, const char *content)
{
	char path[PATH_MAX];
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", base, rel) < sizeof(path));
	parent_dirs(path);
	FILE *f = fopen(path, "w");
	if (!f)
		fail_msg("create %s: %s", path, strerror(errno));
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

static void putf(const char *base, const char *content, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void putf(const char *base, const char *content, const char *fmt, ...)
{
	char rel[PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(rel));
	put(base, rel, content);
}

static void linkf(const char *base, const char *target, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void linkf(const char *base, const char *target, const char *fmt, ...)
{
	char rel[PATH_MAX], path[PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(rel));
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", base, rel) < sizeof(path));
	parent_dirs(path);
	if (symlink(target, path) < 0)
		fail_msg("symlink %s: %s", path, strerror(errno));
}

static void make_tmp(char *out, size_t size)
{
	const char *t = getenv("TMPDIR");
	assert_true((size_t)snprintf(out, size, "%s/skyinv.XXXXXX", t && *t ? t : "/tmp") < size);
	if (!mkdtemp(out))
		fail_msg("mkdtemp %s: %s", out, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

/* How many descriptors are open: equal before and after means nothing leaked. */
static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static const struct inv_pci_device *group_dev(const struct inventory *inv, unsigned g, unsigned d)
{
	assert_true(g < inv->n_groups);
	assert_true(d < inv->groups[g].n_devices);
	return &inv->groups[g].devices[d];
}

static void assert_pci(const struct inv_pci_device *d, const char *addr, uint32_t vendor,
		       uint32_t device, uint32_t class_code, const char *driver)
{
	assert_string_equal(d->address, addr);
	assert_int_equal(d->vendor, vendor);
	assert_int_equal(d->device, device);
	assert_int_equal(d->class_code, class_code);
	assert_string_equal(d->driver, driver);
}

static void assert_nic(const struct inv_nic *n, const char *name, const char *mac, bool link,
		       int32_t speed)
{
	assert_string_equal(n->name, name);
	assert_string_equal(n->mac, mac);
	assert_int_equal(n->link, link);
	assert_int_equal(n->speed_mbps, speed);
}

/* ---- the fixture boards ------------------------------------------------ */

static void test_board_a(void **state)
{
	(void)state;
	struct board_paths b;
	struct inventory inv;
	fixture_board(&b, "a");
	int fd0 = open_fds();
	assert_int_equal(inventory_read(&b.roots, &inv), 0);
	assert_int_equal(open_fds(), fd0);

	assert_string_equal(inv.cpu_model, "AMD EPYC-Milan Processor");
	assert_int_equal(inv.cpus, 4);
	assert_int_equal(inv.n_virt_flags, 2);
	assert_string_equal(inv.virt_flags[0], "svm");
	assert_string_equal(inv.virt_flags[1], "npt");
	assert_int_equal(inv.memory_bytes, 4028392ULL * 1024);
	assert_int_equal(inv.numa_nodes, 2);
	assert_string_equal(inv.dmi_vendor, "QEMU");
	assert_string_equal(inv.dmi_product, "Standard PC (Q35 + ICH9, 2009)");
	assert_string_equal(inv.dmi_serial, "SKY-A-0001");
	assert_string_equal(inv.dmi_uuid, "5b0f4c0e-9a31-4d0b-8e2a-0a0000000a01");
	assert_int_equal(inv.firmware, INV_FW_UEFI);
	assert_true(inv.kvm);

	assert_int_equal(inv.n_groups, 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(inv.groups[i].id, i);
	assert_int_equal(inv.groups[0].n_devices, 1);
	assert_pci(group_dev(&inv, 0, 0), "0000:00:00.0", 0x8086, 0x29c0, 0x060000, "");
	assert_int_equal(inv.groups[1].n_devices, 1);
	assert_pci(group_dev(&inv, 1, 0), "0000:00:01.0", 0x1234, 0x1111, 0x030000, "bochs-drm");
	assert_int_equal(inv.groups[2].n_devices, 1);
	assert_pci(group_dev(&inv, 2, 0), "0000:00:02.0", 0x1af4, 0x1000, 0x020000, "virtio-pci");
	assert_int_equal(inv.groups[3].n_devices, 1);
	assert_pci(group_dev(&inv, 3, 0), "0000:00:03.0", 0x1234, 0x11e8, 0x00ff00, "vfio-pci");
	assert_int_equal(inv.groups[4].n_devices, 3);
	assert_pci(group_dev(&inv, 4, 0), "0000:00:1f.0", 0x8086, 0x2918, 0x060100, "lpc_ich");
	assert_pci(group_dev(&inv, 4, 1), "0000:00:1f.2", 0x8086, 0x2922, 0x010601, "ahci");
	assert_pci(group_dev(&inv, 4, 2), "0000:00:1f.3", 0x8086, 0x2930, 0x0c0500, "i801_smbus");

	assert_int_equal(inv.n_nics, 1); /* lo is skipped */
	assert_nic(&inv.nics[0], "eth0", "52:54:00:12:34:56", true, 1000);
	assert_string_equal(inv.bridge.name, ""); /* no NIC on a bridge */

	assert_string_equal(inv.kernel_version, "6.1.0-28-cloud-amd64");
	assert_string_equal(inv.hostname, "board-a");
	inventory_free(&inv);
	assert_null(inv.groups);
	assert_int_equal(inv.n_groups, 0);
}

static void test_board_b(void **state)
{
	(void)state;
	struct board_paths b;
	struct inventory inv;
	fixture_board(&b, "b");
	assert_int_equal(inventory_read(&b.roots, &inv), 0);

	assert_string_equal(inv.cpu_model, "Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz");
	assert_int_equal(inv.cpus, 8);
	assert_int_equal(inv.n_virt_flags, 2);
	assert_string_equal(inv.virt_flags[0], "vmx");
	assert_string_equal(inv.virt_flags[1], "ept");
	assert_int_equal(inv.memory_bytes, 65657812ULL * 1024);
	assert_int_equal(inv.numa_nodes, 1);
	assert_string_equal(inv.dmi_vendor, "Dell Inc.");
	assert_string_equal(inv.dmi_product, "PowerEdge R650");
	assert_string_equal(inv.dmi_serial, "7XK2M53");
	assert_string_equal(inv.dmi_uuid, "4c4c4544-0058-4b10-8032-b7c04f4d3533");
	assert_int_equal(inv.firmware, INV_FW_BIOS);
	assert_false(inv.kvm);
	assert_int_equal(inv.n_groups, 0);
	assert_null(inv.groups);

	/* lo and docker0 (virtual, no device link) are skipped. */
	assert_int_equal(inv.n_nics, 2);
	assert_nic(&inv.nics[0], "eno1", "b0:7b:25:d4:1e:40", true, 1000);
	assert_nic(&inv.nics[1], "eno2", "b0:7b:25:d4:1e:41", false, -1);

	assert_string_equal(inv.kernel_version, "5.10.0-32-amd64");
	assert_string_equal(inv.hostname, "board-b");
	inventory_free(&inv);
}

static void test_board_c(void **state)
{
	(void)state;
	struct board_paths b;
	struct inventory inv;
	fixture_board(&b, "c");
	assert_int_equal(inventory_read(&b.roots, &inv), 0);

	assert_string_equal(inv.cpu_model, "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz");
	assert_int_equal(inv.cpus, 8);
	assert_int_equal(inv.n_virt_flags, 2);
	assert_string_equal(inv.virt_flags[0], "vmx");
	assert_string_equal(inv.virt_flags[1], "ept");
	assert_int_equal(inv.memory_bytes, 263856772ULL * 1024);
	assert_int_equal(inv.numa_nodes, 4);
	assert_string_equal(inv.dmi_vendor, "Lenovo");
	assert_string_equal(inv.dmi_product, "ThinkSystem SR650 V2");
	assert_string_equal(inv.dmi_serial, "J1002ABC");
	assert_string_equal(inv.dmi_uuid, "9f3c7a1e-2b4d-11ec-8d3d-0242ac130003");
	assert_int_equal(inv.firmware, INV_FW_UEFI);
	assert_true(inv.kvm);

	/* Sorted by number, not by name: "12" < "35" < "7" as strings. */
	assert_int_equal(inv.n_groups, 3);
	assert_int_equal(inv.groups[0].id, 7);
	assert_int_equal(inv.groups[1].id, 12);
	assert_int_equal(inv.groups[2].id, 35);
	assert_int_equal(inv.groups[0].n_devices, 1);
	assert_pci(group_dev(&inv, 0, 0), "0000:17:00.0", 0x144d, 0xa80a, 0x010802, "nvme");
	assert_int_equal(inv.groups[1].n_devices, 2);
	assert_pci(group_dev(&inv, 1, 0), "0000:31:00.0", 0x8086, 0x1572, 0x020000, "i40e");
	assert_pci(group_dev(&inv, 1, 1), "0000:31:00.1", 0x8086, 0x1572, 0x020000, "i40e");
	assert_int_equal(inv.groups[2].n_devices, 1);
	assert_pci(group_dev(&inv, 2, 0), "0000:b1:00.0", 0x10de, 0x1eb8, 0x030200, "vfio-pci");

	/* ens1f0: operstate "unknown" but carrier 1; ens1f1: no carrier or speed file. */
	assert_int_equal(inv.n_nics, 2);
	assert_nic(&inv.nics[0], "ens1f0", "3c:fd:fe:a1:b2:c0", true, 10000);
	assert_nic(&inv.nics[1], "ens1f1", "3c:fd:fe:a1:b2:c1", false, -1);

	assert_string_equal(inv.kernel_version, "6.1.0-28-amd64");
	assert_string_equal(inv.hostname, "board-c");
	inventory_free(&inv);
}

static void test_boards_distinct(void **state)
{
	(void)state;
	static const char *const names[] = { "a", "b", "c" };
	char uuids[3][64], hosts[3][INV_MAX_STR];
	for (unsigned i = 0; i < 3; i++) {
		struct board_paths b;
		struct inventory inv;
		fixture_board(&b, names[i]);
		assert_int_equal(inventory_read(&b.roots, &inv), 0);
		strcpy(uuids[i], inv.dmi_uuid);
		strcpy(hosts[i], inv.hostname);
		inventory_free(&inv);
	}
	for (unsigned i = 0; i < 3; i++)
		for (unsigned j = i + 1; j < 3; j++) {
			assert_string_not_equal(uuids[i], uuids[j]);
			assert_string_not_equal(hosts[i], hosts[j]);
		}
}

/* ---- missing and odd files --------------------------------------------- */

static void test_missing_files(void **state)
{
	(void)state;
	char tmp[PATH_MAX];
	struct board_paths b;
	struct inventory inv;
	make_tmp(tmp, sizeof(tmp));
	roots_under(&b, tmp);
	mkdir_p(b.proc);
	mkdir_p(b.sys);
	mkdir_p(b.dev);

	memset(&inv, 0x5a, sizeof(inv));
	assert_int_equal(inventory_read(&b.roots, &inv), 0);
	assert_string_equal(inv.cpu_model, "");
	assert_int_equal(inv.cpus, 0);
	assert_int_equal(inv.n_virt_flags, 0);
	assert_int_equal(inv.memory_bytes, 0);
	assert_int_equal(inv.numa_nodes, 1);
	assert_string_equal(inv.dmi_vendor, "");
	assert_string_equal(inv.dmi_product, "");
	assert_string_equal(inv.dmi_serial, "");
	assert_string_equal(inv.dmi_uuid, "");
	assert_int_equal(inv.firmware, INV_FW_UNKNOWN);
	assert_false(inv.kvm);
	assert_int_equal(inv.n_groups, 0);
	assert_null(inv.groups);
	assert_int_equal(inv.n_nics, 0);
	assert_string_equal(inv.kernel_version, "");
	assert_string_equal(inv.hostname, "");
	inventory_free(&inv);

	/* No sysfs or devfs root at all: still a board. */
	rmdir(b.sys);
	rmdir(b.dev);
	assert_int_equal(inventory_read(&b.roots, &inv), 0);
	assert_int_equal(inv.firmware, INV_FW_UNKNOWN);
	assert_int_equal(inv.numa_nodes, 1);
	assert_false(inv.kvm);
	inventory_free(&inv);
	rm_rf(tmp);
}

static void test_missing_procfs_root(void **state)
{
	(void)state;
	char tmp[PATH_MAX];
	struct board_paths b;
	make_tmp(tmp, sizeof(tmp));
	roots_under(&b, tmp); /* proc/ is not created */

	static struct inventory inv, before;
	memset(&inv, 0x5a, sizeof(inv));
	memcpy(&before, &inv, sizeof(inv));
	int fd0 = open_fds();
	assert_int_equal(inventory_read(&b.roots, &inv), -ENOENT);
	assert_int_equal(open_fds(), fd0);
	assert_memory_equal(&inv, &before, sizeof(inv));
	rm_rf(tmp);
}

static void test_odd_files(void **state)
{
	(void)state;
	char tmp[PATH_MAX];
	struct board_paths b;
	struct inventory inv;
	make_tmp(tmp, sizeof(tmp));
	roots_under(&b, tmp);

	/* cpuinfo without "model name" (as on some arches), flags only on cpu 0. */
	/* Newer kernels list ept in a separate "vmx flags" line. */
	put(b.proc, "cpuinfo",
	    "processor\t: 0\nflags\t\t: fpu svmx vmx\nvmx flags\t: vnmi ept_ad ept\n\nprocessor\t: 1\n\n");
	/* MemTotal that would overflow uint64 in bytes. */
	put(b.proc, "meminfo", "MemTotal:       18446744073709551615 kB\n");
	put(b.proc, "sys/kernel/hostname", "  spaced-host \n");
	mkdir_p(b.dev);
	mkdir_p(b.sys);
	/* DMI: upper-case UUID, control bytes, an over-long product name. */
	put(b.sys, "class/dmi/id/product_uuid", "5B0F4C0E-9A31-4D0B-8E2A-0A0000000A01\n");
	put(b.sys, "class/dmi/id/sys_vendor", "Acme\x01\x7f\xc3\xa9 Corp\n");
	char longname[600];
	memset(longname, 'P', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	put(b.sys, "class/dmi/id/product_name", longname);
	put(b.sys, "firmware/acpi/pm_profile", "1\n");
	/* IOMMU groups: junk names are ignored; a device whose PCI attributes are gone. */
	put(b.sys, "kernel/iommu_groups/007/type", "DMA\n");
	put(b.sys, "kernel/iommu_groups/abc/type", "DMA\n");
	put(b.sys, "kernel/iommu_groups/4294967296/type", "DMA\n");
	linkf(b.sys, "../../../../devices/pci0000:00/0000:00:05.0", "kernel/iommu_groups/9/devices/0000:00:05.0");
	put(b.sys, "bus/pci/devices/0000:00:06.0/vendor", "0xzz12\n");
	put(b.sys, "bus/pci/devices/0000:00:06.0/device", "0x123456789\n");
	put(b.sys, "bus/pci/devices/0000:00:06.0/class", "0x0c0330\n");
	linkf(b.sys, "../../../../devices/pci0000:00/0000:00:06.0", "kernel/iommu_groups/9/devices/0000:00:06.0");
	/* NICs: no attribute files at all; nonsense speeds; a virtual one. */
	linkf(b.sys, "../../../nowhere", "class/net/bare0/device");
	linkf(b.sys, "../../../nowhere", "class/net/big0/device");
	put(b.sys, "class/net/big0/speed", "99999999999\n");
	put(b.sys, "class/net/big0/operstate", "dormant\n");
	put(b.sys, "class/net/big0/carrier", "0\n");
	linkf(b.sys, "../../../nowhere", "class/net/neg0/device");
	put(b.sys, "class/net/neg0/speed", "-10\n");
	put(b.sys, "class/net/neg0/address", "80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:0b:0c\n");
	put(b.sys, "class/net/br0/operstate", "up\n");
	put(b.sys, "class/net/br0/bridge/vlan_filtering", "1\n");
	/* big0 is the uplink of br0 (the firmware's bridge for guests' NICs). */
	linkf(b.sys, "../br0", "class/net/big0/master");
	put(b.sys, "class/net/lo/operstate", "unknown\n");
	linkf(b.sys, "../../../nowhere", "class/net/lo/device");

	assert_int_equal(inventory_read(&b.roots, &inv), 0);
	assert_string_equal(inv.cpu_model, "");
	assert_int_equal(inv.cpus, 2);
	assert_int_equal(inv.n_virt_flags, 2); /* "svmx" is not "svm" */
	assert_string_equal(inv.virt_flags[0], "vmx");
	assert_string_equal(inv.virt_flags[1], "ept");
	assert_int_equal(inv.memory_bytes, 0);
	assert_string_equal(inv.hostname, "spaced-host");
	assert_string_equal(inv.kernel_version, "");
	assert_string_equal(inv.dmi_uuid, "5b0f4c0e-9a31-4d0b-8e2a-0a0000000a01");
	assert_string_equal(inv.dmi_vendor, "Acme???? Corp");
	assert_int_equal(strlen(inv.dmi_product), INV_MAX_STR - 1);
	assert_int_equal(inv.firmware, INV_FW_BIOS);

	assert_int_equal(inv.n_groups, 1);
	assert_int_equal(inv.groups[0].id, 9);
	assert_int_equal(inv.groups[0].n_devices, 2);
	assert_pci(group_dev(&inv, 0, 0), "0000:00:05.0", 0, 0, 0, "");
	assert_pci(group_dev(&inv, 0, 1), "0000:00:06.0", 0, 0, 0x0c0330, "");

	assert_int_equal(inv.n_nics, 3); /* br0 and lo skipped */
	assert_nic(&inv.nics[0], "bare0", "", false, -1);
	assert_nic(&inv.nics[1], "big0", "", false, -1);
	/* An InfiniBand address (59 characters) fits whole. */
	assert_nic(&inv.nics[2], "neg0", "80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:0b:0c", false, -1);
	assert_string_equal(inv.nics[0].master, "");
	assert_string_equal(inv.nics[1].master, "br0");
	assert_string_equal(inv.bridge.name, "br0");
	assert_string_equal(inv.bridge.uplink, "big0");
	assert_true(inv.bridge.up);
	assert_false(inv.bridge.uplink_link);
	assert_true(inv.bridge.vlan_filtering);
	inventory_free(&inv);
	rm_rf(tmp);
}

/* ---- limits ------------------------------------------------------------ */

#define N_TEST_GROUPS 300
#define N_TEST_GROUP_DEVS 40
#define N_TEST_NICS 80

static void test_limits(void **state)
{
	(void)state;
	char tmp[PATH_MAX];
	struct board_paths b;
	struct inventory inv;
	make_tmp(tmp, sizeof(tmp));
	roots_under(&b, tmp);
	mkdir_p(b.dev);

	/* A flags line longer than the reader looks at: what fits is used, the
	 * cut word is dropped, and the lines after it are still read. */
	size_t flen = 40000;
	char *cpuinfo = malloc(flen + 256);
	assert_non_null(cpuinfo);
	char *p = cpuinfo;
	p += sprintf(p, "processor\t: 0\nflags\t\t: svm");
	while ((size_t)(p - cpuinfo) < flen)
		p += sprintf(p, " xflag%05zu", (size_t)(p - cpuinfo));
	p += sprintf(p, " npt\nmodel name\t: Long Flags CPU\n\nprocessor\t: 1\n");
	put(b.proc, "cpuinfo", cpuinfo);
	free(cpuinfo);

	/* More groups than allowed, created from the highest id down. */
	for (int g = N_TEST_GROUPS - 1; g >= 0; g--)
		putf(b.sys, "DMA\n", "kernel/iommu_groups/%d/type", g);
	/* A group with more devices than allowed. */
	for (int d = N_TEST_GROUP_DEVS - 1; d >= 0; d--) {
		char target[128];
		snprintf(target, sizeof(target), "../../../../devices/pci0000:00/0000:00:%02x.0", d);
		linkf(b.sys, target, "kernel/iommu_groups/5/devices/0000:00:%02x.0", d);
		putf(b.sys, "0x8086\n", "bus/pci/devices/0000:00:%02x.0/vendor", d);
	}
	/* More NICs than allowed. */
	for (int n = N_TEST_NICS - 1; n >= 0; n--) {
		linkf(b.sys, "../../../nowhere", "class/net/eth%03d/device", n);
		putf(b.sys, "up\n", "class/net/eth%03d/operstate", n);
	}

	int fd0 = open_fds();
	assert_int_equal(inventory_read(&b.roots, &inv), 0);
	assert_int_equal(open_fds(), fd0);
	assert_int_equal(inv.cpus, 2);
	assert_string_equal(inv.cpu_model, "Long Flags CPU");
	assert_int_equal(inv.n_virt_flags, 1);
	assert_string_equal(inv.virt_flags[0], "svm");

	assert_int_equal(inv.n_groups, INV_MAX_GROUPS);
	for (unsigned i = 0; i < inv.n_groups; i++) {
		assert_int_equal(inv.groups[i].id, i); /* the lowest ids, in order */
		assert_true(inv.groups[i].n_devices <= INV_MAX_GROUP_DEVICES);
	}
	assert_int_equal(inv.groups[5].n_devices, INV_MAX_GROUP_DEVICES);
	for (unsigned d = 0; d < INV_MAX_GROUP_DEVICES; d++) {
		char want[32];
		snprintf(want, sizeof(want), "0000:00:%02x.0", d);
		assert_string_equal(inv.groups[5].devices[d].address, want);
		assert_int_equal(inv.groups[5].devices[d].vendor, 0x8086);
	}

	assert_int_equal(inv.n_nics, INV_MAX_NICS);
	for (unsigned n = 0; n < inv.n_nics; n++) {
		char want[32];
		snprintf(want, sizeof(want), "eth%03u", n);
		assert_string_equal(inv.nics[n].name, want);
		assert_true(inv.nics[n].link);
	}
	inventory_free(&inv);

	/* Wherever the cut falls in an over-long flags line made of "nptz"
	 * words, the piece left ("n", "np", "npt", ...) must not count as a
	 * flag: one of five shifts puts "npt" right at the cut. */
	for (int shift = 0; shift < 5; shift++) {
		char *line = malloc(flen + 64);
		assert_non_null(line);
		char *q = line + sprintf(line, "processor\t: 0\nflags\t\t: %.*s", shift, "xxxx");
		while ((size_t)(q - line) < flen)
			q += sprintf(q, " nptz");
		sprintf(q, "\n");
		put(b.proc, "cpuinfo", line);
		free(line);
		assert_int_equal(inventory_read(&b.roots, &inv), 0);
		assert_int_equal(inv.n_virt_flags, 0);
		inventory_free(&inv);
	}
	rm_rf(tmp);
}

/* ---- this machine and the destructor ----------------------------------- */

static void test_this_machine(void **state)
{
	(void)state;
	struct inventory inv;
	/* NULL roots mean /sys, /proc and /dev: whatever this host has must parse. */
	assert_int_equal(inventory_read(NULL, &inv), 0);
	assert_true(inv.cpus >= 1);
	assert_true(inv.memory_bytes > 0);
	assert_true(inv.numa_nodes >= 1);
	assert_true(inv.kernel_version[0] != '\0');
	assert_true(inv.n_groups <= INV_MAX_GROUPS);
	assert_true(inv.n_nics <= INV_MAX_NICS);
	for (unsigned i = 1; i < inv.n_nics; i++)
		assert_true(strcmp(inv.nics[i - 1].name, inv.nics[i].name) < 0);
	for (unsigned i = 1; i < inv.n_groups; i++)
		assert_true(inv.groups[i - 1].id < inv.groups[i].id);
	inventory_free(&inv);
}

static void test_free_accepts_empty(void **state)
{
	(void)state;
	struct inventory inv;
	memset(&inv, 0, sizeof(inv));
	inventory_free(&inv);
	inventory_free(NULL);
	assert_null(inv.groups);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_board_a),
		cmocka_unit_test(test_board_b),
		cmocka_unit_test(test_board_c),
		cmocka_unit_test(test_boards_distinct),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_missing_procfs_root),
		cmocka_unit_test(test_odd_files),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_this_machine),
		cmocka_unit_test(test_free_accepts_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
