/* Board inventory read from sysfs/procfs (and /dev) under injectable roots.
 *
 * Every file is opened relative to a directory fd of its root (openat and
 * friends), so nothing here can reach the real /sys when a test points the
 * roots at a fixture tree.  Library code: no logging; a missing or unreadable
 * file leaves its field empty, only a missing procfs root or no memory fails.
 *
 * Text copied from the machine is made printable ASCII (other bytes become
 * '?') and truncated to its field, so callers can put it in a protobuf string
 * or a log line as is.  Names that identify something (PCI addresses, NIC
 * names) are never truncated: an entry whose name does not fit is skipped. */
#include "agent/inventory.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INV_ATTR_MAX 4096  /* a sysfs attribute is at most a page */
#define INV_LINE_MAX 16384 /* longest /proc/cpuinfo line looked at */

struct inv_dirs {
	int sys;  /* -1 when the sysfs root cannot be opened */
	int proc;
	int dev;  /* -1 when the devfs root cannot be opened */
};

static const char *const virt_flag_names[] = { "svm", "vmx", "npt", "ept" };
#define N_VIRT_FLAGS (sizeof(virt_flag_names) / sizeof(virt_flag_names[0]))

/* ---- small text helpers ------------------------------------------------ */

static void trim(char *s)
{
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	size_t start = 0;
	while (s[start] != '\0' && isspace((unsigned char)s[start]))
		start++;
	if (start > 0)
		memmove(s, s + start, len - start + 1);
}

static bool is_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* Copy free text: truncated to dst, non-printable bytes become '?'. */
static void copy_text(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; i + 1 < size && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
	}
	dst[i] = '\0';
}

/* Copy a name only when it fits whole and is printable; else "". */
static bool copy_name(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);
	if (len >= size || !is_printable(src)) {
		dst[0] = '\0';
		return false;
	}
	memcpy(dst, src, len + 1);
	return true;
}

