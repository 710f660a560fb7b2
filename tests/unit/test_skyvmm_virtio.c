/* Unit tests for skyvmm's virtio devices over a fake machine
 * (tests/unit/skyvmm_fake.c), driven as a guest driver drives them:
 *   transport  ids and capabilities, feature negotiation (VERSION_1
 *              required, nothing not offered), queue setup and its
 *              checks, the PCI_CFG window, INTx with the ISR, MSI-X
 *              vectors, a hostile chain setting NEEDS_RESET (and a reset
 *              bringing the device back);
 *   virtio-blk read, write, flush, get-id over a memfd; read-only
 *              refusals; the RAM overlay (the memfd's bytes never change,
 *              reads see the writes); requests past the end;
 *   virtio-net tx and rx over a socketpair standing in for the tap (frames
 *              both ways, a frame larger than the buffer dropped, tap -1
 *              refused), and over a real tap in a network namespace of the
 *              test's own (a packet socket on the tap's side).
 *
 * Environment: root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) and /dev/net/tun
 * for test_net_real_tap, which skips with its reason otherwise.
 *     ./test_skyvmm_virtio
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/skyvmm_fake.h"
#include "vmm/skyvmm/dev/virtio_pci.h"

#define RAM (4u << 20)
#define DISK (64u * 1024)
#define HDR 0x200000
#define DATA 0x201000
#define STATUS 0x210000

#define F_RO (1ULL << 5)
#define F_BASE (SV_VIRTIO_F_VERSION_1 | SV_VIRTIO_F_INDIRECT)

static int disk_fd(void)
{
	int fd = memfd_create("disk", MFD_CLOEXEC);
	uint8_t buf[DISK];
	assert_true(fd >= 0);
	for (unsigned i = 0; i < DISK; i++)
		buf[i] = (uint8_t)(i * 7 + i / 512);
	assert_int_equal(write(fd, buf, DISK), DISK);
	return fd;
}

static void disk_pattern(uint8_t *buf, uint64_t off, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		buf[i] = (uint8_t)((off + i) * 7 + (off + i) / 512);
}

/* A blk device with the driver set up: MSI-X off (INTx) unless msix. */
static void blk_up(struct fake *f, struct vdrv *d, int fd, bool ro, bool msix)
{
	int slot;
	fake_init(f, RAM);
	slot = sv_virtio_blk_add(f->pci, fd, ro);
	assert_int_equal(slot, 1);
	vdrv_open(d, f, (unsigned)slot);
	if (msix) {
		/* vector 0: config, vector 1: the queue; both unmasked */
		for (unsigned v = 0; v < 2; v++) {
			uint64_t e = d->bar + SV_VIRTIO_MSIX_OFF + 16 * v;
			fake_io_write(f, SV_MMIO, e, 8, 0xfee00000);
			fake_io_write(f, SV_MMIO, e + 8, 4, 0x40 + v);
			fake_io_write(f, SV_MMIO, e + 12, 4, 0);
		}
	}
	assert_true(vdrv_negotiate(d, vdrv_features(d)) & SV_VIRTIO_S_FEATURES_OK);
	if (msix) {
		/* the MSI-X capability: the first one in the list */
		unsigned off = fake_cfg_read(f, (unsigned)slot, SV_PCI_CAP_PTR, 1);
		assert_int_equal(fake_cfg_read(f, (unsigned)slot, off, 1), SV_PCI_CAP_MSIX);
		fake_cfg_write(f, (unsigned)slot, off + 2, 2, 0x8000);
		vdrv_write(d, 0x10, 2, 0);
	}
	vdrv_queue(d, 0, 16, msix ? 1 : SV_VIRTIO_NO_VECTOR);
	assert_true(vdrv_ok(d) & SV_VIRTIO_S_DRIVER_OK);
}

/* One request: header, data (len bytes, device-writable for reads), status.
 * Returns the status byte, *used the used ring's length. */
