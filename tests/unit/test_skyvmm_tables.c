/* Unit tests for skyvmm's firmware tables (vmm/skyvmm/mptable.c, acpi.c):
 * checksums, the MP table's entries for N vCPUs (processors with the BSP
 * first, buses, the IOAPIC, ISA and PCI INTx routing, local interrupts),
 * and the ACPI tables (RSDP, RSDT/XSDT, FADT with the PM1 and reset
 * registers, the MADT's LAPICs, IOAPIC and SCI override, the DSDT's \_S5 and
 * PCI host bridge read back with a small AML reader: nesting lengths,
 * _HID, _CRS windows, every _PRT entry).
 *
 *   ./test_skyvmm_tables     (no environment needed)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/skyvmm/sv.h"
#include "vmm/skyvmm/tables.h"

#define ROOM 0x10000
#define BASE_MP 0xf0000
#define BASE_ACPI 0xe0000

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void check_mptable(unsigned ncpus)
{
	uint8_t *buf = calloc(1, ROOM), *cfg, *p;
	unsigned procs = 0, buses = 0, ioapics = 0, isa = 0, pci = 0, lint = 0, count, i;
	uint8_t ioapic_id = 0xee;
	int used;

	fprintf(stderr, "# MP table for %u vCPUs\n", ncpus);
	used = sv_mptable_build(buf, BASE_MP, ROOM, ncpus);
	assert_true(used > 0);
	/* the floating pointer */
	assert_memory_equal(buf, "_MP_", 4);
	assert_int_equal(rd32(buf + 4), BASE_MP + 16);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[9], 4);
	assert_int_equal(sv_table_sum(buf, 16), 0);
	/* the configuration table */
	cfg = buf + 16;
	assert_memory_equal(cfg, "PCMP", 4);
	assert_int_equal(16 + rd16(cfg + 4), used);
	assert_int_equal(sv_table_sum(cfg, rd16(cfg + 4)), 0);
	assert_int_equal(rd32(cfg + 36), SV_LAPIC_ADDR);
	count = rd16(cfg + 34);
	p = cfg + 44;
	for (i = 0; i < count; i++) {
		switch (p[0]) {
		case 0:
			assert_int_equal(p[1], procs);               /* APIC ids 0..n-1 in order */
			assert_int_equal(p[3] & 1, 1);                /* enabled */
			assert_int_equal(!!(p[3] & 2), procs == 0);   /* only the first is the BSP */
			procs++;
			p += 20;
			break;
		case 1:
			assert_true(memcmp(p + 2, "PCI   ", 6) == 0 || memcmp(p + 2, "ISA   ", 6) == 0);
			buses++;
			p += 8;
			break;
		case 2:
			ioapic_id = p[1];
			assert_int_equal(p[3] & 1, 1);
			assert_int_equal(rd32(p + 4), SV_IOAPIC_ADDR);
			ioapics++;
			p += 8;
			break;
		case 3:
			assert_int_equal(p[6], ioapic_id);
			if (p[4] == 1) { /* ISA: identity, edge (conforming) */
				assert_int_equal(p[5], p[7]);
				assert_int_not_equal(p[5], 2);
				assert_int_equal(rd16(p + 2), 0);
				isa++;
			} else {         /* PCI: slot << 2 | pin, level, active low */
				assert_int_equal(p[4], 0);
				assert_int_equal(p[7], SV_PCI_INTX_GSI(p[5] >> 2, p[5] & 3));
				assert_true(p[7] == 10 || p[7] == 11);
				assert_int_equal(rd16(p + 2), 0x0f);
				pci++;
			}
			p += 8;
			break;
		case 4:
			assert_int_equal(p[6], 0xff); /* every LAPIC */
			assert_int_equal(p[7], p[1] == 3 ? 0 : 1); /* ExtINT on LINT0, NMI on LINT1 */
			lint++;
			p += 8;
			break;
		default:
			fail_msg("unknown MP entry type %u", p[0]);
		}
	}
	assert_int_equal(p - buf, used);
	assert_int_equal(procs, ncpus);
	assert_int_equal(buses, 2);
	assert_int_equal(ioapics, 1);
	assert_int_equal(ioapic_id, ncpus); /* after the LAPIC ids */
	assert_int_equal(isa, 15);
	assert_int_equal(pci, SV_PCI_SLOTS * 4);
	assert_int_equal(lint, 2);
	/* the bytes after the table are untouched */
	for (i = (unsigned)used; i < ROOM; i++)
		assert_int_equal(buf[i], 0);
	free(buf);
}

