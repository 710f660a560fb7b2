/* skyvmm: the VM on /dev/kvm (see kvm.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/skyvmm/boot.h"
#include "vmm/skyvmm/kvm.h"
#include "vmm/skyvmm/tables.h"

static _Thread_local struct kvm_run *this_run;

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return e < 0 ? e : -e;
}

/* ---- interrupts ---- */

static int irq_set_level(void *ctx, uint32_t gsi, int level)
{
	struct sv_vm *vm = ctx;
	struct kvm_irq_level l = { .irq = gsi, .level = level ? 1 : 0 };
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static int irq_msi(void *ctx, uint64_t addr, uint32_t data)
{
	struct sv_vm *vm = ctx;
	struct kvm_msi m = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data };
	int r = ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &m);
	return r < 0 ? -errno : 0;
}

/* An eventfd on a GSI (KVM_IRQFD), remembered so that fd -1 can take the
 * GSI's irqfds away again (KVM deassigns by fd and GSI). */
static int irq_irqfd(void *ctx, int fd, uint32_t gsi, int resample_fd)
{
	struct sv_vm *vm = ctx;
	struct kvm_irqfd f = { .fd = (uint32_t)fd, .gsi = gsi };
	int r = 0;
	unsigned i;

	pthread_mutex_lock(&vm->route_lock);
	if (fd < 0) {
		for (i = 0; i < SV_MAX_IRQFDS; i++) {
			if (vm->irqfds[i].fd < 0 || vm->irqfds[i].gsi != gsi)
				continue;
			f = (struct kvm_irqfd){ .fd = (uint32_t)vm->irqfds[i].fd, .gsi = gsi,
						.flags = KVM_IRQFD_FLAG_DEASSIGN };
			if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0 && r == 0)
				r = -errno;
			vm->irqfds[i].fd = -1;
		}
		pthread_mutex_unlock(&vm->route_lock);
		return r;
	}
	for (i = 0; i < SV_MAX_IRQFDS && vm->irqfds[i].fd >= 0; i++)
		;
	if (i == SV_MAX_IRQFDS) {
		pthread_mutex_unlock(&vm->route_lock);
		return -ENOSPC;
	}
	if (resample_fd >= 0) {
		f.flags = KVM_IRQFD_FLAG_RESAMPLE;
		f.resamplefd = (uint32_t)resample_fd;
	}
	if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
		r = -errno;
	else
		vm->irqfds[i] = (struct sv_irqfd){ fd, gsi };
	pthread_mutex_unlock(&vm->route_lock);
	return r;
}

static struct kvm_irq_routing *routes(struct sv_vm *vm)
{
	return vm->routes;
}

/* KVM's default table, made explicit (setting a table replaces it all):
 * GSI 0-15 on the PICs and the IOAPIC pin of the same number, 16-23 on the
 * IOAPIC. */
static void routes_default(struct sv_vm *vm)
{
	struct kvm_irq_routing *t = routes(vm);
	uint32_t n = 0;

	for (uint32_t gsi = 0; gsi < SV_IOAPIC_PINS; gsi++) {
		if (gsi < 16) {
			t->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 } };
		}
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi } };
	}
	t->nr = n;
	vm->next_gsi = SV_FIRST_MSI_GSI;
}

