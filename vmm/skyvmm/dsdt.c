/* skyvmm: the DSDT's AML (see tables.h).  Written byte by byte from the
 * ACPI specification's AML grammar (chapter 20), nothing compiled:
 *
 *   Name (_S5, Package () { 5, 5, 0, 0 })        soft-off's SLP_TYP
 *   Scope (_SB) {                                 only with a PCI bus
 *     Device (PCI0) {
 *       Name (_HID, EisaId ("PNP0A03"))           a PCI host bridge
 *       Name (_UID, 0)   Name (_BBN, 0)   Name (_SEG, 0)
 *       Name (_CRS, ResourceTemplate () {
 *         WordBusNumber 0-0xFF, IO 0xCF8 (8),
 *         WordIO 0-0xCF7, WordIO 0xD00-0xFFFF,
 *         DWordMemory SV_PCI_MMIO_BASE .. SV_PCI_MMIO_END - 1 })
 *       Name (_PRT, Package () {                  INTx: sv.h's routing
 *         Package () { 0xSSSSFFFF, PIN, 0, SV_PCI_INTX_GSI (S, PIN) } ... })
 *     }
 *   }
 *
 * Linux under ACPI scans PCI only below a PNP0A03 device, claims BARs only
 * inside its _CRS windows, and routes INTx by _PRT (level, active low). */
#include <string.h>

#include "vmm/skyvmm/sv.h"
#include "vmm/skyvmm/tables.h"

#define AML_ZERO      0x00
#define AML_ONE       0x01
#define AML_NAME      0x08
#define AML_BYTE      0x0a
#define AML_WORD      0x0b
#define AML_DWORD     0x0c
#define AML_SCOPE     0x10
#define AML_BUFFER    0x11
#define AML_PACKAGE   0x12
#define AML_EXT       0x5b
#define AML_DEVICE    0x82

/* A writer that stops at its end: every put is bounded. */
struct aml {
	uint8_t *p;
	size_t n, room;
	int full;
};

static void put(struct aml *a, const void *src, size_t len)
{
	if (a->full || len > a->room - a->n) {
		a->full = 1;
		return;
	}
	memcpy(a->p + a->n, src, len);
	a->n += len;
}

static void byte(struct aml *a, uint8_t b)
{
	put(a, &b, 1);
}

static void le(struct aml *a, uint32_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		byte(a, (uint8_t)(v >> (8 * i)));
}

/* An integer as the shortest AML data object. */
static void integer(struct aml *a, uint32_t v)
{
	if (v == 0) {
		byte(a, AML_ZERO);
	} else if (v == 1) {
		byte(a, AML_ONE);
	} else if (v <= 0xff) {
		byte(a, AML_BYTE);
		byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		byte(a, AML_WORD);
		le(a, v, 2);
	} else {
		byte(a, AML_DWORD);
		le(a, v, 4);
	}
}

/* Opens a PkgLength-prefixed body: 3 bytes are reserved for the length
 * (PkgLength's largest form but one) and fixed by close_pkg. */
static size_t open_pkg(struct aml *a)
{
	size_t at = a->n;
	le(a, 0, 3);
	return at;
}

/* The length covers itself and what follows; a short body moves down to
 * a 1- or 2-byte PkgLength. */
static void close_pkg(struct aml *a, size_t at)
{
	size_t body, len, lenbytes;
	uint8_t enc[3];

	if (a->full)
		return;
	body = a->n - at - 3;
	if (body + 1 < 0x40) {
		lenbytes = 1;
		len = body + 1;
		enc[0] = (uint8_t)len;
	} else if (body + 2 < 0x1000) {
		lenbytes = 2;
		len = body + 2;
		enc[0] = (uint8_t)(0x40 | (len & 0x0f));
		enc[1] = (uint8_t)(len >> 4);
	} else {
		lenbytes = 3;
		len = body + 3;
		enc[0] = (uint8_t)(0x80 | (len & 0x0f));
		enc[1] = (uint8_t)(len >> 4);
		enc[2] = (uint8_t)(len >> 12);
	}
	memmove(a->p + at + lenbytes, a->p + at + 3, body);
	memcpy(a->p + at, enc, lenbytes);
	a->n = at + lenbytes + body;
}

