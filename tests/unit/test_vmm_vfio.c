/* VFIO on fixture trees: IOMMU group listing, group viability, binding to
 * vfio-pci through driver_override and giving the device back.
 *
 * The tree is built from tests/fixtures/vfio/board.txt in a temporary
 * directory.  Writing to real sysfs makes the kernel act; here the root's
 * write_attr hook writes the file and then plays the kernel: unbind drops
 * the driver link, drivers_probe binds the driver_override driver (or the
 * device's native one), bind links the driver, vfio-pci makes
 * /dev/vfio/<group>, driver_override "\n" reads back "(null)".  Every write
 * is logged so the tests can check the exact sequence. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
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

#include "vmm/vfio.h"
#include "vmm/vmm.h"

#define MAX_DEVS 32
#define MAX_LOG 32

struct fdev {
	char bdf[16];
	char group[8];
	char cls[16], vendor[8], device[8];
	char native[32];
};

struct fake {
	char top[128];
	char sysfs[160];
	char devfs[160];
	struct fdev devs[MAX_DEVS];
	int ndevs;
	char log[MAX_LOG][160];
	int nlog;
	int probe_refuses;   /* drivers_probe binds nothing */
	struct vmm_root root;
};

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void get(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;
	assert_non_null(f);
	n = fread(out, 1, len - 1, f);
	fclose(f);
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
}

static void mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	mkdir(tmp, 0755);
}

static const struct fdev *fdev_find(const struct fake *k, const char *bdf)
{
	for (int i = 0; i < k->ndevs; i++)
		if (strcmp(k->devs[i].bdf, bdf) == 0)
			return &k->devs[i];
	return NULL;
}

/* The driver the device is bound to, "" if none. */
static void drv_of(const struct fake *k, const char *bdf, char *out, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver", k->sysfs, bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		out[0] = '\0';
		return;
	}
	target[n] = '\0';
	snprintf(out, len, "%s", strrchr(target, '/') + 1);
}

static int link_drv(struct fake *k, const char *bdf, const char *drv)
{
	char path[PATH_MAX], target[PATH_MAX];
	const struct fdev *d = fdev_find(k, bdf);
	snprintf(target, sizeof(target), "%s/bus/pci/drivers/%s", k->sysfs, drv);
	if (access(target, F_OK) != 0)
		return -ENODEV;
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver", k->sysfs, bdf);
	if (symlink(target, path) < 0)
		return -errno;
	if (strcmp(drv, "vfio-pci") == 0 && d && strcmp(d->group, "-") != 0) {
		snprintf(path, sizeof(path), "%s/vfio/%s", k->devfs, d->group);
		put(path, "");
	}
	return 0;
}

static void unlink_drv(struct fake *k, const char *bdf)
{
	char path[PATH_MAX], cur[64];
	const struct fdev *d = fdev_find(k, bdf);
	drv_of(k, bdf, cur, sizeof(cur));
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver", k->sysfs, bdf);
	unlink(path);
	if (strcmp(cur, "vfio-pci") == 0 && d) {
		snprintf(path, sizeof(path), "%s/vfio/%s", k->devfs, d->group);
		unlink(path);
	}
}

/* rel is exactly prefix + X + suffix with X free of '/': 1 and X. */
static int match(const char *rel, const char *prefix, const char *suffix, char *x, size_t xlen)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), rl = strlen(rel), n;
	if (rl <= pl + sl || strncmp(rel, prefix, pl) != 0 || strcmp(rel + rl - sl, suffix) != 0)
		return 0;
	n = rl - pl - sl;
	if (n >= xlen || memchr(rel + pl, '/', n))
		return 0;
	memcpy(x, rel + pl, n);
	x[n] = '\0';
	return 1;
}