static uint8_t blk_req(struct vdrv *d, uint32_t type, uint64_t sector, uint32_t len, bool data_in,
		       uint32_t *used)
{
	uint8_t *ram = d->f->ram;
	uint16_t before = vdrv_used_idx(d, 0);
	uint32_t id;

	memcpy(ram + HDR, &type, 4);
	memset(ram + HDR + 4, 0, 4);
	memcpy(ram + HDR + 8, &sector, 8);
	ram[STATUS] = 0xee;
	vdrv_desc(d, 0, 0, HDR, 16, SV_VQ_DESC_NEXT, 1);
	if (len) {
		vdrv_desc(d, 0, 1, DATA, len, SV_VQ_DESC_NEXT | (data_in ? SV_VQ_DESC_WRITE : 0), 2);
		vdrv_desc(d, 0, 2, STATUS, 1, SV_VQ_DESC_WRITE, 0);
	} else {
		vdrv_desc(d, 0, 1, STATUS, 1, SV_VQ_DESC_WRITE, 0);
	}
	vdrv_avail(d, 0, 0);
	vdrv_notify(d, 0);
	assert_int_equal(vdrv_used_idx(d, 0), (uint16_t)(before + 1));
	vdrv_used(d, 0, before, &id, used);
	assert_int_equal(id, 0);
	return ram[STATUS];
}

static void test_ids_and_caps(void **state)
{
	struct fake f;
	unsigned types = 0, off, slot;
	int fd = disk_fd();

	fake_init(&f, RAM);
	slot = (unsigned)sv_virtio_blk_add(f.pci, fd, false);
	assert_int_equal(fake_cfg_read(&f, slot, 0, 4), 0x10421af4);
	assert_int_equal(fake_cfg_read(&f, slot, 0x08, 4), 0x01800001);
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_SUBVENDOR, 4), 0x00401af4);
	assert_int_equal(fake_cfg_read(&f, slot, SV_PCI_INT_PIN, 1), 1);
	for (off = fake_cfg_read(&f, slot, SV_PCI_CAP_PTR, 1); off; off = fake_cfg_read(&f, slot, off + 1, 1)) {
		if (fake_cfg_read(&f, slot, off, 1) != SV_PCI_CAP_VENDOR)
			continue;
		unsigned type = fake_cfg_read(&f, slot, off + 3, 1);
		assert_int_equal(fake_cfg_read(&f, slot, off + 4, 1), 0); /* BAR 0 */
		types |= 1u << type;
		if (type == 1)
			assert_int_equal(fake_cfg_read(&f, slot, off + 8, 4), SV_VIRTIO_COMMON_OFF);
		if (type == 2) {
			assert_int_equal(fake_cfg_read(&f, slot, off + 2, 1), 20);
			assert_int_equal(fake_cfg_read(&f, slot, off + 8, 4), SV_VIRTIO_NOTIFY_OFF);
			assert_int_equal(fake_cfg_read(&f, slot, off + 16, 4), SV_VIRTIO_NOTIFY_MULT);
		}
		if (type == 5) {
			/* the PCI_CFG window: read num_queues through it */
			fake_cfg_write(&f, slot, off + 4, 1, 0);
			fake_cfg_write(&f, slot, off + 8, 4, 0x12);
			fake_cfg_write(&f, slot, off + 12, 4, 2);
			assert_int_equal(fake_cfg_read(&f, slot, off + 16, 2), 1);
			/* and write queue_select through it */
			fake_cfg_write(&f, slot, off + 8, 4, 0x16);
			fake_cfg_write(&f, slot, off + 16, 2, 7);
			fake_cfg_write(&f, slot, off + 8, 4, 0x16);
			assert_int_equal(fake_cfg_read(&f, slot, off + 16, 2), 7);
			/* a window past the BAR reads nothing */
			fake_cfg_write(&f, slot, off + 8, 4, SV_VIRTIO_BAR_SIZE);
			assert_int_equal(fake_cfg_read(&f, slot, off + 16, 2), 7);
		}
	}
	assert_int_equal(types, 0x3e); /* common, notify, ISR, device, PCI_CFG */
	fake_fini(&f);
	close(fd);
}

