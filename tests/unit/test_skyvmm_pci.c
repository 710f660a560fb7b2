/* Unit tests for skyvmm's PCI bus (vmm/skyvmm/dev/pci.c, pci_msix.c), as a
 * guest sees it through ports 0xCF8/0xCFC and MMIO on the sv_bus of a fake
 * machine (tests/unit/skyvmm_fake.c): the host bridge and empty slots,
 * BAR sizing of 32-bit, 64-bit and I/O BARs, write masks, BAR moves taking
 * the device's range along on the bus, the command register's decoding,
 * the capability list, shared INTx lines and MSI-X masking.
 *
 * Environment: none needed.   ./test_skyvmm_pci
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/skyvmm_fake.h"

/* A device with BAR0 mem32 4 KiB, BAR1 I/O 32 bytes, BAR2+3 mem64 1 MiB
 * prefetchable, BAR 4 and 5 none; its BARs record the last access. */
struct tdev {
	struct sv_pci_dev d;
	unsigned bar;
	uint64_t off;
	uint32_t len;
	bool wrote;
	unsigned n;
};

static void tdev_bar(struct sv_pci_dev *d, unsigned bar, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct tdev *t = (struct tdev *)d;
	if (sv_pci_msix_access(d, off, data, len, is_write))
		return;
	t->bar = bar;
	t->off = off;
	t->len = len;
	t->wrote = is_write;
	t->n++;
	if (!is_write)
		memset(data, 0x5a, len);
}

static const struct sv_pci_dev_ops tdev_ops = { .bar_access = tdev_bar };

static int tdev_add(struct fake *f, struct tdev *t, bool msix)
{
	sv_pci_dev_init(&t->d, &tdev_ops, 0x1234, 0x5678, 0xff0000, 3, true);
	assert_int_equal(sv_pci_dev_bar(&t->d, 0, SV_BAR_MEM32, 0x1000, false), 0);
	assert_int_equal(sv_pci_dev_bar(&t->d, 1, SV_BAR_IO, 0x20, false), 0);
	assert_int_equal(sv_pci_dev_bar(&t->d, 2, SV_BAR_MEM64, 0x100000, true), 0);
	/* BAR 3 is the upper half: not declarable */
	assert_int_equal(sv_pci_dev_bar(&t->d, 3, SV_BAR_MEM32, 0x1000, false), -EINVAL);
	assert_int_equal(sv_pci_dev_bar(&t->d, 4, SV_BAR_MEM32, 0x1800, false), -EINVAL); /* not a power of 2 */
	if (msix)
		assert_int_equal(sv_pci_msix_init(&t->d, 3, 0, 0x800, 0xc00), 0);
	return sv_pci_add(f->pci, &t->d);
}

