/* skyvmm: the virtio 1.x PCI transport ("modern" only, virtio 1.2 4.1).
 *
 * A device is a struct sv_virtio_dev (first member of the device's own
 * struct) with an ops table; the transport does the rest: vendor 0x1af4,
 * device 0x1040 + type, one 32-bit memory BAR 0 holding
 *     0x0000 common configuration   0x0100 ISR status
 *     0x0200 device configuration   0x1000 notifications (4 bytes a queue)
 *     0x2000 MSI-X table            0x3000 MSI-X PBA
 * the four virtio capabilities and VIRTIO_PCI_CAP_PCI_CFG (BAR access
 * through config space), feature negotiation (VIRTIO_F_VERSION_1 is
 * required: FEATURES_OK does not stick without it), queue setup, MSI-X
 * with one vector per queue plus config, and INTx (with the ISR) when the
 * driver does not turn MSI-X on.
 *
 * Queues are processed on the thread that writes their notify register
 * (a vCPU), under the device's lock; a device thread (virtio-net's rx)
 * takes the same lock.  A chain the guest broke sets NEEDS_RESET (with a
 * config interrupt) and the device ignores its queues until reset. */
#ifndef SKY_SKYVMM_VIRTIO_PCI_H
#define SKY_SKYVMM_VIRTIO_PCI_H

#include <pthread.h>

#include "vmm/skyvmm/dev/pci.h"
#include "vmm/skyvmm/dev/virtq.h"

#define SV_VIRTIO_VENDOR       0x1af4
#define SV_VIRTIO_MAX_QUEUES   4
#define SV_VIRTIO_NO_VECTOR    0xffff

#define SV_VIRTIO_F_INDIRECT   (1ULL << 28)
#define SV_VIRTIO_F_VERSION_1  (1ULL << 32)

#define SV_VIRTIO_S_ACK         1
#define SV_VIRTIO_S_DRIVER      2
#define SV_VIRTIO_S_DRIVER_OK   4
#define SV_VIRTIO_S_FEATURES_OK 8
#define SV_VIRTIO_S_NEEDS_RESET 64
#define SV_VIRTIO_S_FAILED      128

/* BAR 0's layout */
#define SV_VIRTIO_COMMON_OFF  0x0000
#define SV_VIRTIO_COMMON_LEN  0x38
#define SV_VIRTIO_ISR_OFF     0x0100
#define SV_VIRTIO_DEVCFG_OFF  0x0200
#define SV_VIRTIO_DEVCFG_MAX  0x100
#define SV_VIRTIO_NOTIFY_OFF  0x1000
#define SV_VIRTIO_NOTIFY_MULT 4
#define SV_VIRTIO_MSIX_OFF    0x2000
#define SV_VIRTIO_PBA_OFF     0x3000
#define SV_VIRTIO_BAR_SIZE    0x4000

struct sv_virtio_dev;

struct sv_virtio_ops {
	/* The device configuration space: off < the cfg_len given to
	 * sv_virtio_init(), len bytes inside it. */
	void (*config)(struct sv_virtio_dev *v, uint32_t off, uint8_t *data, uint32_t len, bool is_write);
	/* The driver notified queue q (enabled, DRIVER_OK, not broken). */
	void (*notify)(struct sv_virtio_dev *v, unsigned q);
	/* Optional: DRIVER_OK was set, or the device was reset. */
	void (*changed)(struct sv_virtio_dev *v);
	/* Optional: stop the device's threads (sv_pci_fini). */
	void (*stop)(struct sv_virtio_dev *v);
	/* Frees the device (sv_pci_fini, or a failed add). */
	void (*destroy)(struct sv_virtio_dev *v);
};

struct sv_virtio_queue {
	uint16_t size, max_size, msix_vector;
	bool enabled;
	uint64_t desc, driver, device;
	struct sv_virtq vq;
};

struct sv_virtio_dev {
	struct sv_pci_dev pci;       /* first: the PCI layer's view */
	const struct sv_virtio_ops *ops;
	pthread_mutex_t lock;        /* everything below */
	uint64_t features;           /* offered */
	uint64_t driver_features;    /* accepted by the driver */
	uint32_t dfselect, gfselect;
	uint16_t msix_config;
	uint16_t queue_select;
	uint8_t status;
	uint8_t isr;
	bool broken;                 /* NEEDS_RESET set by us */
	bool fail_logged;            /* the first breakage was logged */
	unsigned nq;
	uint32_t cfg_len;
	uint8_t pcicfg;              /* VIRTIO_PCI_CAP_PCI_CFG's offset */
	struct sv_virtio_queue q[SV_VIRTIO_MAX_QUEUES];
	struct sv_vq_chain chain;    /* scratch for the queue handlers */
};

/* Sets up v's config space and transport state: virtio device type
 * (1 net, 2 blk), class code, nq queues of up to qsize entries each, the
 * device's feature bits (VERSION_1 and INDIRECT_DESC are added), cfg_len
 * bytes of device configuration.  0 or -errno. */
int sv_virtio_init(struct sv_virtio_dev *v, const struct sv_virtio_ops *ops, uint16_t type, uint32_t class_code,
		   unsigned nq, uint16_t qsize, uint64_t features, uint32_t cfg_len);
/* Puts it on the bus (sv_pci_add); on failure the caller still owns v and
 * calls sv_virtio_release().  Returns the slot or -errno. */
int sv_virtio_add(struct sv_pci *p, struct sv_virtio_dev *v);
/* Frees what sv_virtio_init() made (not v itself). */
void sv_virtio_release(struct sv_virtio_dev *v);

/* Under v->lock: */
/* The driver is running (DRIVER_OK) and the device is not broken. */
bool sv_virtio_running(const struct sv_virtio_dev *v);
/* Queue q is enabled (and v running). */
struct sv_virtq *sv_virtio_queue(struct sv_virtio_dev *v, unsigned q);
/* Interrupts the driver for chains pushed on q (if it wants one). */
void sv_virtio_used(struct sv_virtio_dev *v, unsigned q);
/* The guest broke queue q: NEEDS_RESET, a config interrupt, the queues
 * left alone until the driver resets the device. */
void sv_virtio_fail(struct sv_virtio_dev *v, unsigned q, const char *why);

#endif
