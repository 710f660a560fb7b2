/* skyvmm: the Linux x86 boot protocol, 64-bit entry (see boot.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/skyvmm/boot.h"
#include "vmm/skyvmm/le.h"

const uint64_t sv_boot_gdt[4] = {
	0,
	0,
	0x00af9b000000ffffULL, /* 0x10: code, 64-bit, present, ring 0 */
	0x00cf93000000ffffULL, /* 0x18: data, 4 GiB, present, writable */
};

/* setup header offsets, from the start of the image */
#define H_SETUP_SECTS   0x1f1
#define H_BOOT_FLAG     0x1fe
#define H_JUMP          0x200
#define H_MAGIC         0x202
#define H_VERSION       0x206
#define H_TYPE_LOADER   0x210
#define H_LOADFLAGS     0x211
#define H_RAMDISK_IMAGE 0x218
#define H_RAMDISK_SIZE  0x21c
#define H_HEAP_END      0x224
#define H_CMD_LINE_PTR  0x228
#define H_INITRD_MAX    0x22c
#define H_KERNEL_ALIGN  0x230
#define H_RELOCATABLE   0x234
#define H_XLOADFLAGS    0x236
#define H_CMDLINE_SIZE  0x238
#define H_PREF_ADDRESS  0x258
#define H_INIT_SIZE     0x260
#define H_END           0x290 /* beyond the last field skyvmm knows */

#define LOADED_HIGH   0x01
#define CAN_USE_HEAP  0x80
#define XLF_KERNEL_64 0x01

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int sv_bzimage_parse(const uint8_t *buf, size_t len, uint64_t file_size, struct sv_bzimage *out, char *err,
		     size_t errlen)
{
	struct sv_bzimage bz;
	unsigned sects;

	memset(&bz, 0, sizeof(bz));
	if (len > file_size)
		len = (size_t)file_size;
	if (len < H_END)
		return fail(err, errlen, "the kernel image is %llu bytes: too short for a bzImage",
			    (unsigned long long)file_size);
	if (sv_get16(buf + H_BOOT_FLAG) != 0xaa55 || memcmp(buf + H_MAGIC, "HdrS", 4) != 0)
		return fail(err, errlen, "the kernel image is not a Linux bzImage (no \"HdrS\" magic at offset "
			    "0x202): give a bzImage such as the vmlinuz of a linux-image package, not a vmlinux "
			    "or a compressed file");
	bz.version = sv_get16(buf + H_VERSION);
	if (bz.version < SV_BOOT_PROTO_MIN)
		return fail(err, errlen, "the kernel image uses boot protocol %u.%02u: skyvmm needs 2.12 or newer "
			    "(Linux 3.8 and later) for its 64-bit entry", bz.version >> 8, bz.version & 0xff);
	if (!(buf[H_LOADFLAGS] & LOADED_HIGH))
		return fail(err, errlen, "the kernel image is a zImage (loaded low): skyvmm boots bzImages");
	if (!(sv_get16(buf + H_XLOADFLAGS) & XLF_KERNEL_64))
		return fail(err, errlen, "the kernel image has no 64-bit entry (XLF_KERNEL_64): skyvmm boots "
			    "x86-64 kernels");
	if (!buf[H_RELOCATABLE])
		return fail(err, errlen, "the kernel image is not relocatable (CONFIG_RELOCATABLE): skyvmm "
			    "needs to choose its load address");
	/* the header's length: the jump at 0x200 lands just after it */
	if (buf[H_JUMP] != 0xeb)
		return fail(err, errlen, "the kernel image's setup header has no jump at 0x200");
	bz.hdr_len = (uint32_t)(H_JUMP + 2 + buf[H_JUMP + 1] - H_SETUP_SECTS);
	if (H_SETUP_SECTS + bz.hdr_len < H_INIT_SIZE + 4)
		return fail(err, errlen, "the kernel image's setup header ends at %#x, before the fields of its "
			    "boot protocol %u.%02u", H_SETUP_SECTS + bz.hdr_len, bz.version >> 8, bz.version & 0xff);
	if (bz.hdr_len > H_END - H_SETUP_SECTS)
		bz.hdr_len = H_END - H_SETUP_SECTS; /* newer fields: ours stay zero */
	sects = buf[H_SETUP_SECTS] ? buf[H_SETUP_SECTS] : 4;
	bz.setup_size = (sects + 1) * 512;
	if (file_size <= bz.setup_size)
		return fail(err, errlen, "the kernel image is %llu bytes, no more than its %u-byte setup part: "
			    "truncated", (unsigned long long)file_size, bz.setup_size);
	bz.kernel_size = file_size - bz.setup_size;
	bz.kernel_alignment = sv_get32(buf + H_KERNEL_ALIGN);
	if (bz.kernel_alignment < 4096 || (bz.kernel_alignment & (bz.kernel_alignment - 1)) ||
	    bz.kernel_alignment > (1U << 30))
		return fail(err, errlen, "the kernel image asks for an alignment of %#x: not a power of two "
			    "between 4 KiB and 1 GiB", bz.kernel_alignment);
	bz.initrd_addr_max = sv_get32(buf + H_INITRD_MAX);
	bz.cmdline_size = sv_get32(buf + H_CMDLINE_SIZE);
	bz.pref_address = sv_get64(buf + H_PREF_ADDRESS);
	bz.init_size = sv_get32(buf + H_INIT_SIZE);
	memcpy(bz.hdr, buf + H_SETUP_SECTS, bz.hdr_len);
	*out = bz;
	return 0;
}