/* "0x1234" or "1234", at most 8 hex digits. */
static int parse_hex_u32(const char *s, uint32_t *out)
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	uint32_t v = 0;
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		int c = (unsigned char)s[n];
		if (!isxdigit(c) || n >= 8)
			return -EINVAL;
		v = v << 4 | (uint32_t)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
	}
	if (n == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Decimal without sign or leading zeros ("0" alone is fine). */
static int parse_dec_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -EINVAL;
	uint64_t v = 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* ---- file access relative to a root ----------------------------------- */

/* Read a small file (bounded by size-1 bytes, the rest is ignored), trimmed. */
static int read_attr(int dirfd, const char *rel, char *buf, size_t size)
{
	if (dirfd < 0)
		return -ENOENT;
	int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	int r = 0;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (r < 0)
		return r;
	buf[len] = '\0';
	/* An embedded NUL ends the text; that is what a reader would see. */
	trim(buf);
	return 0;
}

static int read_attrf(int dirfd, char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int read_attrf(int dirfd, char *buf, size_t size, const char *fmt, ...)
{
	char rel[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return -ENAMETOOLONG;
	return read_attr(dirfd, rel, buf, size);
}

static DIR *open_dir_at(int dirfd, const char *rel)
{
	if (dirfd < 0)
		return NULL;
	int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

static bool exists_at(int dirfd, const char *rel, int flags)
{
	struct stat st;
	return dirfd >= 0 && fstatat(dirfd, rel, &st, flags) == 0;
}

/* Keep the `max` smallest elements (by cmp) seen so far in base[0..*n). */
static void keep_smallest(void *base, unsigned *n, unsigned max, size_t size, const void *elem,
			  int (*cmp)(const void *, const void *))
{
	char *b = base;
	if (*n < max) {
		memcpy(b + (size_t)*n * size, elem, size);
		(*n)++;
		return;
	}
	unsigned worst = 0;
	for (unsigned i = 1; i < *n; i++)
		if (cmp(b + (size_t)i * size, b + (size_t)worst * size) > 0)
			worst = i;
	if (cmp(elem, b + (size_t)worst * size) < 0)
		memcpy(b + (size_t)worst * size, elem, size);
}

/* ---- procfs ------------------------------------------------------------ */

static void note_flags(char *value, bool truncated, bool seen[N_VIRT_FLAGS])
{
	if (truncated) {
		/* The last word may be cut in two: do not trust it. */
		char *sp = strrchr(value, ' ');
		if (!sp)
			return;
		*sp = '\0';
	}
	char *save = NULL;
	for (char *tok = strtok_r(value, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
		for (size_t i = 0; i < N_VIRT_FLAGS; i++)
			if (strcmp(tok, virt_flag_names[i]) == 0)
				seen[i] = true;
}

static int read_cpuinfo(int procfd, struct inventory *inv)
{
	int fd = openat(procfd, "cpuinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	char *line = malloc(INV_LINE_MAX);
	if (!line) {
		fclose(f);
		return -ENOMEM;
	}
	bool seen[N_VIRT_FLAGS] = { false };
	while (fgets(line, INV_LINE_MAX, f)) {
		size_t len = strlen(line);
		bool truncated = len == INV_LINE_MAX - 1 && line[len - 1] != '\n';
		if (truncated) {
			int c;
			while ((c = getc(f)) != EOF && c != '\n')
				;
		}
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *value = colon + 1;
		trim(line);
		trim(value);
		if (strcmp(line, "processor") == 0) {
			if (inv->cpus < UINT32_MAX)
				inv->cpus++;
		} else if (strcmp(line, "model name") == 0) {
			if (inv->cpu_model[0] == '\0')
				copy_text(inv->cpu_model, sizeof(inv->cpu_model), value);
		} else if (strcmp(line, "flags") == 0 || strcmp(line, "vmx flags") == 0) {
			note_flags(value, truncated, seen);
		}
	}
	free(line);
	fclose(f);

	for (size_t i = 0; i < N_VIRT_FLAGS && inv->n_virt_flags < INV_MAX_FLAGS; i++)
		if (seen[i])
			copy_text(inv->virt_flags[inv->n_virt_flags++], sizeof(inv->virt_flags[0]),
				  virt_flag_names[i]);
	return 0;
}

static void read_meminfo(int procfd, struct inventory *inv)
{
	int fd = openat(procfd, "meminfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return;
	}
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "MemTotal:", 9) != 0)
			continue;
		char *v = line + 9;
		trim(v);
		char *unit = strchr(v, ' ');
		if (!unit || strcmp(unit, " kB") != 0)
			break;
		*unit = '\0';
		uint64_t kb;
		if (parse_dec_u64(v, UINT64_MAX / 1024, &kb) == 0)
			inv->memory_bytes = kb * 1024;
		break;
	}
	fclose(f);
}

/* ---- sysfs ------------------------------------------------------------- */

static void read_numa(int sysfd, struct inventory *inv)
{
	uint32_t n = 0;
	DIR *d = open_dir_at(sysfd, "devices/system/node");
	if (d) {
		struct dirent *de;
		uint64_t id;
		while ((de = readdir(d)))
			if (strncmp(de->d_name, "node", 4) == 0 &&
			    parse_dec_u64(de->d_name + 4, UINT32_MAX, &id) == 0 && n < UINT32_MAX)
				n++;
		closedir(d);
	}
	inv->numa_nodes = n > 0 ? n : 1;
}

static void read_dmi(int sysfd, struct inventory *inv)
{
	static const struct {
		const char *file;
		size_t off, size;
	} fields[] = {
		{ "sys_vendor", offsetof(struct inventory, dmi_vendor), sizeof(inv->dmi_vendor) },
		{ "product_name", offsetof(struct inventory, dmi_product), sizeof(inv->dmi_product) },
		{ "product_serial", offsetof(struct inventory, dmi_serial), sizeof(inv->dmi_serial) },
		{ "product_uuid", offsetof(struct inventory, dmi_uuid), sizeof(inv->dmi_uuid) },
	};
	char buf[INV_ATTR_MAX];
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (read_attrf(sysfd, buf, sizeof(buf), "class/dmi/id/%s", fields[i].file) == 0)
			copy_text((char *)inv + fields[i].off, fields[i].size, buf);
	for (char *p = inv->dmi_uuid; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
}

static enum inv_firmware read_firmware(int sysfd)
{
	if (exists_at(sysfd, "firmware/efi", 0))
		return INV_FW_UEFI;
	/* A sysfs without /sys/firmware tells nothing either way. */
	if (exists_at(sysfd, "firmware", 0))
		return INV_FW_BIOS;
	return INV_FW_UNKNOWN;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_pci(const void *a, const void *b)
{
	return strcmp(((const struct inv_pci_device *)a)->address,
		      ((const struct inv_pci_device *)b)->address);
}

static int cmp_nic(const void *a, const void *b)
{
	return strcmp(((const struct inv_nic *)a)->name, ((const struct inv_nic *)b)->name);
}

static void read_pci_device(int sysfd, struct inv_pci_device *dev)
{
	char buf[64];
	if (read_attrf(sysfd, buf, sizeof(buf), "bus/pci/devices/%s/vendor", dev->address) < 0 ||
	    parse_hex_u32(buf, &dev->vendor) < 0)
		dev->vendor = 0;
	if (read_attrf(sysfd, buf, sizeof(buf), "bus/pci/devices/%s/device", dev->address) < 0 ||
	    parse_hex_u32(buf, &dev->device) < 0)
		dev->device = 0;
	if (read_attrf(sysfd, buf, sizeof(buf), "bus/pci/devices/%s/class", dev->address) < 0 ||
	    parse_hex_u32(buf, &dev->class_code) < 0)
		dev->class_code = 0;

	char rel[512], target[INV_ATTR_MAX];
	dev->driver[0] = '\0';
	int n = snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver", dev->address);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return;
	ssize_t len = readlinkat(sysfd, rel, target, sizeof(target) - 1);
	if (len <= 0)
		return;
	target[len] = '\0';
	const char *base = strrchr(target, '/');
	copy_name(dev->driver, sizeof(dev->driver), base ? base + 1 : target);
}

static void read_group_devices(int sysfd, struct inv_iommu_group *g)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "kernel/iommu_groups/%" PRIu32 "/devices", g->id);
	DIR *d = open_dir_at(sysfd, rel);
	if (!d)
		return;
	struct dirent *de;
	struct inv_pci_device dev;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		memset(&dev, 0, sizeof(dev));
		if (!copy_name(dev.address, sizeof(dev.address), de->d_name))
			continue;
		keep_smallest(g->devices, &g->n_devices, INV_MAX_GROUP_DEVICES, sizeof(dev), &dev,
			      cmp_pci);
	}
	closedir(d);
	qsort(g->devices, g->n_devices, sizeof(g->devices[0]), cmp_pci);
	for (unsigned i = 0; i < g->n_devices; i++)
		read_pci_device(sysfd, &g->devices[i]);
}

static int read_groups(int sysfd, struct inventory *inv)
{
	DIR *d = open_dir_at(sysfd, "kernel/iommu_groups");
	if (!d)
		return 0;
	uint32_t ids[INV_MAX_GROUPS];
	unsigned n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t v;
		if (parse_dec_u64(de->d_name, UINT32_MAX, &v) < 0)
			continue;
		uint32_t id = (uint32_t)v;
		keep_smallest(ids, &n, INV_MAX_GROUPS, sizeof(ids[0]), &id, cmp_u32);
	}
	closedir(d);
	if (n == 0)
		return 0;
	qsort(ids, n, sizeof(ids[0]), cmp_u32);

	struct inv_iommu_group *groups = calloc(n, sizeof(*groups));
	if (!groups)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		groups[i].id = ids[i];
		read_group_devices(sysfd, &groups[i]);
	}
	inv->groups = groups;
	inv->n_groups = n;
	return 0;
}

static void read_nic(int sysfd, struct inv_nic *nic)
{
	char buf[INV_ATTR_MAX];
	if (read_attrf(sysfd, buf, sizeof(buf), "class/net/%s/address", nic->name) == 0)
		copy_name(nic->mac, sizeof(nic->mac), buf);

	nic->link = false;
	if (read_attrf(sysfd, buf, sizeof(buf), "class/net/%s/operstate", nic->name) == 0 &&
	    strcmp(buf, "up") == 0)
		nic->link = true;
	/* Reading carrier of a down interface fails with EINVAL: that is "no". */
	else if (read_attrf(sysfd, buf, sizeof(buf), "class/net/%s/carrier", nic->name) == 0 &&
		 strcmp(buf, "1") == 0)
		nic->link = true;

	char rel[512], target[256];
	ssize_t n;
	snprintf(rel, sizeof(rel), "class/net/%s/master", nic->name);
	n = readlinkat(sysfd, rel, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = '\0';
		copy_name(nic->master, sizeof(nic->master), strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
	}

	nic->speed_mbps = -1;
	uint64_t speed;
	if (read_attrf(sysfd, buf, sizeof(buf), "class/net/%s/speed", nic->name) == 0 &&
	    parse_dec_u64(buf, INT32_MAX, &speed) == 0)
		nic->speed_mbps = (int32_t)speed;
}

/* The bridge of the first NIC that is a port of one (nics sorted). */
static void read_bridge(int sysfd, struct inventory *inv)
{
	char buf[INV_ATTR_MAX];
	struct inv_bridge *b = &inv->bridge;

	for (unsigned i = 0; i < inv->n_nics; i++) {
		const struct inv_nic *nic = &inv->nics[i];
		if (!nic->master[0])
			continue;
		snprintf(b->name, sizeof(b->name), "%s", nic->master);
		snprintf(b->uplink, sizeof(b->uplink), "%s", nic->name);
		b->uplink_link = nic->link;
		b->up = read_attrf(sysfd, buf, sizeof(buf), "class/net/%s/operstate", b->name) == 0 &&
			strcmp(buf, "up") == 0;
		b->vlan_filtering = read_attrf(sysfd, buf, sizeof(buf), "class/net/%s/bridge/vlan_filtering", b->name) == 0 &&
				    strcmp(buf, "1") == 0;
		return;
	}
}

static void read_nics(int sysfd, struct inventory *inv)
{
	DIR *d = open_dir_at(sysfd, "class/net");
	if (!d)
		return;
	struct dirent *de;
	struct inv_nic nic;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "lo") == 0)
			continue;
		memset(&nic, 0, sizeof(nic));
		if (!copy_name(nic.name, sizeof(nic.name), de->d_name))
			continue;
		char rel[512];
		snprintf(rel, sizeof(rel), "class/net/%s/device", nic.name);
		/* Virtual interfaces (bridges, tunnels, veth) have no device link. */
		if (!exists_at(sysfd, rel, AT_SYMLINK_NOFOLLOW))
			continue;
		keep_smallest(inv->nics, &inv->n_nics, INV_MAX_NICS, sizeof(nic), &nic, cmp_nic);
	}
	closedir(d);
	qsort(inv->nics, inv->n_nics, sizeof(inv->nics[0]), cmp_nic);
	for (unsigned i = 0; i < inv->n_nics; i++)
		read_nic(sysfd, &inv->nics[i]);
	read_bridge(sysfd, inv);
}

