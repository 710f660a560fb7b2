/* skyrootd under a service manager (systemd Type=notify): READY=1 once
 * both ports listen and the store is open, STATUS= with the number of
 * boards online (checked every second, sent only when it changed),
 * STOPPING=1 on shutdown.  Nothing happens when NOTIFY_SOCKET is unset. */
#ifndef SKY_CONTROLLER_NOTIFY_H
#define SKY_CONTROLLER_NOTIFY_H

struct controller;

/* How often the count of online boards is looked at: STATUS= is sent at
 * most this often, and only when the count changed. */
#define CTL_NOTIFY_STATUS_MS 1000

/* Call on the loop thread once the ports listen; sets ctl->notify. */
void ctl_notify_ready(struct controller *ctl);
/* Call when shutdown begins: says STOPPING=1 and closes the timer. */
void ctl_notify_stopping(struct controller *ctl);

#endif
