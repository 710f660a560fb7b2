/* VFIO/IOMMU groups through sysfs (see vfio.h for the viability rule). */
#include "vmm/vfio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vmm_priv.h"

#define VFIO_PCI "vfio-pci"

struct vfio_claim {
	struct vmm_root root;      /* sysfs/devfs point at the copies below */
	char *sysfs;
	char *devfs;
	char bdf[VFIO_BDF_LEN];
	char orig_driver[VFIO_DRIVER_MAX];
	char orig_override[VFIO_DRIVER_MAX]; /* "" when it was "(null)" */
	unsigned group;
	bool was_vfio;
};

/* Read a small attribute, trailing whitespace stripped. */
static int read_attr(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	return 0;
}

static int read_hex(const char *path, unsigned long max, unsigned long *out)
{
	char buf[32], *end;
	unsigned long v;
	int r = read_attr(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	errno = 0;
	v = strtoul(buf, &end, 16);
	if (errno || end == buf || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The last component of the symlink at path: "" (and 0) when it does not
 * exist, -errno on other errors. */
static int link_base(const char *path, char *out, size_t outlen)
{
	char target[PATH_MAX];
	const char *base;
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		if (errno == ENOENT) {
			out[0] = '\0';
			return 0;
		}
		return -errno;
	}
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= outlen)
		return -ENAMETOOLONG;
	snprintf(out, outlen, "%s", base);
	return 0;
}

static bool class_is_bridge(uint32_t class_code)
{
	unsigned cls = class_code >> 8;
	return cls == 0x0604 || cls == 0x0607;
}

/* Fill d from the device directory dir (sysfs device, any bus). */
static int read_dev(const char *dir, const char *name, struct vfio_host_dev *d)
{
	char path[PATH_MAX], bdf[VFIO_BDF_LEN];
	unsigned long v;
	int r;

	memset(d, 0, sizeof(*d));
	if (strlen(name) >= sizeof(d->name))
		return -ENAMETOOLONG;
	snprintf(d->name, sizeof(d->name), "%s", name);
	if ((r = vmm_fmt(path, sizeof(path), "%s/driver", dir)) < 0)
		return r;
	if ((r = link_base(path, d->driver, sizeof(d->driver))) < 0)
		return r;
	if (sky_parse_pci(name, bdf, VFIO_BDF_LEN) < 0)
		return 0;
	if ((r = vmm_fmt(path, sizeof(path), "%s/class", dir)) < 0)
		return r;
	if (read_hex(path, 0xffffff, &v) < 0)
		return 0; /* not a PCI device after all */
	d->class_code = (uint32_t)v;
	d->pci = true;
	if (vmm_fmt(path, sizeof(path), "%s/vendor", dir) == 0 && read_hex(path, 0xffff, &v) == 0)
		d->vendor = (uint16_t)v;
	if (vmm_fmt(path, sizeof(path), "%s/device", dir) == 0 && read_hex(path, 0xffff, &v) == 0)
		d->device = (uint16_t)v;
	return 0;
}

static int cmp_dev(const void *a, const void *b)
{
	return strcmp(((const struct vfio_host_dev *)a)->name, ((const struct vfio_host_dev *)b)->name);
}

static int cmp_group(const void *a, const void *b)
{
	unsigned x = ((const struct vfio_host_group *)a)->id, y = ((const struct vfio_host_group *)b)->id;
	return x < y ? -1 : x > y;
}

static int parse_uint(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;
	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT_MAX / 2)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* The devices of group id. */
static int read_group(const struct vmm_root *root, unsigned id, struct vfio_host_group *g,
		      struct vmm_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct vfio_host_dev *devs = NULL;
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int r;

	if ((r = vmm_fmt(dir, sizeof(dir), "%s/kernel/iommu_groups/%u/devices", vmm_root_sysfs(root), id)) < 0)
		return vmm_err(err, r, "sysfs path too long");
	d = opendir(dir);
	if (!d)
		return vmm_err(err, -errno, "cannot list %s: %s", dir, strerror(errno));
	devs = calloc(VFIO_GROUP_DEVS_MAX, sizeof(*devs));
	if (!devs) {
		r = vmm_err(err, -ENOMEM, "out of memory");
		goto fail_dir;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == VFIO_GROUP_DEVS_MAX) {
			r = vmm_err(err, -E2BIG, "IOMMU group %u holds more than %d devices", id,
				    VFIO_GROUP_DEVS_MAX);
			goto fail_devs;
		}
		if ((r = vmm_fmt(path, sizeof(path), "%s/%s", dir, de->d_name)) < 0 ||
		    (r = read_dev(path, de->d_name, &devs[n])) < 0) {
			r = vmm_err(err, r, "cannot read device %s of IOMMU group %u: %s", de->d_name, id,
				    strerror(-r));
			goto fail_devs;
		}
		n++;
	}
	closedir(d);
	qsort(devs, n, sizeof(*devs), cmp_dev);
	g->id = id;
	g->ndevs = n;
	g->devs = devs;
	return 0;

fail_devs:
	free(devs);
fail_dir:
	closedir(d);
	return r;
}

