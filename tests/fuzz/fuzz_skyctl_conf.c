/* libFuzzer target: skyctl's configuration file and the values its flags
 * take (controller/skyctl/conf.c, format.c): sizes, durations, PCI addresses.
 *
 * Parsing never crashes or leaks; every set field is bounded, a refusal
 * says why; a size or a duration that parses also formats within bounds;
 * a PCI address that parses comes out in its full DDDD:BB:DD.F form. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyctl/conf.h"
#include "controller/skyctl/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct skyctl_conf conf;
	char err[512] = "", *s, buf[64];
	uint64_t v;
	int r;

	skyctl_conf_init(&conf);
	r = skyctl_conf_parse(&conf, (const char *)data, size, "/etc/skyroot", err, sizeof(err));
	if (r == 0) {
		if (strnlen(conf.controller, sizeof(conf.controller)) >= sizeof(conf.controller) ||
		    strnlen(conf.ca, sizeof(conf.ca)) >= sizeof(conf.ca) ||
		    strnlen(conf.token, sizeof(conf.token)) >= sizeof(conf.token))
			abort();
	} else if (!err[0] || strnlen(err, sizeof(err)) >= sizeof(err)) {
		abort();
	}

	if (size > 256)
		return 0;
	s = strndup((const char *)data, size); /* flag values are C strings */
	if (!s)
		return 0;
	if (skyctl_conf_parse_size(s, &v) == 0 &&
	    skyctl_format_size(v, buf, sizeof(buf)) >= 0 && strnlen(buf, sizeof(buf)) >= sizeof(buf))
		abort();
	if (skyctl_conf_parse_duration(s, &v) == 0 &&
	    skyctl_format_clock(v, buf, sizeof(buf)) >= 0 && strnlen(buf, sizeof(buf)) >= sizeof(buf))
		abort();
	if (skyctl_conf_parse_pci_address(s, buf, sizeof(buf)) == 0) {
		/* canonical DDDD:BB:DD.F */
		if (strlen(buf) != 12 || buf[4] != ':' || buf[7] != ':' || buf[10] != '.')
			abort();
	}
	free(s);
	return 0;
}
