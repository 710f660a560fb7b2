/* skyvmm: split virtqueues, the device's side (virtq.h). */
#include <errno.h>
#include <string.h>

#include "vmm/skyvmm/dev/virtq.h"

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

/* The guest writes the rings while we read them: every field is loaded
 * once into a local, and what we decide on is that copy. */
static uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static uint16_t ld16_acquire(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE);
}

static void ld_desc(struct desc *d, const uint8_t *p)
{
	memcpy(&d->addr, p, 8);
	memcpy(&d->len, p + 8, 4);
	memcpy(&d->flags, p + 12, 2);
	memcpy(&d->next, p + 14, 2);
}

int sv_virtq_start(struct sv_virtq *q, const struct sv_mem *mem, uint16_t size, uint64_t desc, uint64_t avail,
		   uint64_t used)
{
	memset(q, 0, sizeof(*q));
	if (size == 0 || size > SV_VQ_MAX_SIZE || (size & (size - 1)) != 0 || (desc & 15) || (avail & 1) ||
	    (used & 3))
		return -EINVAL;
	q->desc = sv_mem_ptr(mem, desc, 16ULL * size);
	q->avail = sv_mem_ptr(mem, avail, 6 + 2ULL * size);
	q->used = sv_mem_ptr(mem, used, 6 + 8ULL * size);
	if (!q->desc || !q->avail || !q->used) {
		memset(q, 0, sizeof(*q));
		return -EINVAL;
	}
	q->mem = mem;
	q->size = size;
	q->desc_gpa = desc;
	q->avail_gpa = avail;
	q->used_gpa = used;
	q->ready = true;
	return 0;
}

int sv_virtq_pop(struct sv_virtq *q, struct sv_vq_chain *c)
{
	const uint8_t *table;
	unsigned tsize, count = 0, idx;
	bool indirect = false;
	uint16_t avail_idx, head;
	uint64_t total = 0;

	if (!q->ready)
		return 0;
	avail_idx = ld16_acquire(q->avail + 2);
	if (avail_idx == q->last_avail)
		return 0;
	/* more new entries than the ring holds: the index is a lie */
	if ((uint16_t)(avail_idx - q->last_avail) > q->size)
		return -EIO;
	head = ld16(q->avail + 4 + 2 * (q->last_avail & (q->size - 1)));
	if (head >= q->size)
		return -EIO;
	c->head = head;
	c->nr = c->nw = 0;
	c->rlen = c->wlen = 0;
	table = q->desc;
	tsize = q->size;
	idx = head;
	for (;;) {
		struct desc d;
		ld_desc(&d, table + 16 * idx);
		/* The one indirect descriptor a chain may have ends the direct
		 * part (no NEXT beside it, none nested), so it cannot loop; every
		 * other descriptor counts: no chain, looped or not, walks more
		 * than the queue size of buffers. */
		if (d.flags & SV_VQ_DESC_INDIRECT) {
			if (indirect || (d.flags & SV_VQ_DESC_NEXT) || d.len == 0 || d.len % 16 ||
			    d.len / 16 > SV_VQ_MAX_SIZE)
				return -EIO;
			table = sv_mem_ptr(q->mem, d.addr, d.len);
			if (!table)
				return -EIO;
			tsize = d.len / 16;
			idx = 0;
			indirect = true;
			continue;
		}
		if (++count > q->size)
			return -EIO;
		void *p = sv_mem_ptr(q->mem, d.addr, d.len);
		if (!p)
			return -EIO;
		total += d.len;
		if (total > SV_VQ_MAX_BYTES)
			return -EIO;
		if (d.flags & SV_VQ_DESC_WRITE) {
			c->wlen += d.len;
			c->nw++;
		} else {
			if (c->nw) /* readable after writable */
				return -EIO;
			c->rlen += d.len;
			c->nr++;
		}
		c->iov[c->nr + c->nw - 1] = (struct iovec){ p, d.len };
		if (!(d.flags & SV_VQ_DESC_NEXT))
			break;
		if (d.next >= tsize)
			return -EIO;
		idx = d.next;
	}
	q->last_avail++;
	return 1;
}

void sv_virtq_unpop(struct sv_virtq *q)
{
	q->last_avail--;
}

void sv_virtq_push(struct sv_virtq *q, uint16_t head, uint32_t written)
{
	uint8_t *e;
	uint32_t id = head;

	if (!q->ready)
		return;
	e = q->used + 4 + 8 * (q->used_idx & (q->size - 1));
	memcpy(e, &id, 4);
	memcpy(e + 4, &written, 4);
	q->used_idx++;
	/* the element before the index that shows it; seq_cst so that the
	 * load of the driver's flags in sv_virtq_want_irq() comes after it
	 * (a store-load order: what a full barrier gives, and the driver
	 * does the same on its side) */
	__atomic_store_n((uint16_t *)(void *)(q->used + 2), q->used_idx, __ATOMIC_SEQ_CST);
}

bool sv_virtq_want_irq(const struct sv_virtq *q)
{
	if (!q->ready)
		return false;
	return !(__atomic_load_n((const uint16_t *)(const void *)q->avail, __ATOMIC_SEQ_CST) &
		 SV_VQ_AVAIL_NO_INTERRUPT);
}

bool sv_virtq_has_avail(const struct sv_virtq *q)
{
	return q->ready && ld16_acquire(q->avail + 2) != q->last_avail;
}

uint64_t sv_vq_read(const struct sv_vq_chain *c, uint64_t off, void *dst, uint64_t len)
{
	uint64_t done = 0;

	for (unsigned i = 0; i < c->nr && done < len; i++) {
		uint64_t l = c->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t n = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)c->iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

uint64_t sv_vq_write(const struct sv_vq_chain *c, uint64_t off, const void *src, uint64_t len)
{
	uint64_t done = 0;

	for (unsigned i = c->nr; i < c->nr + c->nw && done < len; i++) {
		uint64_t l = c->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t n = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)c->iov[i].iov_base + off, (const uint8_t *)src + done, n);
		done += n;
		off = 0;
	}
	return done;
}
