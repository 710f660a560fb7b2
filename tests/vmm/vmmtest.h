/* Helpers for the vmm integration tests: guest images in sealed memfds, a
 * console reader that waits for marker lines, waiting for a guest to end. */
#ifndef SKY_TESTS_VMMTEST_H
#define SKY_TESTS_VMMTEST_H

#include <stddef.h>
#include <sys/types.h>

#include "vmm/vmm.h"

#define VT_MARK_UP "SKYROOT-VMM-GUEST-UP"
#define VT_MARK_POWERDOWN "SKYROOT-VMM-POWERDOWN"
#define VT_CONSOLE_KEEP (256 * 1024)

/* $SKY_VMM_GUEST_DIR/<file>, or aborts the test with a message. */
const char *vt_guest_file(const char *file);
/* A memfd holding the file, sealed against any change: fd or -errno. */
int vt_memfd_from_file(const char *path);
int vt_memfd_from_bytes(const char *name, const void *data, size_t len, int seal);

struct vt_console {
	int fd;
	size_t len;
	size_t scan;            /* where the next wait starts looking */
	int eof;
	char buf[VT_CONSOLE_KEEP + 1];
};

void vt_console_init(struct vt_console *c, int fd);
/* Read what is there (waiting up to timeout_ms for something). */
void vt_console_read(struct vt_console *c, unsigned timeout_ms);
/* Wait for needle past the last match: 0 or -ETIMEDOUT (-EPIPE at EOF). */
int vt_console_wait(struct vt_console *c, const char *needle, unsigned timeout_ms);
/* Wait until the guest has ended (exited or crashed), draining the console. */
int vt_wait_end(struct vmm_guest *g, struct vt_console *c, unsigned timeout_ms,
		struct vmm_status *st);
/* The pid of our child process whose comm starts with prefix, or -1. */
pid_t vt_find_child(const char *comm_prefix);
/* The pid of the QEMU running guest (its -name guest=NAME,...), or -1. */
pid_t vt_find_qemu(const char *guest);
/* Open descriptors of this process. */
int vt_count_fds(void);
/* Print them (and what they are) to stderr. */
void vt_list_fds(void);
/* Milliseconds since an arbitrary start. */
unsigned long long vt_ms(void);

#endif
