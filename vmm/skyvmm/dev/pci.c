/* skyvmm: the PCI bus: configuration mechanism #1, config spaces with write
 * masks, BAR sizing and placement on the sv_bus, INTx lines (pci.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/skyvmm/dev/pci.h"
#include "vmm/skyvmm/le.h"

/* The host bridge: QEMU's PCIe host bridge id (Red Hat's vendor id, which
 * the virtio devices carry too), class 06.00.00.  Linux's check of
 * mechanism #1 looks for a host bridge class on bus 0. */
#define HOST_VENDOR 0x1b36
#define HOST_DEVICE 0x0008

#define BAR_END (SV_PCI_BAR0 + 6 * 4)

#ifdef SV_PCI_INTX_GSI
/* the core's MP table routes INTx by its macro: the two rules agree */
_Static_assert(SV_PCI_SLOTS == 32 && SV_PCI_INTX_GSI(0, 0) == 10 && SV_PCI_INTX_GSI(1, 0) == 11 &&
		       SV_PCI_INTX_GSI(1, 1) == 10 && SV_PCI_INTX_GSI(2, 3) == 11 && SV_PCI_INTX_GSI(31, 3) == 10,
	       "pci.h's sv_pci_intx_gsi() and sv.h's SV_PCI_INTX_GSI() differ");
#endif
#define CAP_FIRST 0x40

/* ---- config space contents ---- */

void sv_pci_dev_init(struct sv_pci_dev *d, const struct sv_pci_dev_ops *ops, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision, bool intx)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	sv_put16(d->cfg + SV_PCI_VENDOR, vendor);
	sv_put16(d->cfg + SV_PCI_DEVICE, device);
	d->cfg[SV_PCI_REVISION] = revision;
	d->cfg[0x09] = (uint8_t)class_code;
	d->cfg[0x0A] = (uint8_t)(class_code >> 8);
	d->cfg[0x0B] = (uint8_t)(class_code >> 16);
	d->cfg[0x0E] = 0x00; /* header type 0, one function */
	/* The guest may write: command (I/O, memory, bus master, parity,
	 * SERR, INTx disable), cache line size, interrupt line. */
	sv_put16(d->wmask + SV_PCI_COMMAND, SV_PCI_CMD_IO | SV_PCI_CMD_MEM | SV_PCI_CMD_MASTER | 0x0040 | 0x0100 |
						 SV_PCI_CMD_INTX_OFF);
	d->wmask[0x0C] = 0xff;
	d->wmask[SV_PCI_INT_LINE] = 0xff;
	d->cfg[SV_PCI_INT_PIN] = intx ? 1 : 0;
	d->cap_next = CAP_FIRST;
}

int sv_pci_dev_bar(struct sv_pci_dev *d, unsigned i, enum sv_pci_bar_kind kind, uint64_t size, bool prefetch)
{
	if (i >= 6 || size == 0 || (size & (size - 1)) != 0 || d->bar[i].kind != SV_BAR_NONE || d->bar[i].upper)
		return -EINVAL;
	switch (kind) {
	case SV_BAR_IO:
		if (size < 4 || size > 256 || prefetch)
			return -EINVAL;
		break;
	case SV_BAR_MEM32:
		if (size < 16 || size > (1ULL << 31))
			return -EINVAL;
		break;
	case SV_BAR_MEM64:
		if (size < 16 || size > (1ULL << 40) || i == 5 || d->bar[i + 1].kind != SV_BAR_NONE)
			return -EINVAL;
		d->bar[i + 1].upper = true;
		break;
	default:
		return -EINVAL;
	}
	d->bar[i].kind = kind;
	d->bar[i].size = size;
	d->bar[i].prefetch = prefetch;
	return 0;
}

int sv_pci_dev_cap(struct sv_pci_dev *d, const uint8_t *body, uint8_t len, const uint8_t *wmask)
{
	unsigned off = (d->cap_next + 3u) & ~3u;

	if (len < 2 || off + len > SV_PCI_CFG_SIZE)
		return -ENOSPC;
	memcpy(d->cfg + off, body, len);
	d->cfg[off + 1] = 0;
	if (wmask)
		memcpy(d->wmask + off, wmask, len);
	d->wmask[off] = d->wmask[off + 1] = 0; /* id and next are never written */
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)off;
	else
		d->cfg[SV_PCI_CAP_PTR] = (uint8_t)off;
	d->cfg[SV_PCI_STATUS] |= SV_PCI_STATUS_CAPS;
	d->cap_last = (uint8_t)off;
	d->cap_next = (uint8_t)(off + len < SV_PCI_CFG_SIZE ? off + len : 0xff);
	return (int)off;
}

