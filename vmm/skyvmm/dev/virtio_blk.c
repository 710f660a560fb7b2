/* skyvmm: virtio-blk (virtio 1.2 5.2) over a raw disk image in a file
 * descriptor (the agent's sealed memfd), read-only or with a RAM overlay.
 *
 * The overlay is copy-on-write by 4 KiB blocks in anonymous memory
 * (MAP_NORESERVE: only what the guest wrote takes RAM), with a bitmap of
 * the blocks it holds; nothing is ever written to the fd, and the overlay
 * goes when skyvmm does.  Requests are bounded by the disk's size. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/skyvmm/dev/virtio_pci.h"

#define BLK_TYPE 2
#define BLK_QSIZE 256
#define SECTOR 512ULL
#define OVL_BLOCK 4096ULL

#define F_SIZE_MAX (1ULL << 1)
#define F_SEG_MAX  (1ULL << 2)
#define F_RO       (1ULL << 5)
#define F_BLK_SIZE (1ULL << 6)
#define F_FLUSH    (1ULL << 9)

#define T_IN     0
#define T_OUT    1
#define T_FLUSH  4
#define T_GET_ID 8

#define S_OK     0
#define S_IOERR  1
#define S_UNSUPP 2

/* One buffer at most: with seg_max buffers a request stays under the
 * virtqueue's bound on a chain's bytes (SV_VQ_MAX_BYTES). */
#define SEG_BYTES (256u * 1024)

#define ID_LEN 20
#define CFG_LEN 0x40

_Static_assert((uint64_t)(BLK_QSIZE - 2) * SEG_BYTES + 16 + 1 <= SV_VQ_MAX_BYTES,
	       "a request the driver may make fits a chain");

struct blk {
	struct sv_virtio_dev v; /* first */
	int fd;                 /* our dup of the caller's */
	bool ro;
	uint64_t size;          /* bytes: whole sectors */
	uint8_t *ovl;           /* size rounded up to OVL_BLOCK, or NULL (ro) */
	uint64_t ovl_len;
	uint64_t *have;         /* overlay blocks written */
	uint8_t cfg[CFG_LEN];
	char id[ID_LEN];
};

static bool have(const struct blk *b, uint64_t blk)
{
	return b->ovl && (b->have[blk / 64] >> (blk % 64) & 1);
}

