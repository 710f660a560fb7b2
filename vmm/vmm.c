/* The backend-independent part: checks, VFIO claims, the guest handle. */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/parse.h"
#include "vmm/backends.h"
#include "vmm/vfio.h"
#include "vmm/vmm_priv.h"

struct vmm_guest {
	const struct vmm_ops *ops;
	void *priv;
	char name[VMM_NAME_MAX + 1];
	char warning[VMM_MSG_MAX];
	struct vfio_claim *claims[VMM_PCI_MAX];
	size_t nclaims;
};

int vmm_err(struct vmm_error *err, int r, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return r;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return r;
}

int vmm_fmt(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

const char *vmm_root_sysfs(const struct vmm_root *root)
{
	return root && root->sysfs ? root->sysfs : "/sys";
}

const char *vmm_root_devfs(const struct vmm_root *root)
{
	return root && root->devfs ? root->devfs : "/dev";
}

int vmm_root_write_attr(const struct vmm_root *root, const char *path, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;
	int fd, r = 0;
	(void)root;
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len)
		r = -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

int vmm_root_write(const struct vmm_root *root, const char *path, const char *value)
{
	if (root && root->write_attr)
		return root->write_attr(root, path, value);
	return vmm_root_write_attr(root, path, value);
}

unsigned vmm_cfg_timeout(const struct vmm_config *cfg)
{
	return cfg && cfg->timeout_ms ? cfg->timeout_ms : VMM_DEFAULT_TIMEOUT_MS;
}

bool vmm_executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int vmm_dup_cloexec(int fd, int min)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, min);
	return r < 0 ? -errno : r;
}

void vmm_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

void vmm_fd_tail(int fd, char *out, size_t outlen, bool last_line)
{
	char buf[2048];
	off_t size;
	ssize_t n;
	size_t start = 0, len;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0)
		return;
	n = pread(fd, buf, sizeof(buf), size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0);
	if (n <= 0)
		return;
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	if (last_line) {
		/* The last line, from its start as far as it fits. */
		start = len;
		while (start > 0 && buf[start - 1] != '\n')
			start--;
		if (len - start >= outlen)
			len = start + outlen - 1;
	} else if (len >= outlen) {
		/* Keep what fits of the end: whole lines when possible. */
		start = len - (outlen - 1);
		for (size_t i = start; i < len; i++) {
			if (buf[i] == '\n') {
				start = i + 1;
				break;
			}
		}
	}
	len -= start;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[start + i];
		out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	out[len] = '\0';
}

const char *vmm_state_name(enum vmm_state s)
{
	switch (s) {
	case VMM_STATE_CREATED:
		return "created";
	case VMM_STATE_RUNNING:
		return "running";
	case VMM_STATE_PAUSED:
		return "paused";
	case VMM_STATE_SHUTTING_DOWN:
		return "shutting-down";
	case VMM_STATE_EXITED:
		return "exited";
	case VMM_STATE_CRASHED:
		return "crashed";
	}
	return "unknown";
}

const struct vmm_ops *vmm_backend_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; vmm_backends[i]; i++)
		if (strcmp(vmm_backends[i]->name, name) == 0)
			return vmm_backends[i];
	return NULL;
}

int vmm_backend_installed(const struct vmm_ops *backend, const struct vmm_config *cfg,
			  struct vmm_error *err)
{
	static const struct vmm_config defaults;

	if (!backend)
		return vmm_err(err, -ENOTSUP, "this VMM backend is not built into this firmware");
	return backend->installed ? backend->installed(cfg ? cfg : &defaults, err) : 0;
}

const char *const *vmm_backend_names(void)
{
	return vmm_backend_name_list;
}

