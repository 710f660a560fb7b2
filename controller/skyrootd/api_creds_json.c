/* The bodies of /v1/credentials and /v1/audit (api_creds_json.h). */
#include "controller/skyrootd/api_creds_json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/api_json.h"

#define ACJ_CREATE_EXAMPLE "{\"name\": \"ci\", \"role\": \"operator\", \"ttl_seconds\": 86400}"
#define ACJ_ROTATE_EXAMPLE "{\"grace_seconds\": 300}"

/* The body's parts are checked by api_json.c's helpers, the same words as
 * the other bodies of the API. */
int api_creds_parse_create(const void *body, size_t len, struct api_cred_request *out, char *err, size_t errlen)
{
	static const char *const known[] = { "name", "role", "ttl_seconds", NULL };
	static const char what[] = "credential";
	struct api_cred_request req = { .role = CREDS_NONE };
	const char *name, *role;
	json_t *root = NULL;
	uint64_t ttl = 0;
	int r;

	r = api_json_load_object(body, len, what, ACJ_CREATE_EXAMPLE, &root, err, errlen);
	if (r == 0)
		r = api_json_known_keys(root, what, known, err, errlen);
	if (r < 0)
		goto out;
	name = json_string_value(json_object_get(root, "name"));
	role = json_string_value(json_object_get(root, "role"));
	if (!json_object_get(root, "name") || !json_object_get(root, "role")) {
		snprintf(err, errlen, "the body must have a name and a role, like %s", ACJ_CREATE_EXAMPLE);
		r = -EINVAL;
	} else if (!name || !creds_name_ok(name)) {
		snprintf(err, errlen,
			 "name must be 1 to %d letters, digits, '.', '_' or '-', not starting with '.' or '-'",
			 CREDS_NAME_MAX - 1);
		r = -EINVAL;
	} else if (creds_role_parse(role, &req.role) < 0) {
		snprintf(err, errlen, "role must be reader, operator or admin");
		r = -EINVAL;
	} else {
		r = api_json_get_uint(root, "ttl_seconds", what, API_CRED_TTL_MIN, API_CRED_TTL_MAX,
				      " seconds (null or left out: never expires)", &ttl, err, errlen);
	}
	if (r < 0)
		goto out;
	snprintf(req.name, sizeof(req.name), "%s", name);
	req.ttl_seconds = (int64_t)ttl;
	*out = req;
	r = 0;
out:
	json_decref(root);
	return r;
}

int api_creds_parse_rotate(const void *body, size_t len, int64_t *grace, char *err, size_t errlen)
{
	static const char *const known[] = { "grace_seconds", NULL };
	static const char what[] = "rotate";
	json_t *root = NULL;
	uint64_t g = 0;
	int r;

	if (len == 0 || api_json_blank(body, len)) {
		*grace = 0;
		return 0;
	}
	r = api_json_load_object(body, len, what, ACJ_ROTATE_EXAMPLE, &root, err, errlen);
	if (r == 0)
		r = api_json_known_keys(root, what, known, err, errlen);
	if (r == 0)
		r = api_json_get_uint(root, "grace_seconds", what, 0, CREDS_GRACE_MAX,
				      " seconds (the old token's life after the rotation; 0 ends it at once)", &g, err,
				      errlen);
	if (r >= 0) {
		*grace = (int64_t)g;
		r = 0;
	}
	json_decref(root);
	return r;
}

int api_creds_parse_limit(const char *query, size_t len, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	const char *p = query, *end = query ? query + len : NULL;
	unsigned seen = 0;
	char val[24];
	uint64_t n;
	int r;

	*out = max < AUDIT_LIMIT_DEFAULT ? max : AUDIT_LIMIT_DEFAULT;
	/* limit, once, and nothing else: a misspelt parameter is refused,
	 * not ignored (as the lists do). */
	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		size_t kl = (size_t)(stop - p);
		const char *eq = memchr(p, '=', kl);

		kl = eq ? (size_t)(eq - p) : kl;
		if (stop > p && (kl != 5 || memcmp(p, "limit", 5) != 0)) {
			snprintf(err, errlen, "unknown query parameter '%.*s'; the audit log takes only limit (1 to %llu)",
				 (int)(kl > 40 ? 40 : kl), p, (unsigned long long)max);
			return -EINVAL;
		}
		if (stop > p && ++seen > 1) {
			snprintf(err, errlen, "query parameter 'limit' is given twice; give it once");
			return -EINVAL;
		}
		p = amp ? amp + 1 : end;
	}
	r = api_json_query_get(query, len, "limit", val, sizeof(val));
	if (r == -ENOENT && !seen)
		return 0;
	if (r < 0 || sky_parse_uint(val, 1, max, &n) < 0) {
		snprintf(err, errlen, "limit must be a whole number from 1 to %llu (?limit=%d shows the %d newest "
			 "entries)", (unsigned long long)max, AUDIT_LIMIT_DEFAULT, AUDIT_LIMIT_DEFAULT);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

json_t *api_creds_json(const struct creds_row *c, int64_t now)
{
	static const char *const states[] = { "active", "expired", "revoked" };
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	bad |= json_object_set_new(o, "name", json_string(c->name));
	bad |= json_object_set_new(o, "role", json_string(creds_role_name(c->role)));
	bad |= json_object_set_new(o, "state", json_string(states[creds_state(c, now)]));
	bad |= json_object_set_new(o, "created_at", api_json_time(c->created_at));
	bad |= json_object_set_new(o, "expires_at", api_json_time(c->expires_at));
	bad |= json_object_set_new(o, "rotated_at", api_json_time(c->rotated_at));
	bad |= json_object_set_new(o, "old_secret_expires_at", api_json_time(c->old_until > now ? c->old_until : 0));
	bad |= json_object_set_new(o, "revoked_at", api_json_time(c->revoked_at));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *api_creds_audit_json(const struct audit_entry *e)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	bad |= json_object_set_new(o, "seq", json_integer(e->seq));
	bad |= json_object_set_new(o, "created_at", api_json_time(e->at));
	bad |= json_object_set_new(o, "credential", json_string(e->credential));
	bad |= json_object_set_new(o, "peer", json_string(e->peer));
	bad |= json_object_set_new(o, "method", json_string(e->method));
	bad |= json_object_set_new(o, "path", json_string(e->path));
	bad |= json_object_set_new(o, "status", json_integer(e->status));
	bad |= json_object_set_new(o, "request_id", json_string(e->request_id));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
