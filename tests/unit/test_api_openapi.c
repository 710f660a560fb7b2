/* The OpenAPI document of the route tables (controller/skyrootd/api_openapi.c):
 * every route and method of the tables is an operation, every operation
 * is a route, every $ref resolves, the messages' fields are the schemas'
 * properties.  And every method of every route names its answer (a
 * message of proto/api.proto, or the media type of one that is not), so
 * that a route added without a schema fails here; and no request body's
 * message can nest without end (protobuf-c unpacks by recursion).
 * (tests/integration/api_schema.py checks it over HTTP and through a real
 * validator.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controller/skyrootd/api_priv.h"

static const char *const methods[] = { "get", "post", "delete", "patch" };
static const char *const row_fields[] = { "get_s", "post_s", "del_s", "patch_s" };
static const enum http_verb verbs[] = { HTTP_VERB_GET, HTTP_VERB_POST, HTTP_VERB_DELETE, HTTP_VERB_PATCH };

/* A row's path as the document writes it. */
static void doc_path(const struct api_route *rt, char *out, size_t n)
{
	size_t k = (size_t)snprintf(out, n, "%s", rt->path);

	for (const char *s = rt->segment ? rt->placeholder : ""; *s && k + 5 < n; s++) {
		if (*s == '|') {
			memcpy(out + k, "_or_", 4);
			k += 4;
		} else {
			out[k++] = *s;
		}
	}
	out[k] = '\0';
}

/* One operation of the tables: a row and a method (methods[k]). */
struct op {
	const struct api_route *rt;
	size_t k;
	const struct api_schema *sc;
	char path[160];               /* as the document writes it */
};

#define OPS_MAX 256

/* Every operation of the route tables into ops: how many. */
static size_t all_ops(struct op *ops)
{
	size_t n_tables, n = 0;
	const struct api_route *const *tables = api_route_tables(&n_tables);

	for (size_t t = 0; t < n_tables; t++) {
		for (const struct api_route *rt = tables[t]; rt->path; rt++) {
			for (size_t k = 0; k < 4; k++) {
				const struct api_schema *sc = api_route_schema(rt, verbs[k]);
				if (!sc)
					continue;
				assert_true(n < OPS_MAX);
				ops[n] = (struct op){ .rt = rt, .k = k, .sc = sc };
				doc_path(rt, ops[n].path, sizeof(ops[n].path));
				n++;
			}
		}
	}
	return n;
}

/* Every "$ref" under j names a schema of the document. */
static void refs_resolve(json_t *j, json_t *schemas, size_t *n)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach(j, key, v) {
			if (strcmp(key, "$ref") == 0) {
				const char *ref = json_string_value(v);
				assert_non_null(ref);
				assert_int_equal(strncmp(ref, "#/components/schemas/", 21), 0);
				if (!json_object_get(schemas, ref + 21))
					fail_msg("dangling $ref %s", ref);
				(*n)++;
			} else {
				refs_resolve(v, schemas, n);
			}
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			refs_resolve(v, schemas, n);
	}
}

static void test_both_ways(void **state)
{
	size_t n_tables, doc_ops = 0, refs = 0;
	const struct api_route *const *tables = api_route_tables(&n_tables);
	json_t *doc = api_openapi_doc(tables, n_tables), *paths, *schemas, *item, *op;
	struct op all[OPS_MAX];
	size_t ops = all_ops(all);
	const char *path, *m;

	(void)state;
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
	paths = json_object_get(doc, "paths");
	schemas = json_object_get(json_object_get(doc, "components"), "schemas");
	for (size_t i = 0; i < ops; i++) {
		const struct op *o = &all[i];

		op = json_object_get(json_object_get(paths, o->path), methods[o->k]);
		if (!op)
			fail_msg("%s %s is not in the document", methods[o->k], o->path);
		if (o->sc->answer) {
			json_t *media = json_object_get(json_object_get(json_object_get(
				json_object_get(op, "responses"), "2XX"), "content"), API_PROTOBUF);
			assert_non_null(media);
			assert_non_null(json_object_get(schemas, o->sc->answer->short_name));
		}
		if (o->sc->request)
			assert_non_null(json_object_get(op, "requestBody"));
	}
	json_object_foreach(paths, path, item) {
		json_object_foreach(item, m, op)
			doc_ops++;
	}
	assert_int_equal(doc_ops, ops); /* and nothing else */
	assert_true(ops > 30);
	refs_resolve(doc, schemas, &refs);
	assert_true(refs > ops);
	/* A schema's properties are its message's fields, nothing else. */
	{
		json_t *props = json_object_get(json_object_get(schemas, "Guest"), "properties");
		const ProtobufCMessageDescriptor *d = API_MSG(guest);
		assert_int_equal(json_object_size(props), d->n_fields);
		for (unsigned i = 0; i < d->n_fields; i++)
			assert_non_null(json_object_get(props, d->fields[i].name));
		assert_string_equal(json_string_value(json_object_get(json_object_get(props, "created_at"), "format")),
				    "date-time");
		assert_true(json_is_true(json_object_get(json_object_get(props, "disk"), "nullable")));
	}
	json_decref(doc);
}