int vmm_spec_check(const struct vmm_guest_spec *spec, struct vmm_error *err)
{
	if (!spec)
		return vmm_err(err, -EINVAL, "no guest spec");
	if (!sky_name_ok(spec->name, NULL))
		return vmm_err(err, -EINVAL,
			       "invalid guest name: use 1 to %u of the characters A-Z a-z 0-9 . _ -, "
			       "not starting with '.' or '-'", VMM_NAME_MAX);
	if (spec->vcpus < 1 || spec->vcpus > VMM_VCPUS_MAX)
		return vmm_err(err, -EINVAL, "guest %s: %u vCPUs: give 1 to %u", spec->name,
			       spec->vcpus, VMM_VCPUS_MAX);
	if (spec->memory < VMM_MEMORY_MIN || spec->memory > VMM_MEMORY_MAX ||
	    spec->memory % (1u << 20)) {
		char lo[32], hi[32];
		sky_format_size_exact(VMM_MEMORY_MIN, lo, sizeof(lo));
		sky_format_size_exact(VMM_MEMORY_MAX, hi, sizeof(hi));
		return vmm_err(err, -EINVAL,
			       "guest %s: memory of %llu bytes: give a multiple of 1M between %s and %s",
			       spec->name, (unsigned long long)spec->memory, lo, hi);
	}
	if (spec->kernel_fd < 0)
		return vmm_err(err, -EBADF, "guest %s: no kernel: kernel_fd must be a bzImage memfd",
			       spec->name);
	if (fcntl(spec->kernel_fd, F_GETFD) < 0)
		return vmm_err(err, -EBADF, "guest %s: kernel_fd %d is not an open descriptor",
			       spec->name, spec->kernel_fd);
	if (spec->initrd_fd >= 0 && fcntl(spec->initrd_fd, F_GETFD) < 0)
		return vmm_err(err, -EBADF, "guest %s: initrd_fd %d is not an open descriptor (-1 for none)",
			       spec->name, spec->initrd_fd);
	if (spec->disk_fd >= 0 && fcntl(spec->disk_fd, F_GETFD) < 0)
		return vmm_err(err, -EBADF, "guest %s: disk_fd %d is not an open descriptor (-1 for none)",
			       spec->name, spec->disk_fd);
	if (spec->disk_format != VMM_DISK_RAW && spec->disk_format != VMM_DISK_QCOW2)
		return vmm_err(err, -EINVAL, "guest %s: unknown disk format %d (raw or qcow2)",
			       spec->name, (int)spec->disk_format);
	if (spec->accel != VMM_ACCEL_AUTO && spec->accel != VMM_ACCEL_KVM &&
	    spec->accel != VMM_ACCEL_TCG)
		return vmm_err(err, -EINVAL, "guest %s: unknown accel %d", spec->name, (int)spec->accel);
	if (spec->cmdline) {
		size_t len = strnlen(spec->cmdline, VMM_CMDLINE_MAX + 1);
		if (len > VMM_CMDLINE_MAX)
			return vmm_err(err, -E2BIG, "guest %s: kernel command line longer than %u bytes",
				       spec->name, VMM_CMDLINE_MAX);
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)spec->cmdline[i];
			if (c < 0x20 || c == 0x7f)
				return vmm_err(err, -EINVAL,
					       "guest %s: control character 0x%02x in the kernel command line",
					       spec->name, c);
		}
	}
	if (spec->nnics > VMM_NICS_MAX)
		return vmm_err(err, -E2BIG, "guest %s: %zu NICs: at most %u", spec->name, spec->nnics, VMM_NICS_MAX);
	if (spec->nnics && !spec->nics)
		return vmm_err(err, -EINVAL, "guest %s: nnics is %zu but nics is NULL", spec->name, spec->nnics);
	for (size_t i = 0; i < spec->nnics; i++) {
		uint8_t mac[6];

		if (spec->nics[i].tap_fd < 0 || fcntl(spec->nics[i].tap_fd, F_GETFD) < 0)
			return vmm_err(err, -EBADF, "guest %s: NIC %zu: tap_fd %d is not an open descriptor", spec->name,
				       i, spec->nics[i].tap_fd);
		if (!spec->nics[i].mac || sky_parse_mac(spec->nics[i].mac, mac) < 0 || (mac[0] & 1))
			return vmm_err(err, -EINVAL, "guest %s: NIC %zu: \"%.20s\" is not a unicast MAC address",
				       spec->name, i, spec->nics[i].mac ? spec->nics[i].mac : "(null)");
	}
	if (spec->npci > VMM_PCI_MAX)
		return vmm_err(err, -E2BIG, "guest %s: %zu PCI devices: at most %u", spec->name,
			       spec->npci, VMM_PCI_MAX);
	if (spec->npci && !spec->pci)
		return vmm_err(err, -EINVAL, "guest %s: npci is %zu but pci is NULL", spec->name, spec->npci);
	for (size_t i = 0; i < spec->npci; i++) {
		char bdf[VFIO_BDF_LEN];
		if (!spec->pci[i] || sky_parse_pci(spec->pci[i], bdf, VFIO_BDF_LEN) < 0)
			return vmm_err(err, -EINVAL,
				       "guest %s: PCI address \"%.32s\" is not DDDD:BB:DD.F or BB:DD.F (see lspci -D)",
				       spec->name, spec->pci[i] ? spec->pci[i] : "(null)");
	}
	return 0;
}

