/* libFuzzer target: the pure parsers of skyrootd's request bodies and query
 * strings (controller/skyrootd/api_json.c).  The first byte picks the
 * parser: guest, fetch, boot, token body, or a query string.
 *
 * Accepted bodies give values within the shared limits (common/limits.h),
 * NUL-terminated within their fields; refused ones give a message and
 * leave the output untouched.  A query string gives its first "name"
 * (repeated keys: the first counts), decoded, or -ENOENT when there is
 * none (no query at all included), or -EINVAL for a bad escape. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyrootd/api_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MARK 0x5a

static bool fz_untouched(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((const unsigned char *)p)[i] != FZ_MARK)
			return false;
	return true;
}

static bool fz_terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static void fz_check(int r, const char *err, const void *out, size_t n)
{
	if (r == 0)
		return;
	if (r != -EINVAL || !err[0] || !fz_terminated(err, API_JSON_ERR_MAX) || !fz_untouched(out, n))
		abort();
}

/* The first "name=" of a query ("a=1&name=x&name=y": the first one
 * counts), found here by a plain scan: its value, or NULL. */
static const char *fz_first_name(const char *q, size_t len, size_t *vlen)
{
	for (size_t i = 0; i < len;) {
		const char *amp = memchr(q + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - q) : len;

		if (end - i > 5 - 1 && memcmp(q + i, "name=", 5) == 0) {
			*vlen = end - i - 5;
			return q + i + 5;
		}
		i = end + 1;
	}
	return NULL;
}

/* A query string: the first "name" decoded (as a path segment is), within
 * out; no "name" at all is -ENOENT; a bad escape is -EINVAL. */
static void fz_query(const char *q, size_t len)
{
	char out[32], want[32];
	size_t vlen = 0;
	const char *v = fz_first_name(q, len, &vlen);
	int r, w;

	memset(out, 'x', sizeof(out));
	r = api_json_query_get(len ? q : NULL, len, "name", out, sizeof(out));
	if (!v) {
		if (r != -ENOENT)
			abort();
		return;
	}
	w = api_json_decode_segment(v, vlen, want, sizeof(want));
	if ((r == 0) != (w == 0) || (r < 0 && r != -EINVAL))
		abort();
	if (r == 0 && (!fz_terminated(out, sizeof(out)) || strcmp(out, want) != 0 || strlen(out) > vlen))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[API_JSON_ERR_MAX];
	int r;

	if (size == 0)
		return 0;
	err[0] = '\0';
	switch (data[0] % 5) {
	case 0: {
		struct api_guest_body *g = malloc(sizeof(*g));
		if (!g)
			return 0;
		memset(g, FZ_MARK, sizeof(*g));
		r = api_json_parse_guest_request(data + 1, size - 1, g, err, sizeof(err));
		fz_check(r, err, g, sizeof(*g));
		if (r == 0 && (g->vcpus < 1 || g->vcpus > SKY_GUEST_VCPUS_MAX || g->memory_bytes < SKY_GUEST_MEMORY_MIN ||
			       g->memory_bytes > SKY_GUEST_MEMORY_MAX || g->n_devices > SKY_GUEST_DEVICES_MAX ||
			       !g->name[0] || !g->kernel[0] || !fz_terminated(g->cmdline, sizeof(g->cmdline)) ||
			       !fz_terminated(g->name, sizeof(g->name)) || strlen(g->name) > SKY_NAME_MAX))
			abort();
		free(g);
		break;
	}
	case 1: {
		struct api_fetch_body f;
		memset(&f, FZ_MARK, sizeof(f));
		r = api_json_parse_fetch_request(data + 1, size - 1, &f, err, sizeof(err));
		fz_check(r, err, &f, sizeof(f));
		if (r == 0 && (!f.image[0] || !fz_terminated(f.image, sizeof(f.image))))
			abort();
		break;
	}
	case 2: {
		struct api_boot_body *b = malloc(sizeof(*b));
		if (!b)
			return 0;
		memset(b, FZ_MARK, sizeof(*b));
		r = api_json_parse_boot_request(data + 1, size - 1, b, err, sizeof(err));
		fz_check(r, err, b, sizeof(*b));
		if (r == 0 && (!b->kernel[0] || !fz_terminated(b->cmdline, sizeof(b->cmdline)) ||
			       strlen(b->cmdline) > SKY_GUEST_CMDLINE_MAX))
			abort();
		free(b);
		break;
	}
	case 3: {
		struct api_token_request t;
		memset(&t, FZ_MARK, sizeof(t));
		r = api_json_parse_token_request(data + 1, size - 1, &t, err, sizeof(err));
		fz_check(r, err, &t, sizeof(t));
		break;
	}
	default:
		fz_query((const char *)data + 1, size - 1);
		break;
	}
	return 0;
}
