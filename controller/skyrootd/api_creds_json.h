/* The bodies of /v1/credentials and /v1/audit (docs/api.md): requests
 * parsed and bounded, answers built. */
#ifndef SKY_CONTROLLER_API_CREDS_JSON_H
#define SKY_CONTROLLER_API_CREDS_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/skyrootd/audit.h"
#include "controller/skyrootd/creds.h"

/* A credential's ttl_seconds: a minute to ten years. */
#define API_CRED_TTL_MIN 60
#define API_CRED_TTL_MAX (10LL * 366 * 86400)

struct api_cred_request {
	char name[CREDS_NAME_MAX];
	enum creds_role role;
	int64_t ttl_seconds;          /* 0 = never expires */
};

/* POST /v1/credentials: {"name", "role", "ttl_seconds"?}.  0, or -EINVAL
 * with a message for the client in err. */
int api_creds_parse_create(const void *body, size_t len, struct api_cred_request *out, char *err, size_t errlen);
/* POST /v1/credentials/{name}/rotate: {"grace_seconds"?} or no body. */
int api_creds_parse_rotate(const void *body, size_t len, int64_t *grace, char *err, size_t errlen);
/* ?limit=N of GET /v1/audit (query raw, may be NULL): 1..max. */
int api_creds_parse_limit(const char *query, size_t len, uint64_t max, uint64_t *out, char *err, size_t errlen);

json_t *api_creds_json(const struct creds_row *c, int64_t now);
json_t *api_creds_audit_json(const struct audit_entry *e);

#endif