/* The kernel's side of a sysfs write. */
static int fake_write(const struct vmm_root *root, const char *path, const char *value)
{
	struct fake *k = root->ctx;
	const char *rel;
	char drv[64], cur[64], bdf[16], ovr[64], opath[PATH_MAX];
	int r;

	assert_true(strncmp(path, k->sysfs, strlen(k->sysfs)) == 0);
	rel = path + strlen(k->sysfs) + 1;
	assert_true(k->nlog < MAX_LOG);
	snprintf(k->log[k->nlog++], sizeof(k->log[0]), "%s=%s", rel,
		 strcmp(value, "\n") == 0 ? "\\n" : value);
	r = vmm_root_write_attr(root, path, value);
	if (r < 0)
		return r;

	if (match(rel, "bus/pci/devices/", "/driver_override", bdf, sizeof(bdf))) {
		if (strcmp(value, "\n") == 0 || value[0] == '\0')
			put(path, "(null)\n");
		return 0;
	}
	if (strcmp(rel, "bus/pci/drivers_probe") == 0) {
		drv_of(k, value, cur, sizeof(cur));
		if (cur[0] || k->probe_refuses)
			return 0;
		snprintf(opath, sizeof(opath), "%s/bus/pci/devices/%s/driver_override", k->sysfs, value);
		get(opath, ovr, sizeof(ovr));
		if (strcmp(ovr, "(null)") != 0) {
			link_drv(k, value, ovr); /* a missing driver binds nothing */
			return 0;
		}
		if (fdev_find(k, value) && strcmp(fdev_find(k, value)->native, "-") != 0)
			link_drv(k, value, fdev_find(k, value)->native);
		return 0;
	}
	if (match(rel, "bus/pci/drivers/", "/unbind", drv, sizeof(drv))) {
		drv_of(k, value, cur, sizeof(cur));
		if (strcmp(cur, drv) != 0)
			return -ENODEV;
		unlink_drv(k, value);
		return 0;
	}
	if (match(rel, "bus/pci/drivers/", "/bind", drv, sizeof(drv))) {
		drv_of(k, value, cur, sizeof(cur));
		if (cur[0])
			return -EBUSY;
		return link_drv(k, value, drv);
	}
	return 0;
}

static void add_driver(struct fake *k, const char *drv)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/%s", k->sysfs, drv);
	if (access(path, F_OK) == 0)
		return;
	mkdirs(path);
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/%s/bind", k->sysfs, drv);
	put(path, "");
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/%s/unbind", k->sysfs, drv);
	put(path, "");
}

