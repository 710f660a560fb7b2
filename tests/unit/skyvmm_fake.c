/* The fake machine of skyvmm_fake.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/skyvmm_fake.h"
#include "vmm/skyvmm/dev/virtio_pci.h"

static int rec_level(void *ctx, uint32_t gsi, int level)
{
	struct fake *f = ctx;
	if (gsi < 32)
		__atomic_store_n(&f->level[gsi], level, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&f->level_calls, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int rec_msi(void *ctx, uint64_t addr, uint32_t data)
{
	struct fake *f = ctx;
	unsigned n = __atomic_load_n(&f->nmsi, __ATOMIC_SEQ_CST);
	if (n < FAKE_MAX_MSI) {
		f->msi_addr[n] = addr;
		f->msi_data[n] = data;
	}
	__atomic_store_n(&f->nmsi, n + 1, __ATOMIC_SEQ_CST);
	return 0;
}

unsigned fake_nmsi(struct fake *f)
{
	return __atomic_load_n(&f->nmsi, __ATOMIC_SEQ_CST);
}

void fake_init(struct fake *f, uint64_t ram_size)
{
	memset(f, 0, sizeof(*f));
	f->ram = calloc(1, ram_size);
	if (!f->ram)
		abort();
	f->ram_size = ram_size;
	f->mem.region[0] = (struct sv_mem_region){ 0, ram_size, f->ram };
	f->mem.n = 1;
	if (sv_bus_init(&f->bus) != 0)
		abort();
	f->irq = (struct sv_irq_ops){ .set_level = rec_level, .msi = rec_msi, .ctx = f };
	if (sv_pci_init(&f->pci, &f->bus, &f->mem, &f->irq) != 0)
		abort();
}

void fake_fini(struct fake *f)
{
	sv_pci_fini(f->pci);
	sv_bus_fini(&f->bus);
	free(f->ram);
}

uint64_t fake_io_read(struct fake *f, enum sv_space sp, uint64_t addr, unsigned len, bool *hit)
{
	uint8_t b[8] = { 0 };
	uint64_t v = 0;
	bool h = sv_bus_access(&f->bus, sp, addr, b, len, false);
	if (hit)
		*hit = h;
	memcpy(&v, b, len);
	return v;
}

bool fake_io_write(struct fake *f, enum sv_space sp, uint64_t addr, unsigned len, uint64_t v)
{
	uint8_t b[8];
	memcpy(b, &v, 8);
	return sv_bus_access(&f->bus, sp, addr, b, len, true);
}

static void cf8(struct fake *f, unsigned slot, unsigned off)
{
	fake_io_write(f, SV_PIO, 0xCF8, 4, 0x80000000u | slot << 11 | (off & 0xfc));
}

uint32_t fake_cfg_read(struct fake *f, unsigned slot, unsigned off, unsigned len)
{
	cf8(f, slot, off);
	return (uint32_t)fake_io_read(f, SV_PIO, 0xCFC + (off & 3), len, NULL);
}

void fake_cfg_write(struct fake *f, unsigned slot, unsigned off, unsigned len, uint32_t v)
{
	cf8(f, slot, off);
	fake_io_write(f, SV_PIO, 0xCFC + (off & 3), len, v);
}

/* ---- the virtio driver ---- */

void vdrv_open(struct vdrv *d, struct fake *f, unsigned slot)
{
	memset(d, 0, sizeof(*d));
	d->f = f;
	d->slot = slot;
	d->bar = fake_cfg_read(f, slot, SV_PCI_BAR0, 4) & ~0xfull;
}

uint64_t vdrv_read(struct vdrv *d, uint32_t off, unsigned len)
{
	return fake_io_read(d->f, SV_MMIO, d->bar + off, len, NULL);
}

void vdrv_write(struct vdrv *d, uint32_t off, unsigned len, uint64_t v)
{
	fake_io_write(d->f, SV_MMIO, d->bar + off, len, v);
}

uint64_t vdrv_features(struct vdrv *d)
{
	uint64_t lo, hi;
	vdrv_write(d, 0x00, 4, 0);
	lo = vdrv_read(d, 0x04, 4);
	vdrv_write(d, 0x00, 4, 1);
	hi = vdrv_read(d, 0x04, 4);
	return hi << 32 | lo;
}

uint8_t vdrv_negotiate(struct vdrv *d, uint64_t features)
{
	vdrv_write(d, 0x14, 1, 0);
	vdrv_write(d, 0x14, 1, SV_VIRTIO_S_ACK);
	vdrv_write(d, 0x14, 1, SV_VIRTIO_S_ACK | SV_VIRTIO_S_DRIVER);
	vdrv_write(d, 0x08, 4, 0);
	vdrv_write(d, 0x0c, 4, (uint32_t)features);
	vdrv_write(d, 0x08, 4, 1);
	vdrv_write(d, 0x0c, 4, (uint32_t)(features >> 32));
	vdrv_write(d, 0x14, 1, SV_VIRTIO_S_ACK | SV_VIRTIO_S_DRIVER | SV_VIRTIO_S_FEATURES_OK);
	return (uint8_t)vdrv_read(d, 0x14, 1);
}

void vdrv_queue(struct vdrv *d, unsigned q, uint16_t qsize, uint16_t vec)
{
	uint64_t base = 0x100000 + q * 0x10000ULL;
	d->qsize = qsize;
	d->q[q].desc = base;
	d->q[q].avail = base + 0x4000;
	d->q[q].used = base + 0x8000;
	d->q[q].avail_idx = 0;
	memset(d->f->ram + base, 0, 0x10000);
	vdrv_write(d, 0x16, 2, q);
	vdrv_write(d, 0x18, 2, qsize);
	vdrv_write(d, 0x1a, 2, vec);
	vdrv_write(d, 0x20, 4, (uint32_t)d->q[q].desc);
	vdrv_write(d, 0x24, 4, d->q[q].desc >> 32);
	vdrv_write(d, 0x28, 8, d->q[q].avail);
	vdrv_write(d, 0x30, 8, d->q[q].used);
	vdrv_write(d, 0x1c, 2, 1);
}

uint8_t vdrv_ok(struct vdrv *d)
{
	uint8_t s = (uint8_t)vdrv_read(d, 0x14, 1);
	vdrv_write(d, 0x14, 1, s | SV_VIRTIO_S_DRIVER_OK);
	return (uint8_t)vdrv_read(d, 0x14, 1);
}

void vdrv_desc(struct vdrv *d, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = d->f->ram + d->q[q].desc + 16 * i;
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

void vdrv_avail(struct vdrv *d, unsigned q, uint16_t head)
{
	uint8_t *a = d->f->ram + d->q[q].avail;
	uint16_t idx = d->q[q].avail_idx;
	memcpy(a + 4 + 2 * (idx % d->qsize), &head, 2);
	idx++;
	__atomic_store_n((uint16_t *)(void *)(a + 2), idx, __ATOMIC_RELEASE);
	d->q[q].avail_idx = idx;
}

void vdrv_notify(struct vdrv *d, unsigned q)
{
	vdrv_write(d, SV_VIRTIO_NOTIFY_OFF + SV_VIRTIO_NOTIFY_MULT * q, 2, q);
}

uint16_t vdrv_used_idx(struct vdrv *d, unsigned q)
{
	return __atomic_load_n((uint16_t *)(void *)(d->f->ram + d->q[q].used + 2), __ATOMIC_ACQUIRE);
}

void vdrv_used(struct vdrv *d, unsigned q, uint16_t i, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = d->f->ram + d->q[q].used + 4 + 8 * (i % d->qsize);
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}
