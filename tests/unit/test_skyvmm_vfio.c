/* Unit tests for skyvmm's emulation of a passed-through device's config
 * space (vmm/skyvmm/dev/vfio_cfg.c), with a fake device region: a memfd
 * holding an edu-like device's real config space at the offset VFIO would
 * give, on the fake machine's PCI bus (tests/unit/skyvmm_fake.c).  The
 * guest sees the real ids and INTx pin, BARs of the regions' sizes (sized
 * with all ones, placed in skyvmm's MMIO window, the real BAR registers
 * never written), the MSI capability only (others hidden), the command
 * register written through, and MSI enable and message changes handed to
 * msi_set; and vfio_pci.c's INTx and MSI wiring (sv_vfio_intx_on/off,
 * sv_vfio_msi_set) over a model of KVM's irqfds and VFIO's triggers, with
 * two devices sharing one INTx GSI.  No VFIO, no KVM.
 *
 * Environment: none needed.   ./test_skyvmm_vfio
 */
#include <errno.h>
#include <linux/vfio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/skyvmm_fake.h"
#include "vmm/skyvmm/dev/vfio.h"
#include "vmm/skyvmm/le.h"

#define CFG_OFF 0x70000000000ULL /* VFIO's config region index 7 << 40 */
#define BAR0_REAL 0xfea00000u
#define BAR2_REAL 0xfe000000u

struct tv {
	struct sv_vfio_dev v;
	unsigned nset;
	bool on;
	uint64_t addr;
	uint32_t data;
	int fail; /* msi_set's answer */
	unsigned bar_reads;
};

static int t_msi_set(struct sv_vfio_dev *v, bool on, uint64_t addr, uint32_t data)
{
	struct tv *t = (struct tv *)v;
	t->nset++;
	t->on = on;
	t->addr = addr;
	t->data = data;
	return t->fail;
}

static void t_bar(struct sv_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct tv *t = (struct tv *)d;
	t->bar_reads++;
	if (!is_write)
		memset(data, 0xed, len);
}

static const struct sv_pci_dev_ops t_ops = { .bar_access = t_bar, .cfg_read = sv_vfio_cfg_read,
					      .cfg_write = sv_vfio_cfg_written };

/* An edu-like config space: 1234:11e8, class 00ff00, revision 0x10, INTA,
 * BAR0 32-bit memory, BAR2 64-bit prefetchable; capabilities MSI (64-bit,
 * 0x40) then PCI Express (0x10, at 0x50, to be hidden). */
static void real_cfg(uint8_t *c, bool msi64)
{
	memset(c, 0, 256);
	sv_put16(c + 0, 0x1234);
	sv_put16(c + 2, 0x11e8);
	sv_put16(c + 4, 0x0007);
	sv_put16(c + 6, SV_PCI_STATUS_CAPS);
	c[8] = 0x10;
	c[0x0A] = 0xff;
	sv_put32(c + 0x10, BAR0_REAL);
	sv_put32(c + 0x18, BAR2_REAL | 0xc);
	sv_put32(c + 0x1c, 0);
	sv_put16(c + 0x2c, 0x1af4);
	sv_put16(c + 0x2e, 0x1100);
	c[0x34] = 0x40;
	c[0x3c] = 0xff;
	c[0x3d] = 1;
	c[0x40] = SV_PCI_CAP_MSI;
	c[0x41] = 0x50;
	sv_put16(c + 0x42, msi64 ? 0x0080 : 0x0000);
	c[0x50] = 0x10;
	c[0x51] = 0;
}

/* The region: a sparse memfd with the config space at CFG_OFF. */
static int region_fd(const uint8_t *cfg, size_t len)
{
	int fd = memfd_create("vfio-region", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, cfg, len, (off_t)CFG_OFF), (ssize_t)len);
	return fd;
}

static int tv_add(struct fake *f, struct tv *t, bool msi64)
{
	uint8_t c[256];
	char err[256] = "";

	memset(t, 0, sizeof(*t));
	real_cfg(c, msi64);
	t->v.fd = region_fd(c, sizeof(c));
	t->v.cfg_off = CFG_OFF;
	t->v.reg[0].size = 1 << 20;
	t->v.reg[2].size = 0x4000;
	t->v.msi_set = t_msi_set;
	assert_int_equal(sv_vfio_cfg_build(&t->v, &t_ops, err, sizeof(err)), 0);
	return sv_pci_add(f->pci, &t->v.pci);
}

