/* skyvmm: MSI-X for emulated PCI devices: the capability, the table and
 * the PBA in one of the device's BARs, masking and pending bits (pci.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/skyvmm/dev/pci.h"

#define MSIX_MAX 2048
#define CTRL_ENABLE 0x8000
#define CTRL_FMASK  0x4000
#define ENTRY_MASKED 1u

struct sv_pci_msix {
	pthread_mutex_t lock;
	unsigned nvec, bar;
	uint32_t table_off, pba_off;
	uint8_t cap;            /* the capability's offset in config space */
	bool enabled, fmask;
	uint32_t (*entry)[4];   /* address low, high, data, vector control */
	uint64_t *pba;
};

int sv_pci_msix_init(struct sv_pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off, uint32_t pba_off)
{
	struct sv_pci_msix *m;
	uint8_t cap[12] = { SV_PCI_CAP_MSIX, 0 }, wmask[12] = { 0 };
	int off;

	if (d->msix || nvec == 0 || nvec > MSIX_MAX || bar >= 6 || (table_off & 7) || (pba_off & 7) ||
	    d->bar[bar].kind == SV_BAR_NONE || d->bar[bar].kind == SV_BAR_IO ||
	    table_off + 16ULL * nvec > d->bar[bar].size || pba_off + 8ULL * ((nvec + 63) / 64) > d->bar[bar].size ||
	    (pba_off < table_off + 16ULL * nvec && table_off < pba_off + 8ULL * ((nvec + 63) / 64)))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->entry = calloc(nvec, sizeof(*m->entry));
	m->pba = calloc((nvec + 63) / 64, sizeof(*m->pba));
	if (!m->entry || !m->pba) {
		free(m->entry);
		free(m->pba);
		free(m);
		return -ENOMEM;
	}
	for (unsigned v = 0; v < nvec; v++)
		m->entry[v][3] = ENTRY_MASKED; /* masked after reset */
	m->nvec = nvec;
	m->bar = bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	cap[2] = (uint8_t)(nvec - 1);
	cap[3] = (uint8_t)((nvec - 1) >> 8);
	wmask[3] = (CTRL_ENABLE | CTRL_FMASK) >> 8;
	for (int i = 0; i < 4; i++) {
		cap[4 + i] = (uint8_t)((table_off | bar) >> (8 * i));
		cap[8 + i] = (uint8_t)((pba_off | bar) >> (8 * i));
	}
	off = sv_pci_dev_cap(d, cap, sizeof(cap), wmask);
	if (off < 0) {
		free(m->entry);
		free(m->pba);
		free(m);
		return off;
	}
	m->cap = (uint8_t)off;
	pthread_mutex_init(&m->lock, NULL);
	d->msix = m;
	return 0;
}

void sv_pci_msix_free(struct sv_pci_dev *d)
{
	struct sv_pci_msix *m = d->msix;

	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->entry);
	free(m->pba);
	free(m);
	d->msix = NULL;
}

/* Sends v if nothing masks it, else marks it pending.  Under m->lock. */
static void fire(struct sv_pci_dev *d, struct sv_pci_msix *m, unsigned v)
{
	const struct sv_irq_ops *irq = d->pci->irq;

	if (m->fmask || (m->entry[v][3] & ENTRY_MASKED)) {
		m->pba[v / 64] |= 1ULL << (v % 64);
		return;
	}
	m->pba[v / 64] &= ~(1ULL << (v % 64));
	irq->msi(irq->ctx, (uint64_t)m->entry[v][1] << 32 | m->entry[v][0], m->entry[v][2]);
}

/* Sends the pending vectors that nothing masks any more. */
static void fire_pending(struct sv_pci_dev *d, struct sv_pci_msix *m)
{
	if (!m->enabled || m->fmask)
		return;
	for (unsigned v = 0; v < m->nvec; v++)
		if ((m->pba[v / 64] >> (v % 64) & 1) && !(m->entry[v][3] & ENTRY_MASKED))
			fire(d, m, v);
}

void sv_pci_msix_cfg_written(struct sv_pci_dev *d)
{
	struct sv_pci_msix *m = d->msix;
	uint16_t ctrl = (uint16_t)(d->cfg[m->cap + 2] | d->cfg[m->cap + 3] << 8);

	pthread_mutex_lock(&m->lock);
	m->enabled = (ctrl & CTRL_ENABLE) != 0;
	m->fmask = (ctrl & CTRL_FMASK) != 0;
	fire_pending(d, m);
	pthread_mutex_unlock(&m->lock);
}

bool sv_pci_msix_enabled(const struct sv_pci_dev *d)
{
	struct sv_pci_msix *m = d->msix;
	bool on;

	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	on = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return on;
}

int sv_pci_msix_notify(struct sv_pci_dev *d, unsigned vec)
{
	struct sv_pci_msix *m = d->msix;

	if (!m || vec >= m->nvec)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->enabled)
		fire(d, m, vec);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

bool sv_pci_msix_access(struct sv_pci_dev *d, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct sv_pci_msix *m = d->msix;
	uint64_t tlen, plen;

	if (!m)
		return false;
	tlen = 16ULL * m->nvec;
	plen = 8ULL * ((m->nvec + 63) / 64);
	if (off >= m->table_off && off - m->table_off < tlen) {
		uint64_t o = off - m->table_off;
		unsigned v = (unsigned)(o / 16), w = (unsigned)(o % 16) / 4;
		/* dword or aligned qword accesses only (the spec's rule) */
		if ((len != 4 && len != 8) || (o & (len - 1))) {
			if (!is_write)
				memset(data, 0xff, len);
			return true;
		}
		pthread_mutex_lock(&m->lock);
		for (unsigned k = 0; k < len / 4; k++, w++) {
			if (!is_write) {
				memcpy(data + 4 * k, &m->entry[v][w], 4);
				continue;
			}
			uint32_t x;
			memcpy(&x, data + 4 * k, 4);
			if (w == 3)
				x &= ENTRY_MASKED; /* the other bits are reserved */
			m->entry[v][w] = x;
		}
		if (is_write)
			fire_pending(d, m);
		pthread_mutex_unlock(&m->lock);
		return true;
	}
	if (off >= m->pba_off && off - m->pba_off < plen) {
		uint64_t o = off - m->pba_off;
		if (!is_write) {
			uint8_t b[8];
			pthread_mutex_lock(&m->lock);
			for (uint32_t k = 0; k < len; k++) {
				uint64_t q = (o + k) / 8;
				if (q * 8 >= plen) {
					data[k] = 0;
					continue;
				}
				memcpy(b, &m->pba[q], 8);
				data[k] = b[(o + k) % 8];
			}
			pthread_mutex_unlock(&m->lock);
		}
		return true; /* the PBA is read-only */
	}
	return false;
}
