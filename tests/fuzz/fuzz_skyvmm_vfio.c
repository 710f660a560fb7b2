/* libFuzzer target: skyvmm's emulation of a passed-through device's config
 * space (vmm/skyvmm/dev/vfio_cfg.c) between a hostile device and a hostile
 * guest, over the fake device region of tests/unit/test_skyvmm_vfio.c (a
 * memfd holding the device's "real" config space at VFIO's config region
 * offset) on the fake machine's PCI bus (tests/unit/skyvmm_fake.c).  No
 * VFIO, no KVM.
 *
 * Input: byte 0 is the number of operations (at most); bytes 1-6 the BAR regions'
 * sizes (0: none; else 1 << (code & 63), plus 0x10 when bit 7 is set: not a
 * power of two); byte 7 flags (bit 0: the host refuses MSI); then the
 * device's real config space (256 bytes, zeros where the input is short);
 * then 8 bytes per operation (kind, offset, length, a byte, a 32-bit
 * value): the guest's config writes and reads of any offset and size
 * (BAR sizing, command, the MSI capability's fields, the capability list),
 * the device changing its own status register (its INTx bit), accesses
 * inside the BARs wherever the guest moved them, the host starting or
 * stopping to refuse MSI.
 *
 * Checked after every operation: the guest's ids are the device's; the
 * guest's capability list ends, inside config space, and holds MSI only;
 * MSI's multiple-message fields read 0 and its address is dword aligned;
 * what the host routes (the msi_set calls that succeeded) is the message
 * the guest reads back, and MSI is on for the host exactly when the guest
 * reads Enable set; the device's real config space is never written but
 * its command register, which equals the guest's; the bus's ranges are
 * sorted and apart.  At the end sv_pci_fini takes every range off the bus. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/unit/skyvmm_fake.h"
#include "vmm/skyvmm/dev/vfio.h"
#include "vmm/skyvmm/le.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RAM (64u * 1024)
#define CFG_OFF 0x70000000000ULL /* VFIO's config region index 7 << 40 */
#define HDR 8

static int region = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* pci.c's notes on BARs a hostile guest overlaps go nowhere: the
	 * harness (and the replay's "replay: FILE" lines) write to the stderr
	 * they started with */
	if (!getenv("FUZZ_VERBOSE")) {
		FILE *null = fopen("/dev/null", "w");
		if (!null)
			abort();
		stderr = null;
	}
	region = memfd_create("fuzz-vfio-region", MFD_CLOEXEC);
	if (region < 0)
		abort();
	return 0;
}

struct tv {
	struct sv_vfio_dev v;
	int fail;      /* msi_set's answer to an enable */
	bool host_on;  /* MSI on as the host has it: the last msi_set that took */
	uint64_t addr; /* and its message */
	uint32_t data;
};

static int t_msi_set(struct sv_vfio_dev *v, bool on, uint64_t addr, uint32_t data)
{
	struct tv *t = (struct tv *)v;

	if (on && t->fail)
		return t->fail;
	t->host_on = on;
	t->addr = addr;
	t->data = data;
	return 0;
}

static void t_bar(struct sv_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	(void)d;
	(void)off;
	if (bar >= 6)
		abort();
	if (!is_write)
		memset(data, 0xed, len);
}

static const struct sv_pci_dev_ops t_ops = { .bar_access = t_bar, .cfg_read = sv_vfio_cfg_read,
					      .cfg_write = sv_vfio_cfg_written };

static void check_bus(const struct sv_bus *b)
{
	for (unsigned sp = 0; sp < 2; sp++)
		for (unsigned i = 1; i < b->n[sp]; i++)
			if (b->r[sp][i - 1].base + b->r[sp][i - 1].len > b->r[sp][i].base)
				abort();
}

static void check(struct fake *f, struct tv *t, unsigned slot, const uint8_t *real0)
{
	uint8_t real[SV_PCI_CFG_SIZE];
	unsigned cap = 0, n = 0, off;

	if (fake_cfg_read(f, slot, 0, 4) != sv_get32(real0))
		abort();
	/* the capability list as a guest walks it */
	off = fake_cfg_read(f, slot, SV_PCI_STATUS, 2) & SV_PCI_STATUS_CAPS ? fake_cfg_read(f, slot, SV_PCI_CAP_PTR, 1)
									 : 0;
	if ((off != 0) != (t->v.msi_cap != 0))
		abort();
	while (off) {
		if (off < 0x40 || off > SV_PCI_CFG_SIZE - 4 || (off & 3) || ++n > 1)
			abort();
		if (fake_cfg_read(f, slot, off, 1) != SV_PCI_CAP_MSI)
			abort();
		cap = off;
		off = fake_cfg_read(f, slot, off + 1, 1);
	}
	if (cap != t->v.msi_cap)
		abort();
	if (cap) {
		uint32_t ctrl = fake_cfg_read(f, slot, cap + 2, 2);
		bool is64 = (ctrl & 0x80) != 0;
		uint64_t addr = fake_cfg_read(f, slot, cap + 4, 4);
		uint32_t data;

		if (is64 != t->v.msi_64 || (ctrl & 0x7e) != 0 || (addr & 3))
			abort();
		if (is64)
			addr |= (uint64_t)fake_cfg_read(f, slot, cap + 8, 4) << 32;
		data = fake_cfg_read(f, slot, cap + (is64 ? 12 : 8), 2);
		/* the host routes what the guest reads, exactly while Enable reads set */
		if (t->host_on != ((ctrl & 1) != 0) || t->host_on != t->v.msi_on)
			abort();
		if (t->host_on && (t->addr != addr || t->data != data))
			abort();
	} else if (t->host_on) {
		abort();
	}
	/* the device's config space: written by skyvmm in its command register
	 * only, which says what the guest's says */
	if (pread(region, real, sizeof(real), (off_t)CFG_OFF) != (ssize_t)sizeof(real))
		abort();
	if (memcmp(real, real0, SV_PCI_COMMAND) || memcmp(real + 8, real0 + 8, sizeof(real) - 8) ||
	    memcmp(real + SV_PCI_COMMAND, t->v.pci.cfg + SV_PCI_COMMAND, 2))
		abort();
	check_bus(&f->bus);
}

