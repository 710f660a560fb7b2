/* skyctl's text for people: clocks and progress lines (sizes are
 * sky_format_size() of common/parse.h).  Pure
 * functions (no I/O), tested in tests/unit/test_skyctl_conf.c. */
#ifndef SKY_SKYCTL_FORMAT_H
#define SKY_SKYCTL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* Seconds as a clock: 42 -> "0:42", 725 -> "12:05", 3723 -> "1:02:03".
 * -ENOBUFS when it does not fit in len bytes (32 always do). */
int skyctl_format_clock(uint64_t seconds, char *buf, size_t len);

/* One line of a progress display. */
struct skyctl_progress {
	const char *label;   /* printed first, e.g. "img-5e0c9a1b2c3d"; NULL for none */
	const char *unit;    /* NULL: done and total are bytes (sizes, rate, ETA);
			      * else the plural of what is counted, e.g. "chunks" */
	uint64_t done;
	uint64_t total;      /* 0 when unknown (a stream): no percentage, bar or ETA */
	uint64_t elapsed_ms; /* since the transfer began */
};

#define SKYCTL_PROGRESS_MIN_WIDTH 20
#define SKYCTL_PROGRESS_MAX_WIDTH 200

/* Format p as one line of at most width - 1 columns (the last column of a
 * terminal is left free so that the line never wraps), e.g.
 *   "123.4 MiB / 300.0 MiB   41% [#####-------]  85.2 MiB/s  ETA 0:02"
 *   "12.0 MiB  4.0 MiB/s  0:03 elapsed"               (total unknown)
 *   "img-5e0c9a1b2c3d   12/257 chunks    4% [-------]  ETA 1:02"
 * The bar shrinks with width and is left out when there is no room; a label
 * that does not fit is cut.  width is taken as at least
 * SKYCTL_PROGRESS_MIN_WIDTH and at most SKYCTL_PROGRESS_MAX_WIDTH.
 * Control bytes in the label are shown as '?'.  -ENOBUFS when the line
 * does not fit in len bytes (4 * width + 1 always do: a label may hold
 * UTF-8); buf is not written then. */
int skyctl_format_progress(const struct skyctl_progress *p, size_t width, char *buf, size_t len);

#endif
