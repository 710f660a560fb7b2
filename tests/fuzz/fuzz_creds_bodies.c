/* libFuzzer target: the request parsers of /v1/credentials and /v1/audit
 * (controller/skyrootd/api_creds_json.c).  The first byte picks the
 * parser: 0 create body, 1 rotate body, 2 the audit query.
 *
 * Accepted input gives values within their limits (a valid name, a role,
 * a ttl of 0 or 60 s .. API_CRED_TTL_MAX; a grace within CREDS_GRACE_MAX;
 * a limit 1..max); refused input gives -EINVAL and a message. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyrootd/api_creds_json.h"
#include "controller/skyrootd/api_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_LIMIT_MAX 10000

static void fz_refused(int r, const char *err)
{
	if (r != -EINVAL || !err[0] || !memchr(err, '\0', API_JSON_ERR_MAX))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[API_JSON_ERR_MAX];
	int r;

	if (size < 1)
		return 0;
	err[0] = '\0';
	switch (data[0] % 3) {
	case 0: {
		struct api_cred_request req;
		r = api_creds_parse_create(data + 1, size - 1, &req, err, sizeof(err));
		if (r < 0) {
			fz_refused(r, err);
			break;
		}
		if (!creds_name_ok(req.name) || req.role == CREDS_NONE || req.role > CREDS_ADMIN ||
		    (req.ttl_seconds != 0 && (req.ttl_seconds < 60 || req.ttl_seconds > API_CRED_TTL_MAX)))
			abort();
		break;
	}
	case 1: {
		int64_t grace = -1;
		r = api_creds_parse_rotate(data + 1, size - 1, &grace, err, sizeof(err));
		if (r < 0)
			fz_refused(r, err);
		else if (grace < 0 || grace > CREDS_GRACE_MAX)
			abort();
		break;
	}
	default: {
		uint64_t limit = 0;
		r = api_creds_parse_limit((const char *)data + 1, size - 1, FZ_LIMIT_MAX, &limit, err, sizeof(err));
		if (r < 0)
			fz_refused(r, err);
		else if (limit < 1 || limit > FZ_LIMIT_MAX)
			abort();
		break;
	}
	}
	return 0;
}