int vmm_check_bzimage(int fd, struct vmm_error *err)
{
	unsigned char hdr[8];
	ssize_t n;

	/* Linux boot protocol: "HdrS" at 0x202, version (u16 LE) at 0x206. */
	n = pread(fd, hdr, sizeof(hdr), 0x202);
	if (n < 0)
		return vmm_err(err, -errno, "cannot read the kernel image: %s", strerror(errno));
	if (n < (ssize_t)sizeof(hdr) || memcmp(hdr, "HdrS", 4) != 0)
		return vmm_err(err, -ENOEXEC,
			       "the kernel image is not a Linux bzImage (no \"HdrS\" magic at offset 0x202): "
			       "give a bzImage such as the vmlinuz of a linux-image package, not a vmlinux "
			       "ELF, a compressed file or a unified kernel image");
	if ((hdr[4] | hdr[5] << 8) < 0x0200)
		return vmm_err(err, -ENOEXEC,
			       "the kernel image uses boot protocol %u.%02u: a bzImage of protocol 2.00 or newer is needed",
			       hdr[5], hdr[4]);
	return 0;
}

int vmm_kvm_opens(const struct vmm_root *root, char *why, size_t whylen)
{
	char path[4096];
	int fd, v, e;

	if (vmm_fmt(path, sizeof(path), "%s/kvm", vmm_root_devfs(root)) < 0) {
		snprintf(why, whylen, "device path too long");
		return 0;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			snprintf(why, whylen,
				 "%s does not exist: the CPU lacks VT-x/AMD-V, it is off in the firmware "
				 "setup, or kvm_intel/kvm_amd is not loaded (modprobe kvm_intel or kvm_amd)",
				 path);
		else if (e == EACCES || e == EPERM)
			snprintf(why, whylen, "no permission to open %s read-write: run as root or in the kvm group",
				 path);
		else
			snprintf(why, whylen, "cannot open %s: %s", path, strerror(e));
		return 0;
	}
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	e = errno;
	close(fd);
	if (v < 0) {
		snprintf(why, whylen, "%s does not answer KVM_GET_API_VERSION (%s): is it the KVM device?",
			 path, strerror(e));
		return 0;
	}
	if (v != KVM_API_VERSION) {
		snprintf(why, whylen, "%s speaks KVM API %d, not %d", path, v, KVM_API_VERSION);
		return 0;
	}
	if (whylen)
		why[0] = '\0';
	return 1;
}

int vmm_kvm_usable(const struct vmm_root *root, char *why, size_t whylen)
{
	if (!vmm_kvm_opens(root, why, whylen))
		return 0;
	return vmm_kvm_hw_backed(root, why, whylen);
}

