/* edumsi: edu's MSI taken by a guest under skyvmm (tests/e2e/skyvmm.py, run
 * inside the guest, built static: the guest's initramfs is busybox only).
 *
 * The guest kernel (Debian's) has no driver that turns MSI on for edu
 * (1234:11e8): vfio-pci would, but its no-IOMMU mode is not built
 * (CONFIG_VFIO_NOIOMMU is not set) and skyvmm gives the guest no IOMMU.  So
 * this program does what such a driver does, through the guest kernel's own
 * config-space access (/sys/bus/pci/devices/BDF/config, which goes to
 * skyvmm's emulated config space):
 *   - finds the MSI capability on the device's capability list;
 *   - writes the message: address 0xFEE00000 | APIC id << 12 (the boot
 *     CPU's, fixed delivery), data = vector 0xFA (edge, fixed), and turns
 *     memory decoding and bus mastering on (edu's MSI is a write the device
 *     makes);
 *   - sets MSI Enable, and reads it back set (skyvmm reads a refused
 *     enable back clear);
 *   - makes edu raise an interrupt (BAR0 0x60, through resource0) and waits
 *     for the guest CPU to take vector 0xFA: Linux counts it as "TRM"
 *     (thermal event interrupts) in /proc/interrupts, a vector no device
 *     owns and that stays 0 in a guest with no thermal sensor, so a count
 *     that goes up is this message and nothing else;
 *   - acknowledges it (0x64), clears Enable (skyvmm turns INTx back on) and
 *     leaves the command register as it was.
 * Prints "SKYROOT-EDU-MSI ok ..." or "SKYROOT-EDU-MSI fail: WHY"; exits 0
 * or 1.
 *
 * usage: edumsi [TIMEOUT_MS]   (default 5000) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define VECTOR 0xFA         /* THERMAL_APIC_VECTOR: "TRM" in /proc/interrupts */
#define CAP_MSI 0x05
#define MSI_ENABLE 0x0001
#define MSI_64 0x0080
#define EDU_RAISE 0x60
#define EDU_ACK 0x64
#define EDU_STATUS 0x24
#define EDU_BAR_MAP 4096

static char bdf[256];

static int fail(const char *what)
{
	printf("SKYROOT-EDU-MSI fail: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
	fflush(stdout);
	return 1;
}

static long read_hex(const char *dev, const char *file)
{
	char path[512], buf[32];
	FILE *f;
	long v = -1;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", dev, file);
	if (!(f = fopen(path, "r")))
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 16);
	fclose(f);
	return v;
}

static int find_edu(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (read_hex(e->d_name, "vendor") == EDU_VENDOR && read_hex(e->d_name, "device") == EDU_DEVICE) {
			snprintf(bdf, sizeof(bdf), "%s", e->d_name);
			closedir(d);
			return 0;
		}
	}
	closedir(d);
	return -1;
}

static int cfg_rd(int fd, unsigned off, void *v, size_t n)
{
	return pread(fd, v, n, off) == (ssize_t)n ? 0 : -1;
}

static int cfg_wr(int fd, unsigned off, const void *v, size_t n)
{
	return pwrite(fd, v, n, off) == (ssize_t)n ? 0 : -1;
}

/* The sum over CPUs of the "TRM:" line of /proc/interrupts, or -1. */
static long trm_count(void)
{
	char line[1024];
	FILE *f = fopen("/proc/interrupts", "r");
	long sum = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;
		while (*p == ' ')
			p++;
		if (strncmp(p, "TRM:", 4) != 0)
			continue;
		p += 4;
		sum = 0;
		for (;;) {
			long v = strtol(p, &end, 10);
			if (end == p)
				break;
			sum += v;
			p = end;
		}
		break;
	}
	fclose(f);
	return sum;
}

/* The boot CPU's APIC id (/proc/cpuinfo's first "apicid"), 0 if none. */
static unsigned boot_apic_id(void)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");
	unsigned id = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "apicid", 6) == 0) {
			char *c = strchr(line, ':');
			if (c)
				id = (unsigned)strtoul(c + 1, NULL, 10);
			break;
		}
	fclose(f);
	return id;
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