static void test_host_bridge_and_empty_slots(void **state)
{
	struct fake f;
	fake_init(&f, 1 << 20);
	assert_int_equal(fake_cfg_read(&f, 0, 0, 4), 0x00081b36);
	assert_int_equal(fake_cfg_read(&f, 0, 0x08, 4) >> 8, 0x060000); /* host bridge class */
	assert_int_equal(fake_cfg_read(&f, 0, 0x0e, 1), 0);             /* header type 0 */
	/* its command register is read-only */
	fake_cfg_write(&f, 0, SV_PCI_COMMAND, 2, 0xffff);
	assert_int_equal(fake_cfg_read(&f, 0, SV_PCI_COMMAND, 2), 0);
	/* nothing in slot 5: all ones, writes dropped */
	assert_int_equal(fake_cfg_read(&f, 5, 0, 4), 0xffffffff);
	fake_cfg_write(&f, 5, 0x3c, 1, 7);
	assert_int_equal(fake_cfg_read(&f, 5, 0x3c, 1), 0xff);
	/* the address register reads back what Linux's probe wrote */
	fake_io_write(&f, SV_PIO, 0xCF8, 4, 0x80000000);
	assert_int_equal(fake_io_read(&f, SV_PIO, 0xCF8, 4, NULL), 0x80000000);
	/* a byte write to 0xCFB does not change it */
	fake_io_write(&f, SV_PIO, 0xCFB, 1, 0x01);
	assert_int_equal(fake_io_read(&f, SV_PIO, 0xCF8, 4, NULL), 0x80000000);
	/* enable bit clear, bus 1, function 1: nothing answers */
	fake_io_write(&f, SV_PIO, 0xCF8, 4, 0x00000000);
	assert_int_equal(fake_io_read(&f, SV_PIO, 0xCFC, 4, NULL), 0xffffffff);
	fake_io_write(&f, SV_PIO, 0xCF8, 4, 0x80010000);
	assert_int_equal(fake_io_read(&f, SV_PIO, 0xCFC, 4, NULL), 0xffffffff);
	fake_io_write(&f, SV_PIO, 0xCF8, 4, 0x80000100);
	assert_int_equal(fake_io_read(&f, SV_PIO, 0xCFC, 4, NULL), 0xffffffff);
	/* an extended register (AMD's bits 27:24) is not register 0 */
	fake_io_write(&f, SV_PIO, 0xCF8, 4, 0x81000000);
	assert_int_equal(fake_io_read(&f, SV_PIO, 0xCFC, 4, NULL), 0xffffffff);
	/* a word at 0xCFE reads the upper half of the dword */
	fake_io_write(&f, SV_PIO, 0xCF8, 4, 0x80000000);
	assert_int_equal(fake_io_read(&f, SV_PIO, 0xCFE, 2, NULL), 0x0008);
	fake_fini(&f);
}

static void test_bar_sizing(void **state)
{
	struct fake f;
	struct tdev t;
	int slot;
	uint32_t b0, b1, b2, b3;

	fake_init(&f, 1 << 20);
	slot = tdev_add(&f, &t, false);
	assert_int_equal(slot, 1);
	assert_int_equal(fake_cfg_read(&f, slot, 0, 4), 0x56781234);
	b0 = fake_cfg_read(&f, slot, 0x10, 4);
	b1 = fake_cfg_read(&f, slot, 0x14, 4);
	b2 = fake_cfg_read(&f, slot, 0x18, 4);
	b3 = fake_cfg_read(&f, slot, 0x1c, 4);
	/* placed by the bus: memory in the PCI hole, I/O from 0xC000 */
	assert_true(b0 >= SV_PCI_MMIO_BASE && b0 < SV_PCI_MMIO_END && (b0 & 0xfff) == 0);
	assert_int_equal(b1 & 3, 1);
	assert_true((b1 & ~3u) >= SV_PCI_IO_BASE && (b1 & ~3u) < SV_PCI_IO_END);
	assert_int_equal(b2 & 0xf, 0xc); /* 64-bit, prefetchable */
	assert_int_equal((b2 & ~0xfu) % 0x100000, 0);
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_COMMAND, 2) & 3, 3);
	/* sizing, as Linux does it: decoding off, all ones, read, restore */
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, 0);
	for (unsigned i = 0; i < 6; i++)
		fake_cfg_write(&f, slot, 0x10 + 4 * i, 4, 0xffffffff);
	assert_int_equal(fake_cfg_read(&f, slot, 0x10, 4), 0xfffff000);
	assert_int_equal(fake_cfg_read(&f, slot, 0x14, 4), 0xffffffe1);
	assert_int_equal(fake_cfg_read(&f, slot, 0x18, 4), 0xfff0000c);
	assert_int_equal(fake_cfg_read(&f, slot, 0x1c, 4), 0xffffffff);
	assert_int_equal(fake_cfg_read(&f, slot, 0x20, 4), 0); /* no BAR 4 */
	assert_int_equal(fake_cfg_read(&f, slot, 0x24, 4), 0);
	assert_int_equal(fake_cfg_read(&f, slot, 0x30, 4), 0); /* no ROM */
	fake_cfg_write(&f, slot, 0x10, 4, b0);
	fake_cfg_write(&f, slot, 0x14, 4, b1);
	fake_cfg_write(&f, slot, 0x18, 4, b2);
	fake_cfg_write(&f, slot, 0x1c, 4, b3);
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, 3);
	assert_int_equal(fake_cfg_read(&f, slot, 0x10, 4), b0);
	assert_int_equal(fake_cfg_read(&f, slot, 0x14, 4), b1);
	assert_int_equal(fake_cfg_read(&f, slot, 0x18, 4), b2);
	assert_int_equal(fake_cfg_read(&f, slot, 0x1c, 4), b3);
	/* the flag bits stay whatever is written */
	fake_cfg_write(&f, slot, 0x10, 4, b0 | 0xf);
	assert_int_equal(fake_cfg_read(&f, slot, 0x10, 4), b0);
	/* a byte write to the BAR merges into its dword */
	fake_cfg_write(&f, slot, 0x13, 1, 0xd1);
	assert_int_equal(fake_cfg_read(&f, slot, 0x10, 4), (b0 & 0x00ffffff) | 0xd1000000);
	fake_fini(&f);
}

