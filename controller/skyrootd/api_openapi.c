/* GET /v1/openapi.json: the API's OpenAPI 3.0 document, made once (when
 * first asked) from the route tables (paths, methods, summaries, who may call) and the
 * messages each row names in proto/api.proto (schemas, by walking their
 * descriptors), so it cannot drift from what the controller serves. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"

#define OA_REF "#/components/schemas/"

static json_t *oa_message_ref(json_t *schemas, const ProtobufCMessageDescriptor *d);

static json_t *oa_nullable(json_t *s)
{
	json_object_set_new(s, "nullable", json_true());
	return s;
}

/* The schema of one value of field f (not its repetition). */
static json_t *oa_value(json_t *schemas, const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_pack("{s:s, s:s}", "type", "integer", "format", "int32");
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_pack("{s:s, s:i, s:I}", "type", "integer", "minimum", 0, "maximum", (json_int_t)UINT32_MAX);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_pack("{s:s, s:s}", "type", "integer", "format", "int64");
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return json_pack("{s:s, s:s, s:i}", "type", "integer", "format", "int64", "minimum", 0);
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_pack("{s:s}", "type", "number");
	case PROTOBUF_C_TYPE_BOOL:
		return json_pack("{s:s}", "type", "boolean");
	case PROTOBUF_C_TYPE_STRING:
		return json_pack("{s:s}", "type", "string");
	case PROTOBUF_C_TYPE_BYTES:
		return json_pack("{s:s, s:s}", "type", "string", "format", "byte");
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		json_t *names = json_array();
		for (unsigned i = 0; names && i < ed->n_values; i++)
			json_array_append_new(names, json_string(ed->values[i].name));
		return json_pack("{s:s, s:o}", "type", "string", "enum", names);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return oa_message_ref(schemas, f->descriptor);
	}
	return json_object();
}

/* The schema of a message as JSON writes it: the well-known types inline,
 * the others as a reference into schemas (added on first use). */
static json_t *oa_message_ref(json_t *schemas, const ProtobufCMessageDescriptor *d)
{
	char ref[128];
	json_t *s, *props;

	if (strcmp(d->name, "google.protobuf.Timestamp") == 0)
		return oa_nullable(json_pack("{s:s, s:s}", "type", "string", "format", "date-time"));
	if (strcmp(d->name, "google.protobuf.Value") == 0)
		return oa_nullable(json_object());
	if (strcmp(d->name, "google.protobuf.Struct") == 0)
		return oa_nullable(json_pack("{s:s}", "type", "object"));
	if (strcmp(d->name, "google.protobuf.ListValue") == 0)
		return oa_nullable(json_pack("{s:s, s:{}}", "type", "array", "items"));
	if (strcmp(d->name, "skyroot.api.v1.LabelValue") == 0)
		return oa_nullable(json_pack("{s:s}", "type", "string"));
	if (pbjson_is_wrapper(d))
		return oa_nullable(oa_value(schemas, &d->fields[0]));
	snprintf(ref, sizeof(ref), OA_REF "%s", d->short_name);
	if (!json_object_get(schemas, d->short_name)) {
		s = json_pack("{s:s, s:s, s:b, s:{}}", "type", "object", "x-protobuf-message", d->name,
			      "additionalProperties", 0, "properties");
		if (!s || json_object_set_new(schemas, d->short_name, s) < 0)
			return NULL;
		props = json_object_get(s, "properties");
		for (unsigned i = 0; i < d->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &d->fields[i];
			json_t *v;

			if (pbjson_is_map(f)) {
				const ProtobufCMessageDescriptor *ed = f->descriptor;
				v = json_pack("{s:s, s:o}", "type", "object", "additionalProperties",
					      oa_value(schemas, &ed->fields[1]));
			} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
				v = oa_nullable(json_pack("{s:s, s:o}", "type", "array", "items", oa_value(schemas, f)));
			} else {
				v = oa_value(schemas, f);
			}
			if (!v || json_object_set_new(props, f->name, v) < 0)
				return NULL;
		}
	}
	return oa_nullable(json_pack("{s:[{s:s}]}", "allOf", "$ref", ref));
}