/* Every method of every row names its answer: a message, or the media
 * type of an answer that is not one; never both, never neither. */
static void test_every_answer_named(void **state)
{
	size_t n_tables, named = 0, media = 0;
	const struct api_route *const *tables = api_route_tables(&n_tables);
	json_t *doc = api_openapi_doc(tables, n_tables), *paths = json_object_get(doc, "paths");
	struct op all[OPS_MAX];
	size_t ops = all_ops(all);

	(void)state;
	assert_non_null(doc);
	for (size_t i = 0; i < ops; i++) {
		const struct api_schema *sc = all[i].sc;
		const char *p = all[i].path, *method = methods[all[i].k];
		json_t *content;

		if (!sc->answer && !sc->media)
			fail_msg("%s %s names no answer: give its row %s = { ..., API_MSG(x) } (a message of "
				 "proto/api.proto) or { .media = \"text/plain\" }", method, p, row_fields[all[i].k]);
		if (sc->answer && sc->media)
			fail_msg("%s %s names both a message and the media type %s", method, p, sc->media);
		if (sc->stream && !sc->answer)
			fail_msg("%s %s streams %s but names no message for its plain answer", method, p,
				 sc->stream->name);
		content = json_object_get(json_object_get(json_object_get(json_object_get(
			json_object_get(paths, p), method), "responses"), "2XX"), "content");
		assert_non_null(content);
		if (sc->media) {
			media++;
			assert_non_null(json_object_get(content, sc->media));
			assert_null(json_object_get(content, API_PROTOBUF));
		} else {
			named++;
			assert_non_null(json_object_get(content, "application/json"));
		}
		if (sc->stream)
			assert_non_null(json_object_get(content, "application/x-ndjson"));
	}
	/* The text and bytes routes are few; the rest are messages. */
	assert_true(named > 30);
	assert_true(media > 0 && media < 10);
	{
		/* The watch names its items. */
		json_t *ev = json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(
			json_object_get(paths, "/v1/events"), "get"), "responses"), "2XX"), "content"), "application/x-ndjson");
		assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(
						    json_object_get(ev, "schema"), "allOf"), 0), "$ref")),
				    "#/components/schemas/Event");
	}
	json_decref(doc);
}

/* Whether d, or a message it holds at any depth, holds one of the
 * messages on stack (n of them) again: the chain that does, or "" (a
 * depth past 16 counts as nesting too: no request needs it). */
static bool nests(const ProtobufCMessageDescriptor *d, const ProtobufCMessageDescriptor **stack, size_t n, char *chain,
		  size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (stack[i] == d || n >= 16) {
			for (size_t j = 0, k = 0; j <= n && k + 1 < len; j++)
				k += (size_t)snprintf(chain + k, len - k, "%s%s", j ? " > " : "", j < n ? stack[j]->short_name :
										     d->short_name);
			return true;
		}
	stack[n] = d;
	for (unsigned f = 0; f < d->n_fields; f++)
		if (d->fields[f].type == PROTOBUF_C_TYPE_MESSAGE && nests(d->fields[f].descriptor, stack, n + 1, chain, len))
			return true;
	return false;
}

/* protobuf-c unpacks a body by recursion, one level per nested message,
 * with no bound of its own: a request message that can hold itself (as
 * google.protobuf.Value can) would let a 1 MiB body overflow the stack.
 * None may (a label's value is a LabelValue, not a Value). */
static void test_requests_do_not_nest(void **state)
{
	struct op all[OPS_MAX];
	size_t ops = all_ops(all), requests = 0;

	(void)state;
	for (size_t i = 0; i < ops; i++) {
		const ProtobufCMessageDescriptor *stack[17];
		char chain[512] = "";

		if (!all[i].sc->request)
			continue;
		requests++;
		if (nests(all[i].sc->request, stack, 0, chain, sizeof(chain)))
			fail_msg("%s %s takes a %s, which nests without end (%s): protobuf-c would unpack it by "
				 "unbounded recursion; use a message that cannot hold itself (as LabelValue)",
				 methods[all[i].k], all[i].path, all[i].sc->request->name, chain);
	}
	assert_true(requests > 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_ways),
		cmocka_unit_test(test_every_answer_named),
		cmocka_unit_test(test_requests_do_not_nest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
