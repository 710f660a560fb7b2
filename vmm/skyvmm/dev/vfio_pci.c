/* skyvmm: VFIO passthrough, the host side (vfio.h): the container, the
 * group, the device fd and its regions, BARs in KVM memory slots or
 * trapped, INTx and MSI through eventfds and KVM_IRQFD.
 *
 * One container for all devices (one IOMMU domain: all guest RAM mapped
 * once, at the guest-physical addresses as I/O virtual addresses). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/skyvmm/dev/vfio.h"

/* KVM memory slots of passed-through BARs: kvm.c uses 0 and 1 */
#define SLOT_FIRST 8

static struct {
	int container;             /* /dev/vfio/vfio, or -1 before the first device */
	unsigned ngroups;
	struct {
		unsigned id;
		int fd;
	} group[SV_VFIO_MAX];
	unsigned ndevs;
} vf = { .container = -1 };

static int fail(char *err, size_t errlen, int r, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, strerror(-r));
	return r;
}

/* The IOMMU group of bdf, from sysfs (the backend checked it viable). */
static int group_of(const char *bdf, unsigned *id)
{
	char path[128], link[256];
	const char *base;
	char *end;
	ssize_t n;
	unsigned long v;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	errno = 0;
	v = strtoul(base, &end, 10);
	if (errno || end == base || *end || v > 1000000)
		return -EINVAL;
	*id = (unsigned)v;
	return 0;
}

/* The container, made on the first device's group: type-1 IOMMU, and all
 * guest RAM mapped for DMA. */
static int container_setup(int group_fd, const struct sv_mem *mem, char *err, size_t errlen)
{
	long type;

	if (ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &vf.container) < 0)
		return fail(err, errlen, -errno, "VFIO_GROUP_SET_CONTAINER");
	if (vf.ngroups > 0) /* the IOMMU is set and RAM mapped already */
		return 0;
	type = ioctl(vf.container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0 ? VFIO_TYPE1v2_IOMMU
		: ioctl(vf.container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) > 0	 ? VFIO_TYPE1_IOMMU
											 : 0;
	if (!type) {
		snprintf(err, errlen, "the host's VFIO has no type-1 IOMMU");
		return -ENOTSUP;
	}
	if (ioctl(vf.container, VFIO_SET_IOMMU, type) < 0)
		return fail(err, errlen, -errno, "VFIO_SET_IOMMU");
	for (unsigned i = 0; i < mem->n; i++) {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof(m),
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uint64_t)(uintptr_t)mem->region[i].host,
			.iova = mem->region[i].gpa,
			.size = mem->region[i].size,
		};
		if (ioctl(vf.container, VFIO_IOMMU_MAP_DMA, &m) < 0)
			return fail(err, errlen, -errno, "VFIO_IOMMU_MAP_DMA of guest RAM");
	}
	return 0;
}

/* The group's fd, opened (and put in the container) the first time. */
static int group_open(unsigned id, const struct sv_mem *mem, char *err, size_t errlen)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int fd, r;

	for (unsigned i = 0; i < vf.ngroups; i++)
		if (vf.group[i].id == id)
			return vf.group[i].fd;
	if (vf.ngroups == SV_VFIO_MAX) {
		snprintf(err, errlen, "more than %d IOMMU groups", SV_VFIO_MAX);
		return -ENOSPC;
	}
	if (vf.container < 0) {
		vf.container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
		if (vf.container < 0)
			return fail(err, errlen, -errno, "/dev/vfio/vfio");
		if (ioctl(vf.container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
			snprintf(err, errlen, "/dev/vfio/vfio: not VFIO API version %d", VFIO_API_VERSION);
			return -ENOTSUP;
		}
	}
	snprintf(path, sizeof(path), "/dev/vfio/%u", id);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, -errno, path);
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st) < 0 || !(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		snprintf(err, errlen, "IOMMU group %u is not viable: every device of it must be on vfio-pci "
			 "or no driver", id);
		close(fd);
		return -EBUSY;
	}
	if ((r = container_setup(fd, mem, err, errlen)) < 0) {
		close(fd);
		return r;
	}
	vf.group[vf.ngroups].id = id;
	vf.group[vf.ngroups].fd = fd;
	vf.ngroups++;
	return fd;
}

