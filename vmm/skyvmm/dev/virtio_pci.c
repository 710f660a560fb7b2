/* skyvmm: the virtio 1.x PCI transport (virtio_pci.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/skyvmm/dev/virtio_pci.h"
#include "vmm/skyvmm/le.h"

/* virtio_pci_cap.cfg_type */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR    3
#define CAP_DEVICE 4
#define CAP_PCI    5

static struct sv_virtio_dev *of(struct sv_pci_dev *d)
{
	return (struct sv_virtio_dev *)d; /* pci is the first member */
}

bool sv_virtio_running(const struct sv_virtio_dev *v)
{
	return (v->status & SV_VIRTIO_S_DRIVER_OK) && !v->broken;
}

struct sv_virtq *sv_virtio_queue(struct sv_virtio_dev *v, unsigned q)
{
	if (q >= v->nq || !sv_virtio_running(v) || !v->q[q].enabled)
		return NULL;
	return &v->q[q].vq;
}

/* INTx with the ISR, or the MSI-X vector vec. */
static void interrupt(struct sv_virtio_dev *v, uint8_t isr_bit, uint16_t vec)
{
	if (sv_pci_msix_enabled(&v->pci)) {
		if (vec != SV_VIRTIO_NO_VECTOR)
			sv_pci_msix_notify(&v->pci, vec);
		return;
	}
	v->isr |= isr_bit;
	sv_pci_set_intx(&v->pci, true);
}

void sv_virtio_used(struct sv_virtio_dev *v, unsigned q)
{
	if (q < v->nq && sv_virtq_want_irq(&v->q[q].vq))
		interrupt(v, 1, v->q[q].msix_vector);
}

void sv_virtio_fail(struct sv_virtio_dev *v, unsigned q, const char *why)
{
	if (v->broken)
		return;
	/* the first time only: a guest that breaks, resets and breaks again
	 * cannot flood the log */
	if (!v->fail_logged)
		fprintf(stderr, "skyvmm: pci %02x.0: virtio queue %u: %s: device needs reset\n", v->pci.slot, q,
			why);
	v->fail_logged = true;
	v->broken = true;
	v->status |= SV_VIRTIO_S_NEEDS_RESET;
	if (v->status & SV_VIRTIO_S_DRIVER_OK)
		interrupt(v, 2, v->msix_config);
}

static void reset(struct sv_virtio_dev *v)
{
	v->status = 0;
	v->driver_features = 0;
	v->dfselect = v->gfselect = 0;
	v->msix_config = SV_VIRTIO_NO_VECTOR;
	v->queue_select = 0;
	v->broken = false;
	for (unsigned i = 0; i < v->nq; i++) {
		struct sv_virtio_queue *q = &v->q[i];
		uint16_t max = q->max_size;
		memset(q, 0, sizeof(*q));
		q->size = q->max_size = max;
		q->msix_vector = SV_VIRTIO_NO_VECTOR;
	}
	v->isr = 0;
	sv_pci_set_intx(&v->pci, false);
}

/* ---- common configuration ---- */

static void common_read(struct sv_virtio_dev *v, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t c[SV_VIRTIO_COMMON_LEN] = { 0 };
	const struct sv_virtio_queue *q = v->queue_select < v->nq ? &v->q[v->queue_select] : NULL;

	sv_le_put(c + 0x00, v->dfselect, 4);
	sv_le_put(c + 0x04, v->dfselect < 2 ? (uint32_t)(v->features >> (32 * v->dfselect)) : 0, 4);
	sv_le_put(c + 0x08, v->gfselect, 4);
	sv_le_put(c + 0x0c, v->gfselect < 2 ? (uint32_t)(v->driver_features >> (32 * v->gfselect)) : 0, 4);
	sv_le_put(c + 0x10, v->msix_config, 2);
	sv_le_put(c + 0x12, v->nq, 2);
	c[0x14] = v->status;
	c[0x15] = 0; /* config generation: the device config never changes */
	sv_le_put(c + 0x16, v->queue_select, 2);
	if (q) {
		sv_le_put(c + 0x18, q->size, 2);
		sv_le_put(c + 0x1a, q->msix_vector, 2);
		sv_le_put(c + 0x1c, q->enabled, 2);
		sv_le_put(c + 0x1e, v->queue_select, 2); /* queue_notify_off */
		sv_le_put(c + 0x20, q->desc, 8);
		sv_le_put(c + 0x28, q->driver, 8);
		sv_le_put(c + 0x30, q->device, 8);
	}
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < sizeof(c) ? c[off + i] : 0;
}