/* ---- BARs on the bus ---- */

/* The BAR's low flag bits as its register shows them. */
static uint32_t bar_flags(const struct sv_pci_bar *b)
{
	switch (b->kind) {
	case SV_BAR_IO:
		return 0x1;
	case SV_BAR_MEM64:
		return 0x4 | (b->prefetch ? 0x8 : 0);
	case SV_BAR_MEM32:
		return b->prefetch ? 0x8 : 0;
	default:
		return 0;
	}
}

/* Writes BAR i's register(s) from its address. */
static void bar_store(struct sv_pci_dev *d, unsigned i)
{
	const struct sv_pci_bar *b = &d->bar[i];
	sv_put32(d->cfg + SV_PCI_BAR0 + 4 * i, (uint32_t)b->addr | bar_flags(b));
	if (b->kind == SV_BAR_MEM64)
		sv_put32(d->cfg + SV_PCI_BAR0 + 4 * (i + 1), (uint32_t)(b->addr >> 32));
}

static void bar_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	const struct sv_pci_bar_ctx *c = opaque;
	c->d->ops->bar_access(c->d, c->bar, off, data, len, is_write);
}

/* Where BAR i should be on the bus now, or false: decoding off for its
 * kind, or an address no device can decode (0, the sizing pattern, past
 * the end of its space). */
static bool bar_target(const struct sv_pci_dev *d, unsigned i, uint64_t *at)
{
	const struct sv_pci_bar *b = &d->bar[i];
	uint16_t cmd = sv_get16(d->cfg + SV_PCI_COMMAND);
	uint64_t top;

	switch (b->kind) {
	case SV_BAR_IO:
		if (!(cmd & SV_PCI_CMD_IO))
			return false;
		top = SV_PCI_IO_END;
		break;
	case SV_BAR_MEM32:
		if (!(cmd & SV_PCI_CMD_MEM))
			return false;
		top = 1ULL << 32;
		break;
	case SV_BAR_MEM64:
		if (!(cmd & SV_PCI_CMD_MEM))
			return false;
		top = 1ULL << 52; /* x86-64's physical address width at most */
		break;
	default:
		return false;
	}
	/* b->addr is size-aligned; the last slot of the space is where the
	 * sizing pattern (all ones) lands: never a real placement. */
	if (b->addr == 0 || b->addr >= top || b->size >= top - b->addr)
		return false;
	*at = b->addr;
	return true;
}

static int bar_unmap(struct sv_pci *p, struct sv_pci_dev *d, unsigned i)
{
	struct sv_pci_bar *b = &d->bar[i];
	int err = 0;

	if (!b->is_mapped)
		return 0;
	if (d->ops->bar_map)
		err = d->ops->bar_map(d, i, b->mapped, false);
	else
		err = sv_bus_del(p->bus, b->kind == SV_BAR_IO ? SV_PIO : SV_MMIO, b->mapped, &d->ctx[i]);
	b->is_mapped = false;
	return err;
}

/* Puts BAR i where its register and the command register say, moving its
 * range on the bus when they changed.  Under cfg_lock. */
static void bar_update(struct sv_pci *p, struct sv_pci_dev *d, unsigned i)
{
	struct sv_pci_bar *b = &d->bar[i];
	uint64_t at;
	bool want = bar_target(d, i, &at);
	int err;

	if (want && b->is_mapped && b->mapped == at)
		return;
	bar_unmap(p, d, i);
	if (!want)
		return;
	d->ctx[i] = (struct sv_pci_bar_ctx){ d, i };
	if (d->ops->bar_map)
		err = d->ops->bar_map(d, i, at, true);
	else
		err = sv_bus_add(p->bus, b->kind == SV_BAR_IO ? SV_PIO : SV_MMIO, at, b->size, bar_io, &d->ctx[i]);
	if (err) {
		/* Overlapping another range: the guest's mistake, as on real
		 * hardware the device then answers nothing there.  Logged once
		 * a device: a guest cannot flood the log. */
		if (!d->bar_warned)
			fprintf(stderr, "skyvmm: pci %02x.0: BAR%u at 0x%llx not decoded (%s)\n", d->slot, i,
				(unsigned long long)at, strerror(-err));
		d->bar_warned = true;
		return;
	}
	b->mapped = at;
	b->is_mapped = true;
}

