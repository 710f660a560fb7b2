/* skyvmm: the PCI bus and its devices (the part the VMM core calls).
 *
 * One bus (0), configuration mechanism #1 on ports 0xCF8-0xCFF, a host
 * bridge at 00.0 and up to SV_PCI_SLOTS - 1 devices, one function each.
 * There is no firmware: sv_pci_add() gives each BAR its address (memory
 * BARs from SV_PCI_MMIO_BASE, I/O BARs from SV_PCI_IO_BASE) and turns
 * decoding on, so the guest finds its devices ready; a guest that moves a
 * BAR moves the device's range on the sv_bus with it.
 *
 * Interrupts: INTx is level-triggered (sv_irq_ops.set_level 1 asserts,
 * 0 deasserts) and shared; INTA-INTD of every slot land on two GSIs,
 *     gsi = SV_PCI_GSI_BASE + (slot + pin) % SV_PCI_NGSI    (pin 0 = INTA)
 * i.e. GSIs 10 and 11 (sv_pci_intx_gsi()), so the core's MP table lists
 * bus 0 source IRQ (slot << 2 | pin) -> that IOAPIC pin, level-triggered.
 * MSI-X messages go through sv_irq_ops.msi.
 *
 * Devices: sv_virtio_blk_add() and sv_virtio_net_add() (virtio 1.x over
 * PCI); any other device (VFIO passthrough) embeds a struct sv_pci_dev,
 * fills its config space with sv_pci_dev_init(), sv_pci_dev_bar(),
 * sv_pci_dev_cap() (and sv_pci_msix_init()), and calls sv_pci_add().
 *
 * Threads: config space accesses are serialized by the bus's lock; BAR
 * accesses reach the device's ops->bar_access on any vCPU thread, and the
 * device locks what they share.  Devices are only removed by sv_pci_fini(),
 * after the vCPUs stopped. */
#ifndef SKY_SKYVMM_PCI_H
#define SKY_SKYVMM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/skyvmm/sv.h"

#ifndef SV_PCI_SLOTS /* the core's sv.h may say it too */
#define SV_PCI_SLOTS     32
#endif
#define SV_PCI_GSI_BASE  10
#define SV_PCI_NGSI      2
#define SV_PCI_IO_BASE   0xC000u  /* I/O BARs: 0xC000 .. 0xFFFF */
#define SV_PCI_IO_END    0x10000u
#define SV_PCI_CFG_PORT  0xCF8u   /* 8 ports: address 0xCF8, data 0xCFC */

/* The GSI that INTx pin (0 = INTA .. 3 = INTD) of a slot raises (the
 * same rule as the core's SV_PCI_INTX_GSI where sv.h has it: pci.c checks
 * that they agree). */
static inline uint32_t sv_pci_intx_gsi(unsigned slot, unsigned pin)
{
	return SV_PCI_GSI_BASE + (slot + pin) % SV_PCI_NGSI;
}

/* Config space offsets used outside pci.c. */
#define SV_PCI_VENDOR     0x00
#define SV_PCI_DEVICE     0x02
#define SV_PCI_COMMAND    0x04
#define SV_PCI_STATUS     0x06
#define SV_PCI_REVISION   0x08
#define SV_PCI_BAR0       0x10
#define SV_PCI_SUBVENDOR  0x2C
#define SV_PCI_SUBSYSTEM  0x2E
#define SV_PCI_CAP_PTR    0x34
#define SV_PCI_INT_LINE   0x3C
#define SV_PCI_INT_PIN    0x3D
#define SV_PCI_CFG_SIZE   256

#define SV_PCI_CMD_IO          0x0001
#define SV_PCI_CMD_MEM         0x0002
#define SV_PCI_CMD_MASTER      0x0004
#define SV_PCI_CMD_INTX_OFF    0x0400
#define SV_PCI_STATUS_INTX     0x0008
#define SV_PCI_STATUS_CAPS     0x0010

