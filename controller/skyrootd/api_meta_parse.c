/* PATCH bodies, labels and etags (api_meta.h): checked here, before any of
 * it reaches the database. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/api_json.h"
#include "controller/skyrootd/api_meta.h"

#define FAIL(...) return (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

bool api_label_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > API_LABEL_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-' && c != '/')))
			return false;
	}
	return true;
}

/* UTF-8 of at most max bytes, without control characters (but those in allow). */
static bool api_meta__text_ok(const char *s, size_t max, const char *allow)
{
	size_t n = strlen(s);

	if (n > max)
		return false;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k;

		if ((c < 0x20 && !(allow && strchr(allow, c))) || c == 0x7f)
			return false;
		k = sky_utf8_seq((const unsigned char *)s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

bool api_label_value_ok(const char *value)
{
	return api_meta__text_ok(value, API_LABEL_VALUE_MAX, NULL);
}

static int api_meta__labels_ok(const json_t *labels, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	if (!json_is_object(labels))
		FAIL("labels must be an object of \"key\": \"value\" (null removes a label)");
	json_object_foreach((json_t *)labels, k, v) {
		if (!api_label_key_ok(k))
			FAIL("label key '%.64s' is not 1 to %u bytes of letters, digits, '.', '_', '-' and '/' starting "
			     "with a letter or digit",
			     k, API_LABEL_KEY_MAX);
		if (!json_is_null(v) && !(json_is_string(v) && api_label_value_ok(json_string_value(v))))
			FAIL("label '%s' must be a string of at most %u bytes of UTF-8 without control characters, or "
			     "null to remove it",
			     k, API_LABEL_VALUE_MAX);
	}
	return 0;
}

#define API_PATCH_EXAMPLE "{\"name\": \"rack1-a\", \"labels\": {\"rack\": \"1\", \"old\": null}}"

int api_patch_parse(const void *body, size_t len, const char *id_prefix, struct api_patch *out, char *err,
		    size_t errlen)
{
	static const char *const known[] = { "name", "labels", "description", NULL };
	struct api_patch p = { 0 };
	json_t *root = NULL, *v;
	const char *k;
	int r = api_json_load_object(body, len, "PATCH", API_PATCH_EXAMPLE, &root, err, errlen);

	if (r == 0)
		r = api_json_known_keys(root, "the PATCH body", known, err, errlen);
	if (r < 0)
		goto out;
	r = -EINVAL;
	json_object_foreach(root, k, v) {
		if (strcmp(k, "name") == 0) {
			const char *s = json_string_value(v);
			if (!s || !sky_name_ok(s, id_prefix)) {
				snprintf(err, errlen,
					 "name must be 1 to %u bytes of letters, digits, '.', '_' and '-', not starting "
					 "with '-', '.' or '%s'",
					 SKY_NAME_MAX, id_prefix);
				goto out;
			}
			p.has_name = true;
			snprintf(p.name, sizeof(p.name), "%s", s);
		} else if (strcmp(k, "description") == 0) {
			const char *s = json_string_value(v);
			if (!s || !api_meta__text_ok(s, API_DESCRIPTION_MAX, "\n\t")) {
				snprintf(err, errlen,
					 "description must be a string of at most %u bytes of UTF-8 without control "
					 "characters (newline and tab are fine)",
					 API_DESCRIPTION_MAX);
				goto out;
			}
			p.has_description = true;
			snprintf(p.description, sizeof(p.description), "%s", s);
		} else {
			if (api_meta__labels_ok(v, err, errlen) < 0)
				goto out;
			p.labels = json_incref(v);
		}
	}
	if (!p.has_name && !p.has_description && !p.labels) {
		snprintf(err, errlen, "the PATCH body changes nothing; give name, labels or description");
		goto out;
	}
	*out = p;
	p.labels = NULL;
	r = 0;
out:
	json_decref(p.labels);
	json_decref(root);
	return r;
}

void api_patch_free(struct api_patch *p)
{
	json_decref(p->labels);
	p->labels = NULL;
}

int api_labels_merge(json_t *labels, const json_t *patch, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)patch, k, v) {
		if (json_is_null(v))
			json_object_del(labels, k);
		else if (json_object_set(labels, k, v) < 0)
			FAIL("out of memory");
	}
	if (json_object_size(labels) > API_LABELS_MAX)
		FAIL("an object has at most %u labels; remove some (\"key\": null) first", API_LABELS_MAX);
	return 0;
}

void api_meta_etag(const char *name, const char *description, const json_t *labels, char out[API_ETAG_MAX])
{
	uint8_t md[32];
	char *canon = labels ? json_dumps(labels, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	const char *l = canon ? canon : "{}";
	const struct sky_piece pieces[] = { { name, strlen(name) + 1 },
					    { description, strlen(description) + 1 },
					    { l, strlen(l) } };
	int r = sky_sha256_pieces(pieces, SKY_ARRAY_SIZE(pieces), md);

	free(canon);
	if (r < 0) /* never matches an If-Match a client could have */
		memset(md, 0, sizeof(md));
	out[0] = '"';
	sky_format_hex(md, 8, out + 1);
	out[17] = '"';
	out[18] = '\0';
}

int api_label_filter_parse(const char *s, char key[API_LABEL_KEY_MAX + 1], char value[API_LABEL_VALUE_MAX + 1],
			   bool *has_value)
{
	const char *eq = strchr(s, '=');
	size_t kl = eq ? (size_t)(eq - s) : strlen(s);

	if (kl == 0 || kl > API_LABEL_KEY_MAX)
		return -EINVAL;
	memcpy(key, s, kl);
	key[kl] = '\0';
	if (!api_label_key_ok(key) || (eq && !api_label_value_ok(eq + 1)))
		return -EINVAL;
	*has_value = eq != NULL;
	snprintf(value, API_LABEL_VALUE_MAX + 1, "%s", eq ? eq + 1 : "");
	return 0;
}