static uint32_t real_read(struct tv *t, unsigned off, unsigned len)
{
	uint8_t b[4] = { 0 };
	assert_int_equal(pread(t->v.fd, b, len, (off_t)(CFG_OFF + off)), (ssize_t)len);
	return sv_get32(b);
}

static void test_ids_and_caps(void **state)
{
	struct fake f;
	struct tv t;
	int slot;
	unsigned cap;

	fake_init(&f, 1 << 20);
	slot = tv_add(&f, &t, true);
	assert_int_equal(slot, 1);
	assert_int_equal(fake_cfg_read(&f, slot, 0, 4), 0x11e81234);
	assert_int_equal(fake_cfg_read(&f, slot, 0x08, 4), 0x00ff0010);
	assert_int_equal(fake_cfg_read(&f, slot, 0x2c, 4), 0x11001af4);
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_INT_PIN, 1), 1);
	/* the interrupt line the bus routes it to, not the host's 0xff */
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_INT_LINE, 1), sv_pci_intx_gsi(1, 0));
	/* one capability: MSI, 64-bit, one vector, disabled; PCIe hidden */
	assert_true(fake_cfg_read(&f, slot, SV_PCI_STATUS, 2) & SV_PCI_STATUS_CAPS);
	cap = fake_cfg_read(&f, slot, SV_PCI_CAP_PTR, 1);
	assert_int_equal(cap, t.v.msi_cap);
	assert_int_equal(fake_cfg_read(&f, slot, cap, 1), SV_PCI_CAP_MSI);
	assert_int_equal(fake_cfg_read(&f, slot, cap + 1, 1), 0);
	assert_int_equal(fake_cfg_read(&f, slot, cap + 2, 2), 0x0080);
	/* the INTx status bit is the device's own */
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_STATUS, 2) & SV_PCI_STATUS_INTX, 0);
	{
		uint8_t st = SV_PCI_STATUS_CAPS | SV_PCI_STATUS_INTX;
		assert_int_equal(pwrite(t.v.fd, &st, 1, (off_t)(CFG_OFF + SV_PCI_STATUS)), 1);
	}
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_STATUS, 2) & SV_PCI_STATUS_INTX, SV_PCI_STATUS_INTX);
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_COMMAND, 4) >> 16 & SV_PCI_STATUS_INTX, SV_PCI_STATUS_INTX);
	fake_fini(&f);
	close(t.v.fd);
}