/* A write of the whole dword of BAR register i. */
static void bar_write(struct sv_pci *p, struct sv_pci_dev *d, unsigned i, uint32_t v)
{
	struct sv_pci_bar *b;
	unsigned owner = i;

	if (d->bar[i].upper)
		owner = i - 1;
	b = &d->bar[owner];
	if (b->kind == SV_BAR_NONE)
		return; /* reads 0: no BAR there */
	if (owner != i)
		b->addr = (b->addr & 0xffffffffULL) | (uint64_t)v << 32;
	else
		b->addr = (b->addr & ~0xffffffffULL) | (v & (b->kind == SV_BAR_IO ? ~0x3u : ~0xfu));
	b->addr &= ~(b->size - 1);
	if (b->kind != SV_BAR_MEM64)
		b->addr &= 0xffffffffULL;
	bar_store(d, owner);
	bar_update(p, d, owner);
}

/* ---- INTx ---- */

/* Drives the shared GSI from d's level.  Under irq_lock. */
static void intx_sync(struct sv_pci *p, struct sv_pci_dev *d)
{
	bool raise = d->intx_level && !d->intx_off && d->cfg[SV_PCI_INT_PIN];
	unsigned g;

	if (raise == d->intx_raised)
		return;
	d->intx_raised = raise;
	g = sv_pci_intx_gsi(d->slot, d->intx_pin) - SV_PCI_GSI_BASE;
	if (raise) {
		if (p->intx_count[g]++ == 0)
			p->irq->set_level(p->irq->ctx, SV_PCI_GSI_BASE + g, 1);
	} else {
		if (--p->intx_count[g] == 0)
			p->irq->set_level(p->irq->ctx, SV_PCI_GSI_BASE + g, 0);
	}
}

void sv_pci_set_intx(struct sv_pci_dev *d, bool level)
{
	struct sv_pci *p = d->pci;

	/* atomic: config reads show it in the status register (cfg_lock) */
	__atomic_store_n(&d->intx_level, level, __ATOMIC_RELAXED);
	if (!p) /* not on a bus yet */
		return;
	pthread_mutex_lock(&p->irq_lock);
	intx_sync(p, d);
	pthread_mutex_unlock(&p->irq_lock);
}

/* ---- config accesses ---- */

static void cfg_write(struct sv_pci *p, struct sv_pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	uint16_t old_cmd = sv_get16(d->cfg + SV_PCI_COMMAND);
	bool bars = false;

	for (uint32_t k = 0; k < len; k++) {
		uint32_t o = off + k;
		if (o >= SV_PCI_BAR0 && o < BAR_END) {
			bars = true;
			continue;
		}
		d->cfg[o] = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (data[k] & d->wmask[o]));
	}
	if (bars) {
		/* Bytes of BAR registers merge into their dword, which is then
		 * written whole (sizing and placement happen per dword). */
		uint32_t first = (off < SV_PCI_BAR0 ? SV_PCI_BAR0 : off) & ~3u;
		for (uint32_t r = first; r < off + len && r < BAR_END; r += 4) {
			uint8_t dw[4];
			memcpy(dw, d->cfg + r, 4);
			for (uint32_t k = 0; k < 4; k++)
				if (r + k >= off && r + k < off + len)
					dw[k] = data[r + k - off];
			bar_write(p, d, (r - SV_PCI_BAR0) / 4, sv_get32(dw));
		}
	}
	if (off < SV_PCI_COMMAND + 2 && off + len > SV_PCI_COMMAND) {
		uint16_t cmd = sv_get16(d->cfg + SV_PCI_COMMAND);
		if ((cmd ^ old_cmd) & (SV_PCI_CMD_IO | SV_PCI_CMD_MEM))
			for (unsigned i = 0; i < 6; i++)
				if (d->bar[i].kind != SV_BAR_NONE)
					bar_update(p, d, i);
		pthread_mutex_lock(&p->irq_lock);
		d->intx_off = (cmd & SV_PCI_CMD_INTX_OFF) != 0;
		intx_sync(p, d);
		pthread_mutex_unlock(&p->irq_lock);
	}
	if (d->msix)
		sv_pci_msix_cfg_written(d);
	if (d->ops && d->ops->cfg_write)
		d->ops->cfg_write(d, off, data, len);
}