#define SV_PCI_CAP_MSIX    0x11
#define SV_PCI_CAP_VENDOR  0x09

/* BAR kinds for sv_pci_dev_bar(). */
enum sv_pci_bar_kind {
	SV_BAR_NONE = 0,
	SV_BAR_IO,      /* I/O ports, at most 256 bytes */
	SV_BAR_MEM32,   /* 32-bit memory */
	SV_BAR_MEM64,   /* 64-bit memory: takes this BAR and the next */
};

struct sv_pci_bar {
	enum sv_pci_bar_kind kind;
	bool prefetch;
	bool upper;      /* the high half of the BAR before (a 64-bit one) */
	uint64_t size;   /* a power of two; 0: no BAR */
	uint64_t addr;   /* as the guest last wrote it (sizing pattern included) */
	uint64_t mapped; /* where it is on the sv_bus, valid when is_mapped */
	bool is_mapped;
};

struct sv_pci_dev;

struct sv_pci_dev_ops {
	/* An access to BAR bar (off from its start, len 1/2/4/8, data
	 * little-endian); any vCPU thread. */
	void (*bar_access)(struct sv_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len,
			   bool is_write);
	/* Optional: the BAR is mapped by the device itself (say a VFIO region
	 * in a KVM memory slot) rather than trapped: called instead of the
	 * sv_bus registration, with on false to unmap.  0 or -errno. */
	int (*bar_map)(struct sv_pci_dev *d, unsigned bar, uint64_t addr, bool on);
	/* Optional: after the emulated config read filled data (a device may
	 * replace what it emulates live); under the bus's config lock. */
	void (*cfg_read)(struct sv_pci_dev *d, uint32_t off, uint8_t *data, uint32_t len);
	/* Optional: after the emulated write applied (masks, BARs, command). */
	void (*cfg_write)(struct sv_pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len);
	/* Optional: sv_pci_fini() calls it first: stop the device's threads
	 * (nothing of it runs afterwards). */
	void (*stop)(struct sv_pci_dev *d);
	/* Optional: sv_pci_fini() calls it last, after the bus let go. */
	void (*destroy)(struct sv_pci_dev *d);
};

struct sv_pci_msix; /* pci_msix.c */

/* What a BAR's range on the sv_bus carries back to pci.c. */
struct sv_pci_bar_ctx {
	struct sv_pci_dev *d;
	unsigned bar;
};

struct sv_pci_dev {
	uint8_t cfg[SV_PCI_CFG_SIZE];
	uint8_t wmask[SV_PCI_CFG_SIZE]; /* bits the guest may write */
	struct sv_pci_bar bar[6];
	const struct sv_pci_dev_ops *ops;
	struct sv_pci *pci;          /* set by sv_pci_add() */
	unsigned slot;
	uint8_t cap_next;            /* where the next capability goes */
	uint8_t cap_last;            /* the last one's offset (0: none) */
	uint8_t intx_pin;            /* 0 = INTA, or none when cfg[0x3D] is 0 */
	bool intx_level;             /* what the device asks for */
	bool intx_raised;            /* what reaches the GSI (COMMAND bit 10) */
	struct sv_pci_msix *msix;
	bool intx_off;               /* COMMAND bit 10, as last written */
	bool bar_warned;             /* a BAR overlap was logged (once) */
	struct sv_pci_bar_ctx ctx[6]; /* the sv_bus opaques of its BARs */
};

struct sv_pci {
	struct sv_bus *bus;
	struct sv_mem *mem;
	const struct sv_irq_ops *irq;
	pthread_mutex_t cfg_lock;  /* config space and BAR placement */
	pthread_mutex_t irq_lock;  /* the shared INTx lines */
	uint32_t cf8;              /* the latched config address */
	struct sv_pci_dev *dev[SV_PCI_SLOTS];
	struct sv_pci_dev host;    /* 00.0 */
	unsigned intx_count[SV_PCI_NGSI];
	uint64_t mmio_next;        /* the next free BAR address */
	uint32_t io_next;
	unsigned nblk;             /* virtio-blk disks so far (their ids) */
};