/* ---- BARs ---- */

static void bar_trap(struct sv_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct sv_vfio_dev *v = (struct sv_vfio_dev *)d;
	const struct sv_vfio_region *r = &v->reg[bar];
	ssize_t n;

	if (off >= r->size || len > r->size - off) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (is_write)
		n = pwrite(v->fd, data, len, (off_t)(r->offset + off));
	else
		n = pread(v->fd, data, len, (off_t)(r->offset + off));
	if (n != (ssize_t)len && !is_write)
		memset(data, 0xff, len);
}

static void bar_trap_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	const struct sv_pci_bar_ctx *c = opaque;
	bar_trap(c->d, c->bar, off, data, len, is_write);
}

/* pci.c places and moves the BARs: an mmapped one goes into a KVM memory
 * slot (the guest reaches the device with no exit), any other onto the bus,
 * trapped and forwarded. */
static int bar_map(struct sv_pci_dev *d, unsigned bar, uint64_t addr, bool on)
{
	struct sv_vfio_dev *v = (struct sv_vfio_dev *)d;
	struct sv_vfio_region *r = &v->reg[bar];
	struct kvm_userspace_memory_region m = { .slot = (uint32_t)r->kvm_slot };
	enum sv_space sp = d->bar[bar].kind == SV_BAR_IO ? SV_PIO : SV_MMIO;

	if (!r->map)
		return on ? sv_bus_add(d->pci->bus, sp, addr, d->bar[bar].size, bar_trap_io, &d->ctx[bar])
			  : sv_bus_del(d->pci->bus, sp, addr, &d->ctx[bar]);
	if (on) {
		m.guest_phys_addr = addr;
		m.memory_size = r->size;
		m.userspace_addr = (uint64_t)(uintptr_t)r->map;
	}
	return ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0 ? -errno : 0;
}

/* ---- interrupts ---- */

static int vfio_set_irqs(struct sv_vfio_dev *v, uint32_t index, uint32_t action, int fd)
{
	/* the header and one eventfd (its data[]), in one aligned buffer */
	_Alignas(struct vfio_irq_set) uint8_t buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *q = (struct vfio_irq_set *)buf;
	int32_t efd = fd;

	memset(buf, 0, sizeof(buf));
	q->index = index;
	q->start = 0;
	if (fd >= 0) {
		q->argsz = sizeof(buf);
		q->flags = VFIO_IRQ_SET_DATA_EVENTFD | action;
		q->count = 1;
		memcpy(q->data, &efd, sizeof(efd));
	} else {
		q->argsz = sizeof(*q);
		q->flags = VFIO_IRQ_SET_DATA_NONE | action;
		q->count = 0;
	}
	return ioctl(v->fd, VFIO_DEVICE_SET_IRQS, q) < 0 ? -errno : 0;
}

static int set_irqs(struct sv_vfio_dev *v, uint32_t index, uint32_t action, int fd)
{
	return v->set_irqs(v, index, action, fd);
}

/* INTx: the device's line raises intx_fd, which KVM turns into the level of
 * the slot's GSI; the guest's EOI signals unmask_fd, which VFIO takes as
 * the unmask (the device masks its line while the guest handles it). */
int sv_vfio_intx_on(struct sv_vfio_dev *v)
{
	const struct sv_irq_ops *irq = v->pci.pci->irq;
	uint32_t gsi = sv_pci_intx_gsi(v->pci.slot, 0);
	int r;

	if ((r = set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, v->intx_fd)) < 0)
		return r;
	if ((r = set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, v->unmask_fd)) < 0 ||
	    (r = irq->irqfd(irq->ctx, v->intx_fd, gsi, v->unmask_fd)) < 0) {
		set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, -1);
		return r;
	}
	v->intx_on = true;
	return 0;
}

/* The INTx irqfds of the other passed-through devices on gsi, back after
 * the removal of all of the GSI's (the irqfd operation removes by GSI), each
 * with an unmask: VFIO keeps a device's line masked from its interrupt to
 * the guest's EOI, and an interrupt the removal took back before the guest
 * saw it would leave it masked for good; unmasked, a line still asserted
 * fires again. */
