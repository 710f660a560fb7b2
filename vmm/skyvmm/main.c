/* skyvmm: Skyroot's own KVM microVM.  One guest, booted from descriptors
 * (the agent's sealed memfds), its console on a descriptor; see README.md
 * for the options, the guest's memory layout and the exit statuses. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/parse.h"
#include "vmm/skyvmm/boot.h"
#include "vmm/skyvmm/devices.h"
#include "vmm/skyvmm/jail.h"
#include "vmm/skyvmm/kvm.h"
#include "vmm/skyvmm/power.h"
#include "vmm/skyvmm/sandbox.h"
#include "vmm/skyvmm/tables.h"
#include "vmm/skyvmm/uart.h"

#define EXIT_SHUTDOWN 0
#define EXIT_ERROR    1
#define EXIT_USAGE    2
#define EXIT_RESET    3
#define EXIT_CRASH    4

#define DEFAULT_CMDLINE "console=ttyS0 panic=-1"
#define DRAIN_MS 2000
#define NICS_MAX 8 /* --tap-fd, each a virtio-net device */
#define VFIO_MAX 4 /* --vfio, each a passed-through PCI device */

struct opts {
	int kernel_fd, initrd_fd, console_fd, disk_fd;
	int tap_fd[NICS_MAX];
	unsigned ntaps;
	char vfio[VFIO_MAX][SKY_PCI_ADDR_LEN];
	unsigned nvfio;
	bool disk_ro, no_seccomp;
	long jail_uid, jail_gid; /* -1: no jail */
	bool have_mac[NICS_MAX];
	uint8_t mac[NICS_MAX][6];
	const char *cmdline;
	uint64_t memory;
	unsigned cpus;
};

struct skyvmm {
	struct sv_bus bus;
	struct sv_vm vm;
	struct sv_uart uart;
	struct sv_power power;
	struct sv_pci *pci;
	int event_fd;
	atomic_int outcome;
	char why[256];
};

static const char usage_text[] =
	"usage: skyvmm --kernel-fd N --memory SIZE --cpus N [options]\n"
	"Runs one guest on /dev/kvm: a Linux bzImage booted through its 64-bit entry.\n"
	"\n"
	"  --kernel-fd N     the bzImage, an open descriptor (a memfd; read with pread)\n"
	"  --initrd-fd N     the initramfs, an open descriptor\n"
	"  --cmdline S       the kernel command line (default \"" DEFAULT_CMDLINE "\")\n"
	"  --memory SIZE     guest RAM, e.g. 512M or 4G: a whole number of MiB, 32M to 1T\n"
	"  --cpus N          vCPUs, 1 to 64\n"
	"  --console-fd N    the console (ttyS0) both ways: output written, input read\n"
	"                    (default: output to stdout, input from stdin)\n"
	"  --disk-fd N       a raw disk for virtio-blk (writes go to a RAM overlay)\n"
	"  --disk-ro         the disk is read-only\n"
	"  --tap-fd N        a tap device for virtio-net (IFF_TAP | IFF_NO_PI, with\n"
	"                    IFF_VNET_HDR or not); repeat for more NICs, up to 8\n"
	"  --mac MAC         the MAC of the NIC of the --tap-fd before it, e.g.\n"
	"                    52:54:00:12:34:56 (default: 52:54:00:12:34:5N, N its index)\n"
	"  --vfio BDF        pass host PCI device BDF (e.g. 0000:00:04.0, bound to\n"
	"                    vfio-pci, its IOMMU group viable) through; up to 4\n"
	"  --jail-uid UID    once set up, chroot into an empty tmpfs (a mount namespace\n"
	"  --jail-gid GID    of its own) and run as UID:GID (not 0; both or neither;\n"
	"                    needs root)\n"
	"  --no-seccomp      run without the seccomp sandbox (debugging only: to find\n"
	"                    a system call the allow-list lacks)\n"
	"  -h, --help        this text\n"
	"\n"
	"SIGTERM (or SIGINT) presses the guest's ACPI power button; the guest's\n"
	"power-off, reset or crash ends skyvmm.  The last line on stderr says how:\n"
	"  0  skyvmm: guest-shutdown          the guest powered off\n"
	"  3  skyvmm: guest-reset             the guest rebooted (or triple-faulted)\n"
	"  4  skyvmm: guest-crashed: WHY      KVM could not run it\n"
	"  1  skyvmm: error: WHY              skyvmm failed (e.g. no /dev/kvm)\n"
	"  2  skyvmm: WHY                     bad options, or a kernel that is not a\n"
	"                                     bootable bzImage (before any VM is made)\n"
	"\n"
	"Once the guest is set up and before its vCPUs run, skyvmm puts itself under\n"
	"a seccomp filter (every thread, no new privileges): a system call outside\n"
	"its allow-list kills it by SIGSYS (signal 31), and its parent sees the guest\n"
	"crashed, \"killed by seccomp\".  --no-seccomp leaves the filter off.\n";

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("skyvmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(skyvmm --help shows the options)\n", stderr);
	return EXIT_USAGE;
}

