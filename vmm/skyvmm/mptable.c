/* skyvmm: the Intel MultiProcessor Specification 1.4 table (see tables.h):
 * one processor entry per vCPU (APIC ids 0..n-1, the first the bootstrap
 * processor), buses PCI (0) and ISA (1), the IOAPIC (id n), ISA IRQs 0-15
 * (but 2) on IOAPIC pins of the same number, every PCI slot's INTA-INTD on
 * the GSI SV_PCI_INTX_GSI gives (level, active low), and ExtINT/NMI on the
 * LAPICs' LINT0/LINT1. */
#include <errno.h>
#include <string.h>

#include "vmm/skyvmm/sv.h"
#include "vmm/skyvmm/le.h"
#include "vmm/skyvmm/tables.h"

#define MPC_PROC   0
#define MPC_BUS    1
#define MPC_IOAPIC 2
#define MPC_INTSRC 3
#define MPC_LINT   4

#define BUS_PCI 0
#define BUS_ISA 1

uint8_t sv_table_sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;
	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* an I/O or local interrupt entry: type, irq type, flags, bus, bus irq,
 * destination (IOAPIC id or LAPIC id), pin */
static uint8_t *irq_entry(uint8_t *p, uint8_t type, uint8_t itype, uint16_t flags, uint8_t bus, uint8_t busirq,
			  uint8_t dst, uint8_t pin)
{
	p[0] = type;
	p[1] = itype;
	sv_put16(p + 2, flags);
	p[4] = bus;
	p[5] = busirq;
	p[6] = dst;
	p[7] = pin;
	return p + 8;
}

int sv_mptable_build(uint8_t *host, uint64_t gpa, size_t room, unsigned ncpus)
{
	size_t need;
	uint8_t *fp = host, *cfg = host + 16, *p;
	uint8_t ioapic_id = (uint8_t)ncpus;
	unsigned count = 0, i, slot, pin;

	if (ncpus == 0 || ncpus > SV_MAX_CPUS || gpa + 16 > 0xffffffffULL)
		return -EINVAL;
	need = 16 + 44 + 20 * ncpus + 2 * 8 + 8 + 15 * 8 + SV_PCI_SLOTS * 4 * 8 + 2 * 8;
	if (room < need)
		return -ENOSPC;
	memset(host, 0, need);

	p = cfg + 44;
	for (i = 0; i < ncpus; i++, count++) {
		p[0] = MPC_PROC;
		p[1] = (uint8_t)i;           /* LAPIC id */
		p[2] = 0x14;                 /* LAPIC version */
		p[3] = i == 0 ? 0x3 : 0x1;   /* enabled, BSP */
		sv_put32(p + 4, 0x600);         /* family 6 */
		sv_put32(p + 8, 0x201);         /* FPU, APIC */
		p += 20;
	}
	p[0] = MPC_BUS;
	p[1] = BUS_PCI;
	memcpy(p + 2, "PCI   ", 6);
	p += 8;
	p[0] = MPC_BUS;
	p[1] = BUS_ISA;
	memcpy(p + 2, "ISA   ", 6);
	p += 8;
	count += 2;
	p[0] = MPC_IOAPIC;
	p[1] = ioapic_id;
	p[2] = 0x11;
	p[3] = 1; /* enabled */
	sv_put32(p + 4, SV_IOAPIC_ADDR);
	p += 8;
	count++;
	for (i = 0; i < 16; i++) {
		if (i == 2)
			continue;
		p = irq_entry(p, MPC_INTSRC, 0, 0, BUS_ISA, (uint8_t)i, ioapic_id, (uint8_t)i);
		count++;
	}
	for (slot = 0; slot < SV_PCI_SLOTS; slot++) {
		for (pin = 0; pin < 4; pin++) {
			/* flags: polarity active low (3), trigger level (3 << 2) */
			p = irq_entry(p, MPC_INTSRC, 0, 0x0f, BUS_PCI, (uint8_t)(slot << 2 | pin), ioapic_id,
				      (uint8_t)SV_PCI_INTX_GSI(slot, pin));
			count++;
		}
	}
	p = irq_entry(p, MPC_LINT, 3, 0, BUS_ISA, 0, 0xff, 0); /* ExtINT on LINT0 */
	p = irq_entry(p, MPC_LINT, 1, 0, BUS_ISA, 0, 0xff, 1); /* NMI on LINT1 */
	count += 2;

	memcpy(cfg, "PCMP", 4);
	sv_put16(cfg + 4, (uint16_t)(p - cfg));
	cfg[6] = 4; /* spec 1.4 */
	memcpy(cfg + 8, "SKYROOT ", 8);
	memcpy(cfg + 16, "SKYVMM      ", 12);
	sv_put16(cfg + 34, (uint16_t)count);
	sv_put32(cfg + 36, SV_LAPIC_ADDR);
	cfg[7] = (uint8_t)-sv_table_sum(cfg, (size_t)(p - cfg));

	memcpy(fp, "_MP_", 4);
	sv_put32(fp + 4, (uint32_t)(gpa + 16));
	fp[8] = 1; /* length in 16-byte units */
	fp[9] = 4;
	fp[10] = (uint8_t)-sv_table_sum(fp, 16);
	return (int)(p - host);
}
