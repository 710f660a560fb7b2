/* VFIO/IOMMU: list IOMMU groups, check that a PCI device may be given to a
 * guest, move it to vfio-pci and back to its host driver afterwards.
 *
 * All sysfs and /dev access goes through a struct vmm_root (NULL: the real
 * /sys and /dev), every write through its write_attr.
 *
 * Group viability (the rule the kernel's VFIO applies before a group may be
 * opened, checked here first so the error names the culprit): a device D
 * may be passed through when D itself is not a PCI bridge and every device
 * of D's IOMMU group is
 *   - bound to no driver, or
 *   - bound to vfio-pci (it is D, or given to a guest too: note a group can
 *     be opened by one VMM at a time, so such a sibling must go to the
 *     same guest), or
 *   - bound to pci-stub (a placeholder driver that does no DMA; the
 *     kernel's vfio_driver_allowed list), or
 *   - a PCI bridge: class 0x0604 (PCI-to-PCI, normally driven by pcieport)
 *     or 0x0607 (CardBus), whatever its driver.  The kernel allows bridges
 *     (non-normal header type; pcieport sets driver_managed_dma) because
 *     isolation is lost below them anyway.
 * Anything else - a sibling bound to a host driver such as snd_hda_intel or
 * e1000e - makes the group unusable: the device is refused with a message
 * naming that sibling and its driver.
 */
#ifndef SKY_VMM_VFIO_H
#define SKY_VMM_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/parse.h" /* sky_parse_pci: the one PCI address syntax */
#include "vmm/vmm.h"

#define VFIO_BDF_LEN SKY_PCI_ADDR_LEN /* "0000:00:00.0" + NUL */
#define VFIO_DRIVER_MAX 64         /* bytes of a driver name, with NUL */
#define VFIO_DEVNAME_MAX 64
#define VFIO_GROUPS_MAX 4096       /* groups listed at most */
#define VFIO_GROUP_DEVS_MAX 256    /* devices per group at most */

struct vfio_host_dev {
	char name[VFIO_DEVNAME_MAX];   /* "0000:01:00.0", or a non-PCI device */
	char driver[VFIO_DRIVER_MAX];  /* "" when bound to no driver */
	bool pci;                      /* vendor/device/class are valid */
	uint16_t vendor, device;
	uint32_t class_code;           /* 0x060400 for a PCI-to-PCI bridge */
};

struct vfio_host_group {
	unsigned id;                   /* /sys/kernel/iommu_groups/<id> */
	size_t ndevs;
	struct vfio_host_dev *devs;
};

/* Every IOMMU group, sorted by id, devices sorted by name.  No groups (no
 * IOMMU, or it is off) is not an error: *n = 0. */
int vfio_list_groups(const struct vmm_root *root, struct vfio_host_group **out, size_t *n,
		     struct vmm_error *err);
void vfio_groups_free(struct vfio_host_group *groups, size_t n);

/* The IOMMU group of a PCI device: 0 and *group, or -errno with why. */
int vfio_device_group(const struct vmm_root *root, const char *bdf, unsigned *group,
		      struct vmm_error *err);

/* 0 when bdf may be passed through (see the rule above), else -EBUSY
 * (a sibling on a host driver), -ENODEV (no such device, or no IOMMU
 * group), -EINVAL (a bridge) with a message. */
int vfio_check_viable(const struct vmm_root *root, const char *bdf, struct vmm_error *err);

/* A device taken from its host driver for a guest. */
struct vfio_claim;

/* Check viability, then bind bdf to vfio-pci: write "vfio-pci" to its
 * driver_override, unbind it from its current driver, write it to
 * bus/pci/drivers_probe, and verify that vfio-pci holds it and
 * /dev/vfio/<group> exists.  The original driver and driver_override are
 * remembered.  A device already on vfio-pci is left as it is (and left so
 * on release).  On failure the device is put back as it was. */
int vfio_claim(const struct vmm_root *root, const char *bdf, struct vfio_claim **out,
	       struct vmm_error *err);
/* Give the device back: unbind it from vfio-pci, restore driver_override,
 * bind it to the original driver (none if it had none) and verify.  Frees
 * the claim either way.  The VMM using the device must have ended. */
int vfio_release(struct vfio_claim *c, struct vmm_error *err);
/* vfio_release ignoring errors; NULL is fine. */
void vfio_claim_free(struct vfio_claim *c);

const char *vfio_claim_bdf(const struct vfio_claim *c);
const char *vfio_claim_orig_driver(const struct vfio_claim *c); /* "" if none */
unsigned vfio_claim_group(const struct vfio_claim *c);

#endif
