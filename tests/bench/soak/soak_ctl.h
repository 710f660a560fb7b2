/* The soak driver's hands on the controller besides the agent link:
 * skyctl run as a child of the driver's loop (output captured, bounded,
 * with a deadline), one field read out of its JSON with jansson, and the
 * one fact of a fixture board the driver changes (its memory). */
#ifndef SKY_SOAK_CTL_H
#define SKY_SOAK_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* status: the exit code, or a negative errno (-ETIMEDOUT when it was
 * killed at the deadline, or the spawn's error).  out is NUL-terminated
 * stdout (at most SOAK_CTL_OUT_MAX bytes kept); err the last line of stderr. */
typedef void (*soak_ctl_done_fn)(void *ud, int status, const char *out, const char *err);

#define SOAK_CTL_OUT_MAX (256u << 10)

/* Run "skyctl --config conf ARGS..." (args NULL-terminated, at most 12).
 * 0, then done is called once; or a negative errno (too many arguments,
 * no memory, skyctl could not be started), and done is not called. */
int soak_ctl_run(uv_loop_t *loop, const char *skyctl, const char *conf, const char *const *args,
		 uint64_t timeout_ms, soak_ctl_done_fn done, void *ud);
/* Runs not yet finished. */
unsigned soak_ctl_running(void);

/* An unsigned integer field of the JSON object text.  0, -EBADMSG (not a
 * JSON object) or -ENOENT (no such integer field). */
int soak_json_u64(const char *json, const char *field, uint64_t *out);

/* Rewrite MemTotal in root/proc/meminfo to kib.  0 or negative errno. */
int soak_fixture_set_memory(const char *root, uint64_t kib);
/* Read it.  0 or negative errno. */
int soak_fixture_memory(const char *root, uint64_t *kib);

#endif