static int setup(void **state)
{
	const char *fx = getenv("SKY_VMM_FIXTURES");
	char path[PATH_MAX], target[PATH_MAX], line[512];
	struct fake *k = calloc(1, sizeof(*k));
	FILE *f;

	assert_non_null(k);
	if (!fx) {
		fprintf(stderr, "SKY_VMM_FIXTURES is not set (meson test sets it to tests/fixtures/vfio)\n");
		return -1;
	}
	snprintf(k->top, sizeof(k->top), "/tmp/skyvmm-vfio-XXXXXX");
	assert_non_null(mkdtemp(k->top));
	snprintf(k->sysfs, sizeof(k->sysfs), "%s/sys", k->top);
	snprintf(k->devfs, sizeof(k->devfs), "%s/dev", k->top);
	snprintf(path, sizeof(path), "%s/vfio", k->devfs);
	mkdirs(path);
	snprintf(path, sizeof(path), "%s/vfio/vfio", k->devfs);
	put(path, "");
	snprintf(path, sizeof(path), "%s/bus/pci/drivers_probe", k->sysfs);
	mkdirs(k->sysfs);
	snprintf(path, sizeof(path), "%s/bus/pci", k->sysfs);
	mkdirs(path);
	snprintf(path, sizeof(path), "%s/bus/pci/drivers_probe", k->sysfs);
	put(path, "");
	add_driver(k, "vfio-pci");

	snprintf(path, sizeof(path), "%s/board.txt", fx);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		struct fdev *d = &k->devs[k->ndevs];
		char dir[512];
		if (line[0] == '#' || line[0] == '\n')
			continue;
		assert_int_equal(sscanf(line, "%15s %7s %15s %7s %7s %31s", d->bdf, d->group, d->cls, d->vendor,
					d->device, d->native), 6);
		k->ndevs++;
		snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", k->sysfs, d->bdf);
		mkdirs(dir);
		snprintf(path, sizeof(path), "%s/class", dir);
		snprintf(target, sizeof(target), "%s\n", d->cls);
		put(path, target);
		snprintf(path, sizeof(path), "%s/vendor", dir);
		snprintf(target, sizeof(target), "%s\n", d->vendor);
		put(path, target);
		snprintf(path, sizeof(path), "%s/device", dir);
		snprintf(target, sizeof(target), "%s\n", d->device);
		put(path, target);
		snprintf(path, sizeof(path), "%s/driver_override", dir);
		put(path, "(null)\n");
		if (strcmp(d->group, "-") != 0) {
			snprintf(path, sizeof(path), "%s/kernel/iommu_groups/%s/devices", k->sysfs, d->group);
			mkdirs(path);
			snprintf(path, sizeof(path), "%s/kernel/iommu_groups/%s/devices/%s", k->sysfs, d->group,
				 d->bdf);
			assert_int_equal(symlink(dir, path), 0);
			snprintf(path, sizeof(path), "%s/iommu_group", dir);
			snprintf(target, sizeof(target), "%s/kernel/iommu_groups/%s", k->sysfs, d->group);
			assert_int_equal(symlink(target, path), 0);
		}
		if (strcmp(d->native, "-") != 0) {
			add_driver(k, d->native);
			assert_int_equal(link_drv(k, d->bdf, d->native), 0);
		}
	}
	fclose(f);
	k->root.sysfs = k->sysfs;
	k->root.devfs = k->devfs;
	k->root.write_attr = fake_write;
	k->root.ctx = k;
	*state = k;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fake *k = *state;
	nftw(k->top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(k);
	return 0;
}

static void assert_log(const struct fake *k, const char *const *want, int n)
{
	for (int i = 0; i < k->nlog && i < n; i++)
		if (strcmp(k->log[i], want[i]) != 0)
			fail_msg("write %d: got \"%s\", want \"%s\"", i, k->log[i], want[i]);
	if (k->nlog != n) {
		for (int i = 0; i < k->nlog; i++)
			fprintf(stderr, "write %d: %s\n", i, k->log[i]);
		fail_msg("%d writes, want %d", k->nlog, n);
	}
}

static void assert_driver(struct fake *k, const char *bdf, const char *want)
{
	char cur[64];
	drv_of(k, bdf, cur, sizeof(cur));
	assert_string_equal(cur, want);
}

static void test_list_groups(void **state)
{
	struct fake *k = *state;
	struct vfio_host_group *g = NULL;
	struct vmm_error err = { "" };
	size_t n = 0;

	assert_int_equal(vfio_list_groups(&k->root, &g, &n, &err), 0);
	assert_int_equal(n, 9);
	for (size_t i = 1; i < n; i++)
		assert_true(g[i - 1].id < g[i].id);
	assert_int_equal(g[8].id, 10);
	/* group 2: the edu device, no driver */
	assert_int_equal(g[2].id, 2);
	assert_int_equal(g[2].ndevs, 1);
	assert_string_equal(g[2].devs[0].name, "0000:00:02.0");
	assert_string_equal(g[2].devs[0].driver, "");
	assert_true(g[2].devs[0].pci);
	assert_int_equal(g[2].devs[0].vendor, 0x1234);
	assert_int_equal(g[2].devs[0].device, 0x11e8);
	assert_int_equal(g[2].devs[0].class_code, 0x00ff00);
	/* group 4: root port + NIC, sorted */
	assert_int_equal(g[4].ndevs, 2);
	assert_string_equal(g[4].devs[0].name, "0000:00:1c.0");
	assert_string_equal(g[4].devs[0].driver, "pcieport");
	assert_string_equal(g[4].devs[1].name, "0000:01:00.0");
	assert_string_equal(g[4].devs[1].driver, "e1000e");
	assert_int_equal(g[5].ndevs, 3);
	vfio_groups_free(g, n);
	vfio_groups_free(NULL, 0);
}

