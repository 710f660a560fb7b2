/* Telling the service manager how the service is doing (systemd's
 * sd_notify(3) protocol): "READY=1", "STATUS=...", "STOPPING=1".
 *
 * One file per variant: notify_systemd.c (libsystemd) or notify_none.c
 * (built without libsystemd: nothing is ever sent).  Each call returns 0
 * when there is no service manager to tell (NOTIFY_SOCKET unset, or no
 * libsystemd), 1 when the message was sent, or a negative errno. */
#ifndef SKY_COMMON_NOTIFY_H
#define SKY_COMMON_NOTIFY_H

#include <stdbool.h>

/* Longest message sky_notifyf sends; a longer one is cut there. */
#define SKY_NOTIFY_MAX 512

/* Is a service manager listening (and can this build talk to it)? */
bool sky_notify_enabled(void);
int sky_notify(const char *state);
int sky_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