static int parse_fd(const char *opt, const char *s, int *out)
{
	uint64_t v;
	struct stat st;
	if (sky_parse_uint(s, 0, 1 << 20, &v) < 0)
		return usage_error("%s %s: give a descriptor number", opt, s);
	if (fstat((int)v, &st) < 0)
		return usage_error("%s %s: descriptor not open", opt, s);
	*out = (int)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "kernel-fd", required_argument, NULL, 'k' },
		{ "initrd-fd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'n' },
		{ "console-fd", required_argument, NULL, 't' },
		{ "disk-fd", required_argument, NULL, 'd' },
		{ "disk-ro", no_argument, NULL, 'r' },
		{ "tap-fd", required_argument, NULL, 'T' },
		{ "mac", required_argument, NULL, 'M' },
		{ "no-seccomp", no_argument, NULL, 'S' },
		{ "vfio", required_argument, NULL, 'V' },
		{ "jail-uid", required_argument, NULL, 'u' },
		{ "jail-gid", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c, r;

	*o = (struct opts){ .kernel_fd = -1, .initrd_fd = -1, .console_fd = -1, .disk_fd = -1,
			    .cmdline = DEFAULT_CMDLINE,
			    .jail_uid = -1, .jail_gid = -1 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case 'k':
			r = parse_fd("--kernel-fd", optarg, &o->kernel_fd);
			break;
		case 'i':
			r = parse_fd("--initrd-fd", optarg, &o->initrd_fd);
			break;
		case 't':
			r = parse_fd("--console-fd", optarg, &o->console_fd);
			break;
		case 'd':
			r = parse_fd("--disk-fd", optarg, &o->disk_fd);
			break;
		case 'T':
			if (o->ntaps == NICS_MAX)
				return usage_error("--tap-fd %s: at most %d NICs", optarg, NICS_MAX);
			r = parse_fd("--tap-fd", optarg, &o->tap_fd[o->ntaps]);
			if (r == 0)
				o->ntaps++;
			break;
		case 'V':
			if (o->nvfio == VFIO_MAX)
				return usage_error("--vfio %s: at most %d devices", optarg, VFIO_MAX);
			if (sky_parse_pci(optarg, o->vfio[o->nvfio], sizeof(o->vfio[0])) < 0)
				return usage_error("--vfio %s: give a PCI address such as 0000:00:04.0", optarg);
			for (unsigned i = 0; i < o->nvfio; i++)
				if (strcmp(o->vfio[i], o->vfio[o->nvfio]) == 0)
					return usage_error("--vfio %s: given twice", optarg);
			o->nvfio++;
			break;
		case 'u':
		case 'g':
			if (sky_parse_uint(optarg, 1, 0xfffffffeu, &v) < 0)
				return usage_error("--jail-%s %s: give a number from 1 (not root)", c == 'u' ? "uid" : "gid",
						   optarg);
			*(c == 'u' ? &o->jail_uid : &o->jail_gid) = (long)v;
			break;
		case 'S':
			o->no_seccomp = true;
			break;
		case 'r':
			o->disk_ro = true;
			break;
		case 'M':
			if (o->ntaps == 0)
				return usage_error("--mac %s: give it after the --tap-fd of its NIC", optarg);
			if (o->have_mac[o->ntaps - 1])
				return usage_error("--mac %s: one --mac for each --tap-fd", optarg);
			if (sky_parse_mac(optarg, o->mac[o->ntaps - 1]) < 0 || (o->mac[o->ntaps - 1][0] & 1))
				return usage_error("--mac %s: give six hex bytes of a unicast MAC, e.g. 52:54:00:12:34:56",
						   optarg);
			o->have_mac[o->ntaps - 1] = true;
			break;
		case 'c':
			o->cmdline = optarg;
			break;
		case 'm':
			if (sky_parse_size(optarg, &v) < 0)
				return usage_error("--memory %s: give a size such as 512M or 2G", optarg);
			if (v < SV_MEM_MIN || v > SV_MEM_MAX || (v & ((1ULL << 20) - 1)))
				return usage_error("--memory %s: give a whole number of MiB from 32M to 1T", optarg);
			o->memory = v;
			break;
		case 'n':
			if (sky_parse_uint(optarg, 1, SV_MAX_CPUS, &v) < 0)
				return usage_error("--cpus %s: give 1 to %d", optarg, SV_MAX_CPUS);
			o->cpus = (unsigned)v;
			break;
		case 'h':
			fputs(usage_text, stdout);
			printf("\nPCI and virtio devices (--disk-fd, --tap-fd): %s\n",
			       sv_pci_init ? "built in" : "not built into this skyvmm");
			exit(0);
		default:
			return usage_error("%s: unknown option or missing value", argv[optind - 1]);
		}
		if (r)
			return r;
	}
	if (optind < argc)
		return usage_error("%s: unexpected argument", argv[optind]);
	if (o->kernel_fd < 0)
		return usage_error("--kernel-fd is required");
	if (!o->memory)
		return usage_error("--memory is required");
	if (!o->cpus)
		return usage_error("--cpus is required");
	if (o->disk_ro && o->disk_fd < 0)
		return usage_error("--disk-ro without --disk-fd");
	if ((o->jail_uid < 0) != (o->jail_gid < 0))
		return usage_error("--jail-uid and --jail-gid go together");
	if (o->nvfio && (!sv_pci_init || !sv_vfio_add))
		return usage_error("--vfio: PCI passthrough is not built into this skyvmm");
	if ((o->disk_fd >= 0 || o->ntaps) && !sv_pci_init)
		return usage_error("%s: PCI and virtio devices are not built into this skyvmm",
				   o->disk_fd >= 0 ? "--disk-fd" : "--tap-fd");
	return 0;
}