/* A vector the driver asks for, or NO_VECTOR when there is no such entry. */
static uint16_t vector(const struct sv_virtio_dev *v, uint64_t x)
{
	return x < v->nq + 1 ? (uint16_t)x : SV_VIRTIO_NO_VECTOR;
}

static void status_write(struct sv_virtio_dev *v, uint8_t s)
{
	uint8_t old = v->status;

	if (s == 0) {
		reset(v);
		if (v->ops->changed)
			v->ops->changed(v);
		return;
	}
	/* NEEDS_RESET is ours to set; the driver only adds its bits */
	s = (uint8_t)((s & ~SV_VIRTIO_S_NEEDS_RESET) | (old & SV_VIRTIO_S_NEEDS_RESET));
	if ((s & SV_VIRTIO_S_FEATURES_OK) && !(old & SV_VIRTIO_S_FEATURES_OK)) {
		/* only a 1.x driver, and only features we offered */
		if (!(v->driver_features & SV_VIRTIO_F_VERSION_1) || (v->driver_features & ~v->features))
			s &= (uint8_t)~SV_VIRTIO_S_FEATURES_OK;
	}
	if ((s & SV_VIRTIO_S_DRIVER_OK) && !(s & SV_VIRTIO_S_FEATURES_OK))
		s &= (uint8_t)~SV_VIRTIO_S_DRIVER_OK;
	v->status = s;
	if ((s & SV_VIRTIO_S_DRIVER_OK) && !(old & SV_VIRTIO_S_DRIVER_OK) && v->ops->changed)
		v->ops->changed(v);
}

static void queue_enable(struct sv_virtio_dev *v, struct sv_virtio_queue *q)
{
	if (q->enabled)
		return;
	if (sv_virtq_start(&q->vq, v->pci.pci->mem, q->size, q->desc, q->driver, q->device) != 0) {
		sv_virtio_fail(v, (unsigned)(q - v->q), "rings outside RAM, misaligned or a bad size");
		return;
	}
	q->enabled = true;
}

static void common_write(struct sv_virtio_dev *v, uint32_t off, const uint8_t *data, uint32_t len)
{
	uint64_t x = sv_le_get(data, len);
	struct sv_virtio_queue *q = v->queue_select < v->nq ? &v->q[v->queue_select] : NULL;
	bool features_open = !(v->status & SV_VIRTIO_S_FEATURES_OK);
	uint64_t *addr = NULL;

	switch (off) {
	case 0x00:
		if (len == 4)
			v->dfselect = (uint32_t)x;
		return;
	case 0x08:
		if (len == 4)
			v->gfselect = (uint32_t)x;
		return;
	case 0x0c:
		if (len == 4 && features_open && v->gfselect < 2) {
			unsigned sh = 32 * v->gfselect;
			v->driver_features = (v->driver_features & ~(0xffffffffULL << sh)) | (x << sh);
		}
		return;
	case 0x10:
		if (len == 2)
			v->msix_config = vector(v, x);
		return;
	case 0x14:
		if (len == 1)
			status_write(v, (uint8_t)x);
		return;
	case 0x16:
		if (len == 2)
			v->queue_select = (uint16_t)x;
		return;
	}
	/* the selected queue's fields: fixed once it is enabled */
	if (!q || q->enabled)
		return;
	switch (off) {
	case 0x18:
		if (len == 2)
			q->size = (uint16_t)x;
		return;
	case 0x1a:
		if (len == 2)
			q->msix_vector = vector(v, x);
		return;
	case 0x1c:
		if (len == 2 && x == 1)
			queue_enable(v, q);
		return;
	case 0x20: case 0x24:
		addr = &q->desc;
		break;
	case 0x28: case 0x2c:
		addr = &q->driver;
		break;
	case 0x30: case 0x34:
		addr = &q->device;
		break;
	default:
		return;
	}
	if (len == 8 && (off & 7) == 0)
		*addr = x;
	else if (len == 4 && (off & 4))
		*addr = (*addr & 0xffffffffULL) | x << 32;
	else if (len == 4)
		*addr = (*addr & ~0xffffffffULL) | x;
}