static void test_feature_negotiation(void **state)
{
	struct fake f;
	struct vdrv d;
	int fd = disk_fd();
	uint64_t feat;

	fake_init(&f, RAM);
	vdrv_open(&d, &f, (unsigned)sv_virtio_blk_add(f.pci, fd, true));
	feat = vdrv_features(&d);
	assert_true(feat & SV_VIRTIO_F_VERSION_1);
	assert_true(feat & F_RO);
	/* a legacy driver (no VERSION_1): FEATURES_OK does not stick */
	assert_false(vdrv_negotiate(&d, feat & ~SV_VIRTIO_F_VERSION_1) & SV_VIRTIO_S_FEATURES_OK);
	assert_false(vdrv_ok(&d) & SV_VIRTIO_S_DRIVER_OK);
	/* a feature never offered: refused */
	assert_false(vdrv_negotiate(&d, feat | 1ULL << 40) & SV_VIRTIO_S_FEATURES_OK);
	/* what was offered: accepted, and read back */
	assert_true(vdrv_negotiate(&d, feat) & SV_VIRTIO_S_FEATURES_OK);
	vdrv_write(&d, 0x08, 4, 1);
	assert_int_equal(vdrv_read(&d, 0x0c, 4), feat >> 32);
	/* fixed after FEATURES_OK */
	vdrv_write(&d, 0x08, 4, 0);
	vdrv_write(&d, 0x0c, 4, 0);
	assert_int_equal(vdrv_read(&d, 0x0c, 4), (uint32_t)feat);
	/* the writable disk does not say RO */
	fake_fini(&f);
	fake_init(&f, RAM);
	vdrv_open(&d, &f, (unsigned)sv_virtio_blk_add(f.pci, fd, false));
	assert_false(vdrv_features(&d) & F_RO);
	fake_fini(&f);
	close(fd);
}

static void test_queue_setup(void **state)
{
	struct fake f;
	struct vdrv d;
	int fd = disk_fd();

	fake_init(&f, RAM);
	vdrv_open(&d, &f, (unsigned)sv_virtio_blk_add(f.pci, fd, false));
	vdrv_negotiate(&d, vdrv_features(&d));
	assert_int_equal(vdrv_read(&d, 0x12, 2), 1);    /* num_queues */
	assert_int_equal(vdrv_read(&d, 0x18, 2), 256);  /* queue_size: the max */
	vdrv_write(&d, 0x16, 2, 1);                     /* no queue 1 */
	assert_int_equal(vdrv_read(&d, 0x18, 2), 0);
	vdrv_write(&d, 0x16, 2, 0);
	/* a vector the table does not have reads back NO_VECTOR */
	vdrv_write(&d, 0x1a, 2, 2);
	assert_int_equal(vdrv_read(&d, 0x1a, 2), SV_VIRTIO_NO_VECTOR);
	vdrv_write(&d, 0x10, 2, 9);
	assert_int_equal(vdrv_read(&d, 0x10, 2), SV_VIRTIO_NO_VECTOR);
	vdrv_queue(&d, 0, 16, 1);
	assert_int_equal(vdrv_read(&d, 0x1a, 2), 1);
	assert_int_equal(vdrv_read(&d, 0x1c, 2), 1);
	assert_int_equal(vdrv_read(&d, 0x18, 2), 16);
	assert_int_equal(vdrv_read(&d, 0x20, 8), d.q[0].desc);
	assert_int_equal(vdrv_read(&d, 0x28, 8), d.q[0].avail);
	assert_int_equal(vdrv_read(&d, 0x30, 8), d.q[0].used);
	/* fixed once enabled */
	vdrv_write(&d, 0x18, 2, 8);
	vdrv_write(&d, 0x20, 8, 0x5000);
	assert_int_equal(vdrv_read(&d, 0x18, 2), 16);
	assert_int_equal(vdrv_read(&d, 0x20, 8), d.q[0].desc);
	assert_false(vdrv_read(&d, 0x14, 1) & SV_VIRTIO_S_NEEDS_RESET);
	/* rings outside RAM: NEEDS_RESET, not a crash; a reset clears it */
	vdrv_negotiate(&d, vdrv_features(&d));
	vdrv_write(&d, 0x16, 2, 0);
	vdrv_write(&d, 0x20, 8, RAM - 16);
	vdrv_write(&d, 0x28, 8, 0x1000);
	vdrv_write(&d, 0x30, 8, 0x2000);
	vdrv_write(&d, 0x1c, 2, 1);
	assert_true(vdrv_read(&d, 0x14, 1) & SV_VIRTIO_S_NEEDS_RESET);
	assert_int_equal(vdrv_read(&d, 0x1c, 2), 0);
	vdrv_write(&d, 0x14, 1, 0);
	assert_int_equal(vdrv_read(&d, 0x14, 1), 0);
	/* a queue size that is not a power of two: the same */
	vdrv_negotiate(&d, vdrv_features(&d));
	vdrv_write(&d, 0x18, 2, 12);
	vdrv_write(&d, 0x20, 8, 0x100000);
	vdrv_write(&d, 0x28, 8, 0x104000);
	vdrv_write(&d, 0x30, 8, 0x108000);
	vdrv_write(&d, 0x1c, 2, 1);
	assert_true(vdrv_read(&d, 0x14, 1) & SV_VIRTIO_S_NEEDS_RESET);
	fake_fini(&f);
	close(fd);
}

