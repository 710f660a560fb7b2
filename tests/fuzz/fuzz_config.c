/* libFuzzer target: what skyagent reads from the kernel command line and
 * its flags (agent/config.c) - on a board, text that the network boot
 * path or an operator wrote.
 *
 * The input is a kernel command line; every skyroot.* value found in it is
 * also parsed as what it is (HOST:PORT, the CA pin).  Values must come back
 * bounded and NUL-terminated; a parsed port is never 0; a pin is only
 * accepted as "sha256:" (in any case) and 64 hex digits. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/config.h"
#include "common/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {
	"skyroot.controller", "skyroot.token", "skyroot.ca", "skyroot.shell", "console", "",
};

static void check_hostport(const char *v)
{
	char host[256];
	uint16_t port = 0;
	if (sky_parse_hostport(v, host, sizeof(host), &port, 7443) == 0) {
		if (port == 0 || strnlen(host, sizeof(host)) >= sizeof(host) || !host[0])
			abort();
	}
}

static void check_pin(const char *v)
{
	uint8_t pin[32];
	if (sky_parse_ca_pin(v, pin) == 0) {
		if (strlen(v) != 7 + 64 || strncasecmp(v, "sha256:", 7) != 0)
			abort();
		for (size_t i = 7; i < 71; i++)
			if (!isxdigit((unsigned char)v[i]))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *cmdline, small[8], value[4096];

	if (size > 64 * 1024)
		return 0;
	cmdline = strndup((const char *)data, size); /* as /proc/cmdline is read: up to a NUL */
	if (!cmdline)
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int r = agent_cmdline_get(cmdline, keys[i], value, sizeof(value));
		if (r == 0) {
			if (strnlen(value, sizeof(value)) >= sizeof(value))
				abort();
			check_hostport(value);
			check_pin(value);
		} else if (r != -ENOENT && r != -ENAMETOOLONG) {
			abort();
		}
		/* a small buffer: too long is an error, never a cut value */
		r = agent_cmdline_get(cmdline, keys[i], small, sizeof(small));
		if (r == 0 && strnlen(small, sizeof(small)) >= sizeof(small))
			abort();
	}
	/* the whole line as a value, too */
	check_hostport(cmdline);
	check_pin(cmdline);
	free(cmdline);
	return 0;
}
