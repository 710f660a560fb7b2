/* The controller's address from DHCP option 224 (see agent/dhcp.h). */
#include "agent/dhcp.h"

#include "common/parse.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What the file may hold: the hex of a full option and a newline or two. */
#define DHCP_FILE_MAX (2 * AGENT_DHCP_VALUE_MAX + 2)

int agent_dhcp_controller(const char *hex, size_t len, char *host, size_t hostlen, uint16_t *port,
			  uint16_t default_port)
{
	char digits[2 * AGENT_DHCP_VALUE_MAX + 1];
	char value[AGENT_DHCP_VALUE_MAX + 1];
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
	/* writes nothing on failure; -ENAMETOOLONG when host does not fit */
	return sky_parse_hostport(value, host, hostlen, port, default_port);
}

int agent_dhcp_controller_file(const char *path, char *host, size_t hostlen, uint16_t *port,
			       uint16_t default_port)
{
	char *buf;
	size_t len;
	int r = sky_read_file(path, DHCP_FILE_MAX, &buf, &len);

	if (r < 0)
		return r == -EFBIG ? -E2BIG : r;
	r = agent_dhcp_controller(buf, len, host, hostlen, port, default_port);
	free(buf);
	return r;
}