static void test_bar_moved_by_guest(void **state)
{
	struct fake f;
	struct vdrv d;
	int fd = disk_fd();
	uint64_t old;
	uint32_t used;
	bool hit;

	blk_up(&f, &d, fd, false, true);
	old = d.bar;
	/* the guest moves BAR 0 (decoding off, new address, on) */
	fake_cfg_write(&f, 1, SV_PCI_COMMAND, 2, 0);
	fake_cfg_write(&f, 1, SV_PCI_BAR0, 4, 0xe0000000);
	fake_cfg_write(&f, 1, SV_PCI_COMMAND, 2, SV_PCI_CMD_MEM | SV_PCI_CMD_MASTER);
	fake_io_read(&f, SV_MMIO, old + 0x12, 2, &hit);
	assert_false(hit);
	d.bar = 0xe0000000;
	/* everything answers there: common config, notify, the MSI-X table */
	assert_int_equal(vdrv_read(&d, 0x12, 2), 1);
	assert_int_equal(vdrv_read(&d, SV_VIRTIO_MSIX_OFF + 16 + 8, 4), 0x41);
	assert_int_equal(blk_req(&d, 8, 0, 20, true, &used), 0);
	assert_int_equal(f.msi_data[fake_nmsi(&f) - 1], 0x41);
	fake_fini(&f);
	close(fd);
}

static void test_blk_read_write_flush_id(void **state)
{
	struct fake f;
	struct vdrv d;
	int fd = disk_fd();
	uint8_t want[4096], back[DISK];
	uint32_t used;

	blk_up(&f, &d, fd, false, false);
	/* capacity in the device config */
	assert_int_equal(vdrv_read(&d, SV_VIRTIO_DEVCFG_OFF, 8), DISK / 512);
	/* read 2 sectors at sector 3 */
	assert_int_equal(blk_req(&d, 0, 3, 1024, true, &used), 0);
	assert_int_equal(used, 1025);
	disk_pattern(want, 3 * 512, 1024);
	assert_memory_equal(f.ram + DATA, want, 1024);
	/* write 3 sectors at sector 7 (crossing a 4 KiB block), read back */
	memset(f.ram + DATA, 0xab, 1536);
	assert_int_equal(blk_req(&d, 1, 7, 1536, false, &used), 0);
	memset(f.ram + DATA, 0, 4096);
	assert_int_equal(blk_req(&d, 0, 6, 2560, true, &used), 0);
	disk_pattern(want, 6 * 512, 512);
	assert_memory_equal(f.ram + DATA, want, 512);        /* sector 6: the disk's */
	for (unsigned i = 512; i < 2048; i++)
		assert_int_equal(f.ram[DATA + i], 0xab);         /* 7..9: written */
	disk_pattern(want, 10 * 512, 512);
	assert_memory_equal(f.ram + DATA + 2048, want, 512); /* 10: the disk's, same block as 9 */
	/* flush and get-id */
	assert_int_equal(blk_req(&d, 4, 0, 0, false, &used), 0);
	assert_int_equal(blk_req(&d, 8, 0, 20, true, &used), 0);
	assert_int_equal(used, 21);
	assert_string_equal((char *)f.ram + DATA, "skyvmm-disk0");
	/* unknown request type */
	assert_int_equal(blk_req(&d, 99, 0, 0, false, &used), 2);
	/* past the end, or straddling it, or not whole sectors */
	assert_int_equal(blk_req(&d, 0, DISK / 512, 512, true, &used), 1);
	assert_int_equal(blk_req(&d, 0, DISK / 512 - 1, 1024, true, &used), 1);
	assert_int_equal(blk_req(&d, 1, DISK / 512 - 1, 1024, false, &used), 1);
	assert_int_equal(blk_req(&d, 0, UINT64_MAX / 256, 512, true, &used), 1);
	assert_int_equal(blk_req(&d, 0, 0, 100, true, &used), 1);
	/* the last sector is readable */
	assert_int_equal(blk_req(&d, 0, DISK / 512 - 1, 512, true, &used), 0);
	/* the memfd itself never changed */
	assert_int_equal(pread(fd, back, DISK, 0), DISK);
	for (unsigned i = 0; i < DISK; i += 4096) {
		disk_pattern(want, i, 4096);
		assert_memory_equal(back + i, want, 4096);
	}
	fake_fini(&f);
	close(fd);
}

