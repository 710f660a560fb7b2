/* libFuzzer target: skyvmm's PCI bus and virtio-pci transport
 * (vmm/skyvmm/dev/pci.c, pci_msix.c, virtio_pci.c, virtio_blk.c) under the
 * config and BAR accesses of a hostile guest.
 *
 * A fake machine (tests/unit/skyvmm_fake.c) with 256 KiB of RAM, a
 * virtio-blk disk (writable, over an 8 KiB memfd) in slot 1 and a device
 * with 32-bit, I/O and 64-bit BARs and MSI-X in slot 2.  Input: byte 0 is
 * the number of operations, then 8 bytes each (kind, slot, offset, length,
 * a 32-bit value: config writes and reads through ports 0xCF8/0xCFC, raw
 * accesses to those ports, accesses inside the devices' BARs wherever the
 * guest moved them, and anywhere in the PCI hole); the rest of the input
 * is the guest's RAM, where queues the guest sets up find their chains.
 * Afterwards: the ids and the BARs' type bits are what the devices made,
 * the bus's ranges are sorted and apart, and sv_pci_fini takes every range
 * it added off the bus. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/unit/skyvmm_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RAM (256u * 1024)

static int disk = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static uint8_t buf[8192];
	disk = memfd_create("fuzzdisk", MFD_CLOEXEC);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	if (disk < 0 || write(disk, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		abort();
	return 0;
}

struct tdev {
	struct sv_pci_dev d;
};

static void tdev_bar(struct sv_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	if (sv_pci_msix_access(d, off, data, len, is_write))
		return;
	if (!is_write)
		memset(data, 0x5a, len);
}

static const struct sv_pci_dev_ops tdev_ops = { .bar_access = tdev_bar };

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check_bus(const struct sv_bus *b)
{
	for (unsigned sp = 0; sp < 2; sp++)
		for (unsigned i = 1; i < b->n[sp]; i++)
			if (b->r[sp][i - 1].base + b->r[sp][i - 1].len > b->r[sp][i].base)
				abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake f;
	struct tdev *t = calloc(1, sizeof(*t));
	unsigned nops;
	static const unsigned lens[4] = { 1, 2, 4, 8 };

	if (!t)
		abort();
	if (disk < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	fake_init(&f, RAM);
	if (sv_virtio_blk_add(f.pci, disk, false) != 1)
		abort();
	sv_pci_dev_init(&t->d, &tdev_ops, 0x1234, 0x5678, 0xff0000, 0, true);
	if (sv_pci_dev_bar(&t->d, 0, SV_BAR_MEM32, 0x1000, false) || sv_pci_dev_bar(&t->d, 1, SV_BAR_IO, 0x40, false) ||
	    sv_pci_dev_bar(&t->d, 2, SV_BAR_MEM64, 0x4000, true) || sv_pci_msix_init(&t->d, 4, 2, 0, 0x1000) ||
	    sv_pci_add(f.pci, &t->d) != 2)
		abort();
	nops = size ? data[0] : 0;
	data += size ? 1 : 0;
	size -= size ? 1 : 0;
	if ((size_t)nops * 8 > size)
		nops = (unsigned)(size / 8);
	memcpy(f.ram, data + nops * 8, size - nops * 8 < RAM ? size - nops * 8 : RAM);
	for (unsigned k = 0; k < nops; k++) {
		const uint8_t *op = data + 8 * k;
		unsigned slot = op[1] % 4, len = lens[op[3] % 4];
		uint32_t v = get32(op + 4);
		uint64_t bar;
		switch (op[0] % 7) {
		case 0:
			fake_cfg_write(&f, slot, op[2], len > 4 ? 4 : len, v);
			break;
		case 1:
			fake_cfg_read(&f, slot, op[2], len > 4 ? 4 : len);
			break;
		case 2:
			if (op[2] & 1)
				fake_io_write(&f, SV_PIO, 0xCF8 + (op[1] & 7), len > 4 ? 4 : len, v);
			else
				fake_io_read(&f, SV_PIO, 0xCF8 + (op[1] & 7), len > 4 ? 4 : len, NULL);
			break;
		case 3: /* inside BAR 0 of the disk or the device, where it is now */
		case 4:
			bar = fake_cfg_read(&f, 1 + (op[1] & 1), 0x10, 4) & ~0xfull;
			bar += ((uint64_t)op[2] | (uint64_t)(op[1] >> 1) << 8) & 0x3fff;
			if (op[0] % 7 == 3)
				fake_io_write(&f, SV_MMIO, bar, len, (uint64_t)v | (uint64_t)v << 32);
			else
				fake_io_read(&f, SV_MMIO, bar, len, NULL);
			break;
		case 5: /* the device's 64-bit BAR, or I/O BAR */
			if (op[1] & 1) {
				uint64_t b2 = (fake_cfg_read(&f, 2, 0x18, 4) & ~0xfull) |
					      (uint64_t)fake_cfg_read(&f, 2, 0x1c, 4) << 32;
				fake_io_write(&f, SV_MMIO, b2 + (op[2] << 4), len, v);
			} else {
				uint64_t io = fake_cfg_read(&f, 2, 0x14, 4) & ~3ull;
				fake_io_read(&f, SV_PIO, io + (op[2] & 0x3f), len > 4 ? 4 : len, NULL);
			}
			break;
		case 6: /* anywhere in the PCI hole */
			fake_io_write(&f, SV_MMIO, SV_PCI_MMIO_BASE + ((uint64_t)v & 0x3ffffff8), len, v);
			break;
		}
		check_bus(&f.bus);
	}
	if (fake_cfg_read(&f, 1, 0, 4) != 0x10421af4 || fake_cfg_read(&f, 2, 0, 4) != 0x56781234 ||
	    fake_cfg_read(&f, 0, 0, 4) != 0x00081b36)
		abort();
	if ((fake_cfg_read(&f, 2, 0x10, 4) & 0xf) != 0 || (fake_cfg_read(&f, 2, 0x14, 4) & 3) != 1 ||
	    (fake_cfg_read(&f, 2, 0x18, 4) & 0xf) != 0xc || fake_cfg_read(&f, 2, 0x20, 4) != 0)
		abort();
	sv_pci_fini(f.pci);
	if (f.bus.n[SV_PIO] || f.bus.n[SV_MMIO])
		abort(); /* a range left behind */
	sv_bus_fini(&f.bus);
	free(f.ram);
	free(t);
	return 0;
}
