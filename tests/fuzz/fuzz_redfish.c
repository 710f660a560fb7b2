/* libFuzzer target: the Redfish service's parsers of what clients send
 * (controller/skyrootd/api_redfish_parse.c).  The first byte mod 4 picks
 * the parser: 0 an Authorization header (Basic), 1 a session login, 2 a
 * reset action, 3 a boot-override PATCH.
 *
 * Accepted input gives bounded, NUL-terminated, printable values: a user
 * name without ':' and a non-empty secret; a ResetType; boot values each
 * empty or one of the values Skyroot supports, at least one given.  A
 * refusal is -EINVAL (-ENOENT for a header of another scheme) and, for
 * bodies, a message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyrootd/api_redfish.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_string(const char *s, size_t max, bool nonempty)
{
	size_t n;

	if (!memchr(s, '\0', max))
		abort();
	n = strlen(s);
	if (nonempty && n == 0)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			abort();
}

static void fz_one_of(const char *v, const char *const *allowed)
{
	if (!v[0])
		return;
	for (size_t i = 0; allowed[i]; i++)
		if (strcmp(v, allowed[i]) == 0)
			return;
	abort();
}

static void fz_refused(int r, const char *err)
{
	if (r != -EINVAL || !memchr(err, '\0', RF_ERR_MAX) || !err[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const targets[] = { "None", "Pxe", NULL };
	static const char *const enabled[] = { "Disabled", "Once", "Continuous", NULL };
	static const char *const modes[] = { "UEFI", "Legacy", NULL };
	char user[RF_USER_MAX], secret[RF_SECRET_MAX], type[RF_ENUM_MAX], err[RF_ERR_MAX];
	struct rf_boot_patch p;
	int r;

	if (size < 1)
		return 0;
	memset(err, 0, sizeof(err));
	switch (data[0] % 4) {
	case 0:
		r = rf_parse_basic((const char *)data + 1, size - 1, user, secret);
		if (r == 0) {
			fz_string(user, sizeof(user), true);
			fz_string(secret, sizeof(secret), true);
			if (strchr(user, ':'))
				abort();
		} else if (r != -EINVAL && r != -ENOENT) {
			abort();
		}
		break;
	case 1:
		r = rf_parse_session(data + 1, size - 1, user, secret, err, sizeof(err));
		if (r == 0) {
			fz_string(user, sizeof(user), true);
			fz_string(secret, sizeof(secret), true);
		} else {
			fz_refused(r, err);
		}
		break;
	case 2:
		r = rf_parse_reset(data + 1, size - 1, type, err, sizeof(err));
		if (r == 0)
			fz_string(type, sizeof(type), true);
		else
			fz_refused(r, err);
		break;
	default:
		r = rf_parse_boot_patch(data + 1, size - 1, &p, err, sizeof(err));
		if (r == 0) {
			fz_string(p.target, sizeof(p.target), false);
			fz_string(p.enabled, sizeof(p.enabled), false);
			fz_string(p.mode, sizeof(p.mode), false);
			fz_one_of(p.target, targets);
			fz_one_of(p.enabled, enabled);
			fz_one_of(p.mode, modes);
			if (!p.target[0] && !p.enabled[0] && !p.mode[0])
				abort();
		} else {
			fz_refused(r, err);
		}
		break;
	}
	return 0;
}
