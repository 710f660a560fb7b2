/* skyvmm: the ACPI tables (see tables.h).  Layout from gpa:
 *   +0x000 RSDP (ACPI 2.0, 36 bytes)   +0x040 RSDT   +0x080 XSDT
 *   +0x100 FACS (64-byte aligned)      +0x140 FADT (revision 3, 244 bytes)
 *   +0x240 MADT (at most 0x248 bytes)  +0x500 DSDT (dsdt.c) */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "vmm/skyvmm/tables.h"
#include "vmm/skyvmm/le.h"

#define O_RSDP 0x000
#define O_RSDT 0x040
#define O_XSDT 0x080
#define O_FACS 0x100
#define O_FADT 0x140
#define O_MADT 0x240
#define O_DSDT 0x500

#define FADT_LEN 244

_Static_assert(O_MADT + 44 + 8 * SV_MAX_CPUS + 12 + 10 + 6 <= O_DSDT, "the MADT overlaps the DSDT");

/* FADT flags */
#define F_WBINVD        (1U << 0)
#define F_SLP_BUTTON    (1U << 5)  /* no sleep button */
#define F_FIX_RTC       (1U << 6)
#define F_RESET_REG_SUP (1U << 10)
/* IAPC_BOOT_ARCH: no legacy devices, no i8042, no VGA, no CMOS RTC */
#define BOOT_NO_VGA     (1U << 2)
#define BOOT_NO_RTC     (1U << 5)

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	sv_put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "SKYRT ", 6);
	memcpy(t + 16, "SKYVMM  ", 8);
	sv_put32(t + 24, 1);
	memcpy(t + 28, "SKYR", 4);
	sv_put32(t + 32, 1);
}

static void finish(uint8_t *t)
{
	uint32_t len = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
	t[9] = 0;
	t[9] = (uint8_t)-sv_table_sum(t, len);
}

/* a Generic Address Structure in system I/O space */
static void gas_io(uint8_t *g, uint8_t bits, uint8_t access, uint64_t port)
{
	g[0] = 1; /* system I/O */
	g[1] = bits;
	g[2] = 0;
	g[3] = access; /* 1 byte, 2 word, 3 dword */
	sv_put64(g + 4, port);
}

static size_t fadt(uint8_t *t, uint64_t facs, uint64_t dsdt)
{
	header(t, "FACP", FADT_LEN, 3);
	sv_put32(t + 36, (uint32_t)facs);
	sv_put32(t + 40, (uint32_t)dsdt);
	sv_put16(t + 46, SV_SCI_IRQ);
	/* SMI_CMD 0: always in ACPI mode (PM1 control reads SCI_EN) */
	sv_put32(t + 56, SV_PM1_EVT_PORT);
	sv_put32(t + 64, SV_PM1_CNT_PORT);
	sv_put32(t + 76, SV_PM_TMR_PORT);
	t[88] = 4; /* PM1_EVT_LEN */
	t[89] = 2; /* PM1_CNT_LEN */
	t[91] = 4; /* PM_TMR_LEN */
	sv_put16(t + 96, 101);  /* P_LVL2_LAT > 100: no C2 */
	sv_put16(t + 98, 1001); /* P_LVL3_LAT > 1000: no C3 */
	sv_put16(t + 109, BOOT_NO_VGA | BOOT_NO_RTC); /* and no 8042, no legacy devices */
	sv_put32(t + 112, F_WBINVD | F_SLP_BUTTON | F_FIX_RTC | F_RESET_REG_SUP);
	gas_io(t + 116, 8, 1, SV_RESET_PORT);
	t[128] = SV_RESET_VALUE;
	sv_put64(t + 132, facs);
	sv_put64(t + 140, dsdt);
	gas_io(t + 148, 32, 2, SV_PM1_EVT_PORT);
	gas_io(t + 172, 16, 2, SV_PM1_CNT_PORT);
	gas_io(t + 208, 32, 3, SV_PM_TMR_PORT);
	finish(t);
	return FADT_LEN;
}

static size_t madt(uint8_t *t, unsigned ncpus)
{
	uint8_t *p = t + 44;
	unsigned i;

	for (i = 0; i < ncpus; i++) {
		p[0] = 0; /* processor local APIC */
		p[1] = 8;
		p[2] = (uint8_t)i; /* processor uid */
		p[3] = (uint8_t)i; /* APIC id */
		sv_put32(p + 4, 1);   /* enabled */
		p += 8;
	}
	p[0] = 1; /* IOAPIC */
	p[1] = 12;
	p[2] = (uint8_t)ncpus;
	sv_put32(p + 4, SV_IOAPIC_ADDR);
	sv_put32(p + 8, 0);
	p += 12;
	p[0] = 2; /* interrupt source override: the SCI, level, active high */
	p[1] = 10;
	p[2] = 0;
	p[3] = SV_SCI_IRQ;
	sv_put32(p + 4, SV_SCI_IRQ);
	sv_put16(p + 8, 0x000d);
	p += 10;
	p[0] = 4; /* local APIC NMI on LINT1 of every processor */
	p[1] = 6;
	p[2] = 0xff;
	sv_put16(p + 3, 0);
	p[5] = 1;
	p += 6;
	header(t, "APIC", (uint32_t)(p - t), 3);
	sv_put32(t + 36, SV_LAPIC_ADDR);
	sv_put32(t + 40, 1); /* PCAT_COMPAT: the 8259s exist (KVM's) */
	finish(t);
	return (size_t)(p - t);
}

int sv_acpi_build(uint8_t *host, uint64_t gpa, size_t room, unsigned ncpus, bool pci)
{
	size_t dsdt_len;
	uint8_t *r = host + O_RSDP, *rsdt = host + O_RSDT, *xsdt = host + O_XSDT;

	if (ncpus == 0 || ncpus > SV_MAX_CPUS || (gpa & 15) || gpa + room > 0xffffffffULL)
		return -EINVAL;
	if (room < O_DSDT + 36)
		return -ENOSPC;
	memset(host, 0, O_DSDT + 36);
	dsdt_len = sv_dsdt_aml(host + O_DSDT + 36, room - O_DSDT - 36, pci);
	if (!dsdt_len)
		return -ENOSPC;
	dsdt_len += 36;

	memcpy(host + O_FACS, "FACS", 4);
	sv_put32(host + O_FACS + 4, 64);
	host[O_FACS + 32] = 2; /* version */

	fadt(host + O_FADT, gpa + O_FACS, gpa + O_DSDT);
	header(host + O_DSDT, "DSDT", (uint32_t)dsdt_len, 2);
	finish(host + O_DSDT);
	madt(host + O_MADT, ncpus);

	header(rsdt, "RSDT", 36 + 4 * 2, 1);
	sv_put32(rsdt + 36, (uint32_t)(gpa + O_FADT));
	sv_put32(rsdt + 40, (uint32_t)(gpa + O_MADT));
	finish(rsdt);
	header(xsdt, "XSDT", 36 + 8 * 2, 1);
	sv_put64(xsdt + 36, gpa + O_FADT);
	sv_put64(xsdt + 44, gpa + O_MADT);
	finish(xsdt);

	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, "SKYRT ", 6);
	r[15] = 2; /* ACPI 2.0+ */
	sv_put32(r + 16, (uint32_t)(gpa + O_RSDT));
	sv_put32(r + 20, 36);
	sv_put64(r + 24, gpa + O_XSDT);
	r[8] = (uint8_t)-sv_table_sum(r, 20);
	r[32] = (uint8_t)-sv_table_sum(r, 36);
	return (int)(O_DSDT + dsdt_len);
}