/* ---- BAR 0 ---- */

static void bar_access(struct sv_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len,
		       bool is_write)
{
	struct sv_virtio_dev *v = of(d);

	if (bar == 0 && sv_pci_msix_access(d, off, data, len, is_write))
		return;
	if (!is_write)
		memset(data, 0, len);
	if (bar != 0)
		return;
	pthread_mutex_lock(&v->lock);
	if (off < SV_VIRTIO_COMMON_LEN && len <= SV_VIRTIO_COMMON_LEN - off) {
		if (is_write)
			common_write(v, (uint32_t)off, data, len);
		else
			common_read(v, (uint32_t)off, data, len);
	} else if (off == SV_VIRTIO_ISR_OFF) {
		if (!is_write) {
			data[0] = v->isr; /* reading acknowledges */
			v->isr = 0;
			sv_pci_set_intx(d, false);
		}
	} else if (off >= SV_VIRTIO_DEVCFG_OFF && off - SV_VIRTIO_DEVCFG_OFF < v->cfg_len &&
		   len <= v->cfg_len - (off - SV_VIRTIO_DEVCFG_OFF)) {
		v->ops->config(v, (uint32_t)(off - SV_VIRTIO_DEVCFG_OFF), data, len, is_write);
	} else if (is_write && off >= SV_VIRTIO_NOTIFY_OFF &&
		   off < SV_VIRTIO_NOTIFY_OFF + (uint64_t)SV_VIRTIO_NOTIFY_MULT * v->nq) {
		unsigned q = (unsigned)(off - SV_VIRTIO_NOTIFY_OFF) / SV_VIRTIO_NOTIFY_MULT;
		if (sv_virtio_queue(v, q))
			v->ops->notify(v, q);
	}
	pthread_mutex_unlock(&v->lock);
}

/* ---- VIRTIO_PCI_CAP_PCI_CFG: BAR accesses through config space ---- */

/* The window the driver set: cap + 4 bar, + 8 offset, + 12 length, then
 * 4 bytes of data at + 16. */
static bool pcicfg_window(struct sv_virtio_dev *v, uint32_t off, uint32_t len, unsigned *bar, uint64_t *at,
			  uint32_t *n)
{
	const uint8_t *c = v->pci.cfg + v->pcicfg;

	if (off >= v->pcicfg + 20u || off + len <= v->pcicfg + 16u)
		return false;
	*bar = c[4];
	*at = sv_le_get(c + 8, 4);
	*n = (uint32_t)sv_le_get(c + 12, 4);
	return (*n == 1 || *n == 2 || *n == 4) && *bar < 6 && v->pci.bar[*bar].size &&
	       *at + *n <= v->pci.bar[*bar].size && (*at & (*n - 1)) == 0;
}

static void cfg_read(struct sv_pci_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct sv_virtio_dev *v = of(d);
	uint8_t w[4] = { 0 };
	unsigned bar;
	uint64_t at;
	uint32_t n;

	if (!pcicfg_window(v, off, len, &bar, &at, &n))
		return;
	bar_access(d, bar, at, w, n, false);
	for (uint32_t i = 0; i < len; i++)
		if (off + i >= v->pcicfg + 16u && off + i < v->pcicfg + 20u)
			data[i] = w[off + i - (v->pcicfg + 16u)];
}

static void cfg_write(struct sv_pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct sv_virtio_dev *v = of(d);
	uint8_t w[4];
	unsigned bar;
	uint64_t at;
	uint32_t n;

	if (!pcicfg_window(v, off, len, &bar, &at, &n))
		return;
	memcpy(w, d->cfg + v->pcicfg + 16, 4); /* pci.c stored the data bytes */
	bar_access(d, bar, at, w, n, true);
}

static void dev_stop(struct sv_pci_dev *d)
{
	struct sv_virtio_dev *v = of(d);
	if (v->ops->stop)
		v->ops->stop(v);
}

static void dev_destroy(struct sv_pci_dev *d)
{
	struct sv_virtio_dev *v = of(d);
	sv_virtio_release(v);
	v->ops->destroy(v);
}

static const struct sv_pci_dev_ops virtio_pci_ops = {
	.bar_access = bar_access,
	.cfg_read = cfg_read,
	.cfg_write = cfg_write,
	.stop = dev_stop,
	.destroy = dev_destroy,
};

