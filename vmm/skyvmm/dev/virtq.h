/* skyvmm: split virtqueues (virtio 1.x, 2.7) as the device side walks them.
 *
 * Everything in a queue is the guest's and may change under us or lie: the
 * rings are checked once when the driver enables the queue (inside RAM,
 * aligned), every descriptor's buffer goes through sv_mem_ptr(), a chain is
 * at most the queue size in buffers (direct and indirect together; the
 * one indirect descriptor itself does not count), an
 * indirect table is read once and may not nest or carry NEXT beside
 * INDIRECT, device-writable buffers come after the readable ones, and a
 * chain's byte total is bounded.  Anything else makes sv_virtq_pop()
 * return -EIO; the transport then marks the device NEEDS_RESET and stops
 * using it. */
#ifndef SKY_SKYVMM_VIRTQ_H
#define SKY_SKYVMM_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/skyvmm/sv.h"

#define SV_VQ_MAX_SIZE 256          /* the largest queue we offer */
#define SV_VQ_MAX_BYTES (1u << 26)  /* 64 MiB: one chain's bytes at most */

#define SV_VQ_DESC_NEXT     1
#define SV_VQ_DESC_WRITE    2
#define SV_VQ_DESC_INDIRECT 4
#define SV_VQ_AVAIL_NO_INTERRUPT 1

struct sv_virtq {
	const struct sv_mem *mem;
	uint16_t size;            /* a power of two, <= SV_VQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* host pointers of the rings, set by sv_virtq_start() */
	uint8_t *desc, *avail, *used;
	uint16_t last_avail;      /* the next avail entry we take */
	uint16_t used_idx;        /* our copy of used->idx */
	bool ready;
};

/* One chain: its buffers in guest order, readable first.  iov points into
 * guest RAM (valid while the guest's memory is mapped). */
struct sv_vq_chain {
	uint16_t head;
	unsigned nr, nw;          /* readable, then writable buffers in iov */
	uint64_t rlen, wlen;      /* their bytes */
	struct iovec iov[SV_VQ_MAX_SIZE];
};

/* Checks and maps the rings at the addresses and size the driver set.
 * 0, or -EINVAL (the transport then sets NEEDS_RESET). */
int sv_virtq_start(struct sv_virtq *q, const struct sv_mem *mem, uint16_t size, uint64_t desc, uint64_t avail,
		   uint64_t used);
/* The next available chain into c: 1, 0 when there is none, -EIO when the
 * guest broke the queue (nothing was taken then). */
int sv_virtq_pop(struct sv_virtq *q, struct sv_vq_chain *c);
/* Gives back the chain sv_virtq_pop() just returned, untouched (the
 * device could not use it yet). */
void sv_virtq_unpop(struct sv_virtq *q);
/* Returns a chain to the driver with the bytes the device wrote. */
void sv_virtq_push(struct sv_virtq *q, uint16_t head, uint32_t written);
/* Whether the driver wants an interrupt for what was pushed
 * (VIRTQ_AVAIL_F_NO_INTERRUPT clear). */
bool sv_virtq_want_irq(const struct sv_virtq *q);
/* Whether the driver made chains available that we did not take. */
bool sv_virtq_has_avail(const struct sv_virtq *q);

/* Copies between a chain's readable bytes (from offset off) or writable
 * bytes and a flat buffer; return the bytes copied (fewer at the end). */
uint64_t sv_vq_read(const struct sv_vq_chain *c, uint64_t off, void *dst, uint64_t len);
uint64_t sv_vq_write(const struct sv_vq_chain *c, uint64_t off, const void *src, uint64_t len);

#endif