static void test_bar_sizing(void **state)
{
	struct fake f;
	struct tv t;
	uint32_t b0, b2, b3;
	bool hit = false;
	int slot;

	fake_init(&f, 1 << 20);
	slot = tv_add(&f, &t, true);
	b0 = fake_cfg_read(&f, slot, 0x10, 4);
	b2 = fake_cfg_read(&f, slot, 0x18, 4);
	b3 = fake_cfg_read(&f, slot, 0x1c, 4);
	/* placed in skyvmm's window, not where the host has them */
	assert_true(b0 >= SV_PCI_MMIO_BASE && b0 < SV_PCI_MMIO_END && (b0 & 0xfffff) == 0);
	assert_int_equal(b2 & 0xf, 0xc);
	assert_true((b2 & ~0xfu) >= SV_PCI_MMIO_BASE && (b2 & ~0xfu) < SV_PCI_MMIO_END);
	assert_int_equal(b3, 0);
	assert_int_equal(fake_cfg_read(&f, slot, 0x14, 4), 0); /* no BAR 1 */
	/* decoding on; a BAR access reaches the device */
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_COMMAND, 2) & SV_PCI_CMD_MEM, SV_PCI_CMD_MEM);
	assert_int_equal(fake_io_read(&f, SV_MMIO, b0, 4, &hit), 0xedededed);
	assert_true(hit);
	/* sizing: all ones reads back the size mask and the flags */
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, 0);
	for (unsigned i = 0; i < 6; i++)
		fake_cfg_write(&f, slot, 0x10 + 4 * i, 4, 0xffffffff);
	assert_int_equal(fake_cfg_read(&f, slot, 0x10, 4), 0xfff00000);
	assert_int_equal(fake_cfg_read(&f, slot, 0x14, 4), 0);
	assert_int_equal(fake_cfg_read(&f, slot, 0x18, 4), 0xffffc00c);
	assert_int_equal(fake_cfg_read(&f, slot, 0x1c, 4), 0xffffffff);
	assert_int_equal(fake_cfg_read(&f, slot, 0x20, 4), 0);
	/* the device's own BAR registers are never written */
	assert_int_equal(real_read(&t, 0x10, 4), BAR0_REAL);
	assert_int_equal(real_read(&t, 0x18, 4), BAR2_REAL | 0xc);
	/* restored and moved: the device answers at the new address only */
	fake_cfg_write(&f, slot, 0x10, 4, b0 + 0x100000);
	fake_cfg_write(&f, slot, 0x18, 4, b2);
	fake_cfg_write(&f, slot, 0x1c, 4, b3);
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, SV_PCI_CMD_MEM | SV_PCI_CMD_MASTER);
	assert_int_equal(fake_cfg_read(&f, slot, 0x10, 4), b0 + 0x100000);
	t.bar_reads = 0;
	fake_io_read(&f, SV_MMIO, b0 + 0x100000, 4, &hit);
	assert_true(hit);
	fake_io_read(&f, SV_MMIO, b0, 4, &hit);
	assert_false(hit);
	assert_int_equal(t.bar_reads, 1);
	/* the command register went through to the device */
	assert_int_equal(real_read(&t, SV_PCI_COMMAND, 2) & 0xffff, SV_PCI_CMD_MEM | SV_PCI_CMD_MASTER);
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, SV_PCI_CMD_MEM | SV_PCI_CMD_MASTER | SV_PCI_CMD_INTX_OFF);
	assert_int_equal(real_read(&t, SV_PCI_COMMAND, 2) & 0xffff,
			 SV_PCI_CMD_MEM | SV_PCI_CMD_MASTER | SV_PCI_CMD_INTX_OFF);
	fake_fini(&f);
	close(t.v.fd);
}

static void test_msi(void **state)
{
	struct fake f;
	struct tv t;
	int slot;
	unsigned cap;

	fake_init(&f, 1 << 20);
	slot = tv_add(&f, &t, true);
	cap = t.v.msi_cap;
	/* as Linux does it: the message, then Enable (and MME 0: one vector) */
	fake_cfg_write(&f, slot, cap + 4, 4, 0xfee01000);
	fake_cfg_write(&f, slot, cap + 8, 4, 0);
	fake_cfg_write(&f, slot, cap + 12, 2, 0x4041);
	assert_int_equal(t.nset, 0);
	fake_cfg_write(&f, slot, cap + 2, 2, 0x0071); /* Enable, and MME 7 asked */
	assert_int_equal(t.nset, 1);
	assert_true(t.on);
	assert_int_equal(t.addr, 0xfee01000);
	assert_int_equal(t.data, 0x4041);
	assert_int_equal(fake_cfg_read(&f, slot, cap + 2, 2), 0x0081); /* MME stays 0 */
	/* the low two address bits are not writable */
	fake_cfg_write(&f, slot, cap + 4, 4, 0xfee02003);
	assert_int_equal(fake_cfg_read(&f, slot, cap + 4, 4), 0xfee02000);
	assert_int_equal(t.nset, 2); /* a new message while on: re-routed */
	assert_int_equal(t.addr, 0xfee02000);
	/* the same message again: nothing */
	fake_cfg_write(&f, slot, cap + 12, 2, 0x4041);
	assert_int_equal(t.nset, 2);
	/* a 64-bit address */
	fake_cfg_write(&f, slot, cap + 8, 4, 0x1);
	assert_int_equal(t.nset, 3);
	assert_int_equal(t.addr, 0x1fee02000ULL);
	/* off */
	fake_cfg_write(&f, slot, cap + 2, 2, 0x0000);
	assert_int_equal(t.nset, 4);
	assert_false(t.on);
	/* a change of message while off: nothing to do */
	fake_cfg_write(&f, slot, cap + 12, 2, 0x4042);
	assert_int_equal(t.nset, 4);
	/* refused by the host: Enable reads back clear */
	t.fail = -EINVAL;
	fake_cfg_write(&f, slot, cap + 2, 2, 0x0001);
	assert_int_equal(t.nset, 5);
	assert_int_equal(fake_cfg_read(&f, slot, cap + 2, 2) & 1, 0);
	assert_false(t.v.msi_on);
	/* on, then a new message the host refuses: Enable reads back clear
	 * and the vector goes off at the host too (not left routed with INTx
	 * off while the guest reads MSI off; fuzz_skyvmm_vfio found it) */
	t.fail = 0;
	fake_cfg_write(&f, slot, cap + 2, 2, 0x0001);
	assert_int_equal(t.nset, 6);
	assert_true(t.on);
	assert_true(t.v.msi_on);
	t.fail = -EINVAL;
	fake_cfg_write(&f, slot, cap + 12, 2, 0x4043);
	assert_int_equal(t.nset, 8); /* the refused message, then off */
	assert_false(t.on);
	assert_false(t.v.msi_on);
	assert_int_equal(fake_cfg_read(&f, slot, cap + 2, 2) & 1, 0);
	fake_fini(&f);
	close(t.v.fd);

	/* a 32-bit MSI capability: the data at +8 */
	fake_init(&f, 1 << 20);
	slot = tv_add(&f, &t, false);
	cap = t.v.msi_cap;
	assert_int_equal(fake_cfg_read(&f, slot, cap + 2, 2), 0);
	fake_cfg_write(&f, slot, cap + 4, 4, 0xfee00000);
	fake_cfg_write(&f, slot, cap + 8, 2, 0x0031);
	fake_cfg_write(&f, slot, cap + 2, 2, 0x0001);
	assert_int_equal(t.nset, 1);
	assert_int_equal(t.addr, 0xfee00000);
	assert_int_equal(t.data, 0x0031);
	fake_fini(&f);
	close(t.v.fd);
}

