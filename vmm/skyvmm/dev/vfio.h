/* skyvmm: VFIO passthrough of a host PCI device (a device libskyvmm's
 * backend already checked and bound to vfio-pci: vmm/vfio.h).
 *
 * vfio_cfg.c  the device's config space as the guest sees it, emulated on
 *             skyvmm's PCI bus (pci.h): the real ids, class and INTx pin
 *             read through the config region; BARs of the real sizes,
 *             sized and placed by pci.c; one capability, MSI (single
 *             vector), emulated, its enable forwarded through msi_set;
 *             the command register written through to the device.  No
 *             ioctls: the unit tests give it a plain file as the region.
 * vfio_pci.c  the VFIO side: container (/dev/vfio/vfio, type-1 IOMMU, all
 *             guest RAM mapped for DMA), group, device fd, regions; BARs
 *             mmapped into the guest with KVM memory slots (or trapped and
 *             forwarded by pread/pwrite); INTx through an eventfd and
 *             KVM_IRQFD with a resample (unmask) eventfd; MSI through an
 *             eventfd, KVM_IRQFD and an MSI route.
 *
 * Only capabilities other than MSI are hidden from the guest (MSI-X, PCIe,
 * power management): a device that needs them is not served yet. */
#ifndef SKY_SKYVMM_VFIO_H
#define SKY_SKYVMM_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/skyvmm/dev/pci.h"

#define SV_VFIO_MAX  4   /* --vfio devices at most */
#define SV_PCI_CAP_MSI 0x05

struct sv_vfio_region {
	uint64_t offset;  /* in the device fd */
	uint64_t size;
	uint32_t flags;   /* VFIO_REGION_INFO_FLAG_* */
	uint8_t *map;     /* mmapped (a BAR the guest reaches directly), or NULL */
	int kvm_slot;     /* its KVM memory slot while mapped, or -1 */
};

struct sv_vfio_dev {
	struct sv_pci_dev pci;         /* first: pci.c hands it back */
	int fd;                        /* the device fd */
	uint64_t cfg_off;              /* the config region's offset in fd */
	struct sv_vfio_region reg[6];  /* BARs 0-5 (size 0: none) */
	/* MSI, emulated */
	uint8_t msi_cap;               /* its offset in our config space, 0: none */
	bool msi_64;
	bool msi_on;
	uint64_t msi_addr;
	uint32_t msi_data;
	/* The MSI enable or a new message: on with addr/data, or off.  0 or
	 * -errno (the guest then sees MSI off). */
	int (*msi_set)(struct sv_vfio_dev *v, bool on, uint64_t addr, uint32_t data);
	/* VFIO_DEVICE_SET_IRQS of one eventfd (fd -1: none) for an index and
	 * action: vfio_pci.c's ioctl, or a test's.  0 or -errno. */
	int (*set_irqs)(struct sv_vfio_dev *v, uint32_t index, uint32_t action, int fd);
	/* vfio_pci.c's part */
	int vm_fd;
	int intx_fd, unmask_fd, msi_fd;
	int msi_gsi;
	bool intx_on;
	char bdf[16];
};

/* ---- vfio_cfg.c ---- */

/* Builds v->pci's config space from the device's real one (256 bytes read
 * from v->fd at v->cfg_off) and v->reg[] sizes, with ops as its device
 * operations (vfio_pci.c's, or a test's).  0 or -errno. */
int sv_vfio_cfg_build(struct sv_vfio_dev *v, const struct sv_pci_dev_ops *ops, char *err, size_t errlen);
/* Its cfg_read hook: the status register's INTx bit read from the device. */
void sv_vfio_cfg_read(struct sv_pci_dev *d, uint32_t off, uint8_t *data, uint32_t len);
/* The emulated config space's cfg_write hook: the command register written
 * through to the device, MSI enable and message changes to msi_set. */
void sv_vfio_cfg_written(struct sv_pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len);

/* ---- vfio_pci.c ---- */

/* Passes host device bdf ("0000:00:04.0", on vfio-pci) through to the
 * guest on bus p: opens its group (from sysfs) in skyvmm's container, maps
 * all of mem for its DMA, and adds it to the bus.  vm_fd is the KVM VM
 * (memory slots for the BARs).  Returns the slot or -errno, with why. */
int sv_vfio_add(struct sv_pci *p, int vm_fd, const char *bdf, char *err, size_t errlen);
/* Its interrupts (through v->set_irqs and the bus's sv_irq_ops; the unit
 * tests call them over a fake):
 * INTx on: intx_fd triggered by the device, wired to the slot's GSI with
 * unmask_fd as the resample.  0 or -errno. */
int sv_vfio_intx_on(struct sv_vfio_dev *v);
/* INTx off; other passed-through devices whose INTx shares the GSI keep
 * theirs (given back, and unmasked, after the GSI's irqfds went). */
void sv_vfio_intx_off(struct sv_vfio_dev *v);
/* The msi_set vfio_pci.c installs: MSI on (INTx off) with this message,
 * a new message, or off (INTx back on). */
int sv_vfio_msi_set(struct sv_vfio_dev *v, bool on, uint64_t addr, uint32_t data);

#endif