static void test_mptable(void **state)
{
	(void)state;
	check_mptable(1);
	check_mptable(2);
	check_mptable(4);
	check_mptable(SV_MAX_CPUS);
}

static void test_mptable_refusals(void **state)
{
	uint8_t *buf = calloc(1, ROOM);
	int used;
	(void)state;

	assert_int_equal(sv_mptable_build(buf, BASE_MP, ROOM, 0), -EINVAL);
	assert_int_equal(sv_mptable_build(buf, BASE_MP, ROOM, SV_MAX_CPUS + 1), -EINVAL);
	used = sv_mptable_build(buf, BASE_MP, ROOM, 4);
	assert_true(used > 0);
	assert_int_equal(sv_mptable_build(buf, BASE_MP, (size_t)used - 1, 4), -ENOSPC);
	assert_int_equal(sv_mptable_build(buf, BASE_MP, (size_t)used, 4), used);
	free(buf);
}

/* the table at a guest-physical address, checked: signature, length inside
 * the area, checksum */
static const uint8_t *table(const uint8_t *buf, uint64_t gpa, const char *sig)
{
	const uint8_t *t;
	assert_true(gpa >= BASE_ACPI && gpa < BASE_ACPI + ROOM);
	t = buf + (gpa - BASE_ACPI);
	assert_memory_equal(t, sig, 4);
	assert_true(gpa + rd32(t + 4) <= BASE_ACPI + ROOM);
	if (strcmp(sig, "FACS") != 0)
		assert_int_equal(sv_table_sum(t, rd32(t + 4)), 0);
	return t;
}

/* ---- a small AML reader for the DSDT ---- */

/* PkgLength at *p: the length (which counts its own bytes) */
static size_t pkglen(const uint8_t *p, size_t *lenbytes)
{
	unsigned follow = p[0] >> 6;
	size_t len = follow ? (p[0] & 0x0f) : (p[0] & 0x3f);
	for (unsigned i = 0; i < follow; i++)
		len |= (size_t)p[1 + i] << (4 + 8 * i);
	*lenbytes = 1 + follow;
	return len;
}

static uint32_t aml_int(const uint8_t **pp)
{
	const uint8_t *p = *pp;
	switch (p[0]) {
	case 0x00:
	case 0x01:
		*pp = p + 1;
		return p[0];
	case 0x0a:
		*pp = p + 2;
		return p[1];
	case 0x0b:
		*pp = p + 3;
		return rd16(p + 1);
	case 0x0c:
		*pp = p + 5;
		return rd32(p + 1);
	default:
		fail_msg("not an AML integer: opcode %#x", p[0]);
	}
	return 0;
}

static const uint8_t *find_name(const uint8_t *from, const uint8_t *end, const char *seg)
{
	for (const uint8_t *p = from; p + 5 <= end; p++)
		if (p[0] == 0x08 && memcmp(p + 1, seg, 4) == 0)
			return p + 5;
	fail_msg("no Name (%s) in the DSDT", seg);
	return NULL;
}

static const uint8_t s5_aml[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 5, 0x0a, 5, 0, 0 };