static int pread_all(int fd, uint8_t *dst, uint64_t n, uint64_t off)
{
	while (n) {
		ssize_t r = pread(fd, dst, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO; /* the fd shrank under us: an I/O error */
		dst += r;
		n -= (uint64_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Disk bytes [off, off + n) into dst: runs of blocks from the overlay or
 * the fd.  The caller checked the range. */
static int disk_read(struct blk *b, uint64_t off, uint8_t *dst, uint64_t n)
{
	while (n) {
		uint64_t blk = off / OVL_BLOCK, run = 0;
		bool ov = have(b, blk);
		/* the longest run of blocks in the same place */
		do {
			uint64_t in = (off + run) % OVL_BLOCK, c = OVL_BLOCK - in;
			run += c < n - run ? c : n - run;
		} while (run < n && have(b, (off + run) / OVL_BLOCK) == ov);
		if (ov)
			memcpy(dst, b->ovl + off, run);
		else if (pread_all(b->fd, dst, run, off) != 0)
			return -EIO;
		dst += run;
		off += run;
		n -= run;
	}
	return 0;
}

/* src into the overlay: a block's first write copies the rest of it from
 * the fd. */
static int disk_write(struct blk *b, uint64_t off, const uint8_t *src, uint64_t n)
{
	while (n) {
		uint64_t blk = off / OVL_BLOCK, in = off % OVL_BLOCK;
		uint64_t c = OVL_BLOCK - in < n ? OVL_BLOCK - in : n;
		if (!have(b, blk)) {
			uint64_t start = blk * OVL_BLOCK;
			uint64_t len = b->size - start < OVL_BLOCK ? b->size - start : OVL_BLOCK;
			if ((in != 0 || c != len) && pread_all(b->fd, b->ovl + start, len, start) != 0)
				return -EIO;
			b->have[blk / 64] |= 1ULL << (blk % 64);
		}
		memcpy(b->ovl + off, src, c);
		src += c;
		off += c;
		n -= c;
	}
	return 0;
}

/* Whether [sector * 512, + len) lies on the disk. */
static bool in_disk(const struct blk *b, uint64_t sector, uint64_t len)
{
	return sector <= b->size / SECTOR && len <= b->size - sector * SECTOR;
}

/* Data in (reads): the chain's writable buffers but the last byte (the
 * status).  Returns the status. */
static uint8_t do_in(struct blk *b, const struct sv_vq_chain *c, uint64_t sector, uint64_t *written)
{
	uint64_t len = c->wlen - 1, off = sector * SECTOR, left = len;

	if (len % SECTOR || !in_disk(b, sector, len))
		return S_IOERR;
	for (unsigned i = c->nr; i < c->nr + c->nw && left; i++) {
		uint64_t n = c->iov[i].iov_len < left ? c->iov[i].iov_len : left;
		if (disk_read(b, off, c->iov[i].iov_base, n) != 0)
			return S_IOERR;
		off += n;
		left -= n;
	}
	*written = len;
	return S_OK;
}

/* Data out (writes): the readable bytes after the 16-byte header. */
static uint8_t do_out(struct blk *b, const struct sv_vq_chain *c, uint64_t sector)
{
	uint64_t len = c->rlen - 16, off = sector * SECTOR, skip = 16;

	if (b->ro)
		return S_IOERR;
	if (len % SECTOR || !in_disk(b, sector, len))
		return S_IOERR;
	for (unsigned i = 0; i < c->nr; i++) {
		uint64_t l = c->iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		if (disk_write(b, off, (const uint8_t *)c->iov[i].iov_base + skip, l - skip) != 0)
			return S_IOERR;
		off += l - skip;
		skip = 0;
	}
	return S_OK;
}

static uint32_t request(struct blk *b, const struct sv_vq_chain *c)
{
	uint8_t hdr[16], st;
	uint32_t type;
	uint64_t sector, written = 0;

	/* a header to read and a status byte to write, or nothing to answer */
	if (c->rlen < sizeof(hdr) || c->wlen < 1)
		return 0;
	sv_vq_read(c, 0, hdr, sizeof(hdr));
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	switch (type) {
	case T_IN:
		st = do_in(b, c, sector, &written);
		break;
	case T_OUT:
		st = do_out(b, c, sector);
		break;
	case T_FLUSH:
		st = S_OK; /* nothing is cached between the guest and the disk */
		break;
	case T_GET_ID:
		written = c->wlen - 1 < ID_LEN ? c->wlen - 1 : ID_LEN;
		sv_vq_write(c, 0, b->id, written);
		st = S_OK;
		break;
	default:
		st = S_UNSUPP;
	}
	sv_vq_write(c, c->wlen - 1, &st, 1);
	return (uint32_t)(written + 1);
}

static void blk_notify(struct sv_virtio_dev *v, unsigned qi)
{
	struct blk *b = (struct blk *)v;
	struct sv_virtq *q = sv_virtio_queue(v, qi);
	bool any = false;
	int r;

	while (q && (r = sv_virtq_pop(q, &v->chain)) != 0) {
		if (r < 0) {
			sv_virtio_fail(v, qi, "bad descriptor chain");
			break;
		}
		sv_virtq_push(q, v->chain.head, request(b, &v->chain));
		any = true;
	}
	if (any)
		sv_virtio_used(v, qi);
}

static void blk_config(struct sv_virtio_dev *v, uint32_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct blk *b = (struct blk *)v;
	if (!is_write)
		memcpy(data, b->cfg + off, len); /* read-only: writes dropped */
}

static void blk_destroy(struct sv_virtio_dev *v)
{
	struct blk *b = (struct blk *)v;
	if (b->ovl)
		munmap(b->ovl, b->ovl_len);
	free(b->have);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

static const struct sv_virtio_ops blk_ops = {
	.config = blk_config,
	.notify = blk_notify,
	.destroy = blk_destroy,
};

int sv_virtio_blk_add(struct sv_pci *p, int fd, bool read_only)
{
	struct blk *b;
	struct stat st;
	uint64_t f = F_SIZE_MAX | F_SEG_MAX | F_BLK_SIZE | F_FLUSH | (read_only ? F_RO : 0);
	uint32_t seg_max = BLK_QSIZE - 2, size_max = SEG_BYTES, blk_size = SECTOR;
	int err;

	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < SECTOR)
		return -EINVAL; /* a memfd or a file, at least one sector */
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (b->fd < 0) {
		err = -errno;
		free(b);
		return err;
	}
	b->ro = read_only;
	b->size = (uint64_t)st.st_size / SECTOR * SECTOR;
	if (!read_only) {
		uint64_t nblk = (b->size + OVL_BLOCK - 1) / OVL_BLOCK;
		b->ovl_len = nblk * OVL_BLOCK;
		b->ovl = mmap(NULL, b->ovl_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			      -1, 0);
		b->have = calloc((nblk + 63) / 64, sizeof(*b->have));
		if (b->ovl == MAP_FAILED || !b->have) {
			if (b->ovl == MAP_FAILED)
				b->ovl = NULL;
			blk_destroy(&b->v);
			return -ENOMEM;
		}
	}
	/* virtio_blk_config: capacity, size_max, seg_max, geometry, blk_size
	 * (seg_max data buffers, the header and the status: the queue size) */
	{
		uint64_t cap = b->size / SECTOR;
		memcpy(b->cfg + 0, &cap, 8);
		memcpy(b->cfg + 8, &size_max, 4);
		memcpy(b->cfg + 12, &seg_max, 4);
		memcpy(b->cfg + 20, &blk_size, 4);
	}
	err = sv_virtio_init(&b->v, &blk_ops, BLK_TYPE, 0x018000, 1, BLK_QSIZE, f, CFG_LEN);
	if (err) {
		blk_destroy(&b->v);
		return err;
	}
	snprintf(b->id, sizeof(b->id), "skyvmm-disk%u", p->nblk);
	err = sv_virtio_add(p, &b->v);
	if (err < 0) {
		sv_virtio_release(&b->v);
		blk_destroy(&b->v);
		return err;
	}
	p->nblk++;
	return err;
}