static void test_refusals(void **state)
{
	struct sv_vfio_dev v;
	uint8_t c[256];
	char err[256];

	/* a bridge (header type 1) */
	real_cfg(c, true);
	c[0x0e] = 0x01;
	memset(&v, 0, sizeof(v));
	v.fd = region_fd(c, sizeof(c));
	v.cfg_off = CFG_OFF;
	assert_int_equal(sv_vfio_cfg_build(&v, &t_ops, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "header type 1"));
	close(v.fd);
	/* a BAR region that is not a power of two */
	real_cfg(c, true);
	memset(&v, 0, sizeof(v));
	v.fd = region_fd(c, sizeof(c));
	v.cfg_off = CFG_OFF;
	v.reg[0].size = 0x3000;
	assert_int_equal(sv_vfio_cfg_build(&v, &t_ops, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "BAR0"));
	/* a short config region */
	v.reg[0].size = 0x1000;
	v.cfg_off = CFG_OFF + 128;
	assert_int_equal(sv_vfio_cfg_build(&v, &t_ops, err, sizeof(err)), -EIO);
	close(v.fd);
	/* a capability list that loops ends: no MSI found, no hang */
	real_cfg(c, true);
	c[0x40] = 0x01; /* power management, pointing at itself */
	c[0x41] = 0x40;
	memset(&v, 0, sizeof(v));
	v.fd = region_fd(c, sizeof(c));
	v.cfg_off = CFG_OFF;
	assert_int_equal(sv_vfio_cfg_build(&v, &t_ops, err, sizeof(err)), 0);
	assert_int_equal(v.msi_cap, 0);
	assert_int_equal(v.pci.cfg[SV_PCI_CAP_PTR], 0);
	close(v.fd);
}

/* ---- INTx of passed-through devices sharing a GSI (vfio_pci.c's
 * sv_vfio_intx_on/off and sv_vfio_msi_set over a model of KVM's irqfds and
 * of VFIO's interrupt state) ---- */

/* KVM's irqfds as kvm.c drives them: assigned by fd (once), removed by GSI
 * (fd -1); the resample fds of a GSI all hear its EOI (one resampler per
 * GSI, as KVM has it). */
static struct {
	int fd, gsi, resample;
} kirq[16];