/* ---- how the guest ends ---- */

static void wake(struct skyvmm *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->event_fd, &one, sizeof(one));
	(void)n; /* a full counter already wakes the loop */
}

static void vm_done(void *ctx, enum sv_outcome o, const char *why)
{
	struct skyvmm *s = ctx;
	int none = SV_OUT_NONE;

	if (atomic_compare_exchange_strong(&s->outcome, &none, (int)o)) {
		snprintf(s->why, sizeof(s->why), "%s", why ? why : "");
		wake(s);
	}
}

static void power_done(void *ctx, enum sv_outcome o)
{
	vm_done(ctx, o, "");
}

static void uart_irq(void *ctx, int level)
{
	struct skyvmm *s = ctx;
	s->vm.irq.set_level(s->vm.irq.ctx, SV_UART_IRQ, level);
}

static void uart_kick(void *ctx)
{
	wake(ctx);
}

/* ---- setup ---- */

static int load_guest(struct skyvmm *s, const struct opts *o, const struct sv_bzimage *bz,
		      const struct sv_boot_layout *l)
{
	uint8_t *acpi = sv_mem_ptr(&s->vm.mem, SV_ACPI_ADDR, SV_MPTABLE_ADDR - SV_ACPI_ADDR);
	uint8_t *mp = sv_mem_ptr(&s->vm.mem, SV_MPTABLE_ADDR, SV_BIOS_END - SV_MPTABLE_ADDR);
	int r;

	if (!acpi || !mp)
		return -EINVAL;
	if ((r = sv_acpi_build(acpi, SV_ACPI_ADDR, SV_MPTABLE_ADDR - SV_ACPI_ADDR, o->cpus, sv_pci_init != NULL)) < 0)
		return r;
	if ((r = sv_mptable_build(mp, SV_MPTABLE_ADDR, SV_BIOS_END - SV_MPTABLE_ADDR, o->cpus)) < 0)
		return r;
	if ((r = sv_boot_params(&s->vm.mem, bz, l, o->cmdline, SV_ACPI_ADDR)) < 0)
		return r;
	return sv_boot_load(&s->vm.mem, bz, l, o->kernel_fd, o->initrd_fd);
}

