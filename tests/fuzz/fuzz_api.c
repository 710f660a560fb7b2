/* libFuzzer target: the controller's REST request parts that take client
 * bytes (controller/api_json.c): the POST /v1/tokens body and the
 * percent-decoding of path segments.
 *
 * A token request is either refused with a message or gives values within
 * the bounds of docs/api.md; a decoded segment is bounded, has no NUL,
 * '/' or control character, and is never longer than its input. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyrootd/api_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_token_request req = { .ttl_seconds = -7, .uses = 7 };
	char err[API_JSON_ERR_MAX] = "", seg[128];
	int r;

	r = api_json_parse_token_request(data, size, &req, err, sizeof(err));
	if (r == 0) {
		if (req.ttl_seconds < SKY_TOKEN_TTL_MIN || req.ttl_seconds > SKY_TOKEN_TTL_MAX ||
		    req.uses < SKY_TOKEN_USES_MIN || req.uses > SKY_TOKEN_USES_MAX)
			abort();
	} else {
		if (r != -EINVAL || !err[0] || strnlen(err, sizeof(err)) >= sizeof(err))
			abort();
		if (req.ttl_seconds != -7 || req.uses != 7)
			abort(); /* no out-parameter written on failure */
	}

	memset(seg, 'x', sizeof(seg));
	r = api_json_decode_segment((const char *)data, size, seg, sizeof(seg));
	if (r == 0) {
		size_t n = strnlen(seg, sizeof(seg));
		if (n >= sizeof(seg) || n > size)
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)seg[i] < 0x20 || seg[i] == 0x7f || seg[i] == '/')
				abort();
	} else {
		if (r != -EINVAL && r != -ENAMETOOLONG)
			abort();
		for (size_t i = 0; i < sizeof(seg); i++)
			if (seg[i] != 'x')
				abort();
	}
	return 0;
}
