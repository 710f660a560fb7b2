/* Unit tests for skyvmm's KVM layer (vmm/skyvmm/kvm.c) on this machine's
 * /dev/kvm: memory slots for sizes below and above 3 GiB, the interrupt
 * operations the devices use (lines, MSI, irqfd, MSI routes numbered from
 * GSI 24 and re-routed in place), a vCPU started at the 64-bit entry whose
 * port writes reach the bus, and a stop that ends vCPU threads halted in
 * the guest.  Each case skips, with the reason, where /dev/kvm cannot make
 * a VM.
 *
 *   ./test_skyvmm_kvm
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/skyvmm/boot.h"
#include "vmm/skyvmm/kvm.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

struct port_rec {
	pthread_mutex_t lock;
	char buf[64];
	unsigned n;
};

static void port_write(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct port_rec *r = opaque;
	(void)off;
	if (!is_write) {
		memset(data, 0x20, len); /* LSR: THRE */
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (r->n < sizeof(r->buf) - 1)
		r->buf[r->n++] = (char)data[0];
	pthread_mutex_unlock(&r->lock);
}

static struct sv_bus bus;

/* a VM, or a skip with the reason */
static void make(struct sv_vm *vm, uint64_t mem, unsigned cpus)
{
	char err[256] = "";
	int r;
	assert_int_equal(sv_bus_init(&bus), 0);
	r = sv_vm_create(vm, mem, cpus, &bus, err, sizeof(err));
	if (r < 0) {
		sv_vm_destroy(vm);
		sv_bus_fini(&bus);
		fprintf(stderr, "# SKIP: this host's /dev/kvm cannot make a VM: %s\n", err);
		skip();
	}
}

static void unmake(struct sv_vm *vm)
{
	sv_vm_destroy(vm);
	sv_bus_fini(&bus);
}

static void test_memory(void **state)
{
	struct sv_vm vm;
	(void)state;

	make(&vm, 64 * MiB, 1);
	assert_int_equal(vm.mem.n, 1);
	assert_int_equal(vm.mem.region[0].gpa, 0);
	assert_int_equal(vm.mem.region[0].size, 64 * MiB);
	assert_int_equal(sv_mem_total(&vm.mem), 64 * MiB);
	unmake(&vm);

	make(&vm, 5 * GiB, 2);
	assert_int_equal(vm.mem.n, 2);
	assert_int_equal(vm.mem.region[0].size, 3 * GiB);
	assert_int_equal(vm.mem.region[1].gpa, 4 * GiB);
	assert_int_equal(vm.mem.region[1].size, 2 * GiB);
	assert_non_null(sv_mem_ptr(&vm.mem, 5 * GiB, 4096));
	assert_null(sv_mem_ptr(&vm.mem, 3 * GiB, 1)); /* the hole */
	unmake(&vm);
}

static void test_irq_ops(void **state)
{
	struct sv_vm vm;
	const struct sv_irq_ops *irq;
	int e1 = eventfd(0, EFD_CLOEXEC), e2 = eventfd(0, EFD_CLOEXEC), e3 = eventfd(0, EFD_CLOEXEC);
	(void)state;

	make(&vm, 64 * MiB, 1);
	irq = &vm.irq;
	assert_ptr_equal(irq->ctx, &vm);
	assert_int_equal(irq->set_level(irq->ctx, 4, 1), 0);
	assert_int_equal(irq->set_level(irq->ctx, 4, 0), 0);
	assert_int_equal(irq->set_level(irq->ctx, 10, 1), 0);
	assert_int_equal(irq->set_level(irq->ctx, 10, 0), 0);
	assert_int_equal(irq->msi(irq->ctx, 0xfee00000, 0x4031), 0);
	/* MSI routes take GSIs from 24 up; a re-route keeps its GSI */
	assert_int_equal(irq->msi_irqfd(irq->ctx, e1, 0xfee00000, 0x4041, -1), SV_FIRST_MSI_GSI);
	assert_int_equal(irq->msi_irqfd(irq->ctx, e2, 0xfee00000, 0x4042, -1), SV_FIRST_MSI_GSI + 1);
	assert_int_equal(irq->msi_irqfd(irq->ctx, e1, 0xfee00000, 0x4051, SV_FIRST_MSI_GSI), SV_FIRST_MSI_GSI);
	assert_int_equal(irq->msi_irqfd(irq->ctx, e1, 0xfee00000, 0x4051, 99), -ENOENT);
	assert_int_equal(irq->msi_irqfd(irq->ctx, e1, 0xfee00000, 0x4051, 4), -ENOENT); /* not an MSI route */
	/* the default routes survive the table being replaced: lines still work */
	assert_int_equal(irq->set_level(irq->ctx, 11, 1), 0);
	assert_int_equal(irq->set_level(irq->ctx, 11, 0), 0);
	/* an INTx irqfd with its resample eventfd (level), and its removal */
	{
		int rs = eventfd(0, EFD_CLOEXEC);
		assert_int_equal(irq->irqfd(irq->ctx, e3, 11, rs), 0);
		assert_int_equal(irq->irqfd(irq->ctx, e3, 11, rs), -EBUSY); /* KVM: already assigned */
		assert_int_equal(irq->irqfd(irq->ctx, -1, 11, -1), 0);
		assert_int_equal(irq->irqfd(irq->ctx, e3, 11, rs), 0); /* free again after the removal */
		assert_int_equal(irq->irqfd(irq->ctx, -1, 11, -1), 0);
		close(rs);
	}
	unmake(&vm);
	close(e1);
	close(e2);
	close(e3);
}

/* vCPU 0 at a 64-bit entry writes "OK\n" to port 0x3f8 through the bus,
 * then halts; sv_vm_stop ends its thread though it sits in HLT. */
static void test_run_and_stop(void **state)
{
	static const uint8_t code[] = {
		0x66, 0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
		0xb0, 'O', 0xee,        /* mov al, 'O'; out dx, al */
		0xb0, 'K', 0xee,
		0xb0, '\n', 0xee,
		0xf4, 0xeb, 0xfd,       /* hlt; jmp hlt */
	};
	struct port_rec rec = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct sv_bzimage bz = { 0 };
	struct sv_boot_layout l = { 0 };
	struct timespec t0, t1;
	struct sv_vm vm;
	char err[256] = "";
	(void)state;

	make(&vm, 64 * MiB, 2);
	assert_int_equal(sv_bus_add(&bus, SV_PIO, 0x3f8, 8, port_write, &rec), 0);
	memcpy(sv_mem_ptr(&vm.mem, 0x1000200, sizeof(code)), code, sizeof(code));
	bz.kernel_alignment = 0x200000;
	l.kernel_addr = 0x1000000;
	assert_int_equal(sv_boot_params(&vm.mem, &bz, &l, "", 0), 0); /* GDT and page tables */
	assert_int_equal(sv_vm_boot_cpu(&vm, 0x1000200, SV_ZERO_PAGE, err, sizeof(err)), 0);
	assert_int_equal(sv_vm_start(&vm), 0);
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&rec.lock);
		bool done = rec.n >= 3;
		pthread_mutex_unlock(&rec.lock);
		if (done)
			break;
		usleep(10000);
	}
	assert_string_equal(rec.buf, "OK\n");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sv_vm_stop(&vm); /* vCPU 0 halted, vCPU 1 waiting for SIPI: both kicked out */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	assert_false(vm.cpu[0].started);
	assert_false(vm.cpu[1].started);
	unmake(&vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_irq_ops),
		cmocka_unit_test(test_run_and_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