void sv_pci_cfg_access(struct sv_pci *p, unsigned slot, uint32_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct sv_pci_dev *d;

	if (slot >= SV_PCI_SLOTS || off >= SV_PCI_CFG_SIZE || (len != 1 && len != 2 && len != 4) ||
	    (off & 3) + len > 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&p->cfg_lock);
	d = p->dev[slot];
	if (!d) {
		if (!is_write)
			memset(data, 0xff, len); /* no device: vendor 0xffff */
	} else if (is_write) {
		cfg_write(p, d, off, data, len);
	} else {
		memcpy(data, d->cfg + off, len);
		if (off <= SV_PCI_STATUS && off + len > SV_PCI_STATUS &&
		    __atomic_load_n(&d->intx_level, __ATOMIC_RELAXED))
			data[SV_PCI_STATUS - off] |= SV_PCI_STATUS_INTX;
		if (d->ops && d->ops->cfg_read)
			d->ops->cfg_read(d, off, data, len);
	}
	pthread_mutex_unlock(&p->cfg_lock);
}

/* Ports 0xCF8-0xCFF: the address register (32-bit accesses only, as
 * Linux's probe of mechanism #1 expects), then the data window. */
static void cfg_port(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct sv_pci *p = opaque;
	uint32_t a;

	if (off < 4) {
		pthread_mutex_lock(&p->cfg_lock);
		if (off == 0 && len == 4) {
			if (is_write)
				p->cf8 = sv_get32(data);
			else
				sv_put32(data, p->cf8);
		} else if (!is_write) {
			uint8_t b[4];
			sv_put32(b, p->cf8);
			for (uint32_t k = 0; k < len; k++)
				data[k] = off + k < 4 ? b[off + k] : 0xff;
		}
		pthread_mutex_unlock(&p->cfg_lock);
		return;
	}
	pthread_mutex_lock(&p->cfg_lock);
	a = p->cf8;
	pthread_mutex_unlock(&p->cfg_lock);
	/* enabled, bus 0, function 0 only; bits 27:24 (AMD's extended
	 * register number, for offsets past 255) select nothing here */
	if (!(a & 0x80000000u) || ((a >> 16) & 0xff) != 0 || ((a >> 8) & 7) != 0 || ((a >> 24) & 0xf) != 0) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	sv_pci_cfg_access(p, (a >> 11) & 0x1f, (a & 0xfc) + (uint32_t)(off - 4), data, len, is_write);
}

/* ---- the bus ---- */

static void host_bar(struct sv_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write)
		memset(data, 0xff, len);
}

static const struct sv_pci_dev_ops host_ops = { .bar_access = host_bar };

int sv_pci_init(struct sv_pci **out, struct sv_bus *bus, struct sv_mem *mem, const struct sv_irq_ops *irq)
{
	struct sv_pci *p = calloc(1, sizeof(*p));
	int err;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->bus = bus;
	p->mem = mem;
	p->irq = irq;
	pthread_mutex_init(&p->cfg_lock, NULL);
	pthread_mutex_init(&p->irq_lock, NULL);
	p->mmio_next = SV_PCI_MMIO_BASE;
	p->io_next = SV_PCI_IO_BASE;
	sv_pci_dev_init(&p->host, &host_ops, HOST_VENDOR, HOST_DEVICE, 0x060000, 0, false);
	sv_put16(p->host.wmask + SV_PCI_COMMAND, 0);
	p->host.pci = p;
	p->dev[0] = &p->host;
	err = sv_bus_add(bus, SV_PIO, SV_PCI_CFG_PORT, 8, cfg_port, p);
	if (err) {
		pthread_mutex_destroy(&p->cfg_lock);
		pthread_mutex_destroy(&p->irq_lock);
		free(p);
		return err;
	}
	*out = p;
	return 0;
}

