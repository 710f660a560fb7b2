/* common/notify.h over libsystemd's sd_notify. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "common/notify.h"

bool sky_notify_enabled(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	return s && *s;
}

int sky_notify(const char *state)
{
	return sd_notify(0, state);
}

int sky_notifyf(const char *fmt, ...)
{
	char msg[SKY_NOTIFY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sd_notify(0, msg);
}
