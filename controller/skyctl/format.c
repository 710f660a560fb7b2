/* skyctl's text for people: clocks and progress lines; see format.h. */
#include "controller/skyctl/format.h"

#include "common/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int skyctl_format_clock(uint64_t seconds, char *buf, size_t len)
{
	char tmp[32];
	uint64_t h = seconds / 3600;
	unsigned m = (unsigned)(seconds / 60 % 60), s = (unsigned)(seconds % 60);
	int n;

	if (h > 0)
		n = snprintf(tmp, sizeof(tmp), "%llu:%02u:%02u", (unsigned long long)h, m, s);
	else
		n = snprintf(tmp, sizeof(tmp), "%u:%02u", m, s);
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	memcpy(buf, tmp, (size_t)n + 1);
	return 0;
}

#define FMT_BAR_MIN 10             /* columns inside the brackets */
#define FMT_BAR_MAX 40

/* Columns of a UTF-8 string, one per character: near enough for ids. */
static size_t fmt_columns(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Append src to dst (a buffer of cap bytes holding *n bytes), at most cols
 * columns of it, never splitting a UTF-8 character; control bytes become
 * '?'.  Returns the columns appended. */
static size_t fmt_append(char *dst, size_t cap, size_t *n, const char *src, size_t cols)
{
	size_t w = 0;

	for (size_t i = 0; src[i] != '\0';) {
		size_t clen = 1;
		unsigned char c = (unsigned char)src[i];

		while (((unsigned char)src[i + clen] & 0xc0) == 0x80)
			clen++;
		if (w == cols || *n + clen >= cap)
			break;
		if (c < 0x20 || c == 0x7f) {
			dst[(*n)++] = '?';
		} else {
			memcpy(dst + *n, src + i, clen);
			*n += clen;
		}
		i += clen;
		w++;
	}
	dst[*n] = '\0';
	return w;
}

/* done/total in whole percent, 100 only when done; total > 0. */
static unsigned fmt_percent(uint64_t done, uint64_t total)
{
	unsigned pc;

	if (done >= total)
		return 100;
	pc = (unsigned)((double)done * 100.0 / (double)total);
	return pc > 99 ? 99 : pc;
}

int skyctl_format_progress(const struct skyctl_progress *p, size_t width, char *buf, size_t len)
{
	char a[32], b[32], amount[96], pct[8] = "", rate[48] = "", clock[48] = "", tail[104];
	char line[4 * SKYCTL_PROGRESS_MAX_WIDTH + 1];
	size_t cols, fixed, label_cols = 0, bar = 0, n = 0;

	if (width < SKYCTL_PROGRESS_MIN_WIDTH)
		width = SKYCTL_PROGRESS_MIN_WIDTH;
	if (width > SKYCTL_PROGRESS_MAX_WIDTH)
		width = SKYCTL_PROGRESS_MAX_WIDTH;
	cols = width - 1;

	if (p->unit == NULL) {
		sky_format_size(p->done, a, sizeof(a));
		if (p->total > 0) {
			/* Done as wide as the total, so that the line does not jitter. */
			sky_format_size(p->total, b, sizeof(b));
			snprintf(amount, sizeof(amount), "%*s / %s", (int)strlen(b), a, b);
		} else {
			snprintf(amount, sizeof(amount), "%s", a);
		}
	} else if (p->total > 0) {
		snprintf(b, sizeof(b), "%llu", (unsigned long long)p->total);
		snprintf(amount, sizeof(amount), "%*llu/%s %.32s", (int)strlen(b), (unsigned long long)p->done,
			 b, p->unit);
	} else {
		snprintf(amount, sizeof(amount), "%llu %.32s", (unsigned long long)p->done, p->unit);
	}
	if (p->total > 0)
		snprintf(pct, sizeof(pct), "%3u%%", fmt_percent(p->done, p->total));
	if (p->unit == NULL && p->elapsed_ms > 0) {
		double r = (double)p->done * 1000.0 / (double)p->elapsed_ms;
		sky_format_size(r >= 1.8e19 ? UINT64_MAX : (uint64_t)r, a, sizeof(a));
		snprintf(rate, sizeof(rate), "%s/s", a);
	}
	if (p->total > 0 && p->done < p->total) {
		if (p->done > 0 && p->elapsed_ms > 0) {
			double left = (double)(p->total - p->done) * (double)p->elapsed_ms / (double)p->done / 1000.0;
			/* Round up: "ETA 0:00" only when it is done. */
			uint64_t s = left >= 3.6e15 ? (uint64_t)3.6e15 : (uint64_t)left;
			if ((double)s < left)
				s++;
			skyctl_format_clock(s, a, sizeof(a));
			snprintf(clock, sizeof(clock), "ETA %s", a);
		} else {
			snprintf(clock, sizeof(clock), "ETA -:--");
		}
	} else {
		skyctl_format_clock(p->elapsed_ms / 1000, a, sizeof(a));
		snprintf(clock, sizeof(clock), "%s elapsed", a);
	}
	/* [label  ]amount[  pct][ [bar]][  rate]  clock.  The rate goes when the
	 * numbers do not fit with it, the label is cut to the room left, the bar
	 * takes what remains (or goes), and a line still too wide is cut. */
	fixed = strlen(amount) + (pct[0] ? 2 + strlen(pct) : 0) + 2 + strlen(clock);
	if (fixed + 2 + strlen(rate) > cols)
		rate[0] = '\0';
	snprintf(tail, sizeof(tail), "%s%s%s", rate, rate[0] ? "  " : "", clock);
	fixed = strlen(amount) + (pct[0] ? 2 + strlen(pct) : 0) + 2 + strlen(tail);
	if (p->label != NULL && p->label[0] != '\0') {
		label_cols = fmt_columns(p->label);
		if (fixed + label_cols + 2 > cols)
			label_cols = fixed + 2 + 3 < cols ? cols - fixed - 2 - 3 : 0; /* room for "..." */
	}
	if (p->total > 0) {
		size_t used = fixed + (label_cols ? label_cols + 2 : 0) + 3; /* " [" "]" */
		if (used + FMT_BAR_MIN <= cols)
			bar = cols - used < FMT_BAR_MAX ? cols - used : FMT_BAR_MAX;
	}

	line[0] = '\0';
	if (label_cols > 0) {
		size_t got = fmt_append(line, sizeof(line), &n, p->label, label_cols);
		if (got < fmt_columns(p->label))
			fmt_append(line, sizeof(line), &n, "...", 3);
		fmt_append(line, sizeof(line), &n, "  ", 2);
	}
	fmt_append(line, sizeof(line), &n, amount, SIZE_MAX);
	if (pct[0]) {
		fmt_append(line, sizeof(line), &n, "  ", 2);
		fmt_append(line, sizeof(line), &n, pct, SIZE_MAX);
	}
	if (bar > 0) {
		size_t fill = p->done >= p->total ? bar
				: (size_t)((double)bar * (double)p->done / (double)p->total);
		fmt_append(line, sizeof(line), &n, " [", 2);
		for (size_t i = 0; i < bar; i++)
			fmt_append(line, sizeof(line), &n, i < fill ? "#" : "-", 1);
		fmt_append(line, sizeof(line), &n, "]", 1);
	}
	fmt_append(line, sizeof(line), &n, "  ", 2);
	fmt_append(line, sizeof(line), &n, tail, SIZE_MAX);
	/* Too narrow for even the numbers: cut the line. */
	if (fmt_columns(line) > cols) {
		size_t m = 0;
		char cut[sizeof(line)];
		fmt_append(cut, sizeof(cut), &m, line, cols);
		memcpy(line, cut, m + 1);
		n = m;
	}
	if (n + 1 > len)
		return -ENOBUFS;
	memcpy(buf, line, n + 1);
	return 0;
}