/* Gives each BAR of d the next free, size-aligned address of its space. */
static int place_bars(struct sv_pci *p, struct sv_pci_dev *d, uint64_t *mmio, uint32_t *io)
{
	for (unsigned i = 0; i < 6; i++) {
		struct sv_pci_bar *b = &d->bar[i];
		if (b->kind == SV_BAR_IO) {
			uint32_t at = (*io + (uint32_t)b->size - 1) & ~((uint32_t)b->size - 1);
			if (at + b->size > SV_PCI_IO_END)
				return -ENOSPC;
			b->addr = at;
			*io = at + (uint32_t)b->size;
		} else if (b->kind == SV_BAR_MEM32 || b->kind == SV_BAR_MEM64) {
			uint64_t at = (*mmio + b->size - 1) & ~(b->size - 1);
			if (at + b->size > SV_PCI_MMIO_END)
				return -ENOSPC;
			b->addr = at;
			*mmio = at + b->size;
		}
	}
	return 0;
}

int sv_pci_add(struct sv_pci *p, struct sv_pci_dev *d)
{
	uint64_t mmio;
	uint32_t io;
	uint16_t cmd = 0;
	unsigned slot;
	int err;

	pthread_mutex_lock(&p->cfg_lock);
	for (slot = 1; slot < SV_PCI_SLOTS && p->dev[slot]; slot++)
		;
	if (slot == SV_PCI_SLOTS) {
		pthread_mutex_unlock(&p->cfg_lock);
		return -ENOSPC;
	}
	mmio = p->mmio_next;
	io = p->io_next;
	err = place_bars(p, d, &mmio, &io);
	if (err) {
		pthread_mutex_unlock(&p->cfg_lock);
		return err;
	}
	p->mmio_next = mmio;
	p->io_next = io;
	d->pci = p;
	d->slot = slot;
	d->intx_pin = 0;
	if (d->cfg[SV_PCI_INT_PIN])
		d->cfg[SV_PCI_INT_LINE] = (uint8_t)sv_pci_intx_gsi(slot, 0);
	for (unsigned i = 0; i < 6; i++) {
		if (d->bar[i].kind == SV_BAR_IO)
			cmd |= SV_PCI_CMD_IO;
		else if (d->bar[i].kind != SV_BAR_NONE)
			cmd |= SV_PCI_CMD_MEM;
		if (d->bar[i].kind != SV_BAR_NONE)
			bar_store(d, i);
	}
	/* No firmware will do it: the guest finds the device placed and on. */
	sv_put16(d->cfg + SV_PCI_COMMAND, sv_get16(d->cfg + SV_PCI_COMMAND) | cmd);
	p->dev[slot] = d;
	for (unsigned i = 0; i < 6; i++)
		if (d->bar[i].kind != SV_BAR_NONE)
			bar_update(p, d, i);
	pthread_mutex_unlock(&p->cfg_lock);
	return (int)slot;
}

void sv_pci_fini(struct sv_pci *p)
{
	if (!p)
		return;
	sv_bus_del(p->bus, SV_PIO, SV_PCI_CFG_PORT, p);
	for (unsigned s = 1; s < SV_PCI_SLOTS; s++)
		if (p->dev[s] && p->dev[s]->ops->stop)
			p->dev[s]->ops->stop(p->dev[s]);
	for (unsigned s = 1; s < SV_PCI_SLOTS; s++) {
		struct sv_pci_dev *d = p->dev[s];
		if (!d)
			continue;
		pthread_mutex_lock(&p->cfg_lock);
		for (unsigned i = 0; i < 6; i++)
			bar_unmap(p, d, i);
		p->dev[s] = NULL;
		pthread_mutex_unlock(&p->cfg_lock);
		pthread_mutex_lock(&p->irq_lock);
		__atomic_store_n(&d->intx_level, false, __ATOMIC_RELAXED);
		intx_sync(p, d);
		pthread_mutex_unlock(&p->irq_lock);
		sv_pci_msix_free(d);
		if (d->ops->destroy)
			d->ops->destroy(d);
	}
	pthread_mutex_destroy(&p->cfg_lock);
	pthread_mutex_destroy(&p->irq_lock);
	free(p);
}
