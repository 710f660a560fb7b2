/* What people may change of a board, an image or a guest (PATCH, docs/api.md
 * "Names, labels and descriptions"): the name, labels and a description,
 * and the etag of that.  Pure functions, for the unit tests and the fuzzer;
 * api_meta.c keeps them in the database. */
#ifndef SKY_CONTROLLER_API_META_H
#define SKY_CONTROLLER_API_META_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/limits.h"

#define API_LABELS_MAX 32u          /* labels of one object */
#define API_LABEL_KEY_MAX 63u       /* bytes: [A-Za-z0-9._/-], starting with a letter or digit */
#define API_LABEL_VALUE_MAX 255u    /* bytes of UTF-8, no control characters; may be empty */
#define API_DESCRIPTION_MAX 1024u   /* bytes of UTF-8, no control characters but newline and tab */
#define API_ETAG_MAX 24             /* "\"" 16 hex "\"" and NUL, with room */
#define API_META_ERR_MAX 256

struct api_patch {
	bool has_name;
	char name[SKY_NAME_MAX + 1];
	bool has_description;
	char description[API_DESCRIPTION_MAX + 1];
	json_t *labels;             /* owned: {"key": "value" | null (remove)}; NULL when absent */
};

/* A PATCH body: {"name": ..., "labels": {...}, "description": ...}, each
 * optional, at least one; a name must not begin with id_prefix.  0, or
 * -EINVAL with a message in err (out untouched). */
int api_patch_parse(const void *body, size_t len, const char *id_prefix, struct api_patch *out, char *err,
		    size_t errlen);
void api_patch_free(struct api_patch *p);

bool api_label_key_ok(const char *key);
bool api_label_value_ok(const char *value);
/* Apply the patch's labels (null removes) to labels: 0, or -EINVAL with a
 * message when the result would have more than API_LABELS_MAX. */
int api_labels_merge(json_t *labels, const json_t *patch, char *err, size_t errlen);
/* The etag of what PATCH changes: "\"<16 hex>\"" (quotes included). */
void api_meta_etag(const char *name, const char *description, const json_t *labels, char out[API_ETAG_MAX]);
/* A label filter "key=value" or "key" (has the label): 0 or -EINVAL. */
int api_label_filter_parse(const char *s, char key[API_LABEL_KEY_MAX + 1], char value[API_LABEL_VALUE_MAX + 1],
			   bool *has_value);

#endif
