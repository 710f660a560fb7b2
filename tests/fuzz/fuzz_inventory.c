/* libFuzzer target: the agent's inventory (agent/inventory.c) over fuzzed
 * sysfs, procfs and /dev trees.  Each input is decoded into a small tree of
 * files, folders and symlinks in a fresh temporary folder (on /dev/shm when
 * there is one), and the real inventory_read runs on it, twice.
 *
 * Input: byte 0: bit 0 no proc/ root, bit 1 no sys/, bit 2 no dev/; then
 * entries (at most FUZZ_MAX_ENTRIES), each:
 *   u8 template (index into templates[], mod its size)
 *   u8 kind (mod 3): 0 file, 1 folder, 2 symlink
 *   for each %s or %p of the template: u8 length, the name's bytes
 *   u16 big-endian length, then the file's content or the link's target
 * A %s name is one path component ('/' and NUL become '_'), a %p name a
 * relative path (empty, "." and ".." components dropped); a name left empty
 * is "_".  No link leads out of the tree, though links may dangle or loop as
 * sysfs's do: an entry is made only where every folder above it is a real
 * folder (no symlink), and a link's target is relative, with ".." only as
 * a prefix and no more of them than the folders above the link; every
 * other ".." or "." is dropped.  Nothing existing is written through:
 * files are created with O_EXCL | O_NOFOLLOW; an entry that cannot be made
 * is skipped.
 *
 * What must hold, beyond no crash, leak or sanitizer report:
 *  - inventory_read returns 0 when proc/ is a folder, else a negative errno
 *    and leaves *out untouched (entries may make a root that byte 0 left
 *    out, or make it a file);
 *  - every count within its INV_MAX_*, every string NUL-terminated in its
 *    array and printable ASCII; NUMA nodes >= 1; the firmware one of the
 *    enum's; virt flags a subset of svm, vmx, npt, ept in that order;
 *  - IOMMU groups strictly ascending by id, their devices strictly by
 *    address; NICs strictly by name, never "lo"; speed -1 or more;
 *  - a second read of the same tree gives the same inventory. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/inventory.h"

#define FUZZ_MAX_ENTRIES 400
#define FUZZ_MAX_NAME 100
#define FUZZ_MAX_CONTENT 65535

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const templates[] = {
	"proc/cpuinfo",
	"proc/meminfo",
	"proc/sys/kernel/osrelease",
	"proc/sys/kernel/hostname",
	"sys/devices/system/node/%s",
	"sys/class/dmi/id/sys_vendor",
	"sys/class/dmi/id/product_name",
	"sys/class/dmi/id/product_serial",
	"sys/class/dmi/id/product_uuid",
	"sys/firmware/efi",
	"sys/firmware",
	"dev/kvm",
	"sys/kernel/iommu_groups/%s",
	"sys/kernel/iommu_groups/%s/devices/%s",
	"sys/bus/pci/devices/%s/vendor",
	"sys/bus/pci/devices/%s/device",
	"sys/bus/pci/devices/%s/class",
	"sys/bus/pci/devices/%s/driver",
	"sys/class/net/%s",
	"sys/class/net/%s/device",
	"sys/class/net/%s/address",
	"sys/class/net/%s/operstate",
	"sys/class/net/%s/carrier",
	"sys/class/net/%s/speed",
	"sys/%p",
	"proc/%p",
	"dev/%p",
};
#define N_TEMPLATES (sizeof(templates) / sizeof(templates[0]))

struct reader {
	const uint8_t *p;
	size_t left;
};

static bool take(struct reader *r, size_t n, const uint8_t **out)
{
	if (r->left < n)
		return false;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

/* src[0..n) as a relative path into out: NUL becomes '_', empty and "."
 * components are dropped, and ".." ones too except for at most ups of them
 * before the first other component.  Returns out's length. */
static size_t clean_path(const uint8_t *src, size_t n, size_t ups, char *out)
{
	size_t o = 0, i = 0;
	bool leading = true;

	while (i < n) {
		size_t j = i;
		while (j < n && src[j] != '/')
			j++;
		bool dot = j - i == 1 && src[i] == '.';
		bool dotdot = j - i == 2 && src[i] == '.' && src[i + 1] == '.';
		if (j > i && !dot && (!dotdot || (leading && ups > 0))) {
			if (dotdot)
				ups--;
			else
				leading = false;
			if (o > 0)
				out[o++] = '/';
			for (size_t k = i; k < j; k++)
				out[o++] = src[k] == '\0' ? '_' : (char)src[k];
		}
		i = j + 1;
	}
	out[o] = '\0';
	return o;
}

/* A %s name (one component) or a %p one (a relative path); never empty. */
static bool take_name(struct reader *r, bool path, char *out)
{
	const uint8_t *len, *bytes;
	size_t n;

	if (!take(r, 1, &len) || !take(r, *len, &bytes))
		return false;
	n = *len > FUZZ_MAX_NAME ? FUZZ_MAX_NAME : *len; /* the rest is dropped */
	if (path) {
		n = clean_path(bytes, n, 0, out);
	} else {
		for (size_t i = 0; i < n; i++)
			out[i] = bytes[i] == '/' || bytes[i] == '\0' ? '_' : (char)bytes[i];
		out[n] = '\0';
		if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
			n = 0;
	}
	if (n == 0)
		snprintf(out, FUZZ_MAX_NAME + 1, "_");
	return true;
}

