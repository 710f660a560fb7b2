/* Stand-in for skyagent in firmware tests (fwimage/test_boards.sh): prints
 * what the real agent relies on, then exits so init's supervisor is seen
 * restarting it.  Behaviour from the kernel command line:
 *   standin.exit=N   exit status after sleeping (default 3); negative:
 *                    kill itself with signal -N
 *   standin.sleep=S  seconds to sleep first (default 2)
 *   standin.run=DIR  run DIR/run (a test program test_boards.sh --run-inside
 *                    put into the image) once, with DIR first in PATH and
 *                    in SKY_NET_TOOLS, and print "check run=<exit status>"
 * Build: cc -O2 -Wall -o standin-agent standin-agent.c */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char cmdline[4096];

static long param(const char *key, long def)
{
	char pat[64];
	snprintf(pat, sizeof pat, " %s=", key);
	char buf[sizeof cmdline + 2];
	snprintf(buf, sizeof buf, " %s", cmdline);
	const char *p = strstr(buf, pat);
	return p ? strtol(p + strlen(pat), NULL, 10) : def;
}

static int read_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(out, (int)len, f))
		out[0] = 0;
	fclose(f);
	out[strcspn(out, "\n")] = 0;
	return 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

/* Hand the device to vfio-pci as the agent will: driver_override + probe. */
static void bind_vfio(const char *bdf, const char *group)
{
	char p[512], dev[320];
	snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/driver_override", bdf);
	int r1 = write_str(p, "vfio-pci");
	int r2 = write_str("/sys/bus/pci/drivers_probe", bdf);
	snprintf(dev, sizeof dev, "/dev/vfio/%s", group);
	struct stat st;
	printf("standin-agent: check vfio_bind=%s (override %d, probe %d, %s %s)\n",
	       stat(dev, &st) == 0 ? "yes" : "no", r1, r2, dev,
	       stat(dev, &st) == 0 ? "exists" : "missing");
}

/* standin.run=DIR: DIR/run once per boot (init restarts the stand-in). */
static void run_inside(void)
{
	char buf[sizeof cmdline + 2], dir[256], prog[300], path[512];
	const char *p;
	struct stat st;
	int status = -1;

	snprintf(buf, sizeof buf, " %s", cmdline);
	p = strstr(buf, " standin.run=");
	if (!p || stat("/run/standin-ran", &st) == 0)
		return;
	close(open("/run/standin-ran", O_WRONLY | O_CREAT, 0600));
	p += strlen(" standin.run=");
	snprintf(dir, sizeof dir, "%.*s", (int)strcspn(p, " "), p);
	snprintf(prog, sizeof prog, "%s/run", dir);
	snprintf(path, sizeof path, "%s:%s", dir, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	printf("standin-agent: running %s\n", prog);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("PATH", path, 1);
		/* busybox's shell runs its own applets before PATH */
		snprintf(path, sizeof path, "%s/", dir);
		setenv("SKY_NET_TOOLS", path, 1);
		execl(prog, prog, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	printf("standin-agent: check run=%d\n", pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	read_line("/proc/cmdline", cmdline, sizeof cmdline);
	printf("standin-agent: pid %d argv:", (int)getpid());
	for (int i = 0; i < argc; i++)
		printf(" [%s]", argv[i]);
	printf("\nstandin-agent: cmdline: %s\n", cmdline);

	struct stat st;
	printf("standin-agent: check efi=%s\n", stat("/sys/firmware/efi", &st) == 0 ? "yes" : "no");

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("standin-agent: check kvm=no (%s)\n", strerror(errno));
	} else {
		int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
		int vm = ioctl(kvm, KVM_CREATE_VM, 0);
		printf("standin-agent: check kvm=yes api=%d create_vm=%s\n", api, vm >= 0 ? "ok" : strerror(errno));
		if (vm >= 0)
			close(vm);
		close(kvm);
	}

	int groups = 0, edu = 0;
	DIR *d = opendir("/sys/kernel/iommu_groups");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		groups++;
		char p[512];
		snprintf(p, sizeof p, "/sys/kernel/iommu_groups/%s/devices", e->d_name);
		DIR *dd = opendir(p);
		struct dirent *de;
		while (dd && (de = readdir(dd))) {
			char v[32] = "", dv[32] = "", q[1024];
			if (de->d_name[0] == '.')
				continue;
			snprintf(q, sizeof q, "%s/%s/vendor", p, de->d_name);
			read_line(q, v, sizeof v);
			snprintf(q, sizeof q, "%s/%s/device", p, de->d_name);
			read_line(q, dv, sizeof dv);
			if (!strcmp(v, "0x1234") && !strcmp(dv, "0x11e8")) {
				edu = 1;
				printf("standin-agent: check edu=%s group=%s\n", de->d_name, e->d_name);
				bind_vfio(de->d_name, e->d_name);
			}
		}
		if (dd)
			closedir(dd);
	}
	if (d)
		closedir(d);
	printf("standin-agent: check iommu_groups=%d edu_found=%s\n", groups, edu ? "yes" : "no");

	/* the addresses init's DHCP took: /run/skyroot/net.IFACE (br0 when
	 * the uplink is bridged for guests, else the NIC itself) */
	int naddr = 0;
	d = opendir("/run/skyroot");
	while (d && (e = readdir(d))) {
		char addr[64] = "", q[300];
		if (strncmp(e->d_name, "net.", 4))
			continue;
		snprintf(q, sizeof q, "/run/skyroot/%s", e->d_name);
		read_line(q, addr, sizeof addr);
		printf("standin-agent: check %s=%s\n", e->d_name + 4, addr[0] ? addr : "none");
		naddr++;
	}
	if (d)
		closedir(d);
	if (!naddr)
		printf("standin-agent: check addresses=none\n");

	printf("standin-agent: block devices:");
	d = opendir("/sys/block");
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			printf(" %s", e->d_name);
	if (d)
		closedir(d);
	printf("\n");

	run_inside();

	long s = param("standin.sleep", 2), code = param("standin.exit", 3);
	printf("standin-agent: ready; sleeping %ld s then exiting with %ld\n", s, code);
	sleep((unsigned)s);
	if (code < 0)
		kill(getpid(), (int)-code);
	return (int)code;
}
