/* libFuzzer target: skyctl's configuration file and its progress lines
 * (controller/skyctl/conf.c, format.c); sizes, durations and PCI addresses
 * are common/parse.c's (fuzz_parse.c).
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
	char err[512] = "", *s;
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
	s = strndup((const char *)data, size); /* a label is a C string */
	if (!s)
		return 0;
	/* A progress line with any label, at any width, fits its bound. */
	struct skyctl_progress p = { .label = s, .unit = size % 2 ? "chunks" : NULL, .done = size * 977,
				     .total = size % 3 ? size * 1021 : 0, .elapsed_ms = size * 13 };
	char line[4 * SKYCTL_PROGRESS_MAX_WIDTH + 1];
	for (size_t width = 0; width <= SKYCTL_PROGRESS_MAX_WIDTH + 8; width += 7) {
		if (skyctl_format_progress(&p, width, line, sizeof(line)) < 0 ||
		    strnlen(line, sizeof(line)) >= sizeof(line))
			abort();
	}
	free(s);
	return 0;
}
