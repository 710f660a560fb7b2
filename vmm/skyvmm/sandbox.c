/* skyvmm's seccomp sandbox (see sandbox.h and README.md, "Sandbox").
 *
 * One allow-list for every thread: the vCPUs run the devices (a queue
 * notify is served on the vCPU that wrote it: disk reads, tap writes,
 * interrupts), the main thread the console and signals, virtio-net's rx
 * thread the tap, so the lists per thread would be nearly the same; what
 * narrows it is the arguments: ioctl only with the KVM requests of the run
 * loop, clone only for threads (no fork), mmap and mprotect never
 * executable, tgkill only within skyvmm, sendto only without an address,
 * rt_sigaction only for the vCPU kick and glibc's thread signals.  Setup
 * (opening /dev/kvm, creating the VM and vCPUs, mapping guest memory, the
 * tap's ioctls and fcntl) is over before the filter goes in. */
#include "vmm/skyvmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/skyvmm/kvm.h"

/* An AddressSanitizer build (the tests' build-asan): its runtime makes
 * calls of its own in every new thread and at exit.  Those are added to
 * the list (sanitizer_extra) and the leak check runs before the filter
 * goes in, not at exit (it forks a tracer and ptraces).  The product's
 * build has neither. */
#if defined(__SANITIZE_ADDRESS__)
#define SV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SV_ASAN 1
#endif
#endif
#ifdef SV_ASAN
#include <sanitizer/lsan_interface.h>
static const char *const sanitizer_extra[] = {
	"sched_getaffinity", "getrlimit", "prlimit64",
};
#endif

/* Allowed whatever their arguments. */
static const char *const plain[] = {
	/* console, eventfds, signalfd, the tap, the disk */
	"read", "readv", "write", "writev", "pread64", "preadv", "poll", "ppoll",
	/* locks, threads coming and going */
	"futex", "set_robust_list", "rseq", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"madvise", "munmap", "mremap", "brk", "sched_yield", "restart_syscall",
	"getpid", "gettid", "exit", "exit_group",
	/* the drain's deadline (when the vDSO is not used) */
	"clock_gettime", "clock_nanosleep", "nanosleep",
	/* the end: devices and the VM closed */
	"close",
};

/* KVM ioctls after setup: the vCPU loop, interrupts (INTx lines, MSI,
 * and the MSI-X routes and irqfds a guest driver reprograms). */
static const unsigned long kvm_ioctls[] = {
	KVM_RUN, KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_IRQFD, KVM_SET_GSI_ROUTING,
};

/* One comparison of argument arg (libseccomp's SCMP_Ax macros leave
 * datum_b out for a two-operand compare, which clang warns of). */
static struct scmp_arg_cmp cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	return (struct scmp_arg_cmp){ .arg = arg, .op = op, .datum_a = a, .datum_b = b };
}

static int rule(scmp_filter_ctx f, const char *name, uint32_t action, unsigned n,
		const struct scmp_arg_cmp *cmps, char *err, size_t errlen)
{
	int nr = seccomp_syscall_resolve_name(name), r;

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture or unknown to libseccomp: never made */
	r = seccomp_rule_add_array(f, action, nr, n, cmps);
	if (r < 0)
		snprintf(err, errlen, "seccomp: the rule for %s: %s", name, strerror(-r));
	return r;
}

unsigned sv_seccomp_allowed_count(void)
{
	/* plain, ioctl, clone, mmap, mprotect, tgkill, sendto, rt_sigaction */
	return (unsigned)(sizeof(plain) / sizeof(plain[0])) + 7;
}

/* VFIO passthrough's, when there is a passed-through device. */
static const unsigned long vfio_ioctls[] = {
	KVM_SET_USER_MEMORY_REGION, VFIO_DEVICE_SET_IRQS,
};

int sv_seccomp_install(char *err, size_t errlen)
{
	return sv_seccomp_install_for(false, err, errlen);
}