static void test_write_masks(void **state)
{
	struct fake f;
	struct tdev t;
	int slot;
	uint32_t before[64];

	fake_init(&f, 1 << 20);
	slot = tdev_add(&f, &t, true);
	for (unsigned i = 0; i < 64; i++)
		before[i] = fake_cfg_read(&f, slot, 4 * i, 4);
	/* every dword but the BARs, command, cache line and interrupt line:
	 * all ones and all zeros change nothing */
	for (unsigned i = 0; i < 64; i++) {
		unsigned off = 4 * i;
		if (off == 0x04 || off == 0x0c || (off >= 0x10 && off < 0x28) || off == 0x3c)
			continue;
		fake_cfg_write(&f, slot, off, 4, 0xffffffff);
		fake_cfg_write(&f, slot, off, 4, 0);
	}
	for (unsigned i = 0; i < 64; i++) {
		unsigned off = 4 * i;
		if (off == 0x04 || off == 0x0c || (off >= 0x10 && off < 0x28) || off == 0x3c)
			continue;
		if (off >= 0x40) /* the MSI-X control's enable and mask bits */
			continue;
		assert_int_equal(fake_cfg_read(&f, slot, off, 4), before[i]);
	}
	/* command: only I/O, memory, master, parity, SERR, INTx disable */
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 4, 0xffffffff);
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_COMMAND, 2), 0x0547);
	/* status stays read-only; the capability bit is set */
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_STATUS, 2) & ~SV_PCI_STATUS_INTX, SV_PCI_STATUS_CAPS);
	/* interrupt line writable, pin not */
	fake_cfg_write(&f, slot, SV_PCI_INT_LINE, 2, 0xff33);
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_INT_LINE, 1), 0x33);
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_INT_PIN, 1), 1);
	/* vendor, device, class, revision */
	assert_int_equal(fake_cfg_read(&f, slot, 0, 4), 0x56781234);
	assert_int_equal(fake_cfg_read(&f, slot, 0x08, 4), 0xff000003);
	/* an access across a dword or of length 3 is refused */
	assert_int_equal(fake_cfg_read(&f, slot, 0x03, 2), 0xffff);
	fake_fini(&f);
}