void vfio_groups_free(struct vfio_host_group *groups, size_t n)
{
	if (!groups)
		return;
	for (size_t i = 0; i < n; i++)
		free(groups[i].devs);
	free(groups);
}

int vfio_list_groups(const struct vmm_root *root, struct vfio_host_group **out, size_t *nout,
		     struct vmm_error *err)
{
	char dir[PATH_MAX];
	struct vfio_host_group *groups = NULL;
	struct dirent *de;
	size_t n = 0, cap = 0;
	unsigned id;
	DIR *d;
	int r;

	if ((r = vmm_fmt(dir, sizeof(dir), "%s/kernel/iommu_groups", vmm_root_sysfs(root))) < 0)
		return vmm_err(err, r, "sysfs path too long");
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			*out = NULL;
			*nout = 0;
			return 0;
		}
		return vmm_err(err, -errno, "cannot list %s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d))) {
		if (parse_uint(de->d_name, &id) < 0)
			continue;
		if (n == VFIO_GROUPS_MAX) {
			r = vmm_err(err, -E2BIG, "more than %d IOMMU groups", VFIO_GROUPS_MAX);
			goto fail_groups;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct vfio_host_group *ng;
			if (ncap > VFIO_GROUPS_MAX)
				ncap = VFIO_GROUPS_MAX;
			ng = realloc(groups, ncap * sizeof(*ng));
			if (!ng) {
				r = vmm_err(err, -ENOMEM, "out of memory");
				goto fail_groups;
			}
			groups = ng;
			cap = ncap;
		}
		r = read_group(root, id, &groups[n], err);
		if (r < 0)
			goto fail_groups;
		n++;
	}
	closedir(d);
	if (n)
		qsort(groups, n, sizeof(*groups), cmp_group);
	*out = groups;
	*nout = n;
	return 0;

fail_groups:
	vfio_groups_free(groups, n);
	closedir(d);
	return r;
}

int vfio_device_group(const struct vmm_root *root, const char *bdf, unsigned *group,
		      struct vmm_error *err)
{
	char path[PATH_MAX], base[32];
	struct stat st;
	unsigned id;
	int r;

	if ((r = vmm_fmt(path, sizeof(path), "%s/bus/pci/devices/%s", vmm_root_sysfs(root), bdf)) < 0)
		return vmm_err(err, r, "sysfs path too long");
	if (stat(path, &st) < 0)
		return vmm_err(err, -ENODEV, "no PCI device %s on this host (%s: %s); check the address with lspci -D",
			       bdf, path, strerror(errno));
	if ((r = vmm_fmt(path, sizeof(path), "%s/bus/pci/devices/%s/iommu_group", vmm_root_sysfs(root), bdf)) < 0)
		return vmm_err(err, r, "sysfs path too long");
	r = link_base(path, base, sizeof(base));
	if (r < 0 || !base[0] || parse_uint(base, &id) < 0)
		return vmm_err(err, -ENODEV,
			       "PCI device %s has no IOMMU group: turn the IOMMU on (VT-d or AMD-Vi in the "
			       "firmware setup, intel_iommu=on or amd_iommu=on on the kernel command line)",
			       bdf);
	*group = id;
	return 0;
}

