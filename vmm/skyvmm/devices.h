/* skyvmm: the PCI bus and virtio devices, as the core calls them.
 *
 * They live in their own files (pci.c, virtio*.c, with pci.h).  The core
 * refers to them weakly: a skyvmm linked without them still builds and
 * boots, and refuses --disk-fd and --tap-fd with "not built in"; linking
 * the device objects in is all it takes to have them. */
#ifndef SKY_SKYVMM_DEVICES_H
#define SKY_SKYVMM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/skyvmm/sv.h"

struct sv_pci;

/* claims ports 0xCF8-0xCFF; 0 or -errno */
__attribute__((weak)) int sv_pci_init(struct sv_pci **out, struct sv_bus *bus, struct sv_mem *mem,
				      const struct sv_irq_ops *irq);
__attribute__((weak)) int sv_virtio_blk_add(struct sv_pci *pci, int fd, bool read_only);
__attribute__((weak)) int sv_virtio_net_add(struct sv_pci *pci, int tap_fd, const uint8_t mac[6]);
/* a host PCI device on vfio-pci passed through (dev/vfio.h): the slot, or
 * -errno with why in err */
__attribute__((weak)) int sv_vfio_add(struct sv_pci *pci, int vm_fd, const char *bdf, char *err, size_t errlen);
__attribute__((weak)) void sv_pci_fini(struct sv_pci *pci);

#endif