static void test_bar_move_on_bus(void **state)
{
	struct fake f;
	struct tdev t;
	int slot;
	uint32_t b0, io;
	bool hit;

	fake_init(&f, 1 << 20);
	memset(&t, 0, sizeof(t));
	slot = tdev_add(&f, &t, false);
	b0 = fake_cfg_read(&f, slot, 0x10, 4) & ~0xfu;
	io = fake_cfg_read(&f, slot, 0x14, 4) & ~3u;
	/* where the bus put it, the device answers */
	assert_int_equal(fake_io_read(&f, SV_MMIO, b0 + 0x10, 4, &hit), 0x5a5a5a5a);
	assert_true(hit);
	assert_int_equal(t.bar, 0);
	assert_int_equal(t.off, 0x10);
	/* moved: the old place is empty, the new one is the device's */
	fake_cfg_write(&f, slot, 0x10, 4, 0xd0000000);
	fake_io_read(&f, SV_MMIO, b0 + 0x10, 4, &hit);
	assert_false(hit);
	t.n = 0;
	fake_io_write(&f, SV_MMIO, 0xd0000ffc, 4, 1);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.off, 0xffc);
	assert_true(t.wrote);
	/* one past the end is not the device's */
	fake_io_read(&f, SV_MMIO, 0xd0001000, 4, &hit);
	assert_false(hit);
	/* memory decoding off: gone; on again: back */
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, SV_PCI_CMD_IO);
	fake_io_read(&f, SV_MMIO, 0xd0000000, 4, &hit);
	assert_false(hit);
	fake_io_read(&f, SV_PIO, io, 1, &hit);
	assert_true(hit); /* I/O still decoded */
	assert_int_equal(t.bar, 1);
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, SV_PCI_CMD_IO | SV_PCI_CMD_MEM);
	fake_io_read(&f, SV_MMIO, 0xd0000000, 4, &hit);
	assert_true(hit);
	/* the I/O BAR moves too */
	fake_cfg_write(&f, slot, 0x14, 4, 0xe000);
	fake_io_read(&f, SV_PIO, io, 1, &hit);
	assert_false(hit);
	fake_io_read(&f, SV_PIO, 0xe01f, 1, &hit);
	assert_true(hit);
	assert_int_equal(t.off, 0x1f);
	/* the 64-bit BAR goes above 4 GiB once both halves are written */
	fake_cfg_write(&f, slot, 0x18, 4, 0x00000000);
	fake_cfg_write(&f, slot, 0x1c, 4, 0x00000010);
	fake_io_read(&f, SV_MMIO, 0x1000000000ULL + 0x12345, 4, &hit);
	assert_true(hit);
	assert_int_equal(t.bar, 2);
	assert_int_equal(t.off, 0x12345);
	/* a BAR moved onto another's range is not decoded (no overlap on the
	 * bus), and comes back when moved away */
	fake_cfg_write(&f, slot, 0x18, 4, 0xd0000000);
	fake_cfg_write(&f, slot, 0x1c, 4, 0);
	t.n = 0;
	fake_io_read(&f, SV_MMIO, 0xd0000000, 4, &hit);
	assert_true(hit);
	assert_int_equal(t.bar, 0); /* BAR 0 kept its place */
	fake_cfg_write(&f, slot, 0x18, 4, 0xd0100000);
	fake_io_read(&f, SV_MMIO, 0xd0100000, 4, &hit);
	assert_true(hit);
	assert_int_equal(t.bar, 2);
	/* the sizing pattern with decoding on is no placement */
	fake_cfg_write(&f, slot, 0x10, 4, 0xffffffff);
	fake_io_read(&f, SV_MMIO, 0xfffff000, 4, &hit);
	assert_false(hit);
	fake_io_read(&f, SV_MMIO, 0xd0000000, 4, &hit);
	assert_false(hit);
	fake_fini(&f);
}

