/* libFuzzer target: the pure parsers of skyrootd's request bodies and query
 * strings (controller/skyrootd/api_json.c).  The first byte picks the
 * parser: guest, fetch, boot, token body, or a query string.
 *
 * Accepted bodies give values within the shared limits (common/limits.h),
 * NUL-terminated within their fields; refused ones give a message and
 * leave the output untouched. */
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
	default: {
		char out[32];
		memset(out, 'x', sizeof(out));
		r = api_json_query_get((const char *)data + 1, size - 1, "name", out, sizeof(out));
		if (r == 0 && !fz_terminated(out, sizeof(out)))
			abort();
		if (r < 0 && r != -ENOENT && r != -EINVAL)
			abort();
		break;
	}
	}
	return 0;
}
