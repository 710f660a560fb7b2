/* The controller's address from DHCP option 224 (see agent/dhcp.h). */
#include "agent/dhcp.h"

#include "common/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* What the file may hold: the hex of a full option and a newline or two. */
#define DHCP_FILE_MAX (2 * AGENT_DHCP_VALUE_MAX + 2)

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int agent_dhcp_controller(const char *hex, size_t len, char *host, size_t hostlen, uint16_t *port,
			  uint16_t default_port)
{
	char value[AGENT_DHCP_VALUE_MAX + 1];
	size_t n = 0;

	while (len > 0 && (hex[len - 1] == '\n' || hex[len - 1] == '\r' || hex[len - 1] == ' ' ||
			   hex[len - 1] == '\t'))
		len--;
	if (len == 0 || len % 2 != 0)
		return -EINVAL;
	if (len / 2 > AGENT_DHCP_VALUE_MAX)
		return -E2BIG;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		value[n++] = (char)(hi << 4 | lo);
	}
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

	char h[256];
	uint16_t p;
	int r = sky_parse_hostport(value, h, sizeof(h), &p, default_port);
	if (r < 0)
		return r;
	if (strlen(h) >= hostlen)
		return -ENAMETOOLONG;
	memcpy(host, h, strlen(h) + 1);
	*port = p;
	return 0;
}

int agent_dhcp_controller_file(const char *path, char *host, size_t hostlen, uint16_t *port,
			       uint16_t default_port)
{
	char buf[DHCP_FILE_MAX + 1];
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t got = read(fd, buf + len, sizeof(buf) - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (len > DHCP_FILE_MAX) {
			close(fd);
			return -E2BIG;
		}
	}
	close(fd);
	return agent_dhcp_controller(buf, len, host, hostlen, port, default_port);
}
