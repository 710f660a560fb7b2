/* skyvmm: the VM on /dev/kvm: guest memory in two slots (below 3 GiB, and
 * from 4 GiB), the in-kernel irqchip (PIC, IOAPIC, LAPICs) and PIT, one
 * thread per vCPU whose exits go to the I/O bus, and the interrupt
 * operations the devices use (sv_irq_ops over KVM_IRQ_LINE, KVM_SIGNAL_MSI,
 * KVM_IRQFD and the GSI routing table).
 *
 * vCPU 0 starts at the kernel's 64-bit entry (sv_vm_boot_cpu); the others
 * wait in the kernel for the guest's INIT/SIPI, as on a PC.  A vCPU thread
 * ends when the VM is stopped (sv_vm_stop kicks it out of KVM_RUN with a
 * signal and immediate_exit), or reports how the guest ended through
 * sv_vm.done. */
#ifndef SKY_SKYVMM_KVM_H
#define SKY_SKYVMM_KVM_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/skyvmm/power.h"
#include "vmm/skyvmm/sv.h"

#define SV_TSS_ADDR      0xfffbd000ULL
#define SV_IDENTITY_ADDR 0xfffbc000ULL
#define SV_MAX_ROUTES    1024
#define SV_FIRST_MSI_GSI 24
#define SV_MAX_IRQFDS    64
/* The signal that kicks a vCPU out of KVM_RUN (sv_vm_stop; the seccomp
 * filter lets only it through rt_sigaction). */
#define SV_KICK_SIGNAL   SIGUSR1

struct sv_irqfd {
	int fd;
	uint32_t gsi;
};

struct sv_vcpu {
	struct sv_vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

struct sv_vm {
	int kvm_fd, vm_fd;
	struct sv_mem mem;
	struct sv_bus *bus;
	unsigned ncpus;
	struct sv_vcpu *cpu;
	size_t run_size;
	atomic_bool stopping;
	/* GSI routing (the default PIC/IOAPIC routes plus MSI routes) */
	pthread_mutex_t route_lock;
	void *routes; /* struct kvm_irq_routing with SV_MAX_ROUTES entries */
	uint32_t next_gsi;
	struct sv_irqfd irqfds[SV_MAX_IRQFDS]; /* INTx irqfds, for their removal */
	struct sv_irq_ops irq;
	/* how the guest ended; the first report wins */
	void (*done)(void *ctx, enum sv_outcome o, const char *why);
	void *done_ctx;
};

/* Opens /dev/kvm and makes the VM with mem bytes of RAM and ncpus vCPUs.
 * 0, or -errno with why in err. */
int sv_vm_create(struct sv_vm *vm, uint64_t mem, unsigned ncpus, struct sv_bus *bus, char *err, size_t errlen);
/* Sets vCPU 0's registers for the 64-bit boot entry. */
int sv_vm_boot_cpu(struct sv_vm *vm, uint64_t entry, uint64_t zero_page, char *err, size_t errlen);
/* Starts the vCPU threads (blocking every signal but the kick in them). */
int sv_vm_start(struct sv_vm *vm);
/* Stops and joins the vCPU threads. */
void sv_vm_stop(struct sv_vm *vm);
void sv_vm_destroy(struct sv_vm *vm);

#endif