int vfio_check_viable(const struct vmm_root *root, const char *bdf_in, struct vmm_error *err)
{
	char bdf[VFIO_BDF_LEN], dir[PATH_MAX];
	struct vfio_host_group g;
	struct vfio_host_dev self;
	unsigned id;
	int r;

	if (sky_parse_pci(bdf_in, bdf, VFIO_BDF_LEN) < 0)
		return vmm_err(err, -EINVAL, "\"%.32s\" is not a PCI address (DDDD:BB:DD.F)", bdf_in);
	r = vfio_device_group(root, bdf, &id, err);
	if (r < 0)
		return r;
	if ((r = vmm_fmt(dir, sizeof(dir), "%s/bus/pci/devices/%s", vmm_root_sysfs(root), bdf)) < 0)
		return vmm_err(err, r, "sysfs path too long");
	r = read_dev(dir, bdf, &self);
	if (r < 0)
		return vmm_err(err, r, "cannot read PCI device %s: %s", bdf, strerror(-r));
	if (self.pci && class_is_bridge(self.class_code))
		return vmm_err(err, -EINVAL,
			       "PCI device %s is a bridge (class 0x%06x): bridges cannot be passed through; "
			       "give the devices behind it", bdf, self.class_code);
	r = read_group(root, id, &g, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < g.ndevs; i++) {
		const struct vfio_host_dev *d = &g.devs[i];
		if (strcmp(d->name, bdf) == 0 || !d->driver[0] || strcmp(d->driver, VFIO_PCI) == 0 ||
		    strcmp(d->driver, "pci-stub") == 0 || (d->pci && class_is_bridge(d->class_code)))
			continue;
		r = vmm_err(err, -EBUSY,
			    "cannot pass through %s: its IOMMU group %u also holds %s, bound to the host "
			    "driver %s; pass %s to the same guest too, or unbind it (echo %s > "
			    "/sys/bus/pci/drivers/%s/unbind)",
			    bdf, id, d->name, d->driver, d->name, d->name, d->driver);
		free(g.devs);
		return r;
	}
	free(g.devs);
	return 0;
}

/* Write value to bus/pci/devices/<bdf>/<attr> (drv NULL) or to
 * bus/pci/drivers/<drv>/<attr>, or bus/pci/<attr> (drv ""). */
static int claim_write(struct vfio_claim *c, const char *drv, const char *attr, const char *value)
{
	char path[PATH_MAX];
	int r;
	if (!drv)
		r = vmm_fmt(path, sizeof(path), "%s/bus/pci/devices/%s/%s", c->root.sysfs, c->bdf, attr);
	else if (!drv[0])
		r = vmm_fmt(path, sizeof(path), "%s/bus/pci/%s", c->root.sysfs, attr);
	else
		r = vmm_fmt(path, sizeof(path), "%s/bus/pci/drivers/%s/%s", c->root.sysfs, drv, attr);
	if (r < 0)
		return r;
	return vmm_root_write(&c->root, path, value);
}

static int current_driver(const struct vfio_claim *c, char *out, size_t outlen)
{
	char path[PATH_MAX];
	int r = vmm_fmt(path, sizeof(path), "%s/bus/pci/devices/%s/driver", c->root.sysfs, c->bdf);
	if (r < 0)
		return r;
	return link_base(path, out, outlen);
}

/* Put the device back as it was: 0 or -errno with a message. */
static int restore(struct vfio_claim *c, struct vmm_error *err)
{
	char cur[VFIO_DRIVER_MAX];
	int r;

	if (c->was_vfio)
		return 0;
	r = current_driver(c, cur, sizeof(cur));
	if (r < 0)
		return vmm_err(err, r, "cannot read the driver of %s: %s", c->bdf, strerror(-r));
	if (strcmp(cur, VFIO_PCI) == 0) {
		r = claim_write(c, VFIO_PCI, "unbind", c->bdf);
		if (r < 0)
			return vmm_err(err, r, "cannot unbind %s from vfio-pci: %s", c->bdf, strerror(-r));
	}
	r = claim_write(c, NULL, "driver_override", c->orig_override[0] ? c->orig_override : "\n");
	if (r < 0)
		return vmm_err(err, r, "cannot reset driver_override of %s: %s", c->bdf, strerror(-r));
	if (!c->orig_driver[0])
		return 0;
	if (strcmp(cur, c->orig_driver) != 0 || strcmp(cur, VFIO_PCI) == 0) {
		r = claim_write(c, c->orig_driver, "bind", c->bdf);
		if (r < 0) /* let the kernel pick (it picks the original one) */
			claim_write(c, "", "drivers_probe", c->bdf);
	}
	r = current_driver(c, cur, sizeof(cur));
	if (r < 0 || strcmp(cur, c->orig_driver) != 0)
		return vmm_err(err, -EIO,
			       "PCI device %s did not go back to its driver %s (it is on %s); see dmesg, "
			       "then: echo %s > /sys/bus/pci/drivers/%s/bind",
			       c->bdf, c->orig_driver, r < 0 || !cur[0] ? "no driver" : cur, c->bdf,
			       c->orig_driver);
	return 0;
}

static void claim_free_mem(struct vfio_claim *c)
{
	free(c->sysfs);
	free(c->devfs);
	free(c);
}

int vfio_claim(const struct vmm_root *root, const char *bdf_in, struct vfio_claim **out,
	       struct vmm_error *err)
{
	char path[PATH_MAX], cur[VFIO_DRIVER_MAX], ovr[VFIO_DRIVER_MAX];
	struct vmm_error ignored;
	struct vfio_claim *c;
	struct stat st;
	int r;

