/* skyvmm: little-endian fields in byte buffers (a bzImage's setup header,
 * the firmware tables, PCI config space, virtio registers, the guest's
 * port and MMIO data), whatever the alignment: the one reader and writer
 * of them all. */
#ifndef SKY_SKYVMM_LE_H
#define SKY_SKYVMM_LE_H

#include <stdint.h>

/* The len (at most 8) bytes at p as a little-endian number. */
static inline uint64_t sv_le_get(const uint8_t *p, unsigned len)
{
	uint64_t v = 0;
	for (unsigned i = len; i > 0; i--)
		v = v << 8 | p[i - 1];
	return v;
}

/* The low len (at most 8) bytes of v into p, little-endian. */
static inline void sv_le_put(uint8_t *p, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint16_t sv_get16(const uint8_t *p) { return (uint16_t)sv_le_get(p, 2); }
static inline uint32_t sv_get32(const uint8_t *p) { return (uint32_t)sv_le_get(p, 4); }
static inline uint64_t sv_get64(const uint8_t *p) { return sv_le_get(p, 8); }
static inline void sv_put16(uint8_t *p, uint16_t v) { sv_le_put(p, v, 2); }
static inline void sv_put32(uint8_t *p, uint32_t v) { sv_le_put(p, v, 4); }
static inline void sv_put64(uint8_t *p, uint64_t v) { sv_le_put(p, v, 8); }

#endif
