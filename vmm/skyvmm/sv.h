/* skyvmm: the seams between its parts.
 *
 * skyvmm is Skyroot's own KVM microVM (vmm/skyvmm/README.md).  Its parts
 * meet only through the three interfaces below, so that each can be built
 * and tested alone (the unit tests and fuzzers drive the devices over a
 * fake guest memory and a bus with no KVM behind it):
 *
 *   guest memory  struct sv_mem: where the guest's RAM lives in this
 *                 process; every guest-physical range a device touches goes
 *                 through sv_mem_ptr(), which refuses what is not RAM.
 *   the I/O bus   struct sv_bus: port I/O and MMIO ranges with a handler
 *                 each; the vCPU threads dispatch their exits through it.
 *   interrupts    struct sv_irq_ops: how a device raises a line or an MSI,
 *                 so that the devices never call KVM themselves.
 *
 * Memory layout (x86-64): RAM from 0 up to SV_LOW_RAM_END at most; the
 * 32-bit hole from SV_MMIO32_BASE to 4 GiB holds PCI BARs (from
 * SV_PCI_MMIO_BASE), the IOAPIC and the LAPIC; RAM beyond SV_LOW_RAM_END
 * continues at 4 GiB. */
#ifndef SKY_SKYVMM_SV_H
#define SKY_SKYVMM_SV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SV_LOW_RAM_END   0xC0000000ULL  /* 3 GiB */
#define SV_MMIO32_BASE   0xC0000000ULL
#define SV_PCI_MMIO_BASE 0xC0000000ULL  /* BARs: 0xC0000000 .. 0xFBFFFFFF */
#define SV_PCI_MMIO_END  0xFC000000ULL
#define SV_HIGH_RAM_BASE 0x100000000ULL /* 4 GiB */

/* PCI INTx routing (bus 0): INTA-INTD of slot 0-31 (pin 0 = INTA) raise
 * IOAPIC GSI 10 or 11, swizzled by slot, level-triggered and active low.
 * The DSDT's _PRT (dsdt.c) and the MP table (mptable.c) say so; a device
 * reports the same GSI in its Interrupt Line register. */
#define SV_PCI_SLOTS 32
#define SV_PCI_INTX_GSI(slot, pin) (10U + (((unsigned)(slot) + (unsigned)(pin)) & 1U))

/* ---- guest memory ---- */

struct sv_mem_region {
	uint64_t gpa;   /* guest-physical start */
	uint64_t size;  /* bytes */
	uint8_t *host;  /* where it is mapped in this process */
};

struct sv_mem {
	struct sv_mem_region region[2]; /* low RAM, then RAM above 4 GiB */
	unsigned n;
};

/* The host address of [gpa, gpa + len) if all of it lies inside one RAM
 * region, else NULL (overflow-checked: a hostile gpa or len never wraps).
 * len 0 is allowed and checks gpa alone. */
void *sv_mem_ptr(const struct sv_mem *m, uint64_t gpa, uint64_t len);

/* The guest's total RAM in bytes. */
uint64_t sv_mem_total(const struct sv_mem *m);

/* ---- the I/O bus ---- */

enum sv_space { SV_PIO = 0, SV_MMIO = 1 };

/* A device's handler: off is relative to the range's base; len is 1, 2, 4
 * or 8; on a read the handler fills data (little-endian), on a write it
 * reads it.  Called on a vCPU thread; handlers of one device may run on
 * several vCPU threads at once and lock what they share. */
typedef void (*sv_io_fn)(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

#define SV_BUS_MAX 64

struct sv_bus_range {
	uint64_t base, len;
	sv_io_fn fn;
	void *opaque;
};

struct sv_bus {
	struct sv_bus_range r[2][SV_BUS_MAX]; /* [space][i], sorted by base */
	unsigned n[2];
	/* ranges move when the guest reprograms a BAR (on a vCPU thread):
	 * an rwlock in the implementation guards them */
	void *lock;
};

int sv_bus_init(struct sv_bus *b);
void sv_bus_fini(struct sv_bus *b);
/* -EEXIST if it overlaps a range already there, -ENOSPC if full,
 * -EINVAL for len 0 or a wrap. */
int sv_bus_add(struct sv_bus *b, enum sv_space sp, uint64_t base, uint64_t len, sv_io_fn fn, void *opaque);
/* Removes the range that starts at base with this opaque; -ENOENT if none. */
int sv_bus_del(struct sv_bus *b, enum sv_space sp, uint64_t base, void *opaque);
/* Dispatches an access; false if no range holds it (reads then see all
 * ones, writes are dropped: what real hardware does). */
bool sv_bus_access(struct sv_bus *b, enum sv_space sp, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

/* ---- interrupts ---- */

struct sv_irq_ops {
	/* A level on a GSI of the IOAPIC (edge devices pulse 1 then 0). */
	int (*set_level)(void *ctx, uint32_t gsi, int level);
	/* An MSI message, as the device's MSI or MSI-X table holds it. */
	int (*msi)(void *ctx, uint64_t addr, uint32_t data);
	/* Routes an eventfd to a GSI in the kernel (KVM_IRQFD), with a resample
	 * eventfd for level-triggered INTx (-1 for edge); fd -1 removes it.
	 * For passed-through devices, whose interrupts never reach skyvmm. */
	int (*irqfd)(void *ctx, int fd, uint32_t gsi, int resample_fd);
	/* Routes an eventfd to an MSI message (KVM routing table + IRQFD);
	 * returns the GSI it took (>= 0) or -errno; gsi_old >= 0 re-routes. */
	int (*msi_irqfd)(void *ctx, int fd, uint64_t addr, uint32_t data, int gsi_old);
	void *ctx;
};

#endif