static void test_capability_walk(void **state)
{
	struct fake f;
	struct tdev t;
	uint8_t v1[8] = { SV_PCI_CAP_VENDOR, 0, 8, 0xaa }, v2[5] = { SV_PCI_CAP_VENDOR, 0x77, 5, 0xbb };
	uint8_t ids[8], seen[256] = { 0 };
	unsigned n = 0, off;
	int slot;

	fake_init(&f, 1 << 20);
	sv_pci_dev_init(&t.d, &tdev_ops, 0x1234, 0x5678, 0xff0000, 0, false);
	assert_int_equal(sv_pci_dev_bar(&t.d, 0, SV_BAR_MEM32, 0x1000, false), 0);
	assert_int_equal(sv_pci_dev_cap(&t.d, v1, sizeof(v1), NULL), 0x40);
	assert_int_equal(sv_pci_msix_init(&t.d, 2, 0, 0, 0x800), 0);
	assert_int_equal(sv_pci_dev_cap(&t.d, v2, sizeof(v2), NULL), 0x54);
	slot = sv_pci_add(f.pci, &t.d);
	assert_true(slot > 0);
	assert_true(fake_cfg_read(&f, slot, SV_PCI_STATUS, 2) & SV_PCI_STATUS_CAPS);
	for (off = fake_cfg_read(&f, slot, SV_PCI_CAP_PTR, 1); off; off = fake_cfg_read(&f, slot, off + 1, 1)) {
		assert_true(off >= 0x40 && off < 256 && (off & 3) == 0);
		assert_false(seen[off]); /* no loop */
		seen[off] = 1;
		assert_true(n < 8);
		ids[n++] = (uint8_t)fake_cfg_read(&f, slot, off, 1);
	}
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], SV_PCI_CAP_VENDOR);
	assert_int_equal(ids[1], SV_PCI_CAP_MSIX);
	assert_int_equal(ids[2], SV_PCI_CAP_VENDOR);
	assert_int_equal(fake_cfg_read(&f, slot, 0x43, 1), 0xaa);
	assert_int_equal(fake_cfg_read(&f, slot, 0x57, 1), 0xbb);
	/* MSI-X: table size 2 (N-1 = 1), table in BAR 0 at 0, PBA at 0x800 */
	assert_int_equal(fake_cfg_read(&f, slot, 0x4a, 2), 1);
	assert_int_equal(fake_cfg_read(&f, slot, 0x4c, 4), 0);
	assert_int_equal(fake_cfg_read(&f, slot, 0x50, 4), 0x800);
	/* only enable and function mask of its control are writable; the
	 * capability's next pointer is never */
	fake_cfg_write(&f, slot, 0x48, 4, 0xffffffff);
	assert_int_equal(fake_cfg_read(&f, slot, 0x48, 4), 0xc0015411);
	fake_cfg_write(&f, slot, 0x40, 4, 0);
	assert_int_equal(fake_cfg_read(&f, slot, 0x40, 4), 0xaa08u << 16 | 0x48 << 8 | SV_PCI_CAP_VENDOR);
	/* a full config space refuses more */
	{
		uint8_t big[200] = { SV_PCI_CAP_VENDOR };
		assert_int_equal(sv_pci_dev_cap(&t.d, big, sizeof(big), NULL), -ENOSPC);
	}
	fake_fini(&f);
}

static void test_intx_shared_lines(void **state)
{
	struct fake f;
	struct tdev a, b, c;
	int sa, sb, sc;

	fake_init(&f, 1 << 20);
	sa = tdev_add(&f, &a, false);
	sb = tdev_add(&f, &b, false);
	sc = tdev_add(&f, &c, false);
	assert_int_equal(sa, 1);
	assert_int_equal(sb, 2);
	assert_int_equal(sc, 3);
	/* INTA of slots 1 and 3 share GSI 11, slot 2's is 10 */
	assert_int_equal(sv_pci_intx_gsi(1, 0), 11);
	assert_int_equal(sv_pci_intx_gsi(2, 0), 10);
	assert_int_equal(sv_pci_intx_gsi(2, 1), 11);
	assert_int_equal(fake_cfg_read(&f, sa, SV_PCI_INT_LINE, 1), 11);
	assert_int_equal(fake_cfg_read(&f, sb, SV_PCI_INT_LINE, 1), 10);
	sv_pci_set_intx(&a.d, true);
	assert_int_equal(f.level[11], 1);
	assert_int_equal(f.level[10], 0);
	assert_true(fake_cfg_read(&f, sa, SV_PCI_STATUS, 2) & SV_PCI_STATUS_INTX);
	sv_pci_set_intx(&c.d, true);
	sv_pci_set_intx(&a.d, false);
	assert_int_equal(f.level[11], 1); /* c still holds it */
	assert_false(fake_cfg_read(&f, sa, SV_PCI_STATUS, 2) & SV_PCI_STATUS_INTX);
	sv_pci_set_intx(&c.d, false);
	assert_int_equal(f.level[11], 0);
	/* INTx disable in the command register masks the line, not the status */
	sv_pci_set_intx(&b.d, true);
	assert_int_equal(f.level[10], 1);
	fake_cfg_write(&f, sb, SV_PCI_COMMAND, 2, 3 | SV_PCI_CMD_INTX_OFF);
	assert_int_equal(f.level[10], 0);
	assert_true(fake_cfg_read(&f, sb, SV_PCI_STATUS, 2) & SV_PCI_STATUS_INTX);
	fake_cfg_write(&f, sb, SV_PCI_COMMAND, 2, 3);
	assert_int_equal(f.level[10], 1);
	/* a level set twice is one assertion */
	sv_pci_set_intx(&b.d, true);
	sv_pci_set_intx(&b.d, false);
	assert_int_equal(f.level[10], 0);
	fake_fini(&f);
}