static void intx_restore_shared(struct sv_vfio_dev *v, uint32_t gsi)
{
	const struct sv_irq_ops *irq = v->pci.pci->irq;
	const uint64_t one = 1;

	for (unsigned s = 1; s < SV_PCI_SLOTS; s++) {
		struct sv_vfio_dev *o = (struct sv_vfio_dev *)v->pci.pci->dev[s];

		if (!o || o == v || o->pci.ops != v->pci.ops || !o->intx_on || sv_pci_intx_gsi(o->pci.slot, 0) != gsi)
			continue;
		if (irq->irqfd(irq->ctx, o->intx_fd, gsi, o->unmask_fd) < 0 ||
		    write(o->unmask_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			fprintf(stderr, "skyvmm: vfio %s: its INTx on GSI %u could not be restored\n", o->bdf, gsi);
	}
}

void sv_vfio_intx_off(struct sv_vfio_dev *v)
{
	const struct sv_irq_ops *irq = v->pci.pci->irq;
	uint32_t gsi = sv_pci_intx_gsi(v->pci.slot, 0);

	if (!v->intx_on)
		return;
	set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, -1);
	/* removes the GSI's irqfds (only passed-through devices have any),
	 * then gives the others sharing the line theirs back */
	irq->irqfd(irq->ctx, -1, gsi, -1);
	v->intx_on = false;
	intx_restore_shared(v, gsi);
}

/* MSI (the guest set Enable, or changed the message): VFIO allows one
 * interrupt type at a time, so INTx goes off while MSI is on. */
int sv_vfio_msi_set(struct sv_vfio_dev *v, bool on, uint64_t addr, uint32_t data)
{
	const struct sv_irq_ops *irq = v->pci.pci->irq;
	int r;

	if (!on) {
		set_irqs(v, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, -1);
		if (v->intx_fd >= 0 && !v->intx_on)
			sv_vfio_intx_on(v);
		return 0;
	}
	/* the route first (a new GSI the first time, the same one after) */
	r = irq->msi_irqfd(irq->ctx, v->msi_fd, addr, data, v->msi_gsi);
	if (r < 0)
		return r;
	v->msi_gsi = r;
	if (v->msi_on)
		return 0; /* a new message for the vector that is on */
	sv_vfio_intx_off(v);
	if ((r = set_irqs(v, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, v->msi_fd)) < 0) {
		if (v->intx_fd >= 0)
			sv_vfio_intx_on(v);
		return r;
	}
	return 0;
}
/* The device's mappings and descriptors, and v itself: at destroy and
 * when setup fails. */
static void vfio__release(struct sv_vfio_dev *v)
{
	for (unsigned i = 0; i < 6; i++)
		if (v->reg[i].map)
			munmap(v->reg[i].map, v->reg[i].size);
	if (v->intx_fd >= 0)
		close(v->intx_fd);
	if (v->unmask_fd >= 0)
		close(v->unmask_fd);
	if (v->msi_fd >= 0)
		close(v->msi_fd);
	close(v->fd);
	free(v);
}


static void dev_destroy(struct sv_pci_dev *d)
{
	struct sv_vfio_dev *v = (struct sv_vfio_dev *)d;

	if (v->msi_on)
		set_irqs(v, VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, -1);
	sv_vfio_intx_off(v);
	vfio__release(v);
}

static const struct sv_pci_dev_ops vfio_ops = {
	.bar_access = bar_trap,
	.bar_map = bar_map,
	.cfg_read = sv_vfio_cfg_read,
	.cfg_write = sv_vfio_cfg_written,
	.destroy = dev_destroy,
};

/* ---- setup ---- */

static int regions(struct sv_vfio_dev *v, char *err, size_t errlen)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX };

	if (ioctl(v->fd, VFIO_DEVICE_GET_INFO, &info) < 0)
		return fail(err, errlen, -errno, "VFIO_DEVICE_GET_INFO");
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) || info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
		snprintf(err, errlen, "not a VFIO PCI device");
		return -EINVAL;
	}
	if (ioctl(v->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
		return fail(err, errlen, -errno, "its config region");
	v->cfg_off = ri.offset;
	for (unsigned i = 0; i < 6; i++) {
		struct sv_vfio_region *r = &v->reg[i];
		ri = (struct vfio_region_info){ .argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX + i };
		r->kvm_slot = -1;
		if (ioctl(v->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
			return fail(err, errlen, -errno, "a BAR region");
		if (!(ri.flags & (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)))
			ri.size = 0;
		r->offset = ri.offset;
		r->size = ri.size;
		r->flags = ri.flags;
	}
	return 0;
}

/* mmaps the BARs that may be (memory BARs of whole pages) into this
 * process: KVM slots map them at the guest's BAR addresses. */
static void bars_mmap(struct sv_vfio_dev *v)
{
	long page = sysconf(_SC_PAGESIZE);

	for (unsigned i = 0; i < 6; i++) {
		struct sv_vfio_region *r = &v->reg[i];
		void *p;

		if (v->pci.bar[i].kind != SV_BAR_MEM32 && v->pci.bar[i].kind != SV_BAR_MEM64)
			continue;
		if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP) || r->size % (uint64_t)page)
			continue;
		p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, (off_t)r->offset);
		if (p == MAP_FAILED)
			continue; /* trapped instead */
		r->map = p;
		r->kvm_slot = SLOT_FIRST + (int)(vf.ndevs * 6 + i);
	}
}