static void test_list_no_iommu(void **state)
{
	struct vmm_root root = { .sysfs = "/nonexistent-sysfs", .devfs = "/nonexistent-dev" };
	struct vfio_host_group *g = (struct vfio_host_group *)&root;
	size_t n = 99;
	(void)state;
	assert_int_equal(vfio_list_groups(&root, &g, &n, NULL), 0);
	assert_null(g);
	assert_int_equal(n, 0);
}

static void test_viability(void **state)
{
	struct fake *k = *state;
	struct vmm_error err = { "" };
	unsigned group = 99;

	assert_int_equal(vfio_check_viable(&k->root, "0000:00:02.0", &err), 0);  /* alone */
	assert_int_equal(vfio_check_viable(&k->root, "01:00.0", &err), 0);       /* + root port */
	assert_int_equal(vfio_check_viable(&k->root, "0000:03:00.1", &err), 0);  /* + pci-stub */

	assert_int_equal(vfio_check_viable(&k->root, "0000:02:00.0", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "group 6 also holds 0000:02:00.1, bound to the host driver snd_hda_intel"));
	assert_int_equal(vfio_check_viable(&k->root, "0000:00:1f.2", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "0000:00:1f.0"));
	assert_non_null(strstr(err.msg, "lpc_ich"));

	assert_int_equal(vfio_check_viable(&k->root, "0000:00:1c.0", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "bridge"));
	assert_int_equal(vfio_check_viable(&k->root, "0000:09:00.0", &err), -ENODEV);
	assert_non_null(strstr(err.msg, "no PCI device 0000:09:00.0"));
	assert_int_equal(vfio_check_viable(&k->root, "0000:05:00.0", &err), -ENODEV);
	assert_non_null(strstr(err.msg, "intel_iommu=on"));
	assert_int_equal(vfio_check_viable(&k->root, "nonsense", &err), -EINVAL);

	assert_int_equal(vfio_device_group(&k->root, "0000:01:00.0", &group, &err), 0);
	assert_int_equal(group, 4);
	/* a sibling already on vfio-pci does not block */
	unlink_drv(k, "0000:02:00.1");
	link_drv(k, "0000:02:00.1", "vfio-pci");
	assert_int_equal(vfio_check_viable(&k->root, "0000:02:00.0", &err), 0);
	/* an unbound sibling neither */
	unlink_drv(k, "0000:02:00.1");
	assert_int_equal(vfio_check_viable(&k->root, "0000:02:00.0", &err), 0);
	assert_int_equal(k->nlog, 0); /* checks never write */
}

static void test_claim_release_bound(void **state)
{
	static const char *const want[] = {
		"bus/pci/devices/0000:01:00.0/driver_override=vfio-pci",
		"bus/pci/drivers/e1000e/unbind=0000:01:00.0",
		"bus/pci/drivers_probe=0000:01:00.0",
		"bus/pci/drivers/vfio-pci/unbind=0000:01:00.0",
		"bus/pci/devices/0000:01:00.0/driver_override=\\n",
		"bus/pci/drivers/e1000e/bind=0000:01:00.0",
	};
	struct fake *k = *state;
	struct vmm_error err = { "" };
	struct vfio_claim *c = NULL;
	char path[PATH_MAX], text[64];
	int r;

	r = vfio_claim(&k->root, "01:00.0", &c, &err);
	if (r < 0)
		fail_msg("claim: %s", err.msg);
	assert_string_equal(vfio_claim_bdf(c), "0000:01:00.0");
	assert_string_equal(vfio_claim_orig_driver(c), "e1000e");
	assert_int_equal(vfio_claim_group(c), 4);
	assert_driver(k, "0000:01:00.0", "vfio-pci");
	snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:01:00.0/driver_override", k->sysfs);
	get(path, text, sizeof(text));
	assert_string_equal(text, "vfio-pci");
	snprintf(path, sizeof(path), "%s/vfio/4", k->devfs);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(k->nlog, 3);

	assert_int_equal(vfio_release(c, &err), 0);
	assert_driver(k, "0000:01:00.0", "e1000e");
	snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:01:00.0/driver_override", k->sysfs);
	get(path, text, sizeof(text));
	assert_string_equal(text, "(null)");
	assert_log(k, want, 6);
	vfio_claim_free(NULL);
}

