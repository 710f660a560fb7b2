/* libFuzzer target: skyvmm's bzImage header checks and boot planning
 * (vmm/skyvmm/boot.c) - what a kernel image handed to skyvmm can make of
 * it before and while the guest is set up.
 *
 * Input: 8 bytes of file size (little-endian; the image's length as fstat
 * would give it), 8 bytes of guest memory size, 4 of initramfs size, 2 of
 * command-line length, then the first bytes of the image (the header,
 * zero-padded to SV_HDR_READ).  Invariants:
 * - a refusal writes nothing to the result and says why (a NUL-terminated,
 *   non-empty message);
 * - an accepted header has a 2.12+ protocol, a setup part shorter than
 *   the file, a power-of-two alignment, a header length inside the struct;
 * - a plan keeps the kernel aligned, from 1 MiB, inside RAM below 3 GiB,
 *   with its entry at +0x200; the initramfs page-aligned, above the
 *   kernel, below both 3 GiB and initrd_addr_max, inside RAM; the command
 *   line within the kernel's limit;
 * - the zero page written for it (into a fake guest memory) carries the
 *   header, the command line pointer and the initramfs it was planned. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/skyvmm/boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAKE_MEM (SV_CMDLINE_ADDR + SV_CMDLINE_MAX)
#define PREFIX (8 + 8 + 4 + 2)

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	while (n--)
		v = v << 8 | p[n];
	return v;
}

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_bzimage: invariant broken: %s\n", what);
		abort();
	}
}

static uint8_t *fake_ram;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[SV_HDR_READ];
	struct sv_bzimage bz, poison;
	struct sv_boot_layout l;
	char err[256];
	uint64_t file_size, mem, initrd, low, top;
	size_t clen, hlen;
	int r;

	if (size < PREFIX)
		return 0;
	file_size = le(data, 8);
	mem = le(data + 8, 8);
	initrd = le(data + 16, 4);
	clen = (size_t)le(data + 20, 2);
	hlen = size - PREFIX < SV_HDR_READ ? size - PREFIX : SV_HDR_READ;
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, data + PREFIX, hlen);

	memset(&poison, 0xa5, sizeof(poison));
	bz = poison;
	memset(err, 'X', sizeof(err));
	r = sv_bzimage_parse(hdr, sizeof(hdr), file_size, &bz, err, sizeof(err));
	if (r < 0) {
		check(r == -EINVAL, "refusal is -EINVAL");
		check(memcmp(&bz, &poison, sizeof(bz)) == 0, "nothing written on a refusal");
		check(memchr(err, 0, sizeof(err)) != NULL && err[0], "a message on a refusal");
		return 0;
	}
	check(bz.version >= SV_BOOT_PROTO_MIN, "protocol 2.12+");
	check(bz.setup_size < file_size && bz.kernel_size == file_size - bz.setup_size, "setup inside the file");
	check(bz.kernel_alignment >= 4096 && !(bz.kernel_alignment & (bz.kernel_alignment - 1)), "alignment");
	check(bz.hdr_len <= sizeof(bz.hdr), "header length");

	memset(&l, 0xa5, sizeof(l));
	r = sv_boot_plan(&bz, mem, initrd, clen, &l, err, sizeof(err));
	if (r < 0) {
		check(r == -EINVAL || r == -E2BIG, "plan refusal errno");
		check(memchr(err, 0, sizeof(err)) != NULL && err[0], "a message on a plan refusal");
		return 0;
	}
	low = mem < SV_LOW_RAM_END ? mem : SV_LOW_RAM_END;
	check(mem >= SV_MEM_MIN && mem <= SV_MEM_MAX, "memory bounds");
	check(clen <= bz.cmdline_size && clen < SV_CMDLINE_MAX, "command line bound");
	check(l.kernel_addr >= SV_KERNEL_MIN && !(l.kernel_addr & (bz.kernel_alignment - 1)), "kernel aligned");
	check(l.kernel_end <= low && l.kernel_end - l.kernel_addr >= bz.kernel_size, "kernel inside RAM");
	check(l.entry == l.kernel_addr + 0x200, "64-bit entry");
	if (initrd) {
		top = low;
		if (bz.initrd_addr_max && (uint64_t)bz.initrd_addr_max + 1 < top)
			top = (uint64_t)bz.initrd_addr_max + 1;
		check(l.initrd_size == initrd, "initramfs size");
		check(!(l.initrd_addr & 0xfff), "initramfs page-aligned");
		check(l.initrd_addr >= l.kernel_end, "initramfs above the kernel");
		check(l.initrd_addr + l.initrd_size <= top, "initramfs below its limits");
	} else {
		check(l.initrd_addr == 0 && l.initrd_size == 0, "no initramfs");
	}

	/* the zero page into a small fake guest memory (what lies below 1 MiB
	 * and the command line area), for a command line of clen bytes */
	{
		struct sv_mem m = { .n = 1 };
		char *cmd = malloc(clen + 1);
		const uint8_t *zp;
		if (!cmd)
			return 0;
		memset(cmd, 'c', clen);
		cmd[clen] = 0;
		m.region[0] = (struct sv_mem_region){ 0, FAKE_MEM, fake_ram };
		check(sv_boot_params(&m, &bz, &l, cmd, 0xe0000) == 0, "zero page written");
		zp = fake_ram + SV_ZERO_PAGE;
		check(memcmp(zp + 0x1f1, bz.hdr, 0x210 - 0x1f1) == 0, "header copied up to type_of_loader");
		check(le(zp + 0x228, 4) == SV_CMDLINE_ADDR, "command line pointer");
		check(le(zp + 0x218, 4) == l.initrd_addr && le(zp + 0x21c, 4) == l.initrd_size, "initramfs fields");
		check(strlen((char *)fake_ram + SV_CMDLINE_ADDR) == clen, "command line copied");
		free(cmd);
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fake_ram = calloc(1, FAKE_MEM);
	return fake_ram ? 0 : -1;
}