/* Where BAR i is now (the guest's address, sizing pattern included). */
static uint64_t bar_addr(struct fake *f, unsigned slot, unsigned i, const struct tv *t)
{
	uint32_t lo = fake_cfg_read(f, slot, 0x10 + 4 * i, 4);
	uint64_t a = lo & (t->v.pci.bar[i].kind == SV_BAR_IO ? ~3ull : ~0xfull);

	if (t->v.pci.bar[i].kind == SV_BAR_MEM64 && i < 5)
		a |= (uint64_t)fake_cfg_read(f, slot, 0x14 + 4 * i, 4) << 32;
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned lens[4] = { 1, 2, 4, 4 };
	uint8_t real[SV_PCI_CFG_SIZE] = { 0 };
	char err[256] = "";
	struct fake f;
	struct tv *t;
	unsigned nops, maxops;
	int slot;

	if (region < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < HDR)
		return 0;
	maxops = data[0];
	memcpy(real, data + HDR, size - HDR < sizeof(real) ? size - HDR : sizeof(real));
	if (ftruncate(region, 0) < 0 || pwrite(region, real, sizeof(real), (off_t)CFG_OFF) != (ssize_t)sizeof(real))
		abort();
	if (!(t = calloc(1, sizeof(*t))))
		abort();
	t->v.fd = region;
	t->v.cfg_off = CFG_OFF;
	t->v.msi_set = t_msi_set;
	t->fail = data[7] & 1 ? -EINVAL : 0;
	for (unsigned i = 0; i < 6; i++) {
		uint8_t c = data[1 + i];
		t->v.reg[i].size = c ? (1ull << (c & 63)) | (c & 0x80 ? 0x10 : 0) : 0;
	}
	fake_init(&f, RAM);
	if (sv_vfio_cfg_build(&t->v, &t_ops, err, sizeof(err)) < 0) {
		if (!err[0])
			abort(); /* refused without a reason */
		goto out;
	}
	if ((slot = sv_pci_add(f.pci, &t->v.pci)) < 0)
		goto out;
	/* as sv_vfio_add does: the device decodes what the guest finds on */
	sv_vfio_cfg_written(&t->v.pci, SV_PCI_COMMAND, t->v.pci.cfg + SV_PCI_COMMAND, 2);
	memcpy(real + SV_PCI_COMMAND, t->v.pci.cfg + SV_PCI_COMMAND, 2);
	check(&f, t, (unsigned)slot, real);

	data += HDR + sizeof(real);
	size = size > HDR + sizeof(real) ? size - HDR - sizeof(real) : 0;
	nops = maxops < size / 8 ? maxops : (unsigned)(size / 8);
	for (unsigned k = 0; k < nops; k++) {
		const uint8_t *op = data + 8 * k;
		unsigned off = op[1], len = lens[op[2] % 4], bar;
		uint32_t v = sv_get32(op + 4);
		uint64_t a;

		switch (op[0] % 6) {
		case 0: /* a config write, any offset and size (the port handler keeps it in a dword) */
			fake_cfg_write(&f, (unsigned)slot, off, len, v);
			break;
		case 1:
			fake_cfg_read(&f, (unsigned)slot, off, len);
			break;
		case 2: /* the device changes its status register (INTx pending, errors) */
			real[SV_PCI_STATUS + (op[2] & 1)] = op[3];
			if (pwrite(region, &op[3], 1, (off_t)(CFG_OFF + SV_PCI_STATUS + (op[2] & 1))) != 1)
				abort();
			break;
		case 3: /* inside a BAR, where the guest has it now */
		case 4:
			bar = op[3] % 6;
			if (t->v.pci.bar[bar].kind == SV_BAR_NONE || t->v.pci.bar[bar].upper)
				break;
			a = bar_addr(&f, (unsigned)slot, bar, t) + ((uint64_t)v & 0xffff);
			if (op[0] % 6 == 3)
				fake_io_write(&f, t->v.pci.bar[bar].kind == SV_BAR_IO ? SV_PIO : SV_MMIO, a, len, v);
			else
				fake_io_read(&f, t->v.pci.bar[bar].kind == SV_BAR_IO ? SV_PIO : SV_MMIO, a, len, NULL);
			break;
		case 5: /* the host starts or stops refusing MSI */
			t->fail = op[1] & 1 ? -EINVAL : 0;
			break;
		}
		check(&f, t, (unsigned)slot, real);
	}
out:
	sv_pci_fini(f.pci);
	if (f.bus.n[SV_PIO] || f.bus.n[SV_MMIO])
		abort(); /* a range left behind */
	sv_bus_fini(&f.bus);
	free(f.ram);
	free(t);
	return 0;
}
