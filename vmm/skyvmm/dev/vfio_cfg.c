/* skyvmm: a passed-through device's config space, emulated on the PCI bus
 * (vfio.h).  The guest sees the device's ids, class, revision, subsystem
 * and INTx pin; BARs of the sizes VFIO reports, with the real BARs' kinds
 * (I/O, 32- or 64-bit memory, prefetchable), which pci.c sizes (a write of
 * all ones reads back the size mask) and places in skyvmm's MMIO window;
 * one capability, MSI with a single vector.  The real BAR registers are
 * never written: the guest's addresses are guest-physical, the device's
 * stay where the host put them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/skyvmm/dev/vfio.h"
#include "vmm/skyvmm/le.h"

#define MSI_CTRL 2            /* the capability's message control word */
#define MSI_CTRL_ENABLE 0x0001
#define MSI_CTRL_64 0x0080
#define CAPS_MAX 48           /* a capability list longer than this loops */

/* The offset of capability id in the real config space, or 0. */
static unsigned find_cap(const uint8_t *cfg, uint8_t id)
{
	unsigned off;

	if (!(sv_get16(cfg + SV_PCI_STATUS) & SV_PCI_STATUS_CAPS))
		return 0;
	off = cfg[SV_PCI_CAP_PTR] & ~3u;
	for (unsigned n = 0; n < CAPS_MAX && off >= 0x40 && off < SV_PCI_CFG_SIZE - 1; n++) {
		if (cfg[off] == id)
			return off;
		off = cfg[off + 1] & ~3u;
	}
	return 0;
}

static int add_msi(struct sv_vfio_dev *v, bool is64)
{
	uint8_t body[16] = { SV_PCI_CAP_MSI, 0 }, wm[16] = { 0 };
	uint8_t len = is64 ? 14 : 10;
	unsigned data_off = is64 ? 12 : 8;
	int off;

	/* control: one vector (MMC 0), 64-bit as the device; Enable writable,
	 * MME not (one vector only: it reads 0) */
	sv_put16(body + MSI_CTRL, is64 ? MSI_CTRL_64 : 0);
	wm[MSI_CTRL] = MSI_CTRL_ENABLE;
	sv_put32(wm + 4, 0xfffffffcu);
	if (is64)
		sv_put32(wm + 8, 0xffffffffu);
	sv_put16(wm + data_off, 0xffff);
	off = sv_pci_dev_cap(&v->pci, body, len, wm);
	if (off < 0)
		return off;
	v->msi_cap = (uint8_t)off;
	v->msi_64 = is64;
	return 0;
}

int sv_vfio_cfg_build(struct sv_vfio_dev *v, const struct sv_pci_dev_ops *ops, char *err, size_t errlen)
{
	uint8_t real[SV_PCI_CFG_SIZE];
	ssize_t n = pread(v->fd, real, sizeof(real), (off_t)v->cfg_off);
	unsigned msi;
	int r;

	if (n != (ssize_t)sizeof(real)) {
		snprintf(err, errlen, "reading its config space: %s", n < 0 ? strerror(errno) : "short read");
		return n < 0 ? -errno : -EIO;
	}
	if ((real[0x0E] & 0x7f) != 0) {
		snprintf(err, errlen, "header type %u: only normal devices (type 0) are passed through",
			 real[0x0E] & 0x7f);
		return -EINVAL;
	}
	sv_pci_dev_init(&v->pci, ops, sv_get16(real + SV_PCI_VENDOR), sv_get16(real + SV_PCI_DEVICE),
			(uint32_t)real[0x0B] << 16 | (uint32_t)real[0x0A] << 8 | real[0x09], real[SV_PCI_REVISION],
			real[SV_PCI_INT_PIN] != 0);
	memcpy(v->pci.cfg + SV_PCI_SUBVENDOR, real + SV_PCI_SUBVENDOR, 4);
	/* the command register as the device has it, decoding bits left to
	 * sv_pci_add (which turns on what the BARs need) */
	sv_put16(v->pci.cfg + SV_PCI_COMMAND,
		 sv_get16(real + SV_PCI_COMMAND) & ~(SV_PCI_CMD_IO | SV_PCI_CMD_MEM | SV_PCI_CMD_MASTER));
	for (unsigned i = 0; i < 6; i++) {
		uint32_t bar = sv_get32(real + SV_PCI_BAR0 + 4 * i);
		uint64_t size = v->reg[i].size;
		enum sv_pci_bar_kind kind;

		if (size == 0 || v->pci.bar[i].upper)
			continue;
		if (bar & 1)
			kind = SV_BAR_IO;
		else
			kind = ((bar >> 1) & 3) == 2 ? SV_BAR_MEM64 : SV_BAR_MEM32;
		if (kind == SV_BAR_MEM64 && i == 5) {
			snprintf(err, errlen, "BAR5 says 64-bit: no BAR6 for its upper half");
			return -EINVAL;
		}
		/* PCI BARs are powers of two; a region of another size is not a BAR */
		if ((size & (size - 1)) != 0 || (kind != SV_BAR_IO && size < 16)) {
			snprintf(err, errlen, "BAR%u: a region of %llu bytes", i, (unsigned long long)size);
			return -EINVAL;
		}
		if ((r = sv_pci_dev_bar(&v->pci, i, kind, size, kind != SV_BAR_IO && (bar & 8))) < 0) {
			snprintf(err, errlen, "BAR%u (%s, %llu bytes): not one skyvmm can place", i,
				 kind == SV_BAR_IO ? "I/O" : "memory", (unsigned long long)size);
			return r;
		}
	}
	msi = find_cap(real, SV_PCI_CAP_MSI);
	if (msi && (r = add_msi(v, (sv_get16(real + msi + MSI_CTRL) & MSI_CTRL_64) != 0)) < 0) {
		snprintf(err, errlen, "its MSI capability: %s", strerror(-r));
		return r;
	}
	return 0;
}