/* t with each "%s" replaced by the next of names (no printf: t is data). */
static void fill(const char *t, char names[][FUZZ_MAX_NAME + 1], char *out, size_t size)
{
	size_t o = 0, k = 0;

	for (const char *p = t; *p && o + 1 < size; p++) {
		if (p[0] == '%' && (p[1] == 's' || p[1] == 'p')) {
			for (const char *n = names[k++]; *n && o + 1 < size; n++)
				out[o++] = *n;
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

/* mkdir -p of path's parents under dirfd; false unless each of them is a
 * real folder (not a symlink).  *depth: how many there are. */
static bool make_parents(int dirfd, char *path, size_t *depth)
{
	struct stat st;

	*depth = 0;
	for (char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdirat(dirfd, path, 0700);
		bool ok = fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		*s = '/';
		if (!ok)
			return false;
		(*depth)++;
	}
	return true;
}

static void build_entry(int root, const char *path, unsigned kind, const uint8_t *content, size_t n)
{
	static char target[FUZZ_MAX_CONTENT + 1];
	char rel[1024];
	size_t depth;
	int fd;

	snprintf(rel, sizeof(rel), "%s", path);
	if (!make_parents(root, rel, &depth))
		return;
	switch (kind) {
	case 0:
		fd = openat(root, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return;
		if (n > 0 && write(fd, content, n) < 0) {
			/* a partial tree is still a tree */
		}
		close(fd);
		break;
	case 1:
		mkdirat(root, rel, 0700);
		break;
	default:
		if (clean_path(content, n, depth, target) == 0)
			snprintf(target, sizeof(target), "_");
		symlinkat(target, root, rel);
		break;
	}
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	remove(path);
	return 0;
}

static bool text_ok(const char *s, size_t size)
{
	size_t n = strnlen(s, size);
	if (n >= size)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static void check(const struct inventory *inv)
{
	static const char *const flags[] = {"svm", "vmx", "npt", "ept"};
	size_t next_flag = 0;

	if (!text_ok(inv->cpu_model, sizeof(inv->cpu_model)) || !text_ok(inv->dmi_vendor, sizeof(inv->dmi_vendor)) ||
	    !text_ok(inv->dmi_product, sizeof(inv->dmi_product)) ||
	    !text_ok(inv->dmi_serial, sizeof(inv->dmi_serial)) || !text_ok(inv->dmi_uuid, sizeof(inv->dmi_uuid)) ||
	    !text_ok(inv->kernel_version, sizeof(inv->kernel_version)) ||
	    !text_ok(inv->hostname, sizeof(inv->hostname)))
		abort();
	if (inv->n_virt_flags > INV_MAX_FLAGS)
		abort();
	for (unsigned i = 0; i < inv->n_virt_flags; i++) {
		while (next_flag < 4 && strcmp(inv->virt_flags[i], flags[next_flag]) != 0)
			next_flag++;
		if (next_flag == 4)
			abort(); /* unknown, repeated or out of order */
		next_flag++;
	}
	if (inv->numa_nodes < 1 || (inv->firmware != INV_FW_UNKNOWN && inv->firmware != INV_FW_BIOS &&
				    inv->firmware != INV_FW_UEFI))
		abort();
	if (inv->n_groups > INV_MAX_GROUPS || (inv->n_groups > 0) != (inv->groups != NULL))
		abort();
	for (unsigned g = 0; g < inv->n_groups; g++) {
		const struct inv_iommu_group *gr = &inv->groups[g];
		if ((g > 0 && inv->groups[g - 1].id >= gr->id) || gr->n_devices > INV_MAX_GROUP_DEVICES)
			abort();
		for (unsigned d = 0; d < gr->n_devices; d++) {
			const struct inv_pci_device *dev = &gr->devices[d];
			if (!text_ok(dev->address, sizeof(dev->address)) || dev->address[0] == '\0' ||
			    !text_ok(dev->driver, sizeof(dev->driver)) ||
			    (d > 0 && strcmp(gr->devices[d - 1].address, dev->address) >= 0))
				abort();
		}
	}
	if (inv->n_nics > INV_MAX_NICS)
		abort();
	for (unsigned i = 0; i < inv->n_nics; i++) {
		const struct inv_nic *nic = &inv->nics[i];
		if (!text_ok(nic->name, sizeof(nic->name)) || nic->name[0] == '\0' || nic->name[0] == '.' ||
		    strcmp(nic->name, "lo") == 0 || !text_ok(nic->mac, sizeof(nic->mac)) || nic->speed_mbps < -1 ||
		    (i > 0 && strcmp(inv->nics[i - 1].name, nic->name) >= 0))
			abort();
	}
}

static void same(const struct inventory *a, const struct inventory *b)
{
	if (strcmp(a->cpu_model, b->cpu_model) || a->cpus != b->cpus || a->n_virt_flags != b->n_virt_flags ||
	    a->memory_bytes != b->memory_bytes || a->numa_nodes != b->numa_nodes ||
	    strcmp(a->dmi_vendor, b->dmi_vendor) || strcmp(a->dmi_product, b->dmi_product) ||
	    strcmp(a->dmi_serial, b->dmi_serial) || strcmp(a->dmi_uuid, b->dmi_uuid) ||
	    a->firmware != b->firmware || a->kvm != b->kvm || a->n_groups != b->n_groups || a->n_nics != b->n_nics ||
	    strcmp(a->kernel_version, b->kernel_version) || strcmp(a->hostname, b->hostname))
		abort();
	for (unsigned i = 0; i < a->n_virt_flags; i++)
		if (strcmp(a->virt_flags[i], b->virt_flags[i]))
			abort();
	for (unsigned g = 0; g < a->n_groups; g++) {
		if (a->groups[g].id != b->groups[g].id || a->groups[g].n_devices != b->groups[g].n_devices)
			abort();
		for (unsigned d = 0; d < a->groups[g].n_devices; d++) {
			const struct inv_pci_device *x = &a->groups[g].devices[d], *y = &b->groups[g].devices[d];
			if (strcmp(x->address, y->address) || x->vendor != y->vendor || x->device != y->device ||
			    x->class_code != y->class_code || strcmp(x->driver, y->driver))
				abort();
		}
	}
	for (unsigned i = 0; i < a->n_nics; i++) {
		const struct inv_nic *x = &a->nics[i], *y = &b->nics[i];
		if (strcmp(x->name, y->name) || strcmp(x->mac, y->mac) || x->link != y->link ||
		    x->speed_mbps != y->speed_mbps)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char base[64];
	char tree[128], sys[160], proc[160], dev[160];
	struct reader rd = {data, size};
	struct inventory inv, inv2, untouched;
	struct stat st;
	bool have_proc;
	struct inv_roots roots = {sys, proc, dev};
	const uint8_t *b;
	unsigned omit;
	int root, r;

	if (!take(&rd, 1, &b))
		return 0;
	omit = *b;
	if (!base[0])
		snprintf(base, sizeof(base), "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	snprintf(tree, sizeof(tree), "%s/fuzz_inventory.XXXXXX", base);
	if (!mkdtemp(tree) || (root = open(tree, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		abort();
	if (!(omit & 1))
		mkdirat(root, "proc", 0700);
	if (!(omit & 2))
		mkdirat(root, "sys", 0700);
	if (!(omit & 4))
		mkdirat(root, "dev", 0700);

	for (unsigned e = 0; e < FUZZ_MAX_ENTRIES; e++) {
		char names[2][FUZZ_MAX_NAME + 1], path[512];
		const char *t;
		const uint8_t *hdr, *len, *content = NULL;
		unsigned slots = 0;
		size_t n;

		if (!take(&rd, 2, &hdr))
			break;
		t = templates[hdr[0] % N_TEMPLATES];
		for (const char *p = t; (p = strchr(p, '%')); p += 2)
			if (!take_name(&rd, p[1] == 'p', names[slots++]))
				goto built;
		if (!take(&rd, 2, &len))
			break;
		n = (size_t)len[0] << 8 | len[1];
		if (n > rd.left)
			n = rd.left;
		if (n > FUZZ_MAX_CONTENT)
			n = FUZZ_MAX_CONTENT;
		take(&rd, n, &content);
		fill(t, names, path, sizeof(path));
		build_entry(root, path, hdr[1] % 3, content, n);
	}
built:
	close(root);
	snprintf(sys, sizeof(sys), "%s/sys", tree);
	snprintf(proc, sizeof(proc), "%s/proc", tree);
	snprintf(dev, sizeof(dev), "%s/dev", tree);

	have_proc = stat(proc, &st) == 0 && S_ISDIR(st.st_mode);
	memset(&inv, 0x5a, sizeof(inv));
	memcpy(&untouched, &inv, sizeof(inv));
	r = inventory_read(&roots, &inv);
	if (!have_proc) {
		if (r >= 0 || memcmp(&inv, &untouched, sizeof(inv)) != 0)
			abort();
	} else {
		if (r != 0)
			abort();
		check(&inv);
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "inventory: %u cpus '%s' (%u flags), %llu bytes, %u nodes, dmi '%s' '%s' '%s', "
				"fw %d, kvm %d, %u groups, %u nics%s%s, host '%s'\n", inv.cpus, inv.cpu_model,
				inv.n_virt_flags, (unsigned long long)inv.memory_bytes, inv.numa_nodes, inv.dmi_vendor,
				inv.dmi_product, inv.dmi_uuid, (int)inv.firmware, inv.kvm, inv.n_groups, inv.n_nics,
				inv.n_nics ? " first " : "", inv.n_nics ? inv.nics[0].name : "", inv.hostname);
		if (inventory_read(&roots, &inv2) != 0)
			abort();
		same(&inv, &inv2);
		inventory_free(&inv2);
		inventory_free(&inv);
	}
	nftw(tree, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
