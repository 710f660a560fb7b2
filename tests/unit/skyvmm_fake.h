/* A fake machine for skyvmm's device tests and fuzzers: guest RAM from
 * calloc, an sv_bus with the PCI bus on it, an sv_irq_ops that records what
 * the devices raise, and the accesses a guest driver makes (config space
 * through ports 0xCF8/0xCFC, MMIO through the bus).  No KVM. */
#ifndef SKY_TESTS_SKYVMM_FAKE_H
#define SKY_TESTS_SKYVMM_FAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/skyvmm/dev/pci.h"

#define FAKE_MAX_MSI 64

struct fake {
	uint8_t *ram;
	uint64_t ram_size;
	struct sv_mem mem;
	struct sv_bus bus;
	struct sv_pci *pci;
	struct sv_irq_ops irq;
	/* what the devices raised (atomics: virtio-net's rx thread too) */
	int level[32];          /* each GSI's level */
	unsigned level_calls;   /* set_level calls */
	unsigned nmsi;
	uint64_t msi_addr[FAKE_MAX_MSI];
	uint32_t msi_data[FAKE_MAX_MSI];
};

/* RAM of ram_size bytes at guest-physical 0; the PCI bus with no devices. */
void fake_init(struct fake *f, uint64_t ram_size);
void fake_fini(struct fake *f);
unsigned fake_nmsi(struct fake *f);

/* Config space through the ports, as a guest does it. */
uint32_t fake_cfg_read(struct fake *f, unsigned slot, unsigned off, unsigned len);
void fake_cfg_write(struct fake *f, unsigned slot, unsigned off, unsigned len, uint32_t v);
/* MMIO or port accesses through the bus; *hit says whether a range took it. */
uint64_t fake_io_read(struct fake *f, enum sv_space sp, uint64_t addr, unsigned len, bool *hit);
bool fake_io_write(struct fake *f, enum sv_space sp, uint64_t addr, unsigned len, uint64_t v);

/* ---- a virtio driver over the fake (fields at the transport's layout) ---- */

struct vdrv {
	struct fake *f;
	unsigned slot;
	uint64_t bar;       /* BAR 0's address */
	uint16_t qsize;
	struct {
		uint64_t desc, avail, used;
		uint16_t avail_idx, used_seen;
	} q[4];
};

/* Finds BAR 0 of the device at slot.  */
void vdrv_open(struct vdrv *d, struct fake *f, unsigned slot);
uint64_t vdrv_read(struct vdrv *d, uint32_t off, unsigned len);
void vdrv_write(struct vdrv *d, uint32_t off, unsigned len, uint64_t v);
uint64_t vdrv_features(struct vdrv *d);
/* Reset, ACK, DRIVER, the features, FEATURES_OK: the status read back. */
uint8_t vdrv_negotiate(struct vdrv *d, uint64_t features);
/* Queue q of qsize entries at fixed RAM addresses (0x100000 + q * 0x10000),
 * with MSI-X vector vec; enabled. */
void vdrv_queue(struct vdrv *d, unsigned q, uint16_t qsize, uint16_t vec);
/* Sets DRIVER_OK; returns the status read back. */
uint8_t vdrv_ok(struct vdrv *d);
/* Writes descriptor i of queue q's table. */
void vdrv_desc(struct vdrv *d, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/* Makes head available on queue q (no notify). */
void vdrv_avail(struct vdrv *d, unsigned q, uint16_t head);
void vdrv_notify(struct vdrv *d, unsigned q);
/* The used ring's index, and its entry i. */
uint16_t vdrv_used_idx(struct vdrv *d, unsigned q);
void vdrv_used(struct vdrv *d, unsigned q, uint16_t i, uint32_t *id, uint32_t *len);

#endif