static void test_blk_read_only(void **state)
{
	struct fake f;
	struct vdrv d;
	int fd = disk_fd();
	uint8_t want[512];
	uint32_t used;

	blk_up(&f, &d, fd, true, false);
	memset(f.ram + DATA, 0xcd, 512);
	assert_int_equal(blk_req(&d, 1, 0, 512, false, &used), 1); /* IOERR */
	assert_int_equal(blk_req(&d, 1, 8, 4096, false, &used), 1); /* a whole block too */
	assert_int_equal(blk_req(&d, 4, 0, 0, false, &used), 0);   /* flush: fine */
	assert_int_equal(blk_req(&d, 0, 0, 512, true, &used), 0);
	disk_pattern(want, 0, 512);
	assert_memory_equal(f.ram + DATA, want, 512);
	fake_fini(&f);
	close(fd);
}

static void test_blk_refusals_at_add(void **state)
{
	struct fake f;
	int fd = memfd_create("tiny", MFD_CLOEXEC);
	int sp[2];

	fake_init(&f, RAM);
	assert_int_equal(sv_virtio_blk_add(f.pci, -1, true), -EBADF);
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(sv_virtio_blk_add(f.pci, fd, true), -EINVAL); /* under a sector */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(sv_virtio_blk_add(f.pci, sp[0], true), -EINVAL);
	assert_int_equal(sv_virtio_net_add(f.pci, -1, (const uint8_t[6]){ 2 }), -EBADF);
	fake_fini(&f);
	close(fd);
	close(sp[0]);
	close(sp[1]);
}

static void test_intx_and_isr(void **state)
{
	struct fake f;
	struct vdrv d;
	int fd = disk_fd();
	uint32_t used, gsi = sv_pci_intx_gsi(1, 0);

	blk_up(&f, &d, fd, false, false);
	assert_int_equal(f.level[gsi], 0);
	blk_req(&d, 8, 0, 20, true, &used);
	assert_int_equal(f.level[gsi], 1);
	assert_int_equal(vdrv_read(&d, SV_VIRTIO_ISR_OFF, 1), 1);
	assert_int_equal(f.level[gsi], 0);
	assert_int_equal(vdrv_read(&d, SV_VIRTIO_ISR_OFF, 1), 0); /* read clears */
	/* the driver asks for no interrupt */
	f.ram[d.q[0].avail] = SV_VQ_AVAIL_NO_INTERRUPT;
	blk_req(&d, 8, 0, 20, true, &used);
	assert_int_equal(f.level[gsi], 0);
	assert_int_equal(fake_nmsi(&f), 0);
	fake_fini(&f);
	close(fd);
}

static void test_msix_and_needs_reset(void **state)
{
	struct fake f;
	struct vdrv d;
	int fd = disk_fd();
	uint32_t used;
	uint16_t idx;

	blk_up(&f, &d, fd, false, true);
	blk_req(&d, 8, 0, 20, true, &used);
	assert_int_equal(fake_nmsi(&f), 1);
	assert_int_equal(f.msi_addr[0], 0xfee00000);
	assert_int_equal(f.msi_data[0], 0x41); /* the queue's vector */
	assert_int_equal(f.level[sv_pci_intx_gsi(1, 0)], 0);
	/* a looping chain: NEEDS_RESET, the config vector, no used entry */
	idx = vdrv_used_idx(&d, 0);
	vdrv_desc(&d, 0, 0, HDR, 16, SV_VQ_DESC_NEXT, 1);
	vdrv_desc(&d, 0, 1, DATA, 16, SV_VQ_DESC_NEXT, 0);
	vdrv_avail(&d, 0, 0);
	vdrv_notify(&d, 0);
	assert_true(vdrv_read(&d, 0x14, 1) & SV_VIRTIO_S_NEEDS_RESET);
	assert_int_equal(fake_nmsi(&f), 2);
	assert_int_equal(f.msi_data[1], 0x40);
	assert_int_equal(vdrv_used_idx(&d, 0), idx);
	/* further notifies are ignored, and the driver cannot clear the bit */
	vdrv_notify(&d, 0);
	vdrv_write(&d, 0x14, 1, 0x0f);
	assert_true(vdrv_read(&d, 0x14, 1) & SV_VIRTIO_S_NEEDS_RESET);
	assert_int_equal(fake_nmsi(&f), 2);
	/* a reset and a new setup: working again */
	vdrv_write(&d, 0x14, 1, 0);
	assert_true(vdrv_negotiate(&d, vdrv_features(&d)) & SV_VIRTIO_S_FEATURES_OK);
	vdrv_write(&d, 0x10, 2, 0);
	vdrv_queue(&d, 0, 16, 1);
	assert_true(vdrv_ok(&d) & SV_VIRTIO_S_DRIVER_OK);
	assert_int_equal(blk_req(&d, 8, 0, 20, true, &used), 0);
	assert_int_equal(fake_nmsi(&f), 3);
	fake_fini(&f);
	close(fd);
}

