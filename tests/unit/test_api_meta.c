/* PATCH bodies, labels, label filters and etags (controller/skyrootd/api_meta_parse.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controller/skyrootd/api_meta.h"

static int parse(const char *body, struct api_patch *p, char *err)
{
	return api_patch_parse(body, strlen(body), "brd-", p, err, API_META_ERR_MAX);
}

static void test_patch_accepted(void **state)
{
	struct api_patch p;
	char err[API_META_ERR_MAX];

	(void)state;
	assert_int_equal(parse("{\"name\": \"rack1-07\", \"labels\": {\"zone\": \"eu-1\", \"old\": null, "
			       "\"k8s.io/role\": \"\"}, \"description\": \"top\\nshelf\"}",
			       &p, err),
			 0);
	assert_true(p.has_name);
	assert_string_equal(p.name, "rack1-07");
	assert_true(p.has_description);
	assert_string_equal(p.description, "top\nshelf");
	assert_int_equal(json_object_size(p.labels), 3);
	api_patch_free(&p);
	assert_int_equal(parse("{\"description\": \"\"}", &p, err), 0);
	assert_false(p.has_name);
	assert_null(p.labels);
	api_patch_free(&p);
}

static void refused(const char *body, const char *needle)
{
	struct api_patch p, mark;
	char err[API_META_ERR_MAX] = "";

	memset(&p, 0x5a, sizeof(p));
	memset(&mark, 0x5a, sizeof(mark));
	assert_int_equal(parse(body, &p, err), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("'%s': message '%s' lacks '%s'", body, err, needle);
	assert_memory_equal(&p, &mark, sizeof(p)); /* untouched */
}

static void test_patch_refused(void **state)
{
	char big[2048];

	(void)state;
	refused("", "the PATCH body is empty; send an object like {\"name\"");
	refused(" \n", "the PATCH body is empty");
	refused("{", "the PATCH body is not valid JSON");
	refused("[]", "the PATCH body must be a JSON object like {\"name\"");
	refused("{}", "changes nothing");
	refused("{\"colour\": 1}", "unknown field 'colour' in the PATCH body; known: name, labels, description");
	refused("{\"name\": \"brd-1\"}", "name must be");
	refused("{\"name\": \"-x\"}", "name must be");
	refused("{\"name\": \"a b\"}", "name must be");
	refused("{\"name\": 5}", "name must be");
	refused("{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "name must be");
	refused("{\"labels\": [\"a\"]}", "labels must be an object");
	refused("{\"labels\": {\"\": \"a\"}}", "label key");
	refused("{\"labels\": {\"-a\": \"a\"}}", "label key");
	refused("{\"labels\": {\"a b\": \"a\"}}", "label key");
	refused("{\"labels\": {\"a\": 1}}", "label 'a' must be");
	refused("{\"labels\": {\"a\": \"\\u0001\"}}", "label 'a' must be");
	refused("{\"description\": \"\\u0007\"}", "description must be");
	refused("{\"name\": \"a\", \"name\": \"b\"}", "duplicate object key"); /* said, where */
	memset(big, 'x', sizeof(big));
	memcpy(big, "{\"description\": \"", 17);
	memcpy(big + 17 + 1025, "\"}", 3);
	refused(big, "description must be");
}

static void test_labels_merge(void **state)
{
	json_t *labels = json_pack("{s:s, s:s}", "a", "1", "b", "2");
	json_t *patch = json_pack("{s:n, s:s}", "a", "c", "3");
	char err[API_META_ERR_MAX];

	(void)state;
	assert_int_equal(api_labels_merge(labels, patch, err, sizeof(err)), 0);
	assert_null(json_object_get(labels, "a"));
	assert_string_equal(json_string_value(json_object_get(labels, "c")), "3");
	assert_int_equal(json_object_size(labels), 2);
	json_decref(patch);
	patch = json_object();
	for (unsigned i = 0; i < API_LABELS_MAX; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%u", i);
		json_object_set_new(patch, k, json_string("v"));
	}
	assert_int_equal(api_labels_merge(labels, patch, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at most"));
	json_decref(patch);
	json_decref(labels);
}

static void test_etag(void **state)
{
	json_t *l1 = json_pack("{s:s, s:s}", "a", "1", "b", "2");
	json_t *l2 = json_pack("{s:s, s:s}", "b", "2", "a", "1");
	json_t *l3 = json_pack("{s:s}", "a", "1");
	char e1[API_ETAG_MAX], e2[API_ETAG_MAX], e3[API_ETAG_MAX], e4[API_ETAG_MAX], e5[API_ETAG_MAX];

	(void)state;
	api_meta_etag("n", "d", l1, e1);
	api_meta_etag("n", "d", l2, e2);
	api_meta_etag("n", "d", l3, e3);
	api_meta_etag("m", "d", l1, e4);
	api_meta_etag("n", "", l1, e5);
	assert_int_equal(strlen(e1), 18);
	assert_true(e1[0] == '"' && e1[17] == '"');
	assert_string_equal(e1, e2); /* the order of labels does not matter */
	assert_string_not_equal(e1, e3);
	assert_string_not_equal(e1, e4);
	assert_string_not_equal(e1, e5);
	/* "ab" + "" is not "a" + "b" */
	api_meta_etag("ab", "", l3, e1);
	api_meta_etag("a", "b", l3, e2);
	assert_string_not_equal(e1, e2);
	json_decref(l1);
	json_decref(l2);
	json_decref(l3);
}

static void test_label_filter(void **state)
{
	char k[API_LABEL_KEY_MAX + 1], v[API_LABEL_VALUE_MAX + 1];
	bool has;

	(void)state;
	assert_int_equal(api_label_filter_parse("zone=eu-1", k, v, &has), 0);
	assert_string_equal(k, "zone");
	assert_string_equal(v, "eu-1");
	assert_true(has);
	assert_int_equal(api_label_filter_parse("zone", k, v, &has), 0);
	assert_false(has);
	assert_int_equal(api_label_filter_parse("a=b=c", k, v, &has), 0);
	assert_string_equal(v, "b=c");
	assert_int_equal(api_label_filter_parse("zone=", k, v, &has), 0);
	assert_true(has);
	assert_string_equal(v, "");
	assert_int_equal(api_label_filter_parse("", k, v, &has), -EINVAL);
	assert_int_equal(api_label_filter_parse("=x", k, v, &has), -EINVAL);
	assert_int_equal(api_label_filter_parse("a b=x", k, v, &has), -EINVAL);
	assert_int_equal(api_label_filter_parse("a=\x01", k, v, &has), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_patch_accepted),
		cmocka_unit_test(test_patch_refused),
		cmocka_unit_test(test_labels_merge),
		cmocka_unit_test(test_etag),
		cmocka_unit_test(test_label_filter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