/* The document's path of a row: its placeholder with OpenAPI's parameter
 * syntax ("{id|name}" -> "{id_or_name}"), and that parameter's name. */
static void oa_path(const struct api_route *rt, char *out, size_t outlen, char *param, size_t plen)
{
	size_t n = (size_t)snprintf(out, outlen, "%s", rt->path);
	const char *s = rt->segment && rt->placeholder ? rt->placeholder : "";
	size_t pn = 0;
	bool in = false;

	param[0] = '\0';
	for (; *s && n + 4 < outlen; s++) {
		if (*s == '{')
			in = true;
		else if (*s == '}')
			in = false;
		if (*s == '|') {
			memcpy(out + n, "_or_", 4);
			n += 4;
			if (in && pn + 4 < plen)
				memcpy(param + pn, "_or_", 4), pn += 4;
			continue;
		}
		out[n++] = *s;
		if (in && *s != '{' && pn + 1 < plen)
			param[pn++] = *s;
	}
	out[n] = '\0';
	param[pn] = '\0';
}

static json_t *oa_content(json_t *schemas, const ProtobufCMessageDescriptor *d, bool merge_patch)
{
	json_t *c = json_object(), *ref = oa_message_ref(schemas, d);

	/* The body itself is never null. */
	json_object_del(ref, "nullable");
	json_object_set_new(c, "application/json", json_pack("{s:O}", "schema", ref));
	if (merge_patch)
		json_object_set_new(c, "application/merge-patch+json", json_pack("{s:O}", "schema", ref));
	json_object_set_new(c, API_PROTOBUF, json_pack("{s:O}", "schema", ref));
	json_decref(ref);
	return c;
}

static json_t *oa_operation(json_t *schemas, const struct api_route *rt, const char *method,
			    const struct api_schema *sc, const char *path, const char *param)
{
	json_t *op = json_object(), *responses = json_object(), *ok;
	char id[160];
	size_t n = (size_t)snprintf(id, sizeof(id), "%s", method);
	bool open = strncmp(rt->path, "/v1", 3) != 0 && !rt->reader;

	for (const char *s = path; *s && n + 1 < sizeof(id); s++)
		if (isalnum((unsigned char)*s))
			id[n++] = *s;
		else if (id[n - 1] != '_')
			id[n++] = '_';
	while (n > 0 && id[n - 1] == '_')
		n--;
	id[n] = '\0';
	json_object_set_new(op, "operationId", json_string(id));
	json_object_set_new(op, "summary", json_string(rt->summary ? rt->summary : path));
	if (open)
		json_object_set_new(op, "security", json_array());
	else
		json_object_set_new(op, "description",
				    json_string(rt->admin ? "Role: admin." :
						strcmp(method, "get") == 0 ? "Role: reader or above." :
									    "Role: operator or above."));
	if (param[0])
		json_object_set_new(op, "parameters",
				    json_pack("[{s:s, s:s, s:b, s:{s:s}}]", "name", param, "in", "path", "required", 1,
					      "schema", "type", "string"));
	if (sc->request)
		json_object_set_new(op, "requestBody",
				    json_pack("{s:b, s:o}", "required", 0, "content",
					      oa_content(schemas, sc->request, strcmp(method, "patch") == 0)));
	if (sc->answer) {
		ok = json_pack("{s:s, s:o}", "description", "the answer (JSON, or protobuf when asked)", "content",
			       oa_content(schemas, sc->answer, false));
	} else {
		/* Not a message: text, bytes, or this document (sc->media). */
		const char *media = sc->media ? sc->media : "application/octet-stream";
		bool text = strncmp(media, "text/", 5) == 0, json = strcmp(media, "application/json") == 0;
		json_t *schema = json ? json_pack("{s:s}", "type", "object") :
				 text ? json_pack("{s:s}", "type", "string") :
					json_pack("{s:s, s:s}", "type", "string", "format", "binary");

		ok = json_pack("{s:s, s:{s:{s:o}}}", "description",
			       json ? "JSON that is not a message of proto/api.proto" : text ? "text" : "bytes",
			       "content", media, "schema", schema);
	}
	if (sc->stream && ok) {
		/* A watch: a stream of items (api_priv.h, struct api_schema). */
		json_t *ref = oa_message_ref(schemas, sc->stream), *content = json_object_get(ok, "content");

		json_object_del(ref, "nullable");
		json_object_set_new(content, "application/x-ndjson", json_pack("{s:O}", "schema", ref));
		json_object_set_new(ok, "description",
				    json_sprintf("the answer; with watch=true a stream of %s: JSON lines "
						 "(application/x-ndjson) or, with Accept: %s, each %s packed after "
						 "its length as a varint (length-delimited, as writeDelimitedTo)",
						 sc->stream->short_name, API_PROTOBUF, sc->stream->short_name));
		json_decref(ref);
	}
	json_object_set_new(responses, "2XX", ok);
	json_object_set_new(responses, "default",
			    json_pack("{s:s, s:o}", "description", "an error", "content",
				      oa_content(schemas, API_MSG(error), false)));
	json_object_set_new(op, "responses", responses);
	return op;
}