static int k_irqfd(void *ctx, int fd, uint32_t gsi, int resample_fd)
{
	(void)ctx;
	if (fd < 0) {
		for (unsigned i = 0; i < 16; i++)
			if (kirq[i].fd >= 0 && kirq[i].gsi == (int)gsi)
				kirq[i].fd = -1;
		return 0;
	}
	for (unsigned i = 0; i < 16; i++)
		if (kirq[i].fd == fd)
			return -EBUSY;
	for (unsigned i = 0; i < 16; i++)
		if (kirq[i].fd < 0) {
			kirq[i].fd = fd;
			kirq[i].gsi = (int)gsi;
			kirq[i].resample = resample_fd;
			return 0;
		}
	return -ENOSPC;
}

static int k_msi_irqfd(void *ctx, int fd, uint64_t addr, uint32_t data, int gsi_old)
{
	(void)ctx;
	(void)fd;
	(void)addr;
	(void)data;
	return gsi_old >= 0 ? gsi_old : 24;
}

/* Where fd's events go: its GSI, or -1. */
static int k_gsi_of(int fd, int *resample)
{
	for (unsigned i = 0; i < 16; i++)
		if (fd >= 0 && kirq[i].fd == fd) {
			*resample = kirq[i].resample;
			return kirq[i].gsi;
		}
	return -1;
}

/* The guest's EOI of gsi: every resample fd of the GSI signalled. */
static void k_eoi(int gsi)
{
	const uint64_t one = 1;
	for (unsigned i = 0; i < 16; i++)
		if (kirq[i].fd >= 0 && kirq[i].gsi == gsi)
			assert_int_equal(write(kirq[i].resample, &one, 8), 8);
}

/* A device of the model: VFIO's INTx and MSI triggers, one kind at a time. */
struct sdev {
	struct sv_vfio_dev v;
	int intx_trigger, intx_unmask, msi_trigger;
};

static int s_set_irqs(struct sv_vfio_dev *v, uint32_t index, uint32_t action, int fd)
{
	struct sdev *d = (struct sdev *)v;

	if (index == VFIO_PCI_INTX_IRQ_INDEX && action == VFIO_IRQ_SET_ACTION_TRIGGER) {
		if (fd >= 0 && d->msi_trigger >= 0)
			return -EBUSY;
		d->intx_trigger = fd;
		if (fd < 0)
			d->intx_unmask = -1;
	} else if (index == VFIO_PCI_INTX_IRQ_INDEX && action == VFIO_IRQ_SET_ACTION_UNMASK) {
		d->intx_unmask = fd;
	} else if (index == VFIO_PCI_MSI_IRQ_INDEX && action == VFIO_IRQ_SET_ACTION_TRIGGER) {
		if (fd >= 0 && d->intx_trigger >= 0)
			return -EBUSY; /* VFIO: one kind at a time */
		d->msi_trigger = fd;
	} else {
		return -EINVAL;
	}
	return 0;
}

static const struct sv_pci_dev_ops s_ops = { .bar_access = t_bar, .cfg_read = sv_vfio_cfg_read,
					      .cfg_write = sv_vfio_cfg_written };

static int sdev_add(struct fake *f, struct sdev *d)
{
	uint8_t c[256];
	char err[256] = "";

	memset(d, 0, sizeof(*d));
	real_cfg(c, true);
	d->v.fd = region_fd(c, sizeof(c));
	d->v.cfg_off = CFG_OFF;
	d->v.reg[0].size = 1 << 20;
	d->v.msi_set = sv_vfio_msi_set;
	d->v.set_irqs = s_set_irqs;
	d->v.msi_gsi = -1;
	d->intx_trigger = d->intx_unmask = d->msi_trigger = -1;
	d->v.intx_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->v.unmask_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->v.msi_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(d->v.intx_fd >= 0 && d->v.unmask_fd >= 0 && d->v.msi_fd >= 0);
	snprintf(d->v.bdf, sizeof(d->v.bdf), "0000:00:0%d.0", d->v.fd % 10);
	assert_int_equal(sv_vfio_cfg_build(&d->v, &s_ops, err, sizeof(err)), 0);
	return sv_pci_add(f->pci, &d->v.pci);
}

/* Whether d's INTx reaches the guest: VFIO triggers its eventfd, KVM has
 * it on its slot's GSI with its unmask eventfd as the resample. */
static bool intx_wired(struct sdev *d)
{
	int resample = -1;
	return d->intx_trigger == d->v.intx_fd && d->intx_unmask == d->v.unmask_fd &&
	       k_gsi_of(d->v.intx_fd, &resample) == (int)sv_pci_intx_gsi(d->v.pci.slot, 0) &&
	       resample == d->v.unmask_fd;
}