/* ---- what the core calls ---- */

/* Makes the bus with its host bridge and claims ports 0xCF8-0xCFF on bus.
 * 0 or -errno. */
int sv_pci_init(struct sv_pci **out, struct sv_bus *bus, struct sv_mem *mem, const struct sv_irq_ops *irq);
/* A virtio-blk disk over fd (the disk is the fd's size, rounded down to
 * 512-byte sectors).  read_only: writes fail, the guest sees
 * VIRTIO_BLK_F_RO; otherwise writes go to a RAM overlay, never to fd.
 * fd stays the caller's.  Returns the slot (> 0) or -errno. */
int sv_virtio_blk_add(struct sv_pci *p, int fd, bool read_only);
/* A virtio-net NIC on an open tap (IFF_TAP | IFF_NO_PI, no vnet header)
 * with this MAC; a thread reads the tap for the guest.  The fd stays the
 * caller's.  Returns the slot (> 0) or -errno (-EBADF for fd < 0). */
int sv_virtio_net_add(struct sv_pci *p, int tap_fd, const uint8_t mac[6]);
/* Stops the devices' threads, takes their ranges off the bus, frees all.
 * After the vCPUs stopped. */
void sv_pci_fini(struct sv_pci *p);

/* ---- for devices ---- */

/* A fresh config space: ids, class (base << 16 | sub << 8 | prog-if),
 * revision, INTA (pin true) or no INTx. */
void sv_pci_dev_init(struct sv_pci_dev *d, const struct sv_pci_dev_ops *ops, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision, bool intx);
/* Declares BAR i: size a power of two (>= 16 for memory, >= 4 for I/O);
 * a 64-bit BAR uses i and i + 1.  0 or -EINVAL. */
int sv_pci_dev_bar(struct sv_pci_dev *d, unsigned i, enum sv_pci_bar_kind kind, uint64_t size, bool prefetch);
/* Appends a capability: body[0] is its id, body[1] (next) is filled in;
 * wmask (may be NULL) says which of its bits the guest may write.
 * Returns its offset in config space or -ENOSPC. */
int sv_pci_dev_cap(struct sv_pci_dev *d, const uint8_t *body, uint8_t len, const uint8_t *wmask);
/* Puts the device in a free slot, places its BARs, turns decoding on.
 * Returns the slot or -errno. */
int sv_pci_add(struct sv_pci *p, struct sv_pci_dev *d);
/* The device's INTx level (shared lines are or-ed; COMMAND bit 10 masks). */
void sv_pci_set_intx(struct sv_pci_dev *d, bool level);

/* Config space as the guest sees it (tests and fuzzers, and the port
 * handler): slot and offset, len 1/2/4 inside one dword. */
void sv_pci_cfg_access(struct sv_pci *p, unsigned slot, uint32_t off, uint8_t *data, uint32_t len, bool is_write);

/* ---- MSI-X (pci_msix.c) ---- */

/* A table of nvec entries at table_off and its PBA at pba_off, both in BAR
 * bar (the device forwards accesses there to sv_pci_msix_access); adds the
 * capability.  0 or -errno. */
int sv_pci_msix_init(struct sv_pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off, uint32_t pba_off);
/* An access to the table or the PBA: off from table_off; true if it was
 * one.  Any vCPU thread. */
bool sv_pci_msix_access(struct sv_pci_dev *d, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
/* Whether MSI-X is on (the driver set Enable). */
bool sv_pci_msix_enabled(const struct sv_pci_dev *d);
/* Sends vector vec (or leaves it pending while masked); -EINVAL if there is
 * no such vector. */
int sv_pci_msix_notify(struct sv_pci_dev *d, unsigned vec);
/* Called by pci.c on writes to the capability. */
void sv_pci_msix_cfg_written(struct sv_pci_dev *d);
void sv_pci_msix_free(struct sv_pci_dev *d);

#endif