unsigned sv_e820_build(uint64_t mem, struct sv_e820 *out, unsigned max)
{
	uint64_t low = mem < SV_LOW_RAM_END ? mem : SV_LOW_RAM_END;
	struct sv_e820 e[5];
	unsigned n = 0, i;

	e[n++] = (struct sv_e820){ 0, SV_EBDA_START, SV_E820_RAM };
	e[n++] = (struct sv_e820){ SV_EBDA_START, 0xa0000 - SV_EBDA_START, SV_E820_RESERVED };
	e[n++] = (struct sv_e820){ SV_ACPI_ADDR, SV_BIOS_END - SV_ACPI_ADDR, SV_E820_RESERVED };
	if (low > SV_BIOS_END)
		e[n++] = (struct sv_e820){ SV_BIOS_END, low - SV_BIOS_END, SV_E820_RAM };
	if (mem > low)
		e[n++] = (struct sv_e820){ SV_HIGH_RAM_BASE, mem - low, SV_E820_RAM };
	for (i = 0; i < n && i < max; i++)
		out[i] = e[i];
	return i;
}

int sv_boot_plan(const struct sv_bzimage *bz, uint64_t mem, uint64_t initrd_size, size_t cmdline_len,
		 struct sv_boot_layout *out, char *err, size_t errlen)
{
	uint64_t low = mem < SV_LOW_RAM_END ? mem : SV_LOW_RAM_END;
	uint64_t align = bz->kernel_alignment, need, top;
	struct sv_boot_layout l = { 0 };

