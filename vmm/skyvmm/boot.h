/* skyvmm: the Linux x86 boot protocol (Documentation/arch/x86/boot.rst):
 * the bzImage's setup header checked, the kernel and initramfs loaded from
 * their descriptors, the zero page (boot_params) with the command line and
 * the e820 map, and the page tables and GDT of the 64-bit entry.
 *
 * skyvmm uses the 64-bit boot entry only (startup_64, at the protected-mode
 * kernel's load address + 0x200): the vCPU starts in long mode with the
 * first 4 GiB identity-mapped, so no real-mode setup code runs.  That needs
 * boot protocol 2.12 or newer with XLF_KERNEL_64 (Linux 3.8 and later) and a
 * relocatable kernel.
 *
 * Guest-physical layout of what the loader writes (all below 1 MiB except
 * the kernel and initramfs):
 *   0x00500  GDT               0x07000  zero page (boot_params)
 *   0x09000  PML4              0x0a000  PDPT       0x0b000-0x0efff  4 PDs
 *   0x20000  command line (at most SV_CMDLINE_MAX bytes with its NUL)
 *   0xe0000  ACPI tables       0xf0000  MP table   (both reserved in e820)
 *   kernel   at its pref_address (normally 16 MiB), aligned
 *   initrd   as high as allowed below min(initrd_addr_max, RAM below 3 GiB) */
#ifndef SKY_SKYVMM_BOOT_H
#define SKY_SKYVMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/skyvmm/sv.h"

#define SV_GDT_ADDR      0x500ULL
#define SV_ZERO_PAGE     0x7000ULL
#define SV_STACK_TOP     0x8ff0ULL
#define SV_PML4_ADDR     0x9000ULL
#define SV_PDPT_ADDR     0xa000ULL
#define SV_PD_ADDR       0xb000ULL
#define SV_CMDLINE_ADDR  0x20000ULL
#define SV_CMDLINE_MAX   0x10000U
#define SV_EBDA_START    0x9fc00ULL
#define SV_ACPI_ADDR     0xe0000ULL
#define SV_MPTABLE_ADDR  0xf0000ULL
#define SV_BIOS_END      0x100000ULL
#define SV_KERNEL_MIN    0x100000ULL

/* The smallest and largest guest memory skyvmm accepts. */
#define SV_MEM_MIN (32ULL << 20)
#define SV_MEM_MAX (1ULL << 40)

/* The bytes of the image skyvmm reads for the header (the setup header
 * ends before 0x280; the first sector and a half cover it). */
#define SV_HDR_READ 0x400U

#define SV_BOOT_PROTO_MIN 0x020c /* 2.12: xloadflags, XLF_KERNEL_64 */

/* boot_params offsets */
#define SV_BP_ACPI_RSDP   0x070
#define SV_BP_E820_COUNT  0x1e8
#define SV_BP_HDR         0x1f1
#define SV_BP_E820_TABLE  0x2d0
#define SV_BP_E820_MAX    128

#define SV_E820_RAM      1
#define SV_E820_RESERVED 2

struct sv_e820 {
	uint64_t addr, size;
	uint32_t type;
};

/* What skyvmm needs of a bzImage, from its setup header. */
struct sv_bzimage {
	uint16_t version;        /* boot protocol, e.g. 0x020f */
	uint32_t setup_size;     /* bytes of the real-mode part, (setup_sects + 1) * 512 */
	uint64_t kernel_size;    /* bytes of the protected-mode part that follows */
	uint32_t hdr_len;        /* bytes of the setup header from 0x1f1 */
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint32_t cmdline_size;   /* longest command line, without its NUL */
	uint64_t pref_address;
	uint32_t init_size;      /* memory the kernel needs from its load address */
	uint8_t hdr[0x290 - 0x1f1]; /* the setup header as the image has it */
};

/* Checks the first len bytes of an image of file_size bytes.  0, or -EINVAL
 * with why in err: not a bzImage (no 0xAA55 boot flag or "HdrS" magic, a
 * zImage), a boot protocol older than 2.12, no 64-bit entry, not
 * relocatable, a setup part or kernel size that does not fit the file, a
 * bad kernel alignment. */
int sv_bzimage_parse(const uint8_t *buf, size_t len, uint64_t file_size, struct sv_bzimage *out, char *err,
		     size_t errlen);

/* The e820 map for mem bytes of guest RAM (RAM below 3 GiB, the rest from
 * 4 GiB; the EBDA and 0xE0000-0xFFFFF reserved).  Returns the number of
 * entries written (at most max). */
unsigned sv_e820_build(uint64_t mem, struct sv_e820 *out, unsigned max);

/* Where things go for a kernel, an initramfs of initrd_size bytes (0: none)
 * and a command line of cmdline_len bytes in mem bytes of RAM. */
struct sv_boot_layout {
	uint64_t kernel_addr;  /* load address of the protected-mode part */
	uint64_t kernel_end;   /* kernel_addr + max(init_size, kernel_size) */
	uint64_t entry;        /* kernel_addr + 0x200 */
	uint64_t initrd_addr;  /* 0 when none */
	uint64_t initrd_size;
};
/* 0, or -EINVAL / -E2BIG with why in err (command line too long for the
 * kernel, kernel or initramfs does not fit the memory). */
int sv_boot_plan(const struct sv_bzimage *bz, uint64_t mem, uint64_t initrd_size, size_t cmdline_len,
		 struct sv_boot_layout *out, char *err, size_t errlen);

/* Writes the zero page, command line, GDT and page tables into guest
 * memory for a plan (the kernel and initramfs are loaded apart, by
 * sv_boot_load).  rsdp is the ACPI RSDP's address (0: none). */
int sv_boot_params(struct sv_mem *m, const struct sv_bzimage *bz, const struct sv_boot_layout *l,
		   const char *cmdline, uint64_t rsdp);

/* Reads the protected-mode kernel and the initramfs (initrd_fd -1: none)
 * into guest memory with pread.  0 or -errno. */
int sv_boot_load(struct sv_mem *m, const struct sv_bzimage *bz, const struct sv_boot_layout *l, int kernel_fd,
		 int initrd_fd);

/* Reads an image's header from fd and parses it (sv_bzimage_parse); its
 * size comes from fstat. */
int sv_bzimage_read(int fd, struct sv_bzimage *out, char *err, size_t errlen);

/* The GDT loaded for the 64-bit entry: null, null, code (0x10), data
 * (0x18), as the boot protocol asks (__BOOT_CS, __BOOT_DS). */
#define SV_GDT_CS 0x10
#define SV_GDT_DS 0x18
extern const uint64_t sv_boot_gdt[4];

#endif
