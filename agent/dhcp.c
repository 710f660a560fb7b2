/* The controller's address from DHCP option 224 (see agent/dhcp.h). */
#include "agent/dhcp.h"

#include "agent/ctlset.h"
#include "common/parse.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What the file may hold: the hex of a full option and a newline or two. */
#define DHCP_FILE_MAX (2 * AGENT_DHCP_VALUE_MAX + 2)

/* The option's bytes as a C string in value (AGENT_DHCP_VALUE_MAX + 1). */
static int dhcp_value(const char *hex, size_t len, char *value)
{
	char digits[2 * AGENT_DHCP_VALUE_MAX + 1];
	size_t n;

	while (len > 0 && (hex[len - 1] == '\n' || hex[len - 1] == '\r' || hex[len - 1] == ' ' ||
			   hex[len - 1] == '\t'))
		len--;
	if (len == 0 || len % 2 != 0)
		return -EINVAL;
	if (len / 2 > AGENT_DHCP_VALUE_MAX)
		return -E2BIG;
	/* sky_parse_hex takes a C string: a NUL among the digits fails it */
	memcpy(digits, hex, len);
	digits[len] = '\0';
	n = len / 2;
	if (sky_parse_hex(digits, (uint8_t *)value, n) < 0)
		return -EINVAL;
	if (value[n - 1] == '\0')
		n--;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c <= 0x20 || c >= 0x7f)
			return -EINVAL;
	}
	value[n] = '\0';
	return 0;
}

int agent_dhcp_controllers(const char *hex, size_t len, struct sky_hostport *out, size_t max, size_t *count,
			   uint16_t default_port)
{
	char value[AGENT_DHCP_VALUE_MAX + 1];
	int r = dhcp_value(hex, len, value);

	if (r < 0)
		return r;
	r = sky_parse_hostport_list(value, out, max, count, default_port, NULL);
	/* too many controllers is a bad value; -E2BIG says the value is too long */
	return r == -E2BIG ? -EINVAL : r;
}

int agent_dhcp_controller(const char *hex, size_t len, char *host, size_t hostlen, uint16_t *port,
			  uint16_t default_port)
{
	struct sky_hostport list[AGENT_MAX_CONTROLLERS];
	size_t n;
	int r = agent_dhcp_controllers(hex, len, list, AGENT_MAX_CONTROLLERS, &n, default_port);

	if (r < 0)
		return r;
	if (strlen(list[0].host) >= hostlen)
		return -ENAMETOOLONG;
	memcpy(host, list[0].host, strlen(list[0].host) + 1);
	*port = list[0].port;
	return 0;
}

int agent_dhcp_controllers_file(const char *path, struct sky_hostport *out, size_t max, size_t *count,
				uint16_t default_port)
{
	char *buf;
	size_t len;
	int r = sky_read_file(path, DHCP_FILE_MAX, &buf, &len);

	if (r < 0)
		return r == -EFBIG ? -E2BIG : r;
	r = agent_dhcp_controllers(buf, len, out, max, count, default_port);
	free(buf);
	return r;
}

int agent_dhcp_controller_file(const char *path, char *host, size_t hostlen, uint16_t *port,
			       uint16_t default_port)
{
	struct sky_hostport list[AGENT_MAX_CONTROLLERS];
	size_t n;
	int r = agent_dhcp_controllers_file(path, list, AGENT_MAX_CONTROLLERS, &n, default_port);

	if (r < 0)
		return r;
	if (strlen(list[0].host) >= hostlen)
		return -ENAMETOOLONG;
	memcpy(host, list[0].host, strlen(list[0].host) + 1);
	*port = list[0].port;
	return 0;
}