static int irq_msi_irqfd(void *ctx, int fd, uint64_t addr, uint32_t data, int gsi_old)
{
	struct sv_vm *vm = ctx;
	struct kvm_irq_routing *t;
	struct kvm_irq_routing_entry *e = NULL;
	uint32_t gsi;
	int r = 0;

	pthread_mutex_lock(&vm->route_lock);
	t = routes(vm);
	if (gsi_old >= 0) {
		for (uint32_t i = 0; i < t->nr; i++)
			if (t->entries[i].gsi == (uint32_t)gsi_old && t->entries[i].type == KVM_IRQ_ROUTING_MSI)
				e = &t->entries[i];
		if (!e)
			r = -ENOENT;
	} else if (t->nr == SV_MAX_ROUTES) {
		r = -ENOSPC;
	} else {
		e = &t->entries[t->nr++];
		e->gsi = vm->next_gsi++;
	}
	if (r == 0) {
		gsi = e->gsi;
		e->type = KVM_IRQ_ROUTING_MSI;
		e->flags = 0;
		e->u.msi = (struct kvm_irq_routing_msi){ .address_lo = (uint32_t)addr,
							 .address_hi = (uint32_t)(addr >> 32), .data = data };
		if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
			r = -errno;
		else if (gsi_old < 0 && fd >= 0) {
			struct kvm_irqfd f = { .fd = (uint32_t)fd, .gsi = gsi };
			if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
				r = -errno;
		}
		if (r == 0)
			r = (int)gsi;
	}
	pthread_mutex_unlock(&vm->route_lock);
	return r;
}

/* ---- setup ---- */

static int set_cpuid(struct sv_vm *vm, struct sv_vcpu *c, struct kvm_cpuid2 *sup)
{
	size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *cp = malloc(sz);
	int r = 0;

	(void)vm;
	if (!cp)
		return -ENOMEM;
	memcpy(cp, sup, sz);
	for (uint32_t i = 0; i < cp->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cp->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x00ffffff) | (c->id << 24); /* initial APIC id */
			e->ecx |= 1U << 31;                             /* running on a hypervisor */
			break;
		case 0xb:
		case 0x1f:
			e->edx = c->id; /* x2APIC id */
			break;
		default:
			break;
		}
	}
	if (ioctl(c->fd, KVM_SET_CPUID2, cp) < 0)
		r = -errno;
	free(cp);
	return r;
}