static void test_claim_release_unbound(void **state)
{
	static const char *const want[] = {
		"bus/pci/devices/0000:00:02.0/driver_override=vfio-pci",
		"bus/pci/drivers_probe=0000:00:02.0",
		"bus/pci/drivers/vfio-pci/unbind=0000:00:02.0",
		"bus/pci/devices/0000:00:02.0/driver_override=\\n",
	};
	struct fake *k = *state;
	struct vmm_error err = { "" };
	struct vfio_claim *c = NULL;

	assert_int_equal(vfio_claim(&k->root, "0000:00:02.0", &c, &err), 0);
	assert_string_equal(vfio_claim_orig_driver(c), "");
	assert_driver(k, "0000:00:02.0", "vfio-pci");
	vfio_claim_free(c); /* releases too */
	assert_driver(k, "0000:00:02.0", "");
	assert_log(k, want, 4);
}

/* A driver_override set before us comes back. */
static void test_claim_keeps_override(void **state)
{
	static const char *const want[] = {
		"bus/pci/devices/0000:03:00.0/driver_override=vfio-pci",
		"bus/pci/drivers/pci-stub/unbind=0000:03:00.0",
		"bus/pci/drivers_probe=0000:03:00.0",
		"bus/pci/drivers/vfio-pci/unbind=0000:03:00.0",
		"bus/pci/devices/0000:03:00.0/driver_override=pci-stub",
		"bus/pci/drivers/pci-stub/bind=0000:03:00.0",
	};
	struct fake *k = *state;
	struct vmm_error err = { "" };
	struct vfio_claim *c = NULL;
	char path[PATH_MAX], text[64];

	snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:03:00.0/driver_override", k->sysfs);
	put(path, "pci-stub\n");
	/* 03:00.1 (igb) shares the group: give it away first */
	unlink_drv(k, "0000:03:00.1");
	assert_int_equal(vfio_claim(&k->root, "0000:03:00.0", &c, &err), 0);
	assert_int_equal(vfio_release(c, &err), 0);
	get(path, text, sizeof(text));
	assert_string_equal(text, "pci-stub");
	assert_driver(k, "0000:03:00.0", "pci-stub");
	assert_log(k, want, 6);
}

static void test_claim_refused_writes_nothing(void **state)
{
	struct fake *k = *state;
	struct vmm_error err = { "" };
	struct vfio_claim *c = (struct vfio_claim *)k;

	assert_int_equal(vfio_claim(&k->root, "0000:02:00.0", &c, &err), -EBUSY);
	assert_ptr_equal(c, (struct vfio_claim *)k);
	assert_non_null(strstr(err.msg, "snd_hda_intel"));
	assert_int_equal(k->nlog, 0);
	assert_driver(k, "0000:02:00.0", "nouveau");
}

static void test_claim_no_vfio_driver(void **state)
{
	struct fake *k = *state;
	struct vmm_error err = { "" };
	struct vfio_claim *c = NULL;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/bus/pci/drivers/vfio-pci/bind", k->sysfs);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/vfio-pci/unbind", k->sysfs);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/vfio-pci", k->sysfs);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(vfio_claim(&k->root, "0000:01:00.0", &c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "modprobe vfio-pci"));
	assert_int_equal(k->nlog, 0);
	assert_driver(k, "0000:01:00.0", "e1000e");
}