/* ---- interface --------------------------------------------------------- */

static int open_root(const char *path)
{
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int inventory_read(const struct inv_roots *roots, struct inventory *out)
{
	const char *sys = roots && roots->sysfs ? roots->sysfs : "/sys";
	const char *proc = roots && roots->procfs ? roots->procfs : "/proc";
	const char *dev = roots && roots->devfs ? roots->devfs : "/dev";
	struct inv_dirs dirs = { .sys = -1, .proc = -1, .dev = -1 };
	char buf[INV_ATTR_MAX];
	int r;

	dirs.proc = open_root(proc);
	if (dirs.proc < 0)
		return -errno;
	struct inventory *inv = calloc(1, sizeof(*inv));
	if (!inv) {
		r = -ENOMEM;
		goto fail_alloc;
	}
	dirs.sys = open_root(sys);
	dirs.dev = open_root(dev);

	r = read_cpuinfo(dirs.proc, inv);
	if (r < 0)
		goto fail_read;
	read_meminfo(dirs.proc, inv);
	if (read_attr(dirs.proc, "sys/kernel/osrelease", buf, sizeof(buf)) == 0)
		copy_text(inv->kernel_version, sizeof(inv->kernel_version), buf);
	if (read_attr(dirs.proc, "sys/kernel/hostname", buf, sizeof(buf)) == 0)
		copy_text(inv->hostname, sizeof(inv->hostname), buf);

	read_numa(dirs.sys, inv);
	read_dmi(dirs.sys, inv);
	inv->firmware = read_firmware(dirs.sys);
	inv->kvm = exists_at(dirs.dev, "kvm", 0);
	r = read_groups(dirs.sys, inv);
	if (r < 0)
		goto fail_read;
	read_nics(dirs.sys, inv);

	*out = *inv;
	inv->groups = NULL; /* now owned by *out */
	r = 0;
fail_read:
	inventory_free(inv);
	free(inv);
	if (dirs.dev >= 0)
		close(dirs.dev);
	if (dirs.sys >= 0)
		close(dirs.sys);
fail_alloc:
	close(dirs.proc);
	return r;
}

void inventory_free(struct inventory *inv)
{
	if (!inv)
		return;
	free(inv->groups);
	inv->groups = NULL;
	inv->n_groups = 0;
}