json_t *api_openapi_doc(const struct api_route *const *tables, size_t n_tables)
{
	json_t *doc, *paths = json_object(), *schemas = json_object();
	static const char *const methods[] = { "get", "post", "delete", "patch" };
	static const enum http_verb verbs[] = { HTTP_VERB_GET, HTTP_VERB_POST, HTTP_VERB_DELETE, HTTP_VERB_PATCH };

	if (!paths || !schemas)
		goto fail;
	json_decref(oa_message_ref(schemas, API_MSG(error))); /* the schema; not the reference */
	for (size_t t = 0; t < n_tables; t++) {
		for (const struct api_route *rt = tables[t]; rt->path; rt++) {
			char path[160], param[64];
			json_t *item;

			oa_path(rt, path, sizeof(path), param, sizeof(param));
			item = json_object_get(paths, path);
			if (!item) {
				item = json_object();
				if (!item || json_object_set_new(paths, path, item) < 0)
					goto fail;
			}
			for (size_t m = 0; m < SKY_ARRAY_SIZE(methods); m++) {
				const struct api_schema *sc = api_route_schema(rt, verbs[m]);
				json_t *op;

				if (!sc)
					continue;
				op = oa_operation(schemas, rt, methods[m], sc, path, param);
				if (!op || json_object_set_new(item, methods[m], op) < 0)
					goto fail;
			}
		}
	}
	doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:[{s:[]}], s:o, s:{s:o, s:{s:{s:s, s:s, s:s}}}}",
			"openapi", "3.0.3", "info", "title", "Skyroot REST API", "version", SKY_VERSION, "description",
			"Made by skyrootd from its route tables and proto/api.proto. Every body and answer is JSON "
			"(proto3's JSON mapping with the proto field names) or, with Content-Type / Accept: "
			"application/x-protobuf, the same message packed. The guide is docs/api.md; the Redfish "
			"service under /redfish/v1 is described there.",
			"servers", "url", "/", "security", "bearer", "paths", paths, "components", "schemas", schemas,
			"securitySchemes", "bearer", "type", "http", "scheme", "bearer", "description",
			"an API credential's token (skyctl credential create)");
	return doc;
fail:
	json_decref(paths);
	json_decref(schemas);
	return NULL;
}

static void api__openapi(struct api_call *call, struct api_reply *rep)
{
	struct api *api = call->api;

	if (!api->openapi)
		api->openapi = api_openapi_doc(api->tables, api->n_tables);
	if (!api->openapi) {
		api_reply_internal(rep, -ENOMEM, "make the OpenAPI document");
		return;
	}
	api_reply_ok(rep, 200, json_incref(api->openapi));
}

const struct api_route api_openapi_routes[] = {
	{ .path = "/v1/openapi.json", API_ALLOW("GET"), .get = api__openapi, .get_s = { .media = "application/json" },
	  .summary = "This document: OpenAPI 3.0, made from the route tables and proto/api.proto" },
	{ .path = NULL },
};