/* LINT0 as ExtINT (the PIC), LINT1 as NMI, as firmware leaves them */
static int set_lapic(struct sv_vcpu *c)
{
	struct kvm_lapic_state l;
	uint32_t v;

	if (ioctl(c->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	v = (7U << 8);
	memcpy(&l.regs[0x350], &v, 4);
	v = (4U << 8);
	memcpy(&l.regs[0x360], &v, 4);
	return ioctl(c->fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	for (uint32_t n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

static int map_region(struct sv_vm *vm, unsigned slot, uint64_t gpa, uint64_t size)
{
	void *host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct kvm_userspace_memory_region r = { .slot = slot, .guest_phys_addr = gpa, .memory_size = size };

	if (host == MAP_FAILED)
		return -errno;
	vm->mem.region[vm->mem.n++] = (struct sv_mem_region){ gpa, size, host };
	r.userspace_addr = (uint64_t)(uintptr_t)host;
	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

int sv_vm_create(struct sv_vm *vm, uint64_t mem, unsigned ncpus, struct sv_bus *bus, char *err, size_t errlen)
{
	static const struct { long cap; const char *name; } need[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	};
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t low = mem < SV_LOW_RAM_END ? mem : SV_LOW_RAM_END, ident = SV_IDENTITY_ADDR;
	struct kvm_cpuid2 *cpuid = NULL;
	int r, max;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	vm->bus = bus;
	vm->ncpus = ncpus;
	pthread_mutex_init(&vm->route_lock, NULL);
	for (unsigned i = 0; i < SV_MAX_IRQFDS; i++)
		vm->irqfds[i].fd = -1;
	vm->irq = (struct sv_irq_ops){ irq_set_level, irq_msi, irq_irqfd, irq_msi_irqfd, vm };

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return fail(err, errlen, errno, "/dev/kvm: %s", strerror(errno));
	if ((r = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0)) != KVM_API_VERSION)
		return fail(err, errlen, EINVAL, "/dev/kvm speaks API %d, not %d", r, KVM_API_VERSION);
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0)
			return fail(err, errlen, ENOTSUP, "/dev/kvm lacks %s", need[i].name);
	max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && ncpus > (unsigned)max)
		return fail(err, errlen, EINVAL, "%u vCPUs: this host's KVM takes at most %d", ncpus, max);
	vm->run_size = (size_t)ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if ((long)vm->run_size < (long)sizeof(struct kvm_run))
		return fail(err, errlen, EINVAL, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return fail(err, errlen, errno, "KVM_CREATE_VM: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)SV_TSS_ADDR) < 0)
		return fail(err, errlen, errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
		return fail(err, errlen, errno, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail(err, errlen, errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return fail(err, errlen, errno, "KVM_CREATE_PIT2: %s", strerror(errno));
	vm->routes = calloc(1, sizeof(struct kvm_irq_routing) + SV_MAX_ROUTES * sizeof(struct kvm_irq_routing_entry));
	if (!vm->routes)
		return fail(err, errlen, ENOMEM, "out of memory");
	routes_default(vm);

	if ((r = map_region(vm, 0, 0, low)) < 0)
		return fail(err, errlen, r, "guest memory (%llu bytes): %s", (unsigned long long)low, strerror(-r));
	if (mem > low && (r = map_region(vm, 1, SV_HIGH_RAM_BASE, mem - low)) < 0)
		return fail(err, errlen, r, "guest memory above 4 GiB (%llu bytes): %s",
			    (unsigned long long)(mem - low), strerror(-r));

	cpuid = supported_cpuid(vm->kvm_fd);
	if (!cpuid)
		return fail(err, errlen, errno ? errno : ENOMEM, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	vm->cpu = calloc(ncpus, sizeof(*vm->cpu));
	if (!vm->cpu) {
		free(cpuid);
		return fail(err, errlen, ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < ncpus; i++)
		vm->cpu[i].fd = -1;
	for (unsigned i = 0; i < ncpus; i++) {
		struct sv_vcpu *c = &vm->cpu[i];
		c->vm = vm;
		c->id = i;
		c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (c->fd < 0) {
			r = fail(err, errlen, errno, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
			break;
		}
		c->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
		if (c->run == MAP_FAILED) {
			c->run = NULL;
			r = fail(err, errlen, errno, "mapping vCPU %u: %s", i, strerror(errno));
			break;
		}
		if ((r = set_cpuid(vm, c, cpuid)) < 0) {
			fail(err, errlen, r, "KVM_SET_CPUID2 on vCPU %u: %s", i, strerror(-r));
			break;
		}
		if ((r = set_lapic(c)) < 0) {
			fail(err, errlen, r, "the LAPIC of vCPU %u: %s", i, strerror(-r));
			break;
		}
		r = 0;
	}
	free(cpuid);
	return r;
}

int sv_vm_boot_cpu(struct sv_vm *vm, uint64_t entry, uint64_t zero_page, char *err, size_t errlen)
{
	struct sv_vcpu *c = &vm->cpu[0];
	struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = SV_GDT_CS, .type = 11,
				    .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment data = { .base = 0, .limit = 0xffffffff, .selector = SV_GDT_DS, .type = 3,
				    .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1 };
	struct kvm_sregs s;
	struct kvm_regs r;

	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return fail(err, errlen, errno, "KVM_GET_SREGS: %s", strerror(errno));
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.gdt.base = SV_GDT_ADDR;
	s.gdt.limit = (uint16_t)(sizeof(sv_boot_gdt) - 1);
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr3 = SV_PML4_ADDR;
	s.cr4 |= 0x20;                       /* PAE */
	s.cr0 |= 0x80000001U | 0x10U;        /* PG, PE, ET */
	s.efer |= 0x500;                     /* LME, LMA */
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return fail(err, errlen, errno, "KVM_SET_SREGS: %s", strerror(errno));
	memset(&r, 0, sizeof(r));
	r.rflags = 2;
	r.rip = entry;
	r.rsi = zero_page;
	r.rsp = SV_STACK_TOP;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return fail(err, errlen, errno, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

/* ---- running ---- */

static void kick_handler(int sig)
{
	(void)sig;
	if (this_run)
		this_run->immediate_exit = 1;
}

__attribute__((format(printf, 3, 4)))
static void report(struct sv_vm *vm, enum sv_outcome o, const char *fmt, ...)
{
	char why[256] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (vm->done)
		vm->done(vm->done_ctx, o, why);
}

static void io_exit(struct sv_vm *vm, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool w = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		sv_bus_access(vm->bus, SV_PIO, run->io.port, data, run->io.size, w);
}

static void *vcpu_main(void *arg)
{
	struct sv_vcpu *c = arg;
	struct sv_vm *vm = c->vm;
	struct kvm_run *run = c->run;
	sigset_t set;

	this_run = run;
	sigemptyset(&set);
	sigaddset(&set, SV_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!atomic_load(&vm->stopping)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				run->immediate_exit = 0;
				continue;
			}
			report(vm, SV_OUT_ERROR, "KVM_RUN on vCPU %u: %s", c->id, strerror(errno));
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			io_exit(vm, run);
			break;
		case KVM_EXIT_MMIO:
			sv_bus_access(vm->bus, SV_MMIO, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
				      run->mmio.is_write);
			break;
		case KVM_EXIT_HLT: /* not with the in-kernel LAPIC; nothing to do */
			break;
		case KVM_EXIT_SHUTDOWN: /* a triple fault: a PC resets */
			report(vm, SV_OUT_RESET, "triple fault on vCPU %u", c->id);
			goto out;
		case KVM_EXIT_SYSTEM_EVENT:
			if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
				report(vm, SV_OUT_POWEROFF, "%s", "");
			else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
				report(vm, SV_OUT_RESET, "%s", "");
			else
				report(vm, SV_OUT_CRASH, "system event %u on vCPU %u", run->system_event.type, c->id);
			goto out;
		case KVM_EXIT_FAIL_ENTRY:
			report(vm, SV_OUT_CRASH, "vCPU %u failed to enter the guest (hardware reason %#llx)", c->id,
			       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			goto out;
		case KVM_EXIT_INTERNAL_ERROR:
			report(vm, SV_OUT_CRASH, "KVM internal error %u on vCPU %u", run->internal.suberror, c->id);
			goto out;
		default:
			report(vm, SV_OUT_CRASH, "unexpected KVM exit %u on vCPU %u", run->exit_reason, c->id);
			goto out;
		}
	}
out:
	return NULL;
}

int sv_vm_start(struct sv_vm *vm)
{
	struct sigaction sa;
	sigset_t all, old;
	int r = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SV_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	/* threads start with every signal blocked and unblock only the kick */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < vm->ncpus && r == 0; i++) {
		r = -pthread_create(&vm->cpu[i].thread, NULL, vcpu_main, &vm->cpu[i]);
		vm->cpu[i].started = r == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

void sv_vm_stop(struct sv_vm *vm)
{
	atomic_store(&vm->stopping, true);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct sv_vcpu *c = &vm->cpu[i];
		if (!c->started)
			continue;
		/* a kick before its KVM_RUN sets immediate_exit, so none is lost */
		c->run->immediate_exit = 1;
		pthread_kill(c->thread, SV_KICK_SIGNAL);
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vm->cpu[i].started)
			pthread_join(vm->cpu[i].thread, NULL);
		vm->cpu[i].started = false;
	}
}

void sv_vm_destroy(struct sv_vm *vm)
{
	for (unsigned i = 0; vm->cpu && i < vm->ncpus; i++) {
		if (vm->cpu[i].run)
			munmap(vm->cpu[i].run, vm->run_size);
		if (vm->cpu[i].fd >= 0)
			close(vm->cpu[i].fd);
	}
	free(vm->cpu);
	vm->cpu = NULL;
	for (unsigned i = 0; i < vm->mem.n; i++)
		munmap(vm->mem.region[i].host, vm->mem.region[i].size);
	vm->mem.n = 0;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
	free(vm->routes);
	vm->routes = NULL;
	pthread_mutex_destroy(&vm->route_lock);
}
