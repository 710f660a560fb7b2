/* common/notify.h without libsystemd: there is nobody to tell.  A unit
 * with Type=notify needs a build with libsystemd (-Dsystemd=enabled);
 * with this variant use Type=exec. */
#include "common/notify.h"

bool sky_notify_enabled(void)
{
	return false;
}

int sky_notify(const char *state)
{
	(void)state;
	return 0;
}

int sky_notifyf(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}