/* vfio-pci does not take the device: it goes back where it was. */
static void test_claim_probe_fails_rolls_back(void **state)
{
	static const char *const want[] = {
		"bus/pci/devices/0000:01:00.0/driver_override=vfio-pci",
		"bus/pci/drivers/e1000e/unbind=0000:01:00.0",
		"bus/pci/drivers_probe=0000:01:00.0",
		"bus/pci/devices/0000:01:00.0/driver_override=\\n",
		"bus/pci/drivers/e1000e/bind=0000:01:00.0",
	};
	struct fake *k = *state;
	struct vmm_error err = { "" };
	struct vfio_claim *c = NULL;

	k->probe_refuses = 1;
	assert_int_equal(vfio_claim(&k->root, "0000:01:00.0", &c, &err), -EIO);
	assert_null(c);
	assert_non_null(strstr(err.msg, "vfio-pci did not take 0000:01:00.0"));
	assert_driver(k, "0000:01:00.0", "e1000e");
	assert_log(k, want, 5);
}

static void test_claim_already_vfio(void **state)
{
	struct fake *k = *state;
	struct vmm_error err = { "" };
	struct vfio_claim *c = NULL;

	unlink_drv(k, "0000:00:02.0");
	link_drv(k, "0000:00:02.0", "vfio-pci");
	assert_int_equal(vfio_claim(&k->root, "0000:00:02.0", &c, &err), 0);
	assert_string_equal(vfio_claim_orig_driver(c), "vfio-pci");
	assert_int_equal(vfio_release(c, &err), 0);
	assert_driver(k, "0000:00:02.0", "vfio-pci"); /* left as found */
	assert_int_equal(k->nlog, 0);
}

/* Through vmm_guest_create: when the backend fails after the devices were
 * claimed, they go back. */
static void test_create_failure_gives_devices_back(void **state)
{
	struct fake *k = *state;
	const char *pci[] = { "0000:00:02.0", "01:00.0" };
	struct vmm_config cfg = { .qemu_path = "/nonexistent/qemu", .root = &k->root };
	struct vmm_guest_spec s = { 0 };
	struct vmm_error err = { "" };
	struct vmm_guest *g = NULL;
	unsigned char img[0x300];
	int kfd = memfd_create("bz", MFD_CLOEXEC);

	memset(img, 0, sizeof(img));
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = 0x0f;
	img[0x207] = 0x02;
	assert_int_equal(write(kfd, img, sizeof(img)), (ssize_t)sizeof(img));
	s.name = "vfio-guest";
	s.vcpus = 1;
	s.memory = 256ull << 20;
	s.kernel_fd = kfd;
	s.initrd_fd = -1;
	s.disk_fd = -1;
	s.pci = pci;
	s.npci = 2;
	assert_int_equal(vmm_guest_create(vmm_backend_find("qemu"), &cfg, &s, &g, &err), -ENOENT);
	assert_null(g);
	assert_non_null(strstr(err.msg, "QEMU not found"));
	assert_driver(k, "0000:00:02.0", "");
	assert_driver(k, "0000:01:00.0", "e1000e");
	assert_int_equal(k->nlog, 5 + 5); /* 2 + 3 writes to claim, 2 + 3 to give back */
	/* the same device twice is refused before anything is written */
	pci[1] = "00:02.0";
	k->nlog = 0;
	assert_int_equal(vmm_guest_create(vmm_backend_find("qemu"), &cfg, &s, &g, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "listed twice"));
	assert_int_equal(k->nlog, 0);
	close(kfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_no_iommu),
		cmocka_unit_test_setup_teardown(test_list_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_viability, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_release_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_release_unbound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_keeps_override, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_refused_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_no_vfio_driver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_probe_fails_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_already_vfio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_failure_gives_devices_back, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