static void msix_entry(struct fake *f, uint64_t bar, unsigned v, uint64_t addr, uint32_t data, uint32_t ctrl)
{
	uint64_t e = bar + 0x800 + 16 * v;
	fake_io_write(f, SV_MMIO, e, 8, addr);
	fake_io_write(f, SV_MMIO, e + 8, 4, data);
	fake_io_write(f, SV_MMIO, e + 12, 4, ctrl);
}

static void test_msix_masking(void **state)
{
	struct fake f;
	struct tdev t;
	int slot;
	uint64_t bar;

	fake_init(&f, 1 << 20);
	slot = tdev_add(&f, &t, true);
	bar = fake_cfg_read(&f, slot, 0x10, 4) & ~0xfu;
	/* off: nothing sent */
	assert_int_equal(sv_pci_msix_notify(&t.d, 0), 0);
	assert_int_equal(sv_pci_msix_notify(&t.d, 3), -EINVAL);
	assert_false(sv_pci_msix_enabled(&t.d));
	assert_int_equal(fake_nmsi(&f), 0);
	/* entries start masked */
	assert_int_equal(fake_io_read(&f, SV_MMIO, bar + 0x800 + 12, 4, NULL), 1);
	fake_cfg_write(&f, slot, 0x42, 2, 0x8000); /* enable */
	assert_true(sv_pci_msix_enabled(&t.d));
	msix_entry(&f, bar, 1, 0xfee00000, 0x4041, 1);
	assert_int_equal(fake_io_read(&f, SV_MMIO, bar + 0x810, 4, NULL), 0xfee00000);
	assert_int_equal(fake_io_read(&f, SV_MMIO, bar + 0x818, 4, NULL), 0x4041);
	/* masked: pending in the PBA, not sent */
	sv_pci_msix_notify(&t.d, 1);
	assert_int_equal(fake_nmsi(&f), 0);
	assert_int_equal(fake_io_read(&f, SV_MMIO, bar + 0xc00, 8, NULL), 2);
	/* unmasked: the pending one goes out and the bit clears */
	fake_io_write(&f, SV_MMIO, bar + 0x81c, 4, 0);
	assert_int_equal(fake_nmsi(&f), 1);
	assert_int_equal(f.msi_addr[0], 0xfee00000);
	assert_int_equal(f.msi_data[0], 0x4041);
	assert_int_equal(fake_io_read(&f, SV_MMIO, bar + 0xc00, 8, NULL), 0);
	sv_pci_msix_notify(&t.d, 1);
	assert_int_equal(fake_nmsi(&f), 2);
	/* the function mask holds all of them back until cleared */
	fake_cfg_write(&f, slot, 0x42, 2, 0xc000);
	sv_pci_msix_notify(&t.d, 1);
	assert_int_equal(fake_nmsi(&f), 2);
	fake_cfg_write(&f, slot, 0x42, 2, 0x8000);
	assert_int_equal(fake_nmsi(&f), 3);
	/* the PBA is read-only; odd accesses to the table are dropped */
	fake_io_write(&f, SV_MMIO, bar + 0xc00, 8, ~0ULL);
	assert_int_equal(fake_io_read(&f, SV_MMIO, bar + 0xc00, 8, NULL), 0);
	fake_io_write(&f, SV_MMIO, bar + 0x812, 2, 0xffff);
	assert_int_equal(fake_io_read(&f, SV_MMIO, bar + 0x810, 4, NULL), 0xfee00000);
	fake_fini(&f);
}