static int add_devices(struct skyvmm *s, const struct opts *o, char *err, size_t errlen)
{
	int r;

	if (!sv_pci_init)
		return 0;
	if ((r = sv_pci_init(&s->pci, &s->bus, &s->vm.mem, &s->vm.irq)) < 0) {
		snprintf(err, errlen, "the PCI bus: %s", strerror(-r));
		return r;
	}
	if (o->disk_fd >= 0 && (r = sv_virtio_blk_add(s->pci, o->disk_fd, o->disk_ro)) < 0) {
		snprintf(err, errlen, "virtio-blk on descriptor %d: %s", o->disk_fd, strerror(-r));
		return r;
	}
	for (unsigned i = 0; i < o->ntaps; i++) {
		uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + i) };
		if (o->have_mac[i])
			memcpy(mac, o->mac[i], sizeof(mac));
		if ((r = sv_virtio_net_add(s->pci, o->tap_fd[i], mac)) < 0) {
			snprintf(err, errlen, "virtio-net on descriptor %d: %s", o->tap_fd[i], strerror(-r));
			return r;
		}
	}
	for (unsigned i = 0; i < o->nvfio; i++)
		if ((r = sv_vfio_add(s->pci, s->vm.vm_fd, o->vfio[i], err, errlen)) < 0)
			return r;
	return 0;
}

/* ---- the I/O loop: signals, console input and output, the end ---- */

static int run(struct skyvmm *s, int sig_fd, int in_fd, int out_fd)
{
	bool in_open = in_fd >= 0;
	struct pollfd p[4];

	(void)out_fd;
	while (atomic_load(&s->outcome) == SV_OUT_NONE) {
		int n = 0, i_sig, i_ev, i_in = -1, i_out = -1, fd_out;
		bool out_wait;

		i_sig = n;
		p[n++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		i_ev = n;
		p[n++] = (struct pollfd){ .fd = s->event_fd, .events = POLLIN };
		if (in_open && sv_uart_rx_room(&s->uart)) {
			i_in = n;
			p[n++] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
		}
		out_wait = sv_uart_flush(&s->uart);
		pthread_mutex_lock(&s->uart.lock);
		fd_out = s->uart.out_fd;
		pthread_mutex_unlock(&s->uart.lock);
		if (out_wait && fd_out >= 0) {
			i_out = n;
			p[n++] = (struct pollfd){ .fd = fd_out, .events = POLLOUT };
		}
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			vm_done(s, SV_OUT_ERROR, "poll failed");
			break;
		}
		if (p[i_sig].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				fprintf(stderr, "skyvmm: %s: pressing the guest's power button\n",
					strsignal((int)si.ssi_signo));
				sv_power_button(&s->power);
			}
		}
		if (p[i_ev].revents & POLLIN) {
			uint64_t v;
			ssize_t r = read(s->event_fd, &v, sizeof(v));
			(void)r;
		}
		if (i_in >= 0 && (p[i_in].revents & (POLLIN | POLLHUP | POLLERR))) {
			uint8_t buf[SV_UART_FIFO];
			unsigned room = sv_uart_rx_room(&s->uart);
			ssize_t r = read(in_fd, buf, room < sizeof(buf) ? room : sizeof(buf));
			if (r > 0)
				sv_uart_rx_push(&s->uart, buf, (size_t)r);
			else if (r == 0 || (errno != EAGAIN && errno != EINTR))
				in_open = false; /* no more input; the guest runs on */
		}
		(void)i_out; /* the flush at the top of the loop writes */
	}
	return atomic_load(&s->outcome);
}

