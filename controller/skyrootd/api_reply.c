/* Answers and lookups that every resource of the API uses, and the two
 * encodings of answers and bodies: JSON, or protobuf through pbjson.c and
 * the route's messages of proto/api.proto. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"

void api_reply_error(struct api_reply *rep, int status, const char *code, const char *fmt, ...)
{
	char msg[API_JSON_ERR_MAX * 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(rep->body);
	rep->status = status;
	rep->body = api_json_error(code, "%s", msg);
}

void api_reply_internal(struct api_reply *rep, int err, const char *what)
{
	/* The store's database unreachable (PostgreSQL down or cut off; the
	 * engine logs the loss and the recovery once): a client may retry,
	 * here or on another controller of the fleet. */
	if (err == -ENOTCONN) {
		api_reply_error(rep, 503, "unavailable", "the controller could not %s: its database is unreachable; "
				"retry later", what);
		rep->headers = "Retry-After: 5\r\n";
		return;
	}
	log_error("api: cannot %s: %s", what, strerror(-err));
	api_reply_error(rep, 500, "internal", "the controller could not %s; see its log", what);
}

void api_reply_ok(struct api_reply *rep, int status, json_t *body)
{
	json_decref(rep->body);
	rep->status = status;
	rep->body = body;
}

void api_reply_list(struct api_reply *rep, const char *key, const char *what, int r, json_t *arr)
{
	if (r < 0) {
		json_decref(arr);
		api_reply_internal(rep, r, what);
		return;
	}
	api_reply_ok(rep, 200, json_pack("{s:o}", key, arr));
}

void api_reply_no_board(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no board named '%s'; see 'skyctl board list'", name);
}

void api_reply_no_image(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no image named '%s'; see 'skyctl image list'", name);
}

void api_reply_no_guest(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no guest named '%s'; see 'skyctl guest list'", name);
}

struct api_conn_state *api_conn_state(struct http_conn *c)
{
	struct api_conn_state *st = http_conn_user(c);

	if (!st) {
		st = calloc(1, sizeof(*st));
		http_conn_set_user(c, st);
	}
	return st;
}

struct api_board_ids {
	char *id, *name;
};

static int api_board__ids_cb(void *ctx, const struct db_board *b)
{
	struct api_board_ids *x = ctx;

	snprintf(x->id, DB_ID_MAX, "%.*s", (int)strnlen(b->id, sizeof(b->id)), b->id);
	snprintf(x->name, DB_NAME_MAX, "%.*s", (int)strnlen(b->name, sizeof(b->name)), b->name);
	return 0;
}

int api_board_lookup(struct controller *ctl, const char *id_or_name, char id[DB_ID_MAX], char name[DB_NAME_MAX])
{
	char i[DB_ID_MAX], n[DB_NAME_MAX];
	struct api_board_ids x = { i, n };
	int r = db_board_get(ctl->db, id_or_name, api_board__ids_cb, &x);

	if (r < 0)
		return r;
	memcpy(id, i, sizeof(i));
	memcpy(name, n, sizeof(n));
	return 0;
}


/* ---- encodings ---- */

const struct api_schema *api_route_schema(const struct api_route *rt, enum http_verb verb)
{
	switch (verb) {
	case HTTP_VERB_GET:
	case HTTP_VERB_HEAD:
		return rt->get ? &rt->get_s : NULL;
	case HTTP_VERB_POST:
		return rt->post ? &rt->post_s : NULL;
	case HTTP_VERB_DELETE:
		return rt->del ? &rt->del_s : NULL;
	case HTTP_VERB_PATCH:
		return rt->patch ? &rt->patch_s : NULL;
	default:
		return NULL;
	}
}

/* Whether the media type at s (up to ';', ',' or the end) is name. */
static bool api_reply__type_is(const char *s, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

static bool api_reply__is_pb(const char *s, size_t n)
{
	return api_reply__type_is(s, n, API_PROTOBUF) || api_reply__type_is(s, n, "application/protobuf");
}

/* An Accept header's q value at s (up to end) in thousandths: "0", "1",
 * "0.5", "0.125" (RFC 9110's qvalue; more digits are taken, not
 * counted); anything else is 0, as if not accepted. */
static int api_reply__qvalue(const char *s, const char *end)
{
	int q, scale = 100;

	if (s >= end || (*s != '0' && *s != '1'))
		return 0;
	q = *s++ == '1' ? 1000 : 0;
	if (s < end && *s == '.')
		for (s++; s < end && *s >= '0' && *s <= '9'; s++, scale /= 10)
			q += (*s - '0') * scale;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s < end && *s != ';')
		return 0;
	return q > 1000 ? 1000 : q;
}

/* The best q (0 to 1000) an Accept header gives JSON and protobuf; an
 * absent or empty header takes JSON. */