int sv_vfio_add(struct sv_pci *p, int vm_fd, const char *bdf, char *err, size_t errlen)
{
	struct sv_vfio_dev *v;
	unsigned gid = 0;
	int gfd, r;

	if (vf.ndevs == SV_VFIO_MAX) {
		snprintf(err, errlen, "vfio %s: at most %d devices", bdf, SV_VFIO_MAX);
		return -ENOSPC;
	}
	if ((r = group_of(bdf, &gid)) < 0) {
		snprintf(err, errlen, "vfio %s: its IOMMU group (sysfs): %s", bdf, strerror(-r));
		return r;
	}
	if ((gfd = group_open(gid, p->mem, err, errlen)) < 0)
		return gfd;
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v->vm_fd = vm_fd;
	v->intx_fd = v->unmask_fd = v->msi_fd = -1;
	v->msi_gsi = -1;
	v->msi_set = sv_vfio_msi_set;
	v->set_irqs = vfio_set_irqs;
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	v->fd = ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (v->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "vfio %s: VFIO_GROUP_GET_DEVICE_FD: %s", bdf, strerror(-r));
		free(v);
		return r;
	}
	if ((r = regions(v, err, errlen)) < 0 || (r = sv_vfio_cfg_build(v, &vfio_ops, err, errlen)) < 0)
		goto fail;
	ioctl(v->fd, VFIO_DEVICE_RESET); /* where the device supports it */
	bars_mmap(v);
	if ((v->msi_fd = eventfd(0, EFD_CLOEXEC)) < 0)
		goto fail_errno;
	if (v->pci.cfg[SV_PCI_INT_PIN] &&
	    ((v->intx_fd = eventfd(0, EFD_CLOEXEC)) < 0 || (v->unmask_fd = eventfd(0, EFD_CLOEXEC)) < 0))
		goto fail_errno;
	if ((r = sv_pci_add(p, &v->pci)) < 0) {
		snprintf(err, errlen, "vfio %s: no room on the PCI bus: %s", bdf, strerror(-r));
		goto fail;
	}
	vf.ndevs++;
	/* sv_pci_add turned decoding on, as the guest finds it: the device's
	 * own command register says the same (vfio-pci faults BAR mappings of a
	 * device whose memory decoding is off) */
	sv_vfio_cfg_written(&v->pci, SV_PCI_COMMAND, v->pci.cfg + SV_PCI_COMMAND, 2);
	if (v->intx_fd >= 0 && (r = sv_vfio_intx_on(v)) < 0) {
		/* on the bus already: sv_pci_fini frees it */
		snprintf(err, errlen, "vfio %s: its INTx: %s", bdf, strerror(-r));
		return r;
	}
	return (int)v->pci.slot;

fail_errno:
	r = -errno;
	snprintf(err, errlen, "vfio %s: eventfd: %s", bdf, strerror(-r));
fail:
	if (strncmp(err, "vfio ", 5) != 0) {
		char why[256];
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "vfio %s: %s", bdf, why);
	}
	vfio__release(v);
	return r;
}