/* The MSI capability as the guest last wrote it. */
static void msi_read(const struct sv_vfio_dev *v, bool *on, uint64_t *addr, uint32_t *data)
{
	const uint8_t *c = v->pci.cfg + v->msi_cap;

	*on = (sv_get16(c + MSI_CTRL) & MSI_CTRL_ENABLE) != 0;
	*addr = sv_get32(c + 4);
	if (v->msi_64)
		*addr |= (uint64_t)sv_get32(c + 8) << 32;
	*data = sv_get16(c + (v->msi_64 ? 12 : 8));
}

void sv_vfio_cfg_read(struct sv_pci_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct sv_vfio_dev *v = (struct sv_vfio_dev *)d;
	uint8_t st;

	/* the INTx status bit is the device's: a driver sharing the line
	 * (uio_pci_generic, pci_check_and_mask_intx) asks it whose it is */
	if (off <= SV_PCI_STATUS && off + len > SV_PCI_STATUS && d->cfg[SV_PCI_INT_PIN] &&
	    pread(v->fd, &st, 1, (off_t)(v->cfg_off + SV_PCI_STATUS)) == 1 && (st & SV_PCI_STATUS_INTX))
		data[SV_PCI_STATUS - off] |= SV_PCI_STATUS_INTX;
}

void sv_vfio_cfg_written(struct sv_pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct sv_vfio_dev *v = (struct sv_vfio_dev *)d;
	uint64_t addr;
	uint32_t msg;
	bool on;

	(void)data;
	if (off < SV_PCI_COMMAND + 2 && off + len > SV_PCI_COMMAND) {
		/* the device decodes and masters only when the guest says so */
		uint8_t cmd[2];
		memcpy(cmd, d->cfg + SV_PCI_COMMAND, 2);
		if (pwrite(v->fd, cmd, 2, (off_t)(v->cfg_off + SV_PCI_COMMAND)) != 2)
			fprintf(stderr, "skyvmm: vfio %s: writing its command register failed\n", v->bdf);
	}
	if (!v->msi_cap || off >= v->msi_cap + 16u || off + len <= v->msi_cap)
		return;
	msi_read(v, &on, &addr, &msg);
	if (on == v->msi_on && (!on || (addr == v->msi_addr && msg == v->msi_data)))
		return;
	if (v->msi_set && v->msi_set(v, on, addr, msg) < 0 && on) {
		/* refused: the guest reads the enable bit back clear, and a
		 * vector that was on (a new message refused) goes off at the
		 * host too: MSI still routed, and INTx off, while the guest
		 * reads MSI off would lose the device's interrupts
		 * (fuzz_skyvmm_vfio found it) */
		sv_put16(d->cfg + v->msi_cap + MSI_CTRL,
			 sv_get16(d->cfg + v->msi_cap + MSI_CTRL) & ~MSI_CTRL_ENABLE);
		if (v->msi_on)
			v->msi_set(v, false, v->msi_addr, v->msi_data);
		on = false;
	}
	v->msi_on = on;
	v->msi_addr = addr;
	v->msi_data = msg;
}
