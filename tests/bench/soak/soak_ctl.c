#include "soak_ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define ERR_MAX 512

extern char **environ;

/* posix_spawn (a vfork in glibc), not uv_spawn (a fork): the driver holds
 * 10,000 boards in a gigabyte, and copying its page tables for every skyctl
 * cost it a third of its CPU in page faults.  The exit is seen on a pidfd. */
struct ctl_run {
	uv_poll_t proc;
	pid_t pid;
	int pidfd;
	uv_pipe_t out_pipe, err_pipe;
	uv_timer_t deadline;
	char *out;
	size_t out_len;
	char err[ERR_MAX];
	size_t err_len;
	int out_fd, err_fd;          /* our ends of the pipes, until libuv has them */
	int status;
	bool exited, timed_out;
	int open_handles;
	soak_ctl_done_fn done;
	void *ud;
};

static unsigned runs_open;

unsigned soak_ctl_running(void)
{
	return runs_open;
}

static void ctl__closed(uv_handle_t *h)
{
	struct ctl_run *r = h->data;
	if (--r->open_handles > 0)
		return;
	/* The last line of stderr says why. */
	while (r->err_len && (r->err[r->err_len - 1] == '\n' || r->err[r->err_len - 1] == '\r'))
		r->err_len--;
	r->err[r->err_len] = '\0';
	const char *last = strrchr(r->err, '\n');
	r->out[r->out_len] = '\0';
	if (r->pidfd >= 0)
		close(r->pidfd);
	r->done(r->ud, r->timed_out ? -ETIMEDOUT : r->status, r->out, last ? last + 1 : r->err);
	free(r->out);
	free(r);
	runs_open--;
}

static void ctl__maybe_finish(struct ctl_run *r)
{
	if (!r->exited || uv_is_closing((uv_handle_t *)&r->out_pipe) == 0 ||
	    uv_is_closing((uv_handle_t *)&r->err_pipe) == 0 || uv_is_closing((uv_handle_t *)&r->proc))
		return;
	uv_close((uv_handle_t *)&r->proc, ctl__closed);
	uv_close((uv_handle_t *)&r->deadline, ctl__closed);
}

static void ctl__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char scratch[16384];
	(void)h;
	(void)suggested;
	buf->base = scratch;
	buf->len = sizeof(scratch);
}

static void ctl__read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_run *r = s->data;
	bool is_out = s == (uv_stream_t *)&r->out_pipe;

	if (n < 0) {
		uv_close((uv_handle_t *)s, ctl__closed);
		ctl__maybe_finish(r);
		return;
	}
	if (is_out) {
		size_t room = SOAK_CTL_OUT_MAX - r->out_len;
		size_t take = (size_t)n < room ? (size_t)n : room;
		memcpy(r->out + r->out_len, buf->base, take);
		r->out_len += take;
	} else {
		/* Keep the tail: the message that matters is the last. */
		size_t take = (size_t)n;
		if (take > ERR_MAX - 1) {
			memcpy(r->err, buf->base + take - (ERR_MAX - 1), ERR_MAX - 1);
			r->err_len = ERR_MAX - 1;
		} else {
			if (r->err_len + take > ERR_MAX - 1) {
				size_t drop = r->err_len + take - (ERR_MAX - 1);
				memmove(r->err, r->err + drop, r->err_len - drop);
				r->err_len -= drop;
			}
			memcpy(r->err + r->err_len, buf->base, take);
			r->err_len += take;
		}
	}
}

static void ctl__exit(uv_poll_t *p, int status, int events)
{
	struct ctl_run *r = p->data;
	int st;
	(void)status;
	(void)events;
	if (waitpid(r->pid, &st, WNOHANG) != r->pid)
		return;
	uv_poll_stop(p);
	r->exited = true;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -EINTR;
	uv_timer_stop(&r->deadline);
	ctl__maybe_finish(r);
}

static void ctl__deadline(uv_timer_t *t)
{
	struct ctl_run *r = t->data;
	r->timed_out = true;
	kill(r->pid, SIGKILL);
}

/* Start skyctl with its stdout and stderr on two pipes: 0 or negative errno
 * (nothing left open then). */