/* The unmasks VFIO got for d since the last look. */
static uint64_t unmasks(struct sdev *d)
{
	uint64_t n = 0;
	return read(d->v.unmask_fd, &n, 8) == 8 ? n : 0;
}

static void test_intx_shared_gsi(void **state)
{
	struct fake f;
	struct sdev a, b, c;
	unsigned cap;

	for (unsigned i = 0; i < 16; i++)
		kirq[i].fd = -1;
	fake_init(&f, 1 << 20);
	f.irq.irqfd = k_irqfd;
	f.irq.msi_irqfd = k_msi_irqfd;
	/* slots 1 and 3 share GSI 11 (INTA: 10 + slot % 2); slot 2 is on 10 */
	assert_int_equal(sdev_add(&f, &a), 1);
	assert_int_equal(sdev_add(&f, &b), 2);
	assert_int_equal(sdev_add(&f, &c), 3);
	assert_int_equal(sv_pci_intx_gsi(1, 0), sv_pci_intx_gsi(3, 0));
	assert_int_not_equal(sv_pci_intx_gsi(1, 0), sv_pci_intx_gsi(2, 0));
	assert_int_equal(sv_vfio_intx_on(&a.v), 0);
	assert_int_equal(sv_vfio_intx_on(&b.v), 0);
	assert_int_equal(sv_vfio_intx_on(&c.v), 0);
	assert_true(intx_wired(&a) && intx_wired(&b) && intx_wired(&c));
	/* the guest's EOI on the shared line unmasks both devices on it (each
	 * VFIO unmask is a no-op for a device that did not fire) */
	k_eoi((int)sv_pci_intx_gsi(1, 0));
	assert_int_equal(unmasks(&a), 1);
	assert_int_equal(unmasks(&c), 1);
	assert_int_equal(unmasks(&b), 0);

	/* a's driver turns MSI on: a's INTx goes (VFIO: one kind at a time),
	 * c's, on the same GSI, stays wired, and is unmasked once (an
	 * interrupt of c's the removal dropped fires again); b is untouched */
	cap = a.v.msi_cap;
	fake_cfg_write(&f, 1, cap + 4, 4, 0xfee00000);
	fake_cfg_write(&f, 1, cap + 12, 2, 0x0041);
	fake_cfg_write(&f, 1, cap + 2, 2, 0x0001);
	assert_true(a.v.msi_on);
	assert_int_equal(a.msi_trigger, a.v.msi_fd);
	assert_false(a.v.intx_on);
	assert_int_equal(a.intx_trigger, -1);
	{
		int r;
		assert_int_equal(k_gsi_of(a.v.intx_fd, &r), -1);
	}
	assert_true(intx_wired(&c));
	assert_true(intx_wired(&b));
	assert_int_equal(unmasks(&c), 1);
	assert_int_equal(unmasks(&b), 0);
	/* the line's EOI now resamples c only */
	k_eoi((int)sv_pci_intx_gsi(3, 0));
	assert_int_equal(unmasks(&c), 1);
	assert_int_equal(unmasks(&a), 0);

	/* MSI off: a's INTx back beside c's */
	fake_cfg_write(&f, 1, cap + 2, 2, 0x0000);
	assert_false(a.v.msi_on);
	assert_int_equal(a.msi_trigger, -1);
	assert_true(intx_wired(&a) && intx_wired(&b) && intx_wired(&c));
	k_eoi((int)sv_pci_intx_gsi(1, 0));
	assert_int_equal(unmasks(&a), 1);
	assert_int_equal(unmasks(&c), 1);

	/* c goes away (its destroy turns INTx off): a keeps the line */
	sv_vfio_intx_off(&c.v);
	assert_true(intx_wired(&a));
	assert_int_equal(unmasks(&a), 1);
	fake_fini(&f);
	for (struct sdev *d = &a; d; d = d == &a ? &b : d == &b ? &c : NULL) {
		close(d->v.fd);
		close(d->v.intx_fd);
		close(d->v.unmask_fd);
		close(d->v.msi_fd);
	}
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_and_caps),
		cmocka_unit_test(test_bar_sizing),
		cmocka_unit_test(test_msi),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_intx_shared_gsi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