	if (mem < SV_MEM_MIN || mem > SV_MEM_MAX)
		return fail(err, errlen, "guest memory of %llu bytes: give between 32 MiB and 1 TiB",
			    (unsigned long long)mem);
	if (cmdline_len > bz->cmdline_size || cmdline_len >= SV_CMDLINE_MAX) {
		fail(err, errlen, "the command line is %zu bytes: this kernel takes at most %u", cmdline_len,
		     bz->cmdline_size < SV_CMDLINE_MAX - 1 ? bz->cmdline_size : SV_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	l.kernel_addr = bz->pref_address;
	if (l.kernel_addr < SV_KERNEL_MIN || (l.kernel_addr & (align - 1)) || l.kernel_addr >= low)
		l.kernel_addr = ((16ULL << 20) + align - 1) & ~(align - 1);
	need = bz->init_size > bz->kernel_size ? bz->init_size : bz->kernel_size;
	l.kernel_end = l.kernel_addr + need;
	if (l.kernel_end > low) {
		fail(err, errlen, "the kernel needs %llu bytes from %#llx: more than the %llu bytes of memory "
		     "below 3 GiB", (unsigned long long)need, (unsigned long long)l.kernel_addr,
		     (unsigned long long)low);
		return -E2BIG;
	}
	l.entry = l.kernel_addr + 0x200;
	if (initrd_size) {
		top = low;
		if (bz->initrd_addr_max && (uint64_t)bz->initrd_addr_max + 1 < top)
			top = (uint64_t)bz->initrd_addr_max + 1;
		if (initrd_size > top || ((top - initrd_size) & ~0xfffULL) < l.kernel_end) {
			fail(err, errlen, "the initramfs (%llu bytes) does not fit between the kernel's end "
			     "(%#llx) and %#llx: give more memory", (unsigned long long)initrd_size,
			     (unsigned long long)l.kernel_end, (unsigned long long)top);
			return -E2BIG;
		}
		l.initrd_addr = (top - initrd_size) & ~0xfffULL;
		l.initrd_size = initrd_size;
	}
	*out = l;
	return 0;
}

int sv_boot_params(struct sv_mem *m, const struct sv_bzimage *bz, const struct sv_boot_layout *l,
		   const char *cmdline, uint64_t rsdp)
{
	size_t clen = strlen(cmdline);
	uint8_t *zp = sv_mem_ptr(m, SV_ZERO_PAGE, 4096);
	uint8_t *cl = sv_mem_ptr(m, SV_CMDLINE_ADDR, clen + 1);
	uint8_t *gdt = sv_mem_ptr(m, SV_GDT_ADDR, sizeof(sv_boot_gdt));
	uint8_t *pml4 = sv_mem_ptr(m, SV_PML4_ADDR, 4096);
	uint8_t *pdpt = sv_mem_ptr(m, SV_PDPT_ADDR, 4096);
	uint8_t *pd = sv_mem_ptr(m, SV_PD_ADDR, 4 * 4096);
	struct sv_e820 e820[SV_BP_E820_MAX];
	unsigned n, i;

	if (!zp || !cl || !gdt || !pml4 || !pdpt || !pd || clen >= SV_CMDLINE_MAX)
		return -EINVAL;
	memset(zp, 0, 4096);
	memcpy(zp + SV_BP_HDR, bz->hdr, bz->hdr_len);
	/* the header sits at the same offsets in the zero page as in the image */
	zp[H_TYPE_LOADER] = 0xff; /* undefined loader */
	zp[H_LOADFLAGS] |= CAN_USE_HEAP;
	sv_put16(zp + H_HEAP_END, 0xfe00);
	sv_put32(zp + H_CMD_LINE_PTR, (uint32_t)SV_CMDLINE_ADDR);
	sv_put32(zp + H_RAMDISK_IMAGE, (uint32_t)l->initrd_addr);
	sv_put32(zp + H_RAMDISK_SIZE, (uint32_t)l->initrd_size);
	if (bz->version >= 0x020e) /* 2.14: acpi_rsdp_addr */
		sv_put64(zp + SV_BP_ACPI_RSDP, rsdp);
	memcpy(cl, cmdline, clen + 1);

	n = sv_e820_build(sv_mem_total(m), e820, SV_BP_E820_MAX);
	zp[SV_BP_E820_COUNT] = (uint8_t)n;
	for (i = 0; i < n; i++) {
		uint8_t *e = zp + SV_BP_E820_TABLE + 20 * i;
		sv_put64(e, e820[i].addr);
		sv_put64(e + 8, e820[i].size);
		sv_put32(e + 16, e820[i].type);
	}

	for (i = 0; i < 4; i++)
		sv_put64(gdt + 8 * i, sv_boot_gdt[i]);
	/* identity map of the first 4 GiB with 2 MiB pages: PML4[0] -> PDPT,
	 * PDPT[0..3] -> 4 PDs of 512 entries each */
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	sv_put64(pml4, SV_PDPT_ADDR | 0x3);
	for (i = 0; i < 4; i++)
		sv_put64(pdpt + 8 * i, (SV_PD_ADDR + 4096 * i) | 0x3);
	for (i = 0; i < 4 * 512; i++)
		sv_put64(pd + 8 * i, ((uint64_t)i << 21) | 0x83); /* present, writable, 2 MiB */
	return 0;
}

static int pread_all(int fd, uint8_t *dst, uint64_t len, uint64_t off)
{
	while (len) {
		size_t chunk = len > (1U << 30) ? (1U << 30) : (size_t)len;
		ssize_t r = pread(fd, dst, chunk, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* shorter than it was at fstat */
		dst += r;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

int sv_boot_load(struct sv_mem *m, const struct sv_bzimage *bz, const struct sv_boot_layout *l, int kernel_fd,
		 int initrd_fd)
{
	uint8_t *k = sv_mem_ptr(m, l->kernel_addr, bz->kernel_size);
	uint8_t *i;
	int r;

	if (!k)
		return -EINVAL;
	r = pread_all(kernel_fd, k, bz->kernel_size, bz->setup_size);
	if (r < 0 || initrd_fd < 0 || !l->initrd_size)
		return r;
	i = sv_mem_ptr(m, l->initrd_addr, l->initrd_size);
	if (!i)
		return -EINVAL;
	return pread_all(initrd_fd, i, l->initrd_size, 0);
}

int sv_bzimage_read(int fd, struct sv_bzimage *out, char *err, size_t errlen)
{
	uint8_t buf[SV_HDR_READ];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return fail(err, errlen, "the kernel descriptor: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(err, errlen, "the kernel descriptor is not a regular file or memfd");
	memset(buf, 0, sizeof(buf));
	do
		n = pread(fd, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(err, errlen, "reading the kernel: %s", strerror(errno));
	return sv_bzimage_parse(buf, (size_t)n, (uint64_t)st.st_size, out, err, errlen);
}
