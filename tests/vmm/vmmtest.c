#include "vmmtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

unsigned long long vt_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

const char *vt_guest_file(const char *file)
{
	static char path[4096];
	const char *dir = getenv("SKY_VMM_GUEST_DIR");
	if (!dir || !dir[0]) {
		fprintf(stderr, "SKY_VMM_GUEST_DIR is not set: run tests/vmm/fetch-guest.sh and point it "
				"at its output (meson test does this through tests/vmm/run.sh)\n");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return path;
}

int vt_memfd_from_bytes(const char *name, const void *data, size_t len, int seal)
{
	const char *p = data;
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		p += n;
		len -= (size_t)n;
	}
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int vt_memfd_from_file(const char *path)
{
	char *data;
	size_t len = 0, cap = 1 << 20;
	int fd, r;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	data = malloc(cap);
	for (;;) {
		size_t n;
		if (!data) {
			fclose(f);
			return -ENOMEM;
		}
		if (len == cap) {
			char *nd = realloc(data, cap * 2);
			if (!nd) {
				free(data);
				fclose(f);
				return -ENOMEM;
			}
			data = nd;
			cap *= 2;
		}
		n = fread(data + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	r = vt_memfd_from_bytes("guest-image", data, len, 1);
	free(data);
	fd = r;
	return fd;
}

void vt_console_init(struct vt_console *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
}

void vt_console_read(struct vt_console *c, unsigned timeout_ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	if (c->eof || poll(&p, 1, (int)timeout_ms) <= 0)
		return;
	for (;;) {
		char tmp[4096];
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n == 0) {
			c->eof = 1;
			return;
		}
		if (n < 0)
			return;
		/* keep the newest VT_CONSOLE_KEEP bytes */
		if ((size_t)n > VT_CONSOLE_KEEP - c->len) {
			size_t drop = (size_t)n - (VT_CONSOLE_KEEP - c->len);
			if (drop > c->len)
				drop = c->len;
			memmove(c->buf, c->buf + drop, c->len - drop);
			c->len -= drop;
			c->scan = c->scan > drop ? c->scan - drop : 0;
		}
		memcpy(c->buf + c->len, tmp, (size_t)n);
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
	}
}

int vt_console_wait(struct vt_console *c, const char *needle, unsigned timeout_ms)
{
	unsigned long long deadline = vt_ms() + timeout_ms;
	for (;;) {
		const char *hit;
		c->buf[c->len] = '\0';
		hit = memmem(c->buf + c->scan, c->len - c->scan, needle, strlen(needle));
		if (hit) {
			c->scan = (size_t)(hit - c->buf) + strlen(needle);
			return 0;
		}
		if (c->eof)
			return -EPIPE;
		if (vt_ms() >= deadline)
			return -ETIMEDOUT;
		vt_console_read(c, 100);
	}
}

int vt_wait_end(struct vmm_guest *g, struct vt_console *c, unsigned timeout_ms,
		struct vmm_status *st)
{
	unsigned long long deadline = vt_ms() + timeout_ms;
	for (;;) {
		int r = vmm_guest_state(g, st);
		if (r < 0)
			return r;
		if (st->state == VMM_STATE_EXITED || st->state == VMM_STATE_CRASHED)
			return 0;
		if (vt_ms() >= deadline)
			return -ETIMEDOUT;
		if (c)
			vt_console_read(c, 100);
		else
			usleep(100 * 1000);
	}
}

pid_t vt_find_qemu(const char *guest)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = -1;
	char want[128];
	if (!d)
		return -1;
	snprintf(want, sizeof(want), "guest=%s,", guest);
	while ((de = readdir(d))) {
		char path[300], buf[8192];
		size_t n;
		FILE *f;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		if (!strstr(buf, "qemu-system"))
			continue;
		for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
			if (strncmp(buf + i, want, strlen(want)) == 0) {
				found = atoi(de->d_name);
				break;
			}
		}
	}
	closedir(d);
	return found;
}

pid_t vt_find_child(const char *comm_prefix)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = -1, me = getpid();
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], buf[512], comm[64];
		int pid, ppid;
		char state;
		FILE *f;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%d (%63[^)]) %c %d", &pid, comm, &state, &ppid) == 4 &&
		    ppid == me && strncmp(comm, comm_prefix, strlen(comm_prefix)) == 0)
			found = pid;
		fclose(f);
	}
	closedir(d);
	return found;
}

int vt_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory itself */
}

void vt_list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[300], target[512];
		ssize_t n;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		fprintf(stderr, "fd %s -> %s\n", de->d_name, target);
	}
	closedir(d);
}