static int ctl__spawn(struct ctl_run *r, char **argv)
{
	posix_spawn_file_actions_t fa;
	int out[2] = {-1, -1}, err[2] = {-1, -1}, rc;

	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail_pipes;
	}
	rc = -posix_spawn_file_actions_init(&fa);
	if (rc < 0)
		goto fail_pipes;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	rc = -posix_spawn(&r->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc < 0)
		goto fail_pipes;
	r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	if (r->pidfd < 0) {
		rc = -errno;
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		goto fail_pipes;
	}
	close(out[1]);
	close(err[1]);
	r->out_fd = out[0];
	r->err_fd = err[0];
	return 0;
fail_pipes:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return rc;
}

int soak_ctl_run(uv_loop_t *loop, const char *skyctl, const char *conf, const char *const *args,
		 uint64_t timeout_ms, soak_ctl_done_fn done, void *ud)
{
	char *argv[16];
	size_t n = 0;
	struct ctl_run *r;
	int rc;

	argv[n++] = (char *)skyctl;
	argv[n++] = "--config";
	argv[n++] = (char *)conf;
	for (size_t i = 0; args[i]; i++) {
		if (n >= SKY_ARRAY_SIZE(argv) - 1)
			return -E2BIG;
		argv[n++] = (char *)args[i];
	}
	argv[n] = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->out = malloc(SOAK_CTL_OUT_MAX + 1);
	if (!r->out) {
		free(r);
		return -ENOMEM;
	}
	r->done = done;
	r->ud = ud;
	r->pidfd = -1;
	rc = ctl__spawn(r, argv);
	if (rc < 0) {
		free(r->out);
		free(r);
		return rc;
	}
	runs_open++;
	r->open_handles = 4;
	uv_pipe_init(loop, &r->out_pipe, 0);
	uv_pipe_init(loop, &r->err_pipe, 0);
	uv_timer_init(loop, &r->deadline);
	r->out_pipe.data = r->err_pipe.data = r->deadline.data = r->proc.data = r;
	uv_pipe_open(&r->out_pipe, r->out_fd);
	uv_pipe_open(&r->err_pipe, r->err_fd);
	uv_poll_init(loop, &r->proc, r->pidfd);
	uv_poll_start(&r->proc, UV_READABLE, ctl__exit);
	uv_read_start((uv_stream_t *)&r->out_pipe, ctl__alloc, ctl__read);
	uv_read_start((uv_stream_t *)&r->err_pipe, ctl__alloc, ctl__read);
	uv_timer_start(&r->deadline, ctl__deadline, timeout_ms, 0);
	return 0;
}

int soak_json_u64(const char *json, const char *field, uint64_t *out)
{
	json_error_t jerr;
	json_t *root = json_loads(json, 0, &jerr);
	int r = -ENOENT;
	if (!json_is_object(root)) {
		json_decref(root);
		return -EBADMSG;
	}
	json_t *v = json_object_get(root, field);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		r = 0;
	}
	json_decref(root);
	return r;
}

static int meminfo_path(const char *root, char *path, size_t len)
{
	int n = snprintf(path, len, "%s/proc/meminfo", root);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int soak_fixture_memory(const char *root, uint64_t *kib)
{
	char path[4200], *text = NULL, *p;
	size_t len;
	int r = meminfo_path(root, path, sizeof(path));
	if (r < 0 || (r = sky_read_file(path, 64 << 10, &text, &len)) < 0)
		return r;
	p = strstr(text, "MemTotal:");
	r = p && sscanf(p + 9, "%" SCNu64, kib) == 1 ? 0 : -EBADMSG;
	free(text);
	return r;
}

int soak_fixture_set_memory(const char *root, uint64_t kib)
{
	char path[4200], *text = NULL, *p, *eol, line[64];
	size_t len;
	int r = meminfo_path(root, path, sizeof(path));
	if (r < 0 || (r = sky_read_file(path, 64 << 10, &text, &len)) < 0)
		return r;
	p = strstr(text, "MemTotal:");
	if (!p) {
		free(text);
		return -EBADMSG;
	}
	eol = strchr(p, '\n');
	int n = snprintf(line, sizeof(line), "MemTotal:       %" PRIu64 " kB", kib);
	size_t head = (size_t)(p - text), tail_off = eol ? (size_t)(eol - text) : len;
	char *out = malloc(len + (size_t)n + 1);
	if (!out) {
		free(text);
		return -ENOMEM;
	}
	memcpy(out, text, head);
	memcpy(out + head, line, (size_t)n);
	memcpy(out + head + (size_t)n, text + tail_off, len - tail_off);
	r = sky_write_file(path, out, head + (size_t)n + len - tail_off, 0644, 0);
	free(out);
	free(text);
	return r;
}