/* A device that maps its BAR itself (as VFIO passthrough will: a region
 * in a KVM memory slot), and hooks config reads and writes. */
struct mdev {
	struct sv_pci_dev d;
	unsigned nmap;
	uint64_t addr[8];
	bool on[8];
	uint32_t last_write_off;
};

static int mdev_map(struct sv_pci_dev *d, unsigned bar, uint64_t addr, bool on)
{
	struct mdev *m = (struct mdev *)d;
	if (m->nmap < 8) {
		m->addr[m->nmap] = addr;
		m->on[m->nmap] = on;
	}
	m->nmap++;
	return 0;
}

static void mdev_cfg_read(struct sv_pci_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	if (off == 0x2c && len == 4)
		memcpy(data, "\x11\x22\x33\x44", 4); /* the real device's subsystem */
}

static void mdev_cfg_write(struct sv_pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	((struct mdev *)d)->last_write_off = off;
}

static const struct sv_pci_dev_ops mdev_ops = {
	.bar_access = tdev_bar,
	.bar_map = mdev_map,
	.cfg_read = mdev_cfg_read,
	.cfg_write = mdev_cfg_write,
};

static void test_bar_map_and_cfg_hooks(void **state)
{
	struct fake f;
	struct mdev m;
	int slot;
	unsigned ranges;
	bool hit;

	fake_init(&f, 1 << 20);
	ranges = f.bus.n[SV_MMIO];
	memset(&m, 0, sizeof(m));
	sv_pci_dev_init(&m.d, &mdev_ops, 0x1234, 0x11e8, 0x00ff00, 0, true);
	assert_int_equal(sv_pci_dev_bar(&m.d, 0, SV_BAR_MEM32, 0x100000, false), 0);
	slot = sv_pci_add(f.pci, &m.d);
	assert_true(slot > 0);
	/* mapped by the device at its placement, nothing trapped on the bus */
	assert_int_equal(m.nmap, 1);
	assert_true(m.on[0]);
	assert_int_equal(m.addr[0], fake_cfg_read(&f, slot, 0x10, 4));
	assert_int_equal(f.bus.n[SV_MMIO], ranges);
	fake_io_read(&f, SV_MMIO, m.addr[0], 4, &hit);
	assert_false(hit);
	/* sizing with decoding off: unmapped, and not mapped at the pattern */
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, 0);
	assert_int_equal(m.nmap, 2);
	assert_false(m.on[1]);
	fake_cfg_write(&f, slot, 0x10, 4, 0xffffffff);
	assert_int_equal(fake_cfg_read(&f, slot, 0x10, 4), 0xfff00000);
	assert_int_equal(m.nmap, 2);
	/* placed again and on: mapped at the new address */
	fake_cfg_write(&f, slot, 0x10, 4, 0xe0000000);
	fake_cfg_write(&f, slot, SV_PCI_COMMAND, 2, SV_PCI_CMD_MEM);
	assert_int_equal(m.nmap, 3);
	assert_true(m.on[2]);
	assert_int_equal(m.addr[2], 0xe0000000);
	/* the hooks: a read the device answers, a write it sees */
	assert_int_equal(fake_cfg_read(&f, slot, 0x2c, 4), 0x44332211);
	fake_cfg_write(&f, slot, 0x3c, 1, 5);
	assert_int_equal(m.last_write_off, 0x3c);
	fake_fini(&f);
	/* sv_pci_fini unmapped it */
	assert_int_equal(m.nmap, 4);
	assert_false(m.on[3]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_bridge_and_empty_slots),
		cmocka_unit_test(test_bar_sizing),
		cmocka_unit_test(test_write_masks),
		cmocka_unit_test(test_bar_move_on_bus),
		cmocka_unit_test(test_capability_walk),
		cmocka_unit_test(test_intx_shared_lines),
		cmocka_unit_test(test_msix_masking),
		cmocka_unit_test(test_bar_map_and_cfg_hooks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