static void name(struct aml *a, const char seg[4])
{
	byte(a, AML_NAME);
	put(a, seg, 4);
}

/* Word Address Space Descriptor (bus numbers or I/O): fixed min and max */
static void word_space(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	static const uint8_t head[] = { 0x88, 0x0d, 0x00 };
	put(a, head, sizeof(head));
	byte(a, type);
	byte(a, 0x0c); /* MinFixed, MaxFixed, producer */
	byte(a, tflags);
	le(a, 0, 2); /* granularity */
	le(a, min, 2);
	le(a, max, 2);
	le(a, 0, 2); /* translation */
	le(a, (uint32_t)max - min + 1, 2);
}

static void crs(struct aml *a)
{
	static const uint8_t cf8[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 }; /* IO 0xCF8, 8 */
	size_t pkg;

	name(a, "_CRS");
	byte(a, AML_BUFFER);
	pkg = open_pkg(a);
	integer(a, 16 + 8 + 16 + 16 + 26 + 2); /* the buffer's size: the descriptors below */
	word_space(a, 2, 0, 0, 0xff);           /* bus numbers */
	put(a, cf8, sizeof(cf8));
	word_space(a, 1, 3, 0, 0xcf7);          /* I/O below the config ports, entire range */
	word_space(a, 1, 3, 0xd00, 0xffff);     /* and above them */
	/* DWord Address Space Descriptor: memory, read-write, non-cacheable */
	byte(a, 0x87);
	le(a, 0x17, 2);
	byte(a, 0);
	byte(a, 0x0c);
	byte(a, 0x01);
	le(a, 0, 4);
	le(a, (uint32_t)SV_PCI_MMIO_BASE, 4);
	le(a, (uint32_t)(SV_PCI_MMIO_END - 1), 4);
	le(a, 0, 4);
	le(a, (uint32_t)(SV_PCI_MMIO_END - SV_PCI_MMIO_BASE), 4);
	byte(a, 0x79); /* end tag, checksum 0: none */
	byte(a, 0x00);
	close_pkg(a, pkg);
}

static void prt(struct aml *a)
{
	size_t outer, inner;

	name(a, "_PRT");
	byte(a, AML_PACKAGE);
	outer = open_pkg(a);
	byte(a, SV_PCI_SLOTS * 4);
	for (unsigned slot = 0; slot < SV_PCI_SLOTS; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			byte(a, AML_PACKAGE);
			inner = open_pkg(a);
			byte(a, 4);
			byte(a, AML_DWORD); /* the address: slot, any function */
			le(a, slot << 16 | 0xffff, 4);
			integer(a, pin);
			integer(a, 0);      /* source: none, the GSI follows */
			integer(a, SV_PCI_INTX_GSI(slot, pin));
			close_pkg(a, inner);
		}
	}
	close_pkg(a, outer);
}

size_t sv_dsdt_aml(uint8_t *out, size_t room, bool pci)
{
	static const uint8_t s5[] = {
		AML_NAME, '_', 'S', '5', '_', AML_PACKAGE, 0x08, 0x04,
		AML_BYTE, SV_SLP_TYP_S5, AML_BYTE, SV_SLP_TYP_S5, AML_ZERO, AML_ZERO,
	};
	static const uint8_t hid[] = { AML_DWORD, 0x41, 0xd0, 0x0a, 0x03 }; /* EisaId ("PNP0A03") */
	struct aml a = { out, 0, room, 0 };
	size_t scope, dev;

	put(&a, s5, sizeof(s5));
	if (pci) {
		byte(&a, AML_SCOPE);
		scope = open_pkg(&a);
		put(&a, "\\_SB_", 5);
		byte(&a, AML_EXT);
		byte(&a, AML_DEVICE);
		dev = open_pkg(&a);
		put(&a, "PCI0", 4);
		name(&a, "_HID");
		put(&a, hid, sizeof(hid));
		name(&a, "_UID");
		integer(&a, 0);
		name(&a, "_BBN");
		integer(&a, 0);
		name(&a, "_SEG");
		integer(&a, 0);
		crs(&a);
		prt(&a);
		close_pkg(&a, dev);
		close_pkg(&a, scope);
	}
	return a.full ? 0 : a.n;
}
