/* libFuzzer target: how a board finds its controller on the rack network
 * with nothing on its command line (agent/dhcp.c, agent/srv.c): whatever
 * answers DHCP or DNS on the wire writes these bytes.
 *
 * First byte: 0 - the rest is the text udhcpc.script keeps (hex of DHCP
 * option 224, any bytes here); 1 - the rest is the option's raw value,
 * hex-encoded here first; 2 - the rest is a DNS answer for the SRV query.
 * A value accepted must give a non-empty, NUL-terminated, printable host
 * without spaces and a port that is not 0; nothing may read past the
 * input (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dhcp.h"
#include "agent/srv.h"
#include "common/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_host(const char *host, size_t hostlen, uint16_t port)
{
	size_t n = strnlen(host, hostlen);
	if (n == 0 || n >= hostlen || port == 0)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)host[i] <= 0x20 || (unsigned char)host[i] >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[256];
	uint16_t port = 0;

	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 3;
	data++;
	size--;
	if (mode == 0) {
		/* the text as bytes, in a buffer of its own: no NUL is promised */
		char *text = malloc(size ? size : 1);
		if (!text)
			return 0;
		memcpy(text, data, size);
		if (agent_dhcp_controller(text, size, host, sizeof(host), &port, 7443) == 0)
			check_host(host, sizeof(host), port);
		free(text);
	} else if (mode == 1) {
		if (size > 300)
			size = 300;
		char hex[601];
		sky_format_hex(data, size, hex);
		int r = agent_dhcp_controller(hex, 2 * size, host, sizeof(host), &port, 7443);
		if (r == 0)
			check_host(host, sizeof(host), port);
		if (size > AGENT_DHCP_VALUE_MAX && r == 0)
			abort(); /* longer than an option can be */
	} else {
		unsigned char *msg = malloc(size ? size : 1);
		if (!msg)
			return 0;
		memcpy(msg, data, size);
		if (agent_srv_pick(msg, size, host, sizeof(host), &port) == 0)
			check_host(host, sizeof(host), port);
		free(msg);
	}
	return 0;
}
