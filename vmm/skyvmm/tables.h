/* skyvmm: the firmware tables the guest kernel reads (no BIOS runs):
 *   the MP table (mptable.c), so that a kernel without ACPI (acpi=off) still
 *   finds every vCPU, the IOAPIC and the PCI INTx routing;
 *   the ACPI tables (acpi.c): RSDP, RSDT/XSDT, FADT, FACS, the MADT and a
 *   DSDT (dsdt.c) with \_S5 (soft-off) and, when skyvmm has a PCI bus, the
 *   PCI host bridge (Linux under ACPI scans PCI only below one).  Linux prefers the MADT when it
 *   is there.  The FADT describes the PM1 registers power.c emulates (the
 *   fixed-feature power button that is skyvmm's clean stop, and the soft-off
 *   the guest's poweroff writes), the reset register (port 0x64, 0xFE: the
 *   i8042 pulse) and no i8042 or CMOS RTC. */
#ifndef SKY_SKYVMM_TABLES_H
#define SKY_SKYVMM_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SV_MAX_CPUS 64

#define SV_LAPIC_ADDR  0xfee00000U
#define SV_IOAPIC_ADDR 0xfec00000U
#define SV_IOAPIC_PINS 24

/* ACPI PM registers (system I/O ports), see power.c */
#define SV_PM1_EVT_PORT 0x600 /* 4 bytes: PM1 status (2), PM1 enable (2) */
#define SV_PM1_CNT_PORT 0x604 /* 2 bytes */
#define SV_PM_TMR_PORT  0x608 /* 4 bytes: the 3.579545 MHz PM timer */
#define SV_SCI_IRQ      9
#define SV_SLP_TYP_S5   5     /* the value \_S5 gives and power.c expects */
#define SV_RESET_PORT   0x64
#define SV_RESET_VALUE  0xfe

/* An 8-bit sum of all bytes; a table is valid when its sum is 0. */
uint8_t sv_table_sum(const uint8_t *p, size_t len);

/* Builds the MP floating pointer and configuration table for ncpus vCPUs
 * at host (guest-physical gpa), room bytes.  Returns the bytes used, or
 * -EINVAL (ncpus 0 or above SV_MAX_CPUS) or -ENOSPC. */
int sv_mptable_build(uint8_t *host, uint64_t gpa, size_t room, unsigned ncpus);

/* Builds the ACPI tables at host (guest-physical gpa), room bytes, the
 * RSDP first (gpa must be 16-byte aligned and below 1 MiB for the kernel's
 * scan); pci: the DSDT describes the PCI host bridge (when skyvmm has its
 * PCI bus).  Returns the bytes used or -EINVAL / -ENOSPC. */
int sv_acpi_build(uint8_t *host, uint64_t gpa, size_t room, unsigned ncpus, bool pci);

/* The DSDT's AML (dsdt.c): \_S5, and with pci the PCI host bridge
 * \_SB.PCI0 with its _CRS windows and the _PRT of sv.h's INTx routing.
 * Returns its length, or 0 when room is too small (it may need a few bytes
 * more than that length while it writes). */
size_t sv_dsdt_aml(uint8_t *out, size_t room, bool pci);

#endif