int sv_seccomp_install_for(bool passthrough, char *err, size_t errlen)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r = 0;

	if (!f) {
		snprintf(err, errlen, "seccomp: seccomp_init failed");
		return -ENOMEM;
	}
	/* every thread there is now (TSYNC), and no_new_privs (the default) */
	if ((r = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1)) < 0 ||
	    (r = seccomp_attr_set(f, SCMP_FLTATR_CTL_NNP, 1)) < 0) {
		snprintf(err, errlen, "seccomp: filter attributes: %s", strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if ((r = rule(f, plain[i], SCMP_ACT_ALLOW, 0, NULL, err, errlen)) < 0)
			goto out;
#ifdef SV_ASAN
	for (size_t i = 0; i < sizeof(sanitizer_extra) / sizeof(sanitizer_extra[0]); i++)
		if ((r = rule(f, sanitizer_extra[i], SCMP_ACT_ALLOW, 0, NULL, err, errlen)) < 0)
			goto out;
	__lsan_do_leak_check();
#endif
	/* the request is an int in the kernel: compare its low 32 bits */
	for (size_t i = 0; i < sizeof(kvm_ioctls) / sizeof(kvm_ioctls[0]); i++) {
		struct scmp_arg_cmp c = cmp(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, kvm_ioctls[i] & 0xffffffffu);
		if ((r = rule(f, "ioctl", SCMP_ACT_ALLOW, 1, &c, err, errlen)) < 0)
			goto out;
	}
	for (size_t i = 0; passthrough && i < sizeof(vfio_ioctls) / sizeof(vfio_ioctls[0]); i++) {
		struct scmp_arg_cmp c = cmp(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, vfio_ioctls[i] & 0xffffffffu);
		if ((r = rule(f, "ioctl", SCMP_ACT_ALLOW, 1, &c, err, errlen)) < 0)
			goto out;
	}
	if (passthrough && (r = rule(f, "pwrite64", SCMP_ACT_ALLOW, 0, NULL, err, errlen)) < 0)
		goto out;
	{
		/* threads only: a clone without CLONE_THREAD (a fork) is killed */
		struct scmp_arg_cmp thr = cmp(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
		/* no executable mapping */
		struct scmp_arg_cmp noexec = cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
		/* the console socket's send(): connected, no address */
		struct scmp_arg_cmp noaddr = cmp(4, SCMP_CMP_EQ, 0, 0);
		/* signals within skyvmm; the kick's handler only */
		struct scmp_arg_cmp self = cmp(0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0);
		/* the kick, and glibc's own two below SIGRTMIN (32: cancel, 33:
		 * setxid; its first pthread_create sets one up) */
		const int sigs[] = { SV_KICK_SIGNAL, 32, 33 };

		if ((r = rule(f, "clone", SCMP_ACT_ALLOW, 1, &thr, err, errlen)) < 0 ||
		    /* clone3's flags are in memory, out of a filter's reach: ENOSYS
		     * makes glibc fall back to clone, which the rule above checks */
		    (r = rule(f, "clone3", SCMP_ACT_ERRNO(ENOSYS), 0, NULL, err, errlen)) < 0 ||
		    (r = rule(f, "mmap", SCMP_ACT_ALLOW, 1, &noexec, err, errlen)) < 0 ||
		    (r = rule(f, "mprotect", SCMP_ACT_ALLOW, 1, &noexec, err, errlen)) < 0 ||
		    (r = rule(f, "tgkill", SCMP_ACT_ALLOW, 1, &self, err, errlen)) < 0 ||
		    (r = rule(f, "sendto", SCMP_ACT_ALLOW, 1, &noaddr, err, errlen)) < 0)
			goto out;
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
			struct scmp_arg_cmp sig = cmp(0, SCMP_CMP_EQ, (scmp_datum_t)sigs[i], 0);
			if ((r = rule(f, "rt_sigaction", SCMP_ACT_ALLOW, 1, &sig, err, errlen)) < 0)
				goto out;
		}
	}
	if ((r = seccomp_load(f)) < 0)
		snprintf(err, errlen, "seccomp: loading the filter: %s", strerror(-r));
out:
	seccomp_release(f);
	return r < 0 ? r : 0;
}

static void *selftest_thread(void *arg)
{
	return arg;
}

int sv_seccomp_selftest(void)
{
	char err[256] = "";
	static int marker;
	pthread_t t;
	void *ret = NULL;
	int r;

	if ((r = sv_seccomp_install(err, sizeof(err))) < 0) {
		fprintf(stderr, "skyvmm: seccomp selftest: %s\n", err);
		return 1;
	}
	/* allowed: a KVM_RUN (on no descriptor: EBADF, not death), a thread */
	if (ioctl(-1, KVM_RUN, 0) == 0 || errno != EBADF) {
		fprintf(stderr, "skyvmm: seccomp selftest: ioctl KVM_RUN on -1 did not fail with EBADF\n");
		return 1;
	}
	if ((r = pthread_create(&t, NULL, selftest_thread, &marker)) != 0 ||
	    (r = pthread_join(t, &ret)) != 0 || ret != &marker) {
		fprintf(stderr, "skyvmm: seccomp selftest: a thread under the filter: %s\n", strerror(r));
		return 1;
	}
	fprintf(stderr, "skyvmm: seccomp selftest: filter on, threads and KVM_RUN allowed; now openat, "
			"which must kill skyvmm with SIGSYS\n");
	r = openat(AT_FDCWD, "/", O_RDONLY | O_CLOEXEC);
	fprintf(stderr, "skyvmm: seccomp selftest: FAILED: openat returned %d and skyvmm lives\n", r);
	if (r >= 0)
		close(r);
	return 1;
}
