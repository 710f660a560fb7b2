/* Unit tests for skyvmm's boot protocol (vmm/skyvmm/boot.c): the bzImage
 * header checks and every refusal, the e820 map for several memory sizes
 * (with and without RAM above 4 GiB), where the kernel, command line and
 * initramfs go, the zero page, page tables and GDT written into a guest
 * memory made of calloc'd regions, and the loading from memfds.
 *
 *   ./test_skyvmm_boot     (no environment needed; no /dev/kvm)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/skyvmm/boot.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)v);
	wr16(p + 2, (uint16_t)(v >> 16));
}

/* A setup header as a 64-bit relocatable Linux has it (protocol 2.15),
 * setup_sects 1: 1024 bytes of setup. */
static void good_header(uint8_t *h)
{
	memset(h, 0, SV_HDR_READ);
	h[0x1f1] = 1;
	wr16(h + 0x1fe, 0xaa55);
	h[0x200] = 0xeb;
	h[0x201] = 0x6a;
	memcpy(h + 0x202, "HdrS", 4);
	wr16(h + 0x206, 0x020f);
	h[0x211] = 0x01;
	wr32(h + 0x22c, 0x7fffffff);
	wr32(h + 0x230, 0x200000);
	h[0x234] = 1;
	wr16(h + 0x236, 0x3);
	wr32(h + 0x238, 2047);
	wr32(h + 0x258, 0x1000000);
	wr32(h + 0x260, 0x2000000); /* init_size 32 MiB */
}

static int parse(const uint8_t *h, uint64_t file_size, struct sv_bzimage *bz, char *err)
{
	return sv_bzimage_parse(h, SV_HDR_READ, file_size, bz, err, 256);
}

static void test_parse_good(void **state)
{
	uint8_t h[SV_HDR_READ];
	struct sv_bzimage bz;
	char err[256] = "";
	(void)state;

	good_header(h);
	assert_int_equal(parse(h, 8 * MiB, &bz, err), 0);
	assert_int_equal(bz.version, 0x020f);
	assert_int_equal(bz.setup_size, 1024);
	assert_int_equal(bz.kernel_size, 8 * MiB - 1024);
	assert_int_equal(bz.kernel_alignment, 0x200000);
	assert_int_equal(bz.cmdline_size, 2047);
	assert_int_equal(bz.pref_address, 0x1000000);
	assert_int_equal(bz.init_size, 0x2000000);
	assert_int_equal(bz.initrd_addr_max, 0x7fffffff);
	assert_int_equal(bz.hdr_len, 0x26c - 0x1f1);
	assert_memory_equal(bz.hdr + (0x202 - 0x1f1), "HdrS", 4);

	/* setup_sects 0 means 4 */
	h[0x1f1] = 0;
	assert_int_equal(parse(h, 8 * MiB, &bz, err), 0);
	assert_int_equal(bz.setup_size, 5 * 512);
	/* a header longer than skyvmm knows is cut, not refused */
	h[0x201] = 0xff;
	assert_int_equal(parse(h, 8 * MiB, &bz, err), 0);
	assert_int_equal(bz.hdr_len, 0x290 - 0x1f1);
}

struct refusal {
	const char *what;
	void (*spoil)(uint8_t *h);
	uint64_t file_size;
	const char *says;
};

static void bad_flag(uint8_t *h) { wr16(h + 0x1fe, 0x55aa); }
static void bad_magic(uint8_t *h) { memcpy(h + 0x202, "HdrZ", 4); }
static void old_proto(uint8_t *h) { wr16(h + 0x206, 0x020b); }
static void zimage(uint8_t *h) { h[0x211] = 0; }
static void no64(uint8_t *h) { wr16(h + 0x236, 0x2); }
static void not_reloc(uint8_t *h) { h[0x234] = 0; }
static void no_jump(uint8_t *h) { h[0x200] = 0x90; }
static void align0(uint8_t *h) { wr32(h + 0x230, 0); }
static void align3(uint8_t *h) { wr32(h + 0x230, 0x300000); }
static void align_huge(uint8_t *h) { wr32(h + 0x230, 0x80000000u); }
static void short_hdr(uint8_t *h) { h[0x201] = 0x61; } /* ends at 0x263 */
static void nothing(uint8_t *h) { (void)h; }
static void many_sects(uint8_t *h) { h[0x1f1] = 0xff; }