/* ---- setup ---- */

static int add_cap(struct sv_virtio_dev *v, uint8_t type, uint32_t off, uint32_t len, const uint8_t *extra,
		   uint8_t extra_len, const uint8_t *wmask)
{
	uint8_t c[20] = { SV_PCI_CAP_VENDOR, 0, (uint8_t)(16 + extra_len), type, 0 /* bar */ };

	sv_le_put(c + 8, off, 4);
	sv_le_put(c + 12, len, 4);
	if (extra_len)
		memcpy(c + 16, extra, extra_len);
	return sv_pci_dev_cap(&v->pci, c, (uint8_t)(16 + extra_len), wmask);
}

int sv_virtio_init(struct sv_virtio_dev *v, const struct sv_virtio_ops *ops, uint16_t type, uint32_t class_code,
		   unsigned nq, uint16_t qsize, uint64_t features, uint32_t cfg_len)
{
	uint8_t mult[4], wmask[20] = { 0 };
	int err, off;

	if (nq == 0 || nq > SV_VIRTIO_MAX_QUEUES || qsize == 0 || qsize > SV_VQ_MAX_SIZE || (qsize & (qsize - 1)) ||
	    cfg_len > SV_VIRTIO_DEVCFG_MAX)
		return -EINVAL;
	sv_pci_dev_init(&v->pci, &virtio_pci_ops, SV_VIRTIO_VENDOR, (uint16_t)(0x1040 + type), class_code, 1, true);
	/* subsystem: Red Hat's vendor id, and an id of 0x40 or more as the
	 * spec asks of devices that are not transitional */
	sv_le_put(v->pci.cfg + SV_PCI_SUBVENDOR, SV_VIRTIO_VENDOR, 2);
	sv_le_put(v->pci.cfg + SV_PCI_SUBSYSTEM, 0x40, 2);
	err = sv_pci_dev_bar(&v->pci, 0, SV_BAR_MEM32, SV_VIRTIO_BAR_SIZE, false);
	if (err)
		return err;
	err = sv_pci_msix_init(&v->pci, nq + 1, 0, SV_VIRTIO_MSIX_OFF, SV_VIRTIO_PBA_OFF);
	if (err)
		return err;
	sv_le_put(mult, SV_VIRTIO_NOTIFY_MULT, 4);
	if ((off = add_cap(v, CAP_COMMON, SV_VIRTIO_COMMON_OFF, SV_VIRTIO_COMMON_LEN, NULL, 0, NULL)) < 0 ||
	    (off = add_cap(v, CAP_NOTIFY, SV_VIRTIO_NOTIFY_OFF, SV_VIRTIO_NOTIFY_MULT * nq, mult, 4, NULL)) < 0 ||
	    (off = add_cap(v, CAP_ISR, SV_VIRTIO_ISR_OFF, 1, NULL, 0, NULL)) < 0 ||
	    (cfg_len && (off = add_cap(v, CAP_DEVICE, SV_VIRTIO_DEVCFG_OFF, cfg_len, NULL, 0, NULL)) < 0))
		goto nospace;
	/* PCI_CFG: bar, offset, length and the data are the driver's */
	wmask[4] = 0xff;
	memset(wmask + 8, 0xff, 12);
	if ((off = add_cap(v, CAP_PCI, 0, 0, (const uint8_t[4]){ 0 }, 4, wmask)) < 0)
		goto nospace;
	v->pcicfg = (uint8_t)off;
	v->ops = ops;
	v->features = features | SV_VIRTIO_F_VERSION_1 | SV_VIRTIO_F_INDIRECT;
	v->nq = nq;
	v->cfg_len = cfg_len;
	for (unsigned i = 0; i < nq; i++)
		v->q[i].max_size = qsize;
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_lock(&v->lock);
	reset(v);
	pthread_mutex_unlock(&v->lock);
	return 0;
nospace:
	sv_pci_msix_free(&v->pci);
	return -ENOSPC;
}

int sv_virtio_add(struct sv_pci *p, struct sv_virtio_dev *v)
{
	return sv_pci_add(p, &v->pci);
}

void sv_virtio_release(struct sv_virtio_dev *v)
{
	sv_pci_msix_free(&v->pci);
	pthread_mutex_destroy(&v->lock);
}