static void check_dsdt(const uint8_t *dsdt, bool pci)
{
	const uint8_t *p = dsdt + 36, *end = dsdt + rd32(dsdt + 4), *q, *pkgend;
	size_t lb, len;

	assert_memory_equal(p, s5_aml, sizeof(s5_aml));
	assert_int_equal(s5_aml[9], SV_SLP_TYP_S5);
	p += sizeof(s5_aml);
	if (!pci) {
		assert_ptr_equal(p, end);
		return;
	}
	/* Scope (\_SB) and Device (PCI0) both run to the table's end */
	assert_int_equal(p[0], 0x10);
	len = pkglen(p + 1, &lb);
	assert_ptr_equal(p + 1 + len, end);
	p += 1 + lb;
	assert_memory_equal(p, "\\_SB_", 5);
	p += 5;
	assert_int_equal(p[0], 0x5b);
	assert_int_equal(p[1], 0x82);
	len = pkglen(p + 2, &lb);
	assert_ptr_equal(p + 2 + len, end);
	p += 2 + lb;
	assert_memory_equal(p, "PCI0", 4);
	q = find_name(p, end, "_HID");
	assert_memory_equal(q, ((const uint8_t[]){ 0x0c, 0x41, 0xd0, 0x0a, 0x03 }), 5); /* EisaId ("PNP0A03") */
	q = find_name(p, end, "_UID");
	assert_int_equal(aml_int(&q), 0);
	/* _CRS: a buffer of descriptors ending in the end tag */
	q = find_name(p, end, "_CRS");
	assert_int_equal(q[0], 0x11);
	len = pkglen(q + 1, &lb);
	pkgend = q + 1 + len;
	q += 1 + lb;
	{
		uint32_t size = aml_int(&q);
		assert_int_equal(size, (uint32_t)(pkgend - q));
	}
	{
		bool bus = false, cf8 = false, mem = false;
		while (q < pkgend && q[0] != 0x79) {
			size_t dl = (q[0] & 0x80) ? 3 + rd16(q + 1) : 1 + (q[0] & 7);
			if (q[0] == 0x88 && q[3] == 2)
				bus = rd16(q + 8) == 0 && rd16(q + 10) == 0xff;
			if (q[0] == 0x47)
				cf8 = rd16(q + 2) == 0xcf8 && q[7] == 8;
			if (q[0] == 0x87 && q[3] == 0)
				mem = rd32(q + 10) == SV_PCI_MMIO_BASE && rd32(q + 14) == SV_PCI_MMIO_END - 1 &&
				      rd32(q + 22) == SV_PCI_MMIO_END - SV_PCI_MMIO_BASE;
			q += dl;
		}
		assert_ptr_equal(q + 2, pkgend); /* the end tag closes the buffer */
		assert_true(bus && cf8 && mem);
	}
	/* _PRT: 4 pins of every slot on sv.h's GSIs */
	q = find_name(p, end, "_PRT");
	assert_int_equal(q[0], 0x12);
	len = pkglen(q + 1, &lb);
	pkgend = q + 1 + len;
	assert_ptr_equal(pkgend, end); /* the last object of PCI0 */
	q += 1 + lb;
	assert_int_equal(*q++, SV_PCI_SLOTS * 4);
	for (unsigned slot = 0; slot < SV_PCI_SLOTS; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			const uint8_t *e;
			assert_int_equal(q[0], 0x12);
			len = pkglen(q + 1, &lb);
			e = q + 1 + len;
			q += 1 + lb;
			assert_int_equal(*q++, 4);
			assert_int_equal(aml_int(&q), slot << 16 | 0xffff);
			assert_int_equal(aml_int(&q), pin);
			assert_int_equal(aml_int(&q), 0);
			assert_int_equal(aml_int(&q), SV_PCI_INTX_GSI(slot, pin));
			assert_ptr_equal(q, e);
		}
	}
	assert_ptr_equal(q, end);
}