static void test_parse_refusals(void **state)
{
	static const struct refusal cases[] = {
		{ "boot flag", bad_flag, 8 * MiB, "not a Linux bzImage" },
		{ "magic", bad_magic, 8 * MiB, "not a Linux bzImage" },
		{ "protocol 2.11", old_proto, 8 * MiB, "boot protocol 2.11" },
		{ "zImage", zimage, 8 * MiB, "zImage" },
		{ "no 64-bit entry", no64, 8 * MiB, "64-bit entry" },
		{ "not relocatable", not_reloc, 8 * MiB, "not relocatable" },
		{ "no jump", no_jump, 8 * MiB, "no jump" },
		{ "header shorter than its protocol", short_hdr, 8 * MiB, "ends at 0x263" },
		{ "alignment 0", align0, 8 * MiB, "alignment" },
		{ "alignment not a power of two", align3, 8 * MiB, "alignment" },
		{ "alignment 2 GiB", align_huge, 8 * MiB, "alignment" },
		{ "short file", nothing, 0x200, "too short" },
		{ "setup only", nothing, 1024, "truncated" },
		{ "setup longer than the file", many_sects, 64 * 1024, "truncated" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t h[SV_HDR_READ];
		struct sv_bzimage bz;
		char err[256] = "";
		memset(&bz, 0x5a, sizeof(bz));
		good_header(h);
		cases[i].spoil(h);
		fprintf(stderr, "# refusal: %s\n", cases[i].what);
		assert_int_equal(parse(h, cases[i].file_size, &bz, err), -EINVAL);
		if (!strstr(err, cases[i].says))
			fail_msg("%s: message \"%s\" does not say \"%s\"", cases[i].what, err, cases[i].says);
		assert_int_equal(bz.version, 0x5a5a); /* nothing written on a refusal */
	}
	/* a buffer shorter than the header, whatever the file size */
	{
		uint8_t h[SV_HDR_READ];
		struct sv_bzimage bz;
		char err[256];
		good_header(h);
		assert_int_equal(sv_bzimage_parse(h, 0x280, 8 * MiB, &bz, err, sizeof(err)), -EINVAL);
	}
}

static void check_e820(uint64_t mem, unsigned want_n, const struct sv_e820 *want)
{
	struct sv_e820 e[8];
	unsigned n = sv_e820_build(mem, e, 8);
	uint64_t ram = 0;

	fprintf(stderr, "# e820 for %llu MiB\n", (unsigned long long)(mem >> 20));
	assert_int_equal(n, want_n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(e[i].addr, want[i].addr);
		assert_int_equal(e[i].size, want[i].size);
		assert_int_equal(e[i].type, want[i].type);
		if (e[i].type == SV_E820_RAM)
			ram += e[i].size;
		if (i)
			assert_true(e[i].addr >= e[i - 1].addr + e[i - 1].size); /* sorted, no overlap */
	}
	/* all of the memory is RAM but the EBDA and the BIOS area */
	assert_int_equal(ram, mem - (SV_BIOS_END - SV_EBDA_START));
}

static void test_e820(void **state)
{
	(void)state;
	const struct sv_e820 lowmem[] = {
		{ 0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0xe0000, 0x20000, 2 }, { 0x100000, 32 * MiB - 0x100000, 1 },
	};
	check_e820(32 * MiB, 4, lowmem);
	const struct sv_e820 one_g[] = {
		{ 0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0xe0000, 0x20000, 2 }, { 0x100000, GiB - 0x100000, 1 },
	};
	check_e820(GiB, 4, one_g);
	const struct sv_e820 three_g[] = {
		{ 0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0xe0000, 0x20000, 2 }, { 0x100000, 3 * GiB - 0x100000, 1 },
	};
	check_e820(3 * GiB, 4, three_g);
	const struct sv_e820 just_over[] = {
		{ 0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0xe0000, 0x20000, 2 },
		{ 0x100000, 3 * GiB - 0x100000, 1 }, { 4 * GiB, MiB, 1 },
	};
	check_e820(3 * GiB + MiB, 5, just_over);
	const struct sv_e820 eight_g[] = {
		{ 0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0xe0000, 0x20000, 2 },
		{ 0x100000, 3 * GiB - 0x100000, 1 }, { 4 * GiB, 5 * GiB, 1 },
	};
	check_e820(8 * GiB, 5, eight_g);
	/* nothing lands between 3 and 4 GiB (the PCI hole) */
	{
		struct sv_e820 e[8];
		unsigned n = sv_e820_build(64 * GiB, e, 8);
		for (unsigned i = 0; i < n; i++)
			assert_true(e[i].addr + e[i].size <= SV_MMIO32_BASE || e[i].addr >= SV_HIGH_RAM_BASE);
		/* max bounds the output */
		assert_int_equal(sv_e820_build(64 * GiB, e, 2), 2);
	}
}

static struct sv_bzimage good_bz(void)
{
	uint8_t h[SV_HDR_READ];
	struct sv_bzimage bz;
	char err[256];
	good_header(h);
	assert_int_equal(parse(h, 8 * MiB, &bz, err), 0);
	return bz;
}

static void test_plan(void **state)
{
	struct sv_bzimage bz = good_bz();
	struct sv_boot_layout l;
	char err[256] = "";
	(void)state;

	/* kernel at pref_address; its end is the larger of init_size and its size */
	assert_int_equal(sv_boot_plan(&bz, 256 * MiB, 0, 10, &l, err, sizeof(err)), 0);
	assert_int_equal(l.kernel_addr, 0x1000000);
	assert_int_equal(l.kernel_end, 0x1000000 + 0x2000000);
	assert_int_equal(l.entry, 0x1000200);
	assert_int_equal(l.initrd_addr, 0);
	assert_int_equal(l.initrd_size, 0);

	/* the initramfs goes as high as it may, page-aligned, above the kernel */
	assert_int_equal(sv_boot_plan(&bz, 256 * MiB, 5000, 10, &l, err, sizeof(err)), 0);
	assert_int_equal(l.initrd_addr, (256 * MiB - 5000) & ~0xfffULL);
	assert_int_equal(l.initrd_size, 5000);
	assert_true(l.initrd_addr >= l.kernel_end);

	/* with RAM above 4 GiB it stays below 3 GiB (and below initrd_addr_max) */
	assert_int_equal(sv_boot_plan(&bz, 8 * GiB, 10 * MiB, 10, &l, err, sizeof(err)), 0);
	assert_int_equal(l.initrd_addr, 0x80000000 - 10 * MiB); /* initrd_addr_max 2 GiB - 1 */
	bz.initrd_addr_max = 0xffffffff;
	assert_int_equal(sv_boot_plan(&bz, 8 * GiB, 10 * MiB, 10, &l, err, sizeof(err)), 0);
	assert_int_equal(l.initrd_addr, 3 * GiB - 10 * MiB);
	bz.initrd_addr_max = 0x37ffffff; /* an older kernel's limit */
	assert_int_equal(sv_boot_plan(&bz, 8 * GiB, 10 * MiB, 10, &l, err, sizeof(err)), 0);
	assert_int_equal(l.initrd_addr, 0x38000000 - 10 * MiB);
	bz = good_bz();

	/* a pref_address that is not aligned or not in RAM: 16 MiB, aligned */
	bz.pref_address = 0x1000001;
	assert_int_equal(sv_boot_plan(&bz, 256 * MiB, 0, 10, &l, err, sizeof(err)), 0);
	assert_int_equal(l.kernel_addr, 0x1000000);
	bz.kernel_alignment = 0x4000000; /* 64 MiB */
	assert_int_equal(sv_boot_plan(&bz, 256 * MiB, 0, 10, &l, err, sizeof(err)), 0);
	assert_int_equal(l.kernel_addr, 0x4000000);
	bz = good_bz();

	/* the command line: up to cmdline_size, not one byte more */
	assert_int_equal(sv_boot_plan(&bz, 256 * MiB, 0, 2047, &l, err, sizeof(err)), 0);
	assert_int_equal(sv_boot_plan(&bz, 256 * MiB, 0, 2048, &l, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "at most 2047"));
	bz.cmdline_size = 0xffffffff; /* the kernel's word, bounded by ours */
	assert_int_equal(sv_boot_plan(&bz, 256 * MiB, 0, SV_CMDLINE_MAX, &l, err, sizeof(err)), -E2BIG);
	bz = good_bz();

	/* too little memory for the kernel, or for the initramfs beside it */
	bz.init_size = 0x10000000; /* 256 MiB */
	assert_int_equal(sv_boot_plan(&bz, 256 * MiB, 0, 10, &l, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "the kernel needs"));
	bz = good_bz();
	/* the kernel takes 16-48 MiB: 16 MiB of initramfs fit exactly above it, a byte more does not */
	assert_int_equal(sv_boot_plan(&bz, 64 * MiB, 16 * MiB + 1, 10, &l, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "initramfs"));
	assert_int_equal(sv_boot_plan(&bz, 64 * MiB, 16 * MiB, 10, &l, err, sizeof(err)), 0);
	assert_int_equal(l.initrd_addr, l.kernel_end);
	assert_int_equal(sv_boot_plan(&bz, 64 * MiB, UINT64_MAX - 5, 10, &l, err, sizeof(err)), -E2BIG);

	/* memory bounds */
	assert_int_equal(sv_boot_plan(&bz, 16 * MiB, 0, 10, &l, err, sizeof(err)), -EINVAL);
	assert_int_equal(sv_boot_plan(&bz, 2ULL << 40, 0, 10, &l, err, sizeof(err)), -EINVAL);
}

/* a guest memory of calloc'd regions, as the devices' tests make it */
static struct sv_mem fake_mem(uint64_t size)
{
	struct sv_mem m = { .n = 1 };
	m.region[0].gpa = 0;
	m.region[0].size = size;
	m.region[0].host = calloc(1, size);
	assert_non_null(m.region[0].host);
	return m;
}

static void test_zero_page(void **state)
{
	struct sv_bzimage bz = good_bz();
	struct sv_boot_layout l;
	struct sv_mem m = fake_mem(64 * MiB);
	const char *cmd = "console=ttyS0 panic=-1";
	char err[256];
	uint8_t *zp, *g = m.region[0].host;
	(void)state;

	assert_int_equal(sv_boot_plan(&bz, 64 * MiB, 4 * MiB, strlen(cmd), &l, err, sizeof(err)), 0);
	assert_int_equal(sv_boot_params(&m, &bz, &l, cmd, 0xe0000), 0);
	zp = g + SV_ZERO_PAGE;
	assert_memory_equal(zp + 0x202, "HdrS", 4);       /* the header copied */
	assert_int_equal(zp[0x1f1], 1);
	assert_int_equal(zp[0x210], 0xff);                 /* type_of_loader */
	assert_true(zp[0x211] & 0x80);                     /* CAN_USE_HEAP */
	assert_true(zp[0x211] & 0x01);                     /* LOADED_HIGH kept */
	assert_int_equal(rd32(zp + 0x228), SV_CMDLINE_ADDR);
	assert_string_equal((char *)g + SV_CMDLINE_ADDR, cmd);
	assert_int_equal(rd32(zp + 0x218), l.initrd_addr);
	assert_int_equal(rd32(zp + 0x21c), 4 * MiB);
	assert_int_equal(rd64(zp + SV_BP_ACPI_RSDP), 0xe0000);
	/* the e820 map of the memory */
	assert_int_equal(zp[SV_BP_E820_COUNT], 4);
	assert_int_equal(rd64(zp + SV_BP_E820_TABLE + 3 * 20), 0x100000);
	assert_int_equal(rd64(zp + SV_BP_E820_TABLE + 3 * 20 + 8), 63 * MiB);
	assert_int_equal(rd32(zp + SV_BP_E820_TABLE + 3 * 20 + 16), SV_E820_RAM);
	assert_int_equal(rd32(zp + SV_BP_E820_TABLE + 1 * 20 + 16), SV_E820_RESERVED);
	/* GDT: code 0x10 with L set, data 0x18 */
	assert_int_equal(rd64(g + SV_GDT_ADDR + SV_GDT_CS), sv_boot_gdt[2]);
	assert_true(rd64(g + SV_GDT_ADDR + SV_GDT_CS) & (1ULL << 53));
	assert_int_equal(rd64(g + SV_GDT_ADDR + SV_GDT_DS), sv_boot_gdt[3]);
	/* identity map of 4 GiB with 2 MiB pages */
	assert_int_equal(rd64(g + SV_PML4_ADDR), SV_PDPT_ADDR | 3);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(rd64(g + SV_PDPT_ADDR + 8 * i), (SV_PD_ADDR + 4096 * i) | 3);
	assert_int_equal(rd64(g + SV_PD_ADDR), 0x83);
	assert_int_equal(rd64(g + SV_PD_ADDR + 8 * 8), (8ULL << 21) | 0x83); /* 16 MiB, the kernel */
	assert_int_equal(rd64(g + SV_PD_ADDR + 8 * 2047), (2047ULL << 21) | 0x83);

	/* protocol before 2.14: no acpi_rsdp_addr written */
	bz.version = 0x020c;
	assert_int_equal(sv_boot_params(&m, &bz, &l, cmd, 0xe0000), 0);
	assert_int_equal(rd64(zp + SV_BP_ACPI_RSDP), 0);
	/* a command line longer than the area is refused */
	{
		char *long_cmd = malloc(SV_CMDLINE_MAX + 1);
		memset(long_cmd, 'x', SV_CMDLINE_MAX);
		long_cmd[SV_CMDLINE_MAX] = 0;
		assert_int_equal(sv_boot_params(&m, &bz, &l, long_cmd, 0), -EINVAL);
		free(long_cmd);
	}
	free(m.region[0].host);
}

static int memfd_with(const uint8_t *data, size_t len)
{
	int fd = memfd_create("test", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static void test_load(void **state)
{
	size_t ksize = 1024 + 3 * 4096 + 7, isize = 9000;
	uint8_t *k = malloc(ksize), *ird = malloc(isize);
	struct sv_mem m = fake_mem(64 * MiB);
	struct sv_bzimage bz;
	struct sv_boot_layout l;
	char err[256] = "";
	int kfd, ifd;
	(void)state;

	good_header(k);
	for (size_t i = SV_HDR_READ; i < ksize; i++)
		k[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < isize; i++)
		ird[i] = (uint8_t)(i * 13 + 1);
	kfd = memfd_with(k, ksize);
	ifd = memfd_with(ird, isize);
	assert_int_equal(sv_bzimage_read(kfd, &bz, err, sizeof(err)), 0);
	assert_int_equal(bz.kernel_size, ksize - 1024);
	assert_int_equal(sv_boot_plan(&bz, 64 * MiB, isize, 0, &l, err, sizeof(err)), 0);
	assert_int_equal(sv_boot_load(&m, &bz, &l, kfd, ifd), 0);
	assert_memory_equal(m.region[0].host + l.kernel_addr, k + 1024, ksize - 1024);
	assert_memory_equal(m.region[0].host + l.initrd_addr, ird, isize);

	/* the initramfs shrank since it was measured: an error, not a short load */
	assert_int_equal(ftruncate(ifd, 100), 0);
	assert_int_equal(sv_boot_load(&m, &bz, &l, kfd, ifd), -EIO);
	/* a layout outside the memory is refused */
	l.kernel_addr = 64 * MiB - 100;
	assert_int_equal(sv_boot_load(&m, &bz, &l, kfd, -1), -EINVAL);

	/* not a regular file */
	{
		int p[2];
		assert_int_equal(pipe(p), 0);
		assert_int_equal(sv_bzimage_read(p[0], &bz, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "not a regular file"));
		close(p[0]);
		close(p[1]);
	}
	close(kfd);
	close(ifd);
	free(k);
	free(ird);
	free(m.region[0].host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_zero_page),
		cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