	r = vfio_check_viable(root, bdf_in, err);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return vmm_err(err, -ENOMEM, "out of memory");
	c->sysfs = strdup(vmm_root_sysfs(root));
	c->devfs = strdup(vmm_root_devfs(root));
	if (!c->sysfs || !c->devfs) {
		r = vmm_err(err, -ENOMEM, "out of memory");
		goto fail_free;
	}
	c->root.sysfs = c->sysfs;
	c->root.devfs = c->devfs;
	c->root.write_attr = root ? root->write_attr : NULL;
	c->root.ctx = root ? root->ctx : NULL;
	sky_parse_pci(bdf_in, c->bdf, VFIO_BDF_LEN);
	r = vfio_device_group(root, c->bdf, &c->group, err);
	if (r < 0)
		goto fail_free;

	r = current_driver(c, cur, sizeof(cur));
	if (r < 0) {
		r = vmm_err(err, r, "cannot read the driver of %s: %s", c->bdf, strerror(-r));
		goto fail_free;
	}
	snprintf(c->orig_driver, sizeof(c->orig_driver), "%s", cur);
	if (strcmp(cur, VFIO_PCI) == 0) {
		c->was_vfio = true;
		goto check_dev;
	}
	if ((r = vmm_fmt(path, sizeof(path), "%s/bus/pci/drivers/%s", c->sysfs, VFIO_PCI)) < 0)
		goto fail_free;
	if (stat(path, &st) < 0) {
		r = vmm_err(err, -ENOENT,
			    "cannot pass through %s: the vfio-pci driver is not loaded (modprobe vfio-pci)",
			    c->bdf);
		goto fail_free;
	}
	if ((r = vmm_fmt(path, sizeof(path), "%s/bus/pci/devices/%s/driver_override", c->sysfs, c->bdf)) < 0)
		goto fail_free;
	r = read_attr(path, ovr, sizeof(ovr));
	if (r < 0) {
		r = vmm_err(err, r, "cannot read %s: %s (a kernel older than 3.16?)", path, strerror(-r));
		goto fail_free;
	}
	if (strcmp(ovr, "(null)") != 0)
		snprintf(c->orig_override, sizeof(c->orig_override), "%s", ovr);

	r = vmm_root_write(&c->root, path, VFIO_PCI);
	if (r < 0) {
		r = vmm_err(err, r, "cannot write %s: %s", path, strerror(-r));
		goto fail_free;
	}
	if (cur[0]) {
		r = claim_write(c, cur, "unbind", c->bdf);
		if (r < 0) {
			r = vmm_err(err, r, "cannot unbind %s from %s: %s", c->bdf, cur, strerror(-r));
			goto fail_restore;
		}
	}
	r = claim_write(c, "", "drivers_probe", c->bdf);
	if (r < 0) {
		r = vmm_err(err, r, "cannot probe %s for vfio-pci: %s (see dmesg)", c->bdf, strerror(-r));
		goto fail_restore;
	}
	r = current_driver(c, cur, sizeof(cur));
	if (r < 0 || strcmp(cur, VFIO_PCI) != 0) {
		r = vmm_err(err, -EIO, "vfio-pci did not take %s (its driver is %s): see dmesg", c->bdf,
			    r < 0 || !cur[0] ? "none" : cur);
		goto fail_restore;
	}

check_dev:
	if ((r = vmm_fmt(path, sizeof(path), "%s/vfio/%u", c->devfs, c->group)) < 0)
		goto fail_restore;
	if (stat(path, &st) < 0) {
		r = vmm_err(err, -ENODEV,
			    "%s is on vfio-pci but %s is missing: is devtmpfs mounted on /dev?", c->bdf, path);
		goto fail_restore;
	}
	*out = c;
	return 0;

fail_restore:
	restore(c, &ignored);
fail_free:
	claim_free_mem(c);
	return r;
}

int vfio_release(struct vfio_claim *c, struct vmm_error *err)
{
	int r;
	if (!c)
		return 0;
	r = restore(c, err);
	claim_free_mem(c);
	return r;
}

void vfio_claim_free(struct vfio_claim *c)
{
	vfio_release(c, NULL);
}

const char *vfio_claim_bdf(const struct vfio_claim *c)
{
	return c->bdf;
}

const char *vfio_claim_orig_driver(const struct vfio_claim *c)
{
	return c->orig_driver;
}

unsigned vfio_claim_group(const struct vfio_claim *c)
{
	return c->group;
}