static void api_reply__accept(const char *accept, int *q_json, int *q_pb)
{
	const char *s = accept;

	*q_json = *q_pb = 0;
	if (!s || !*s) {
		*q_json = 1000;
		return;
	}
	while (*s) {
		const char *t, *end = strchr(s, ',');
		size_t n;
		int q = 1000;

		if (!end)
			end = s + strlen(s);
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		for (t = s; t < end && *t != ';' && *t != ' ' && *t != '\t'; t++)
			;
		n = (size_t)(t - s);
		/* ;q=0.5 (other parameters are ignored) */
		for (const char *p = t; p < end; p++) {
			if (*p == ';') {
				const char *v = p + 1;
				while (v < end && *v == ' ')
					v++;
				if (end - v >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=')
					q = api_reply__qvalue(v + 2, end);
			}
		}
		if (api_reply__is_pb(s, n)) {
			if (q > *q_pb)
				*q_pb = q;
		} else if (api_reply__type_is(s, n, "application/json") || api_reply__type_is(s, n, "application/*") ||
			   api_reply__type_is(s, n, "*/*")) {
			if (q > *q_json)
				*q_json = q;
		}
		s = *end ? end + 1 : end;
	}
}

int api_reply_negotiate(const struct http_request *req, const struct api_route *rt, struct api_conn_state *st,
			char *msg, size_t msglen)
{
	const struct api_schema *sc = rt ? api_route_schema(rt, req->verb) : NULL;
	const char *ct = req->content_type;
	int q_json, q_pb;

	st->answer_msg = sc ? sc->answer : NULL;
	st->pb_request = false;
	msg[0] = '\0';
	api_reply__accept(req->accept, &q_json, &q_pb);
	/* Protobuf when the client prefers it (or it is all it takes). */
	st->pb_answer = q_pb > 0 && q_pb >= q_json;
	if (ct) {
		size_t n = strcspn(ct, "; \t");
		st->pb_request = api_reply__is_pb(ct, n);
	}
	if (st->pb_request && sc && !sc->request && (req->content_length != 0 && req->content_length != UINT64_MAX)) {
		snprintf(msg, msglen, "%s %.*s takes no protobuf body (%s): send JSON, or no body", req->method,
			 (int)(req->path_len > 128 ? 128 : req->path_len), req->path, API_PROTOBUF);
		return 415;
	}
	if (!sc)
		return 0; /* no route or method: its error answers */
	if (st->pb_answer && !sc->answer) {
		if (q_json > 0) {
			st->pb_answer = false;
			return 0;
		}
		snprintf(msg, msglen, "%s %.*s does not answer in %s; accept application/json (or */*)", req->method,
			 (int)(req->path_len > 128 ? 128 : req->path_len), req->path, API_PROTOBUF);
		return 406;
	}
	if (!st->pb_answer && q_json == 0 && sc->answer) {
		snprintf(msg, msglen, "the API answers application/json or %s; the Accept header takes neither",
			 API_PROTOBUF);
		return 406;
	}
	return 0;
}

const char *api_reply_media_code(int status)
{
	return status == 406 ? "not_acceptable" : status == 415 ? "unsupported_media_type" : "internal";
}

int api_reply_body_json(const struct http_request *req, const struct api_route *rt, char **out, size_t *len,
			char *msg, size_t msglen)
{
	const struct api_schema *sc = api_route_schema(rt, req->verb);
	char err[PBJSON_ERR_MAX];
	json_t *j;

	*out = NULL;
	*len = 0;
	if (!sc)
		return 0; /* no such route or method: its error answers */
	if (!sc->request) {
		if (req->body_len == 0)
			return 0;
		snprintf(msg, msglen, "%s %.*s takes no protobuf body (%s): send JSON, or no body", req->method,
			 (int)(req->path_len > 128 ? 128 : req->path_len), req->path, API_PROTOBUF);
		return 415;
	}
	j = pbjson_unpack(sc->request, req->body, req->body_len, err, sizeof(err));
	if (!j) {
		snprintf(msg, msglen, "%s; send a %s as proto/api.proto defines it", err, sc->request->name);
		return 400;
	}
	*out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!*out) {
		snprintf(msg, msglen, "the controller is out of memory");
		return 500;
	}
	*len = strlen(*out);
	return 0;
}

void api_reply_send(struct http_conn *c, int status, json_t *body, const char *headers)
{
	struct api_conn_state *st = http_conn_user(c);
	const ProtobufCMessageDescriptor *d = NULL;
	char err[PBJSON_ERR_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;

	if (st && st->encoded)
		d = status >= 400 ? API_MSG(error) : st->answer_msg;
	if (st && d && body) {
		json_t *e = json_object_get(body, "error");

		/* Every error names its request (http_answer_json does it for JSON). */
		if (json_is_object(e) && !json_object_get(e, "request_id"))
			json_object_set_new(e, "request_id", json_string(http_conn_request_id(c)));
		if (st->strict && pbjson_check(d, body, err, sizeof(err)) < 0) {
			log_error("api: request %s: the answer (%d) does not fit %s: %s", http_conn_request_id(c), status,
				  d->name, err);
			json_decref(body);
			status = 500;
			body = api_json_error("internal", "the answer does not fit the API's schema (%s); see the log",
					      d->name);
			d = API_MSG(error);
			headers = NULL;
		}
	}
	if (!st || !st->encoded || !st->pb_answer || !d || !body) {
		http_respond_json(c, status, body, headers);
		return;
	}
	if (pbjson_pack(d, body, &buf, &len, err, sizeof(err)) < 0) {
		log_error("api: request %s: cannot encode the answer as %s: %s", http_conn_request_id(c), d->name, err);
		json_decref(body);
		body = api_json_error("internal", "the answer cannot be encoded as %s; see the log", d->name);
		json_object_set_new(json_object_get(body, "error"), "request_id", json_string(http_conn_request_id(c)));
		status = 500;
		if (pbjson_pack(API_MSG(error), body, &buf, &len, err, sizeof(err)) < 0) {
			http_respond_json(c, status, body, NULL);
			return;
		}
		headers = NULL;
	}
	json_decref(body);
	http_respond_bytes(c, status, API_PROTOBUF, headers, buf, len);
	free(buf);
}
