/* libFuzzer target: skyvmm's split virtqueues (vmm/skyvmm/dev/virtq.c)
 * walking descriptor chains a hostile guest wrote into its memory.
 *
 * Input: byte 0 picks the queue size (1 << (b % 9): 1..256); the rest is
 * the guest's RAM, 64 KiB at 0 (descriptor table at 0x0, available ring at
 * 0x1000, used ring at 0x2000) and then 4 KiB at 4 GiB (a second region,
 * so chains can straddle or jump between them).  Chains are popped until
 * none is left or the queue is refused; every chain popped must hold at
 * most the queue size of buffers and the byte bound, each buffer inside
 * one RAM region (its first and last bytes are touched, so ASan sees any
 * that is not), and is then written and pushed as a device would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/skyvmm/dev/virtq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOW (64u * 1024)
#define HIGH (4u * 1024)
#define HIGH_GPA 0x100000000ULL

static bool inside(const uint8_t *p, uint64_t len, const uint8_t *base, uint64_t size)
{
	return p >= base && len <= size && (uint64_t)(p - base) <= size - len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size allocations: ASan catches a byte outside either */
	uint8_t *low = calloc(1, LOW), *high = calloc(1, HIGH);
	struct sv_vq_chain *c = malloc(sizeof(*c));
	struct sv_mem mem = { .n = 2 };
	struct sv_virtq q;
	uint16_t qsize;
	size_t n;

	if (!low || !high || !c)
		abort();
	if (size < 1)
		goto out;
	qsize = (uint16_t)(1u << (data[0] % 9));
	data++;
	size--;
	n = size < LOW ? size : LOW;
	memcpy(low, data, n);
	if (size > LOW)
		memcpy(high, data + LOW, size - LOW < HIGH ? size - LOW : HIGH);
	mem.region[0] = (struct sv_mem_region){ 0, LOW, low };
	mem.region[1] = (struct sv_mem_region){ HIGH_GPA, HIGH, high };
	if (sv_virtq_start(&q, &mem, qsize, 0x0, 0x1000, 0x2000) != 0)
		abort(); /* these rings are valid for every size */
	for (unsigned round = 0; round < 2u * qsize + 2; round++) {
		int r = sv_virtq_pop(&q, c);
		if (r <= 0)
			break;
		if (c->head >= qsize || c->nr + c->nw > qsize || c->rlen + c->wlen > SV_VQ_MAX_BYTES)
			abort();
		uint64_t rl = 0, wl = 0;
		for (unsigned i = 0; i < c->nr + c->nw; i++) {
			const uint8_t *p = c->iov[i].iov_base;
			uint64_t l = c->iov[i].iov_len;
			if (!inside(p, l, low, LOW) && !inside(p, l, high, HIGH))
				abort();
			if (l) {
				volatile uint8_t x = p[0];
				x = p[l - 1];
				(void)x;
			}
			if (i < c->nr)
				rl += l;
			else
				wl += l;
		}
		if (rl != c->rlen || wl != c->wlen)
			abort();
		/* what a device does with it: read the head, fill the rest */
		uint8_t hdr[16], fill[64];
		memset(fill, 0xa5, sizeof(fill));
		sv_vq_read(c, 0, hdr, sizeof(hdr));
		for (uint64_t off = 0; off < c->wlen && off < 4096; off += sizeof(fill))
			sv_vq_write(c, off, fill, sizeof(fill));
		sv_virtq_push(&q, c->head, (uint32_t)c->wlen);
		(void)sv_virtq_want_irq(&q);
	}
out:
	free(low);
	free(high);
	free(c);
	return 0;
}