static void check_acpi(unsigned ncpus, bool pci)
{
	uint8_t *buf = calloc(1, ROOM);
	const uint8_t *rsdt, *xsdt, *fadt, *dsdt, *madt, *facs, *p, *end;
	unsigned lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
	int used;

	fprintf(stderr, "# ACPI tables for %u vCPUs%s\n", ncpus, pci ? ", PCI" : "");
	used = sv_acpi_build(buf, BASE_ACPI, ROOM, ncpus, pci);
	assert_true(used > 0);
	/* RSDP 2.0: both checksums */
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(buf[15], 2);
	assert_int_equal(sv_table_sum(buf, 20), 0);
	assert_int_equal(rd32(buf + 20), 36);
	assert_int_equal(sv_table_sum(buf, 36), 0);
	rsdt = table(buf, rd32(buf + 16), "RSDT");
	xsdt = table(buf, rd64(buf + 24), "XSDT");
	assert_int_equal(rd32(rsdt + 4), 36 + 8);
	assert_int_equal(rd32(xsdt + 4), 36 + 16);
	assert_int_equal(rd32(rsdt + 36), rd64(xsdt + 36));
	assert_int_equal(rd32(rsdt + 40), rd64(xsdt + 44));
	fadt = table(buf, rd64(xsdt + 36), "FACP");
	madt = table(buf, rd64(xsdt + 44), "APIC");
	/* FADT: FACS, DSDT, SCI, PM1 blocks, PM timer, reset register, flags */
	assert_int_equal(rd32(fadt + 4), 244);
	facs = table(buf, rd32(fadt + 36), "FACS");
	assert_int_equal((rd32(fadt + 36)) % 64, 0);
	assert_int_equal(rd32(facs + 4), 64);
	dsdt = table(buf, rd32(fadt + 40), "DSDT");
	assert_int_equal(rd64(fadt + 140), rd32(fadt + 40));
	assert_int_equal(rd64(fadt + 132), rd32(fadt + 36));
	assert_int_equal(rd16(fadt + 46), SV_SCI_IRQ);
	assert_int_equal(rd32(fadt + 48), 0); /* no SMI command port: ACPI mode from the start */
	assert_int_equal(rd32(fadt + 56), SV_PM1_EVT_PORT);
	assert_int_equal(rd32(fadt + 64), SV_PM1_CNT_PORT);
	assert_int_equal(rd32(fadt + 76), SV_PM_TMR_PORT);
	assert_int_equal(fadt[88], 4);
	assert_int_equal(fadt[89], 2);
	assert_int_equal(fadt[91], 4);
	assert_int_equal(rd64(fadt + 148 + 4), SV_PM1_EVT_PORT);
	assert_int_equal(rd64(fadt + 172 + 4), SV_PM1_CNT_PORT);
	assert_int_equal(rd64(fadt + 208 + 4), SV_PM_TMR_PORT);
	assert_int_equal(fadt[116], 1); /* reset register in system I/O */
	assert_int_equal(rd64(fadt + 120), SV_RESET_PORT);
	assert_int_equal(fadt[128], SV_RESET_VALUE);
	assert_true(rd32(fadt + 112) & (1U << 10));   /* RESET_REG_SUP */
	assert_false(rd32(fadt + 112) & (1U << 4));   /* a fixed power button */
	assert_false(rd32(fadt + 112) & (1U << 20));  /* not hardware-reduced */
	assert_false(rd16(fadt + 109) & 0x2);         /* no i8042 */
	assert_true(rd16(fadt + 109) & 0x20);         /* no CMOS RTC */
	/* DSDT: \_S5 with SLP_TYP 5, and the PCI host bridge */
	check_dsdt(dsdt, pci);
	/* MADT */
	assert_int_equal(rd32(madt + 36), SV_LAPIC_ADDR);
	assert_int_equal(rd32(madt + 40) & 1, 1);
	p = madt + 44;
	end = madt + rd32(madt + 4);
	while (p < end) {
		assert_true(p[1] >= 2 && p + p[1] <= end);
		switch (p[0]) {
		case 0:
			assert_int_equal(p[1], 8);
			assert_int_equal(p[3], lapics); /* APIC id */
			assert_int_equal(rd32(p + 4), 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(p[1], 12);
			assert_int_equal(p[2], ncpus);
			assert_int_equal(rd32(p + 4), SV_IOAPIC_ADDR);
			assert_int_equal(rd32(p + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(p[1], 10);
			assert_int_equal(p[3], SV_SCI_IRQ);
			assert_int_equal(rd32(p + 4), SV_SCI_IRQ);
			assert_int_equal(rd16(p + 8), 0x0d); /* level, active high */
			overrides++;
			break;
		case 4:
			assert_int_equal(p[1], 6);
			assert_int_equal(p[5], 1);
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry %u", p[0]);
		}
		p += p[1];
	}
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(overrides, 1);
	assert_int_equal(nmis, 1);
	assert_true(madt + rd32(madt + 4) <= dsdt);
	assert_int_equal(dsdt + rd32(dsdt + 4) - buf, used);
	free(buf);
}

static void test_acpi(void **state)
{
	uint8_t *buf = calloc(1, ROOM);
	int used;
	(void)state;

	check_acpi(1, false);
	check_acpi(3, false);
	check_acpi(SV_MAX_CPUS, false);
	check_acpi(1, true);
	check_acpi(SV_MAX_CPUS, true);
	assert_int_equal(sv_acpi_build(buf, BASE_ACPI, ROOM, 0, false), -EINVAL);
	assert_int_equal(sv_acpi_build(buf, BASE_ACPI, ROOM, SV_MAX_CPUS + 1, false), -EINVAL);
	assert_int_equal(sv_acpi_build(buf, BASE_ACPI + 8, ROOM, 1, false), -EINVAL); /* RSDP not 16-aligned */
	for (int pci = 0; pci < 2; pci++) {
		used = sv_acpi_build(buf, BASE_ACPI, ROOM, 2, pci);
		assert_true(used > 0);
		assert_int_equal(sv_acpi_build(buf, BASE_ACPI, (size_t)used - 1, 2, pci), -ENOSPC);
		/* (the AML writer may need a few bytes more while it writes) */
		assert_int_equal(sv_acpi_build(buf, BASE_ACPI, (size_t)used + 8, 2, pci), used);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mptable),
		cmocka_unit_test(test_mptable_refusals),
		cmocka_unit_test(test_acpi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