/* ---- virtio-net over a socketpair ---- */

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static void net_up(struct fake *f, struct vdrv *d, int *peer)
{
	int sp[2], slot;
	fake_init(f, RAM);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp), 0);
	slot = sv_virtio_net_add(f->pci, sp[0], mac);
	assert_int_equal(slot, 1);
	close(sp[0]); /* the device has its own */
	*peer = sp[1];
	vdrv_open(d, f, (unsigned)slot);
	assert_true(vdrv_features(d) & (1ULL << 5)); /* VIRTIO_NET_F_MAC */
	assert_true(vdrv_negotiate(d, vdrv_features(d)) & SV_VIRTIO_S_FEATURES_OK);
	assert_int_equal(vdrv_read(d, 0x12, 2), 2);
	vdrv_queue(d, 0, 16, SV_VIRTIO_NO_VECTOR);
	vdrv_queue(d, 1, 16, SV_VIRTIO_NO_VECTOR);
	assert_true(vdrv_ok(d) & SV_VIRTIO_S_DRIVER_OK);
}

/* Waits up to 5 s for queue q's used index to reach want. */
static bool wait_used(struct vdrv *d, unsigned q, uint16_t want)
{
	for (int i = 0; i < 500; i++) {
		if (vdrv_used_idx(d, q) == want)
			return true;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return false;
}

static void test_net_mac_and_tx(void **state)
{
	struct fake f;
	struct vdrv d;
	int peer;
	uint8_t frame[60], got[128];
	struct pollfd pf;

	net_up(&f, &d, &peer);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(vdrv_read(&d, SV_VIRTIO_DEVCFG_OFF + i, 1), mac[i]);
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(0x30 + i);
	/* header and the first 20 bytes in one buffer, the rest in another */
	memset(f.ram + HDR, 0, 12);
	memcpy(f.ram + HDR + 12, frame, 20);
	memcpy(f.ram + DATA, frame + 20, 40);
	vdrv_desc(&d, 1, 0, HDR, 32, SV_VQ_DESC_NEXT, 1);
	vdrv_desc(&d, 1, 1, DATA, 40, 0, 0);
	vdrv_avail(&d, 1, 0);
	vdrv_notify(&d, 1);
	assert_int_equal(vdrv_used_idx(&d, 1), 1);
	pf = (struct pollfd){ peer, POLLIN, 0 };
	assert_int_equal(poll(&pf, 1, 5000), 1);
	assert_int_equal(recv(peer, got, sizeof(got), 0), 60);
	assert_memory_equal(got, frame, 60);
	assert_int_equal(f.level[sv_pci_intx_gsi(1, 0)], 1); /* INTx: no MSI-X */
	/* a chain with no frame after the header sends nothing */
	vdrv_desc(&d, 1, 0, HDR, 12, 0, 0);
	vdrv_avail(&d, 1, 0);
	vdrv_notify(&d, 1);
	assert_int_equal(vdrv_used_idx(&d, 1), 2);
	assert_int_equal(poll(&pf, 1, 100), 0);
	fake_fini(&f);
	close(peer);
}

static void test_net_rx(void **state)
{
	struct fake f;
	struct vdrv d;
	int peer;
	uint8_t frame[100], big[200];
	uint32_t id, len;
	uint16_t nb;

	net_up(&f, &d, &peer);
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(0x80 + i);
	/* a frame before any buffer waits in the tap */
	assert_int_equal(send(peer, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	memset(f.ram + DATA, 0xff, 2048);
	vdrv_desc(&d, 0, 0, DATA, 12 + 1514, SV_VQ_DESC_WRITE, 0);
	vdrv_avail(&d, 0, 0);
	vdrv_notify(&d, 0);
	assert_true(wait_used(&d, 0, 1));
	vdrv_used(&d, 0, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 12 + sizeof(frame));
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(f.ram[DATA + i], 0); /* no offloads: zeros */
	memcpy(&nb, f.ram + DATA + 10, 2);
	assert_int_equal(nb, 1);
	assert_memory_equal(f.ram + DATA + 12, frame, sizeof(frame));
	/* a frame larger than the posted buffer is dropped, the buffer kept
	 * for the next one that fits */
	memset(big, 0x11, sizeof(big));
	vdrv_desc(&d, 0, 3, DATA, 12 + 150, SV_VQ_DESC_WRITE, 0);
	assert_int_equal(send(peer, big, sizeof(big), 0), (ssize_t)sizeof(big));
	assert_int_equal(send(peer, frame, 40, 0), 40);
	vdrv_avail(&d, 0, 3);
	vdrv_notify(&d, 0);
	assert_true(wait_used(&d, 0, 2));
	vdrv_used(&d, 0, 1, &id, &len);
	assert_int_equal(id, 3);
	assert_int_equal(len, 12 + 40);
	assert_memory_equal(f.ram + DATA + 12, frame, 40);
	fake_fini(&f); /* stops the rx thread */
	close(peer);
}

/* The threads of this process (/proc/self/task). */
static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_net_tap_closed(void **state)
{
	struct fake f;
	struct vdrv d;
	int sp[2], base = threads(); /* a sanitizer's runtime may have its own */

	fake_init(&f, RAM);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
	assert_int_equal(sv_virtio_net_add(f.pci, sp[0], mac), 1);
	close(sp[0]);
	vdrv_open(&d, &f, 1);
	vdrv_negotiate(&d, vdrv_features(&d));
	vdrv_queue(&d, 0, 16, SV_VIRTIO_NO_VECTOR);
	vdrv_queue(&d, 1, 16, SV_VIRTIO_NO_VECTOR);
	vdrv_ok(&d);
	vdrv_desc(&d, 0, 0, DATA, 2048, SV_VQ_DESC_WRITE, 0);
	vdrv_avail(&d, 0, 0);
	vdrv_notify(&d, 0);
	/* the other end goes: the rx thread ends rather than spin on the end
	 * of file (within 5 s), and the buffer stays the guest's */
	assert_int_equal(threads(), base + 1);
	close(sp[1]);
	for (int i = 0; i < 500 && threads() > base; i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	assert_int_equal(threads(), base);
	assert_int_equal(vdrv_used_idx(&d, 0), 0);
	/* tx into it fails quietly: the chain still comes back */
	memset(f.ram + HDR, 0, 12 + 60);
	vdrv_desc(&d, 1, 0, HDR, 12 + 60, 0, 0);
	vdrv_avail(&d, 1, 0);
	vdrv_notify(&d, 1);
	assert_int_equal(vdrv_used_idx(&d, 1), 1);
	fake_fini(&f);
}

/* A frame of our own ethertype (IEEE local experimental 0x88b5), so that
 * the IPv6 chatter of a new interface is told apart. */
#define ETYPE 0x88b5

static size_t test_frame(uint8_t *f, const uint8_t *src, uint8_t tag)
{
	memset(f, 0xff, 6); /* broadcast */
	memcpy(f + 6, src, 6);
	f[12] = ETYPE >> 8;
	f[13] = ETYPE & 0xff;
	for (unsigned i = 14; i < 80; i++)
		f[i] = (uint8_t)(tag + i);
	return 80;
}

static void test_net_real_tap(void **state)
{
	struct fake f;
	struct vdrv d;
	struct ifreq ifr;
	struct sockaddr_ll sll;
	uint8_t frame[128], got[2048], other[6] = { 0x02, 0, 0, 0, 0, 9 };
	size_t len;
	int tap, ps, ctl, slot;
	bool seen = false;

	if (geteuid() != 0) {
		print_message("SKIP: test_net_real_tap needs root for a network namespace and a tap\n");
		skip();
	}
	if (unshare(CLONE_NEWNET) != 0) {
		print_message("SKIP: test_net_real_tap: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		skip();
	}
	tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (tap < 0) {
		print_message("SKIP: test_net_real_tap: /dev/net/tun: %s\n", strerror(errno));
		skip();
	}
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "svtap0");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	assert_int_equal(ioctl(tap, TUNSETIFF, &ifr), 0);
	{
		/* quieter: no IPv6 chatter from the new interface (best effort) */
		int fd = open("/proc/sys/net/ipv6/conf/svtap0/disable_ipv6", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t r = write(fd, "1", 1);
			(void)r;
			close(fd);
		}
	}
	ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(ctl >= 0);
	assert_int_equal(ioctl(ctl, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(ctl, SIOCSIFFLAGS, &ifr), 0);
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETYPE));
	assert_true(ps >= 0);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETYPE);
	sll.sll_ifindex = (int)if_nametoindex("svtap0");
	assert_true(sll.sll_ifindex > 0);
	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);

	fake_init(&f, RAM);
	slot = sv_virtio_net_add(f.pci, tap, mac);
	assert_int_equal(slot, 1);
	close(tap);
	vdrv_open(&d, &f, (unsigned)slot);
	assert_true(vdrv_negotiate(&d, vdrv_features(&d)) & SV_VIRTIO_S_FEATURES_OK);
	vdrv_queue(&d, 0, 16, SV_VIRTIO_NO_VECTOR);
	vdrv_queue(&d, 1, 16, SV_VIRTIO_NO_VECTOR);
	assert_true(vdrv_ok(&d) & SV_VIRTIO_S_DRIVER_OK);

	/* tx: the guest's frame comes out of the interface */
	len = test_frame(frame, mac, 1);
	memset(f.ram + HDR, 0, 12);
	memcpy(f.ram + HDR + 12, frame, len);
	vdrv_desc(&d, 1, 0, HDR, (uint32_t)(12 + len), 0, 0);
	vdrv_avail(&d, 1, 0);
	vdrv_notify(&d, 1);
	for (int i = 0; i < 50 && !seen; i++) {
		struct pollfd pf = { ps, POLLIN, 0 };
		if (poll(&pf, 1, 100) == 1) {
			ssize_t n = recv(ps, got, sizeof(got), 0);
			seen = n == (ssize_t)len && memcmp(got, frame, len) == 0;
		}
	}
	assert_true(seen);

	/* rx: a frame sent on the interface reaches the guest's buffers
	 * (among whatever else the new interface sends: IPv6 chatter) */
	for (unsigned i = 0; i < 16; i++) {
		vdrv_desc(&d, 0, i, DATA + 2048 * i, 2048, SV_VQ_DESC_WRITE, 0);
		vdrv_avail(&d, 0, (uint16_t)i);
	}
	vdrv_notify(&d, 0);
	len = test_frame(frame, other, 7);
	assert_int_equal(sendto(ps, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll)), (ssize_t)len);
	seen = false;
	for (int i = 0; i < 500 && !seen; i++) {
		uint16_t n = vdrv_used_idx(&d, 0);
		for (uint16_t k = 0; k < n && !seen; k++) {
			uint32_t id, ulen;
			vdrv_used(&d, 0, k, &id, &ulen);
			assert_true(id < 16);
			seen = ulen == 12 + len && memcmp(f.ram + DATA + 2048 * id + 12, frame, len) == 0;
		}
		if (!seen)
			nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	assert_true(seen);
	fake_fini(&f);
	close(ps);
	close(ctl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_and_caps),
		cmocka_unit_test(test_feature_negotiation),
		cmocka_unit_test(test_queue_setup),
		cmocka_unit_test(test_bar_moved_by_guest),
		cmocka_unit_test(test_blk_read_write_flush_id),
		cmocka_unit_test(test_blk_read_only),
		cmocka_unit_test(test_blk_refusals_at_add),
		cmocka_unit_test(test_intx_and_isr),
		cmocka_unit_test(test_msix_and_needs_reset),
		cmocka_unit_test(test_net_mac_and_tx),
		cmocka_unit_test(test_net_rx),
		cmocka_unit_test(test_net_tap_closed),
		cmocka_unit_test(test_net_real_tap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