int main(int argc, char **argv)
{
	long timeout = argc > 1 ? strtol(argv[1], NULL, 10) : 5000;
	char path[512];
	uint8_t ptr, id, seen[256] = { 0 };
	uint16_t status, cmd, cmd_new, ctrl, data16 = VECTOR;
	uint32_t addr, zero = 0, istat;
	unsigned cap = 0, apic = boot_apic_id();
	volatile uint32_t *bar;
	long before, after = -1, t0, waited;
	int fd, rfd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (apic > 255) {
		errno = 0;
		return fail("boot CPU's APIC id above 255");
	}
	if (find_edu() < 0) {
		errno = 0;
		return fail("no edu device (1234:11e8)");
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	if ((fd = open(path, O_RDWR)) < 0)
		return fail(path);
	/* the capability list, as the guest sees it */
	if (cfg_rd(fd, 0x06, &status, 2) < 0 || !(status & 0x10)) {
		errno = 0;
		return fail("no capability list (status bit 4 clear)");
	}
	if (cfg_rd(fd, 0x34, &ptr, 1) < 0)
		return fail("reading the capability pointer");
	for (unsigned off = ptr & ~3u; off >= 0x40 && off < 0x100 && !seen[off]; off = ptr & ~3u) {
		seen[off] = 1;
		if (cfg_rd(fd, off, &id, 1) < 0 || cfg_rd(fd, off + 1, &ptr, 1) < 0)
			return fail("reading a capability");
		if (id == CAP_MSI) {
			cap = off;
			break;
		}
	}
	if (!cap) {
		errno = 0;
		return fail("no MSI capability on the list");
	}
	if (cfg_rd(fd, cap + 2, &ctrl, 2) < 0 || cfg_rd(fd, 0x04, &cmd, 2) < 0)
		return fail("reading MSI control and command");
	if ((before = trm_count()) < 0) {
		errno = 0;
		return fail("no TRM line in /proc/interrupts");
	}
	/* the message, then decoding and mastering, then Enable */
	addr = 0xFEE00000u | apic << 12;
	cmd_new = (uint16_t)(cmd | 0x0006);
	if (cfg_wr(fd, cap + 4, &addr, 4) < 0 || ((ctrl & MSI_64) && cfg_wr(fd, cap + 8, &zero, 4) < 0) ||
	    cfg_wr(fd, cap + ((ctrl & MSI_64) ? 12 : 8), &data16, 2) < 0 || cfg_wr(fd, 0x04, &cmd_new, 2) < 0)
		return fail("writing the MSI message and command");
	ctrl = (uint16_t)((ctrl & ~0x0070u) | MSI_ENABLE); /* one vector (MME 0) */
	if (cfg_wr(fd, cap + 2, &ctrl, 2) < 0 || cfg_rd(fd, cap + 2, &ctrl, 2) < 0)
		return fail("writing MSI Enable");
	if (!(ctrl & MSI_ENABLE)) {
		errno = 0;
		return fail("MSI Enable reads back clear (refused)");
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
	if ((rfd = open(path, O_RDWR | O_SYNC)) < 0)
		return fail(path);
	bar = mmap(NULL, EDU_BAR_MAP, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
	if (bar == MAP_FAILED)
		return fail("mmap of BAR0");
	t0 = now_ms();
	bar[EDU_RAISE / 4] = 0x100;
	while ((after = trm_count()) == before && now_ms() - t0 < timeout)
		usleep(1000);
	waited = now_ms() - t0;
	istat = bar[EDU_STATUS / 4];
	bar[EDU_ACK / 4] = istat;
	/* off again: skyvmm gives the device its INTx back */
	ctrl &= (uint16_t)~MSI_ENABLE;
	if (cfg_wr(fd, cap + 2, &ctrl, 2) < 0 || cfg_wr(fd, 0x04, &cmd, 2) < 0)
		return fail("clearing MSI Enable");
	munmap((void *)bar, EDU_BAR_MAP);
	close(rfd);
	close(fd);
	if (after <= before) {
		printf("SKYROOT-EDU-MSI fail: no interrupt on vector 0x%x in %ld ms (TRM %ld -> %ld, edu status 0x%x)\n",
		       VECTOR, waited, before, after, istat);
		return 1;
	}
	printf("SKYROOT-EDU-MSI ok %s cap=0x%x%s addr=0x%08x data=0x%04x vector=0x%x TRM %ld -> %ld in %ld ms "
	       "edu-status=0x%x\n", bdf, cap, (ctrl & MSI_64) ? " 64-bit" : "", addr, data16, VECTOR, before, after,
	       waited, istat);
	return 0;
}