int main(int argc, char **argv)
{
	static struct skyvmm s;
	struct opts o;
	struct sv_bzimage bz;
	struct sv_boot_layout layout;
	char err[512] = "";
	uint64_t initrd_size = 0;
	int r, sig_fd, in_fd, out_fd, status;
	sigset_t sigs;

	/* hidden, for the tests: the filter kills a forbidden call */
	if (argc == 2 && strcmp(argv[1], "--seccomp-selftest") == 0)
		return sv_seccomp_selftest();
	if ((r = parse_opts(argc, argv, &o)) != 0)
		return r;
	/* refuse a bad kernel before anything is made */
	if (sv_bzimage_read(o.kernel_fd, &bz, err, sizeof(err)) < 0) {
		fprintf(stderr, "skyvmm: %s\n", err);
		return EXIT_USAGE;
	}
	if (o.initrd_fd >= 0) {
		struct stat st;
		if (fstat(o.initrd_fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
			return usage_error("--initrd-fd %d: not a regular file or memfd with data", o.initrd_fd);
		initrd_size = (uint64_t)st.st_size;
	}
	if (sv_boot_plan(&bz, o.memory, initrd_size, strlen(o.cmdline), &layout, err, sizeof(err)) < 0) {
		fprintf(stderr, "skyvmm: %s\n", err);
		return EXIT_USAGE;
	}
	in_fd = o.console_fd >= 0 ? o.console_fd : STDIN_FILENO;
	out_fd = o.console_fd >= 0 ? o.console_fd : STDOUT_FILENO;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
	s.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sig_fd < 0 || s.event_fd < 0) {
		fprintf(stderr, "skyvmm: error: signalfd/eventfd: %s\n", strerror(errno));
		return EXIT_ERROR;
	}

	if ((r = sv_bus_init(&s.bus)) < 0 ||
	    (r = sv_vm_create(&s.vm, o.memory, o.cpus, &s.bus, err, sizeof(err))) < 0) {
		fprintf(stderr, "skyvmm: error: %s\n", err[0] ? err : strerror(-r));
		return EXIT_ERROR;
	}
	s.vm.done = vm_done;
	s.vm.done_ctx = &s;
	if ((r = load_guest(&s, &o, &bz, &layout)) < 0) {
		fprintf(stderr, "skyvmm: error: loading the guest: %s\n", strerror(-r));
		return EXIT_ERROR;
	}
	if ((r = sv_uart_init(&s.uart, out_fd, uart_irq, &s, uart_kick, &s)) < 0 ||
	    (r = sv_bus_add(&s.bus, SV_PIO, SV_UART_PORT, 8, sv_uart_io, &s.uart)) < 0 ||
	    (r = sv_power_init(&s.power, &s.vm.irq, power_done, &s)) < 0 || (r = sv_power_attach(&s.power, &s.bus)) < 0) {
		fprintf(stderr, "skyvmm: error: devices: %s\n", strerror(-r));
		return EXIT_ERROR;
	}
	if (add_devices(&s, &o, err, sizeof(err)) < 0 || sv_vm_boot_cpu(&s.vm, layout.entry, SV_ZERO_PAGE, err, sizeof(err)) < 0) {
		fprintf(stderr, "skyvmm: error: %s\n", err);
		return EXIT_ERROR;
	}
	/* setup is over: no files from here on, and no root */
	if (o.jail_uid >= 0 && sv_jail((uid_t)o.jail_uid, (gid_t)o.jail_gid, err, sizeof(err)) < 0) {
		fprintf(stderr, "skyvmm: error: %s\n", err);
		return EXIT_ERROR;
	}
	/* from here on only the run loop's system calls */
	if (!o.no_seccomp && sv_seccomp_install_for(o.nvfio > 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "skyvmm: error: %s\n", err);
		return EXIT_ERROR;
	}
	if ((r = sv_vm_start(&s.vm)) < 0) {
		fprintf(stderr, "skyvmm: error: starting the vCPUs: %s\n", strerror(-r));
		return EXIT_ERROR;
	}

	r = run(&s, sig_fd, in_fd, out_fd);
	sv_vm_stop(&s.vm);
	sv_uart_drain(&s.uart, DRAIN_MS);
	if (s.uart.lost)
		fprintf(stderr, "skyvmm: the guest wrote %llu console bytes while the UART said it was full; "
			"they were lost\n", (unsigned long long)s.uart.lost);
	switch (r) {
	case SV_OUT_POWEROFF:
		fprintf(stderr, "skyvmm: guest-shutdown\n");
		status = EXIT_SHUTDOWN;
		break;
	case SV_OUT_RESET:
		fprintf(stderr, "skyvmm: guest-reset%s%s\n", s.why[0] ? ": " : "", s.why);
		status = EXIT_RESET;
		break;
	case SV_OUT_CRASH:
		fprintf(stderr, "skyvmm: guest-crashed: %s\n", s.why);
		status = EXIT_CRASH;
		break;
	default:
		fprintf(stderr, "skyvmm: error: %s\n", s.why);
		status = EXIT_ERROR;
		break;
	}
	if (s.pci && sv_pci_fini)
		sv_pci_fini(s.pci);
	sv_vm_destroy(&s.vm);
	return status;
}