static int module_loaded(const struct vmm_root *root, const char *name)
{
	char path[4096];
	struct stat st;
	if (vmm_fmt(path, sizeof(path), "%s/module/%s", vmm_root_sysfs(root), name) < 0)
		return 0;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* /dev/kvm can answer without running an ordinary guest: PVM (kvm_pvm, the
 * page-table based KVM of some cloud sandboxes) runs only PVM-built guest
 * kernels, and a stock kernel hangs in it after decompression.  So a KVM
 * is refused only when kvm_pvm is there without kvm_intel or kvm_amd
 * (loaded modules, or built in with their parameters, are all under
 * /sys/module); with none of the three, the ioctl's answer stands. */
int vmm_kvm_hw_backed(const struct vmm_root *root, char *why, size_t whylen)
{
	if (module_loaded(root, "kvm_intel") || module_loaded(root, "kvm_amd") ||
	    !module_loaded(root, "kvm_pvm")) {
		if (whylen)
			why[0] = '\0';
		return 1;
	}
	snprintf(why, whylen,
		 "%s/kvm is PVM (kvm_pvm), which runs only PVM-enabled guest kernels and has no "
		 "VT-x/AMD-V behind it: load kvm_intel or kvm_amd on a host with hardware virtualization",
		 vmm_root_devfs(root));
	return 0;
}

int vmm_accel_pick(const struct vmm_guest_spec *spec, int usable, const char *why,
		   int *kvm, char *warn, size_t warnlen, struct vmm_error *err)
{
	switch (spec->accel) {
	case VMM_ACCEL_TCG:
		*kvm = 0;
		return 0;
	case VMM_ACCEL_KVM:
		if (!usable)
			return vmm_err(err, -ENODEV, "guest %s needs KVM, but KVM is not usable: %s",
				       spec->name, why);
		*kvm = 1;
		return 0;
	case VMM_ACCEL_AUTO:
		break;
	}
	if (!usable && warn && warnlen)
		snprintf(warn, warnlen,
			 "KVM is not usable (%s): guest %s runs with TCG software emulation, "
			 "many times slower", why, spec->name);
	*kvm = usable ? 1 : 0;
	return 0;
}

static void release_claims(struct vmm_guest *g)
{
	while (g->nclaims > 0) {
		g->nclaims--;
		vfio_claim_free(g->claims[g->nclaims]);
		g->claims[g->nclaims] = NULL;
	}
}

int vmm_guest_create(const struct vmm_ops *backend, const struct vmm_config *cfg,
		     const struct vmm_guest_spec *spec, struct vmm_guest **out,
		     struct vmm_error *err)
{
	static const struct vmm_config defaults;
	char bdfs[VMM_PCI_MAX][VFIO_BDF_LEN];
	const char *pci[VMM_PCI_MAX];
	struct vmm_guest_spec s;
	struct vmm_guest *g;
	int r;

	if (!backend)
		return vmm_err(err, -EINVAL, "no VMM backend (vmm_backend_find returned NULL?)");
	if (!cfg)
		cfg = &defaults;
	r = vmm_spec_check(spec, err);
	if (r < 0)
		return r;
	r = vmm_check_bzimage(spec->kernel_fd, err);
	if (r < 0)
		return r;
	if (backend->check && (r = backend->check(spec, err)) < 0)
		return r;

	s = *spec;
	for (size_t i = 0; i < spec->npci; i++) {
		sky_parse_pci(spec->pci[i], bdfs[i], VFIO_BDF_LEN);
		for (size_t j = 0; j < i; j++)
			if (strcmp(bdfs[i], bdfs[j]) == 0)
				return vmm_err(err, -EINVAL, "guest %s: PCI device %s is listed twice",
					       spec->name, bdfs[i]);
		pci[i] = bdfs[i];
	}
	s.pci = spec->npci ? pci : NULL;

	g = calloc(1, sizeof(*g));
	if (!g)
		return vmm_err(err, -ENOMEM, "out of memory");
	g->ops = backend;
	snprintf(g->name, sizeof(g->name), "%s", spec->name);

	for (size_t i = 0; i < s.npci; i++) {
		r = vfio_claim(cfg->root, pci[i], &g->claims[i], err);
		if (r < 0)
			goto fail_claims;
		g->nclaims++;
	}

	r = backend->create(cfg, &s, &g->priv, g->warning, sizeof(g->warning), err);
	if (r < 0)
		goto fail_claims;
	*out = g;
	return 0;

fail_claims:
	release_claims(g);
	free(g);
	return r;
}

int vmm_guest_start(struct vmm_guest *g, struct vmm_error *err)
{
	return g->ops->start(g->priv, err);
}

int vmm_guest_stop(struct vmm_guest *g, unsigned timeout_ms, struct vmm_error *err)
{
	return g->ops->stop(g->priv, timeout_ms, err);
}

int vmm_guest_state(struct vmm_guest *g, struct vmm_status *st)
{
	return g->ops->state(g->priv, st);
}

int vmm_console_fd(struct vmm_guest *g)
{
	return g->ops->console(g->priv);
}

const char *vmm_guest_warning(const struct vmm_guest *g)
{
	return g->warning;
}

const char *vmm_guest_name(const struct vmm_guest *g)
{
	return g->name;
}

void vmm_guest_destroy(struct vmm_guest *g)
{
	if (!g)
		return;
	/* The VMM holds the VFIO group open: end it before the devices go back. */
	g->ops->destroy(g->priv);
	release_claims(g);
	free(g);
}
