/* JSON <-> protobuf-c messages by their descriptors (pbjson.h). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/skyrootd/pbjson.h"

#define PJ_PATH_MAX 160

/* Where a decode is, for its error. */
struct pj {
	char *err;
	size_t errlen;
	char path[PJ_PATH_MAX];
	size_t plen;
	unsigned depth;
};

static int pj_fail(struct pj *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pj_fail(struct pj *p, const char *fmt, ...)
{
	char msg[PBJSON_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s%s%s", p->path, p->plen ? ": " : "", msg);
	return -EINVAL;
}

/* Enter a field (key) or an element (index) of the path. */
static size_t pj_push(struct pj *p, const char *key, size_t index)
{
	size_t old = p->plen;
	int n;

	if (key)
		n = snprintf(p->path + old, sizeof(p->path) - old, "%s%s", old ? "." : "", key);
	else
		n = snprintf(p->path + old, sizeof(p->path) - old, "[%zu]", index);
	if (n > 0)
		p->plen = old + (size_t)n < sizeof(p->path) ? old + (size_t)n : sizeof(p->path) - 1;
	return old;
}

static void pj_pop(struct pj *p, size_t old)
{
	p->plen = old;
	p->path[old] = '\0';
}

static bool pj_is(const ProtobufCMessageDescriptor *d, const char *name)
{
	return strcmp(d->name, name) == 0;
}

/* google.protobuf.Value, or a message made of some of its kinds. */
static bool pj_is_value(const ProtobufCMessageDescriptor *d)
{
	return pj_is(d, "google.protobuf.Value") || pj_is(d, "skyroot.api.v1.LabelValue");
}

bool pbjson_is_wrapper(const ProtobufCMessageDescriptor *d)
{
	return strncmp(d->name, "google.protobuf.", 16) == 0 && d->n_fields == 1 && strcmp(d->fields[0].name, "value") == 0 &&
	       strlen(d->name) > 21 && strcmp(d->name + strlen(d->name) - 5, "Value") == 0 &&
	       !pj_is(d, "google.protobuf.Value") && !pj_is(d, "google.protobuf.ListValue");
}

bool pbjson_is_map(const ProtobufCFieldDescriptor *f)
{
	const ProtobufCMessageDescriptor *e = f->descriptor;
	size_t n;

	if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return false;
	n = strlen(e->short_name);
	return n > 5 && strcmp(e->short_name + n - 5, "Entry") == 0 && e->n_fields == 2 && e->fields[0].id == 1 &&
	       strcmp(e->fields[0].name, "key") == 0 && e->fields[1].id == 2 && strcmp(e->fields[1].name, "value") == 0;
}

static size_t pj_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
	default:
		return sizeof(ProtobufCMessage *);
	}
}

static ProtobufCMessage *pj_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = malloc(d->sizeof_message);

	if (m)
		d->message_init(m);
	return m;
}

/* ---- JSON -> message ---- */

static int pj_message(struct pj *p, const ProtobufCMessageDescriptor *d, json_t *j, ProtobufCMessage *m);

/* An integer from a JSON integer or a decimal string, in [lo, hi]
 * (unsigned: uhi). */
static int pj_int(struct pj *p, json_t *v, bool is_unsigned, int64_t lo, int64_t hi, uint64_t uhi, int64_t *s, uint64_t *u)
{
	const char *str = json_string_value(v);
	char *end;

	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (is_unsigned ? (n < 0 || (uint64_t)n > uhi) : (n < lo || n > hi))
			return pj_fail(p, "%lld is out of range", (long long)n);
		*s = n;
		*u = (uint64_t)n;
		return 0;
	}
	if (json_is_real(v)) {
		double x = json_real_value(v);
		if (x != floor(x) || !(x >= -9.2e18 && x <= 9.2e18) || (is_unsigned ? (x < 0 || x > (double)uhi) : (x < (double)lo || x > (double)hi)))
			return pj_fail(p, "%g is not a whole number in range", x);
		*s = (int64_t)x;
		*u = (uint64_t)*s;
		return 0;
	}
	if (!str || !str[0] || str[0] == ' ' || str[0] == '+' || (is_unsigned && str[0] == '-'))
		return pj_fail(p, "must be an integer (a number or a decimal string)");
	errno = 0;
	if (is_unsigned) {
		*u = strtoull(str, &end, 10);
		if (errno || *end || *u > uhi)
			return pj_fail(p, "'%.32s' is not an integer in range", str);
		*s = (int64_t)*u;
	} else {
		*s = strtoll(str, &end, 10);
		if (errno || *end || *s < lo || *s > hi)
			return pj_fail(p, "'%.32s' is not an integer in range", str);
		*u = (uint64_t)*s;
	}
	return 0;
}

static int pj_bytes(struct pj *p, json_t *v, ProtobufCBinaryData *out)
{
	const char *s = json_string_value(v);
	size_t n, pad = 0;
	char *b64;
	int len;

	if (!s)
		return pj_fail(p, "must be a base64 string");
	n = strlen(s);
	b64 = malloc(n + 4);
	if (!b64)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		b64[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (n % 4)
		b64[n++] = '=';
	b64[n] = '\0';
	if (n >= 1 && b64[n - 1] == '=')
		pad++;
	if (n >= 2 && b64[n - 2] == '=')
		pad++;
	out->data = malloc(n / 4 * 3 + 1);
	if (!out->data) {
		free(b64);
		return -ENOMEM;
	}
	len = n ? EVP_DecodeBlock(out->data, (const unsigned char *)b64, (int)n) : 0;
	free(b64);
	if (len < 0 || (size_t)len < pad) {
		free(out->data);
		out->data = NULL;
		return pj_fail(p, "is not valid base64");
	}
	out->len = (size_t)len - pad;
	return 0;
}

/* RFC 3339 ("2026-11-25T12:00:00Z", a fraction and an offset allowed). */
static int pj_timestamp(struct pj *p, json_t *v, ProtobufCMessage *m)
{
	const char *s = json_string_value(v);
	int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
	long nanos = 0;
	struct tm tm;
	time_t t;

	if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return pj_fail(p, "must be an RFC 3339 time like \"2026-11-25T12:00:00Z\"");
	s += n;
	if (*s == '.') {
		int digits = 0;
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 9)
				nanos = nanos * 10 + (*s - '0');
		if (!digits || digits > 9)
			return pj_fail(p, "has a bad fraction of a second");
		for (; digits < 9; digits++)
			nanos *= 10;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5) {
		if (*s == '-')
			oh = -oh, om = -om;
		s += 6;
	} else {
		return pj_fail(p, "needs a time zone ('Z' or +hh:mm)");
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1)
		return pj_fail(p, "is not a valid RFC 3339 time");
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm) - oh * 3600 - om * 60;
	if (t < -62135596800LL || t > 253402300799LL)
		return pj_fail(p, "is out of the range 0001-01-01 to 9999-12-31");
	/* seconds = field 1, nanos = field 2 of google.protobuf.Timestamp */
	*(int64_t *)((char *)m + m->descriptor->fields[0].offset) = (int64_t)t;
	*(int32_t *)((char *)m + m->descriptor->fields[1].offset) = (int32_t)nanos;
	return 0;
}

static int pj_map(struct pj *p, const ProtobufCFieldDescriptor *f, json_t *v, char *base);
static int pj_repeated(struct pj *p, const ProtobufCFieldDescriptor *f, json_t *v, char *base);

/* google.protobuf.Struct: the object is its field 1, map<string, Value> fields. */
static int pj_struct(struct pj *p, json_t *v, ProtobufCMessage *m)
{
	if (!json_is_object(v))
		return pj_fail(p, "must be a JSON object");
	return pj_map(p, &m->descriptor->fields[0], v, (char *)m);
}

/* google.protobuf.ListValue: the array is its field 1, repeated Value values. */
static int pj_listvalue(struct pj *p, json_t *v, ProtobufCMessage *m)
{
	if (!json_is_array(v))
		return pj_fail(p, "must be a JSON array");
	return pj_repeated(p, &m->descriptor->fields[0], v, (char *)m);
}

/* google.protobuf.Value: any JSON; skyroot.api.v1.LabelValue (a subset
 * of Value's kinds): a string or null. */
static int pj_value(struct pj *p, json_t *v, ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *f;
	char *base = (char *)m;
	ProtobufCMessage *sub;
	const char *name;
	int r;

	switch (json_typeof(v)) {
	case JSON_NULL:
		name = "null_value";
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		name = "number_value";
		break;
	case JSON_STRING:
		name = "string_value";
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		name = "bool_value";
		break;
	case JSON_OBJECT:
		name = "struct_value";
		break;
	default:
		name = "list_value";
		break;
	}
	f = protobuf_c_message_descriptor_get_field_by_name(d, name);
	if (!f)
		return pj_fail(p, "must be a string or null"); /* a LabelValue */
	*(uint32_t *)(base + f->quantifier_offset) = f->id;
	switch (json_typeof(v)) {
	case JSON_NULL:
		*(int32_t *)(base + f->offset) = 0;
		return 0;
	case JSON_INTEGER:
	case JSON_REAL:
		*(double *)(base + f->offset) = json_number_value(v);
		return 0;
	case JSON_STRING:
		if (strlen(json_string_value(v)) != json_string_length(v))
			return pj_fail(p, "must not contain a NUL character");
		*(char **)(base + f->offset) = strdup(json_string_value(v));
		return *(char **)(base + f->offset) ? 0 : -ENOMEM;
	case JSON_TRUE:
	case JSON_FALSE:
		*(protobuf_c_boolean *)(base + f->offset) = json_is_true(v);
		return 0;
	default:
		break;
	}
	sub = pj_new(f->descriptor);
	if (!sub) {
		*(uint32_t *)(base + f->quantifier_offset) = 0;
		return -ENOMEM;
	}
	*(ProtobufCMessage **)(base + f->offset) = sub;
	if (++p->depth > PBJSON_DEPTH_MAX)
		return pj_fail(p, "is nested too deeply (at most %d levels)", PBJSON_DEPTH_MAX);
	r = json_is_object(v) ? pj_struct(p, v, sub) : pj_listvalue(p, v, sub);
	p->depth--;
	return r;
}

/* One value of field f into slot (an element of a repeated field, or the field). */
static int pj_one(struct pj *p, const ProtobufCFieldDescriptor *f, json_t *v, void *slot)
{
	int64_t s;
	uint64_t u;
	int r;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		r = pj_int(p, v, false, INT32_MIN, INT32_MAX, 0, &s, &u);
		if (r == 0)
			*(int32_t *)slot = (int32_t)s;
		return r;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		r = pj_int(p, v, true, 0, 0, UINT32_MAX, &s, &u);
		if (r == 0)
			*(uint32_t *)slot = (uint32_t)u;
		return r;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		r = pj_int(p, v, false, INT64_MIN, INT64_MAX, 0, &s, &u);
		if (r == 0)
			*(int64_t *)slot = s;
		return r;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		r = pj_int(p, v, true, 0, 0, UINT64_MAX, &s, &u);
		if (r == 0)
			*(uint64_t *)slot = u;
		return r;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double x;
		const char *str = json_string_value(v);
		if (json_is_number(v))
			x = json_number_value(v);
		else if (str && strcmp(str, "NaN") == 0)
			x = NAN;
		else if (str && strcmp(str, "Infinity") == 0)
			x = INFINITY;
		else if (str && strcmp(str, "-Infinity") == 0)
			x = -INFINITY;
		else
			return pj_fail(p, "must be a number");
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)slot = (float)x;
		else
			*(double *)slot = x;
		return 0;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return pj_fail(p, "must be true or false");
		*(protobuf_c_boolean *)slot = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		const ProtobufCEnumValue *ev = NULL;
		if (json_is_string(v))
			ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
		else if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN && json_integer_value(v) <= INT32_MAX)
			ev = protobuf_c_enum_descriptor_get_value(ed, (int)json_integer_value(v));
		if (!ev)
			return pj_fail(p, "is not a value of %s", ed->name);
		*(int32_t *)slot = ev->value;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING:
		if (!json_is_string(v))
			return pj_fail(p, "must be a string");
		if (strlen(json_string_value(v)) != json_string_length(v))
			return pj_fail(p, "must not contain a NUL character");
		*(char **)slot = strdup(json_string_value(v));
		return *(char **)slot ? 0 : -ENOMEM;
	case PROTOBUF_C_TYPE_BYTES:
		return pj_bytes(p, v, slot);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *md = f->descriptor;
		ProtobufCMessage *sub = pj_new(md);
		if (!sub)
			return -ENOMEM;
		*(ProtobufCMessage **)slot = sub;
		if (++p->depth > PBJSON_DEPTH_MAX)
			return pj_fail(p, "is nested too deeply (at most %d levels)", PBJSON_DEPTH_MAX);
		if (pj_is(md, "google.protobuf.Timestamp"))
			r = pj_timestamp(p, v, sub);
		else if (pj_is_value(md))
			r = pj_value(p, v, sub);
		else if (pj_is(md, "google.protobuf.Struct"))
			r = pj_struct(p, v, sub);
		else if (pj_is(md, "google.protobuf.ListValue"))
			r = pj_listvalue(p, v, sub);
		else if (pbjson_is_wrapper(md))
			r = pj_one(p, &md->fields[0], v, (char *)sub + md->fields[0].offset);
		else if (!json_is_object(v))
			r = pj_fail(p, "must be a JSON object (%s)", md->short_name);
		else
			r = pj_message(p, md, v, sub);
		p->depth--;
		return r;
	}
	}
	return pj_fail(p, "has a type this transcoder does not know");
}

/* A map field from a JSON object: each member an entry {key, value}. */
static int pj_map(struct pj *p, const ProtobufCFieldDescriptor *f, json_t *v, char *base)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	size_t n = json_object_size(v), i = 0;
	ProtobufCMessage **arr;
	const char *key;
	json_t *val;

	if (!json_is_object(v))
		return pj_fail(p, "must be a JSON object (a map)");
	if (kf->type != PROTOBUF_C_TYPE_STRING)
		return pj_fail(p, "has keys that are not strings, which this transcoder does not take");
	arr = calloc(n ? n : 1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	*(ProtobufCMessage ***)(base + f->offset) = arr;
	json_object_foreach(v, key, val) {
		size_t old;
		int r;

		arr[i] = pj_new(ed);
		if (!arr[i])
			return -ENOMEM;
		*(size_t *)(base + f->quantifier_offset) = ++i;
		*(char **)((char *)arr[i - 1] + kf->offset) = strdup(key);
		if (!*(char **)((char *)arr[i - 1] + kf->offset))
			return -ENOMEM;
		old = pj_push(p, key, 0);
		/* null only where it is a value (a Value's, a LabelValue's). */
		if (json_is_null(val) && !(vf->type == PROTOBUF_C_TYPE_MESSAGE && pj_is_value(vf->descriptor))) {
			r = pj_fail(p, "must not be null");
		} else {
			r = pj_one(p, vf, val, (char *)arr[i - 1] + vf->offset);
		}
		if (r < 0)
			return r;
		pj_pop(p, old);
	}
	return 0;
}

static int pj_repeated(struct pj *p, const ProtobufCFieldDescriptor *f, json_t *v, char *base)
{
	size_t n = json_array_size(v), sz = pj_size(f->type);
	void *arr;

	if (pbjson_is_map(f))
		return pj_map(p, f, v, base);
	if (!json_is_array(v))
		return pj_fail(p, "must be a JSON array");
	arr = calloc(n ? n : 1, sz);
	if (!arr)
		return -ENOMEM;
	*(void **)(base + f->offset) = arr;
	for (size_t i = 0; i < n; i++) {
		size_t old = pj_push(p, NULL, i);
		json_t *e = json_array_get(v, i);
		int r;

		if (json_is_null(e) && !(f->type == PROTOBUF_C_TYPE_MESSAGE && pj_is_value(f->descriptor)))
			r = pj_fail(p, "must not be null");
		else
			r = pj_one(p, f, e, (char *)arr + i * sz);
		/* What was set is freed with the message, even on failure. */
		*(size_t *)(base + f->quantifier_offset) = i + 1;
		if (r < 0)
			return r;
		pj_pop(p, old);
	}
	return 0;
}

static int pj_message(struct pj *p, const ProtobufCMessageDescriptor *d, json_t *j, ProtobufCMessage *m)
{
	char *base = (char *)m;
	const char *key;
	json_t *v;
	int r = 0;

	json_object_foreach(j, key, v) {
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
		size_t old = pj_push(p, key, 0);

		if (!f) {
			char known[160];
			size_t n = 0;

			known[0] = '\0';
			for (unsigned i = 0; i < d->n_fields && n < sizeof(known); i++)
				n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", d->fields[i].name);
			r = pj_fail(p, "unknown field of %s (known: %s)", d->short_name, known);
			break;
		}
		if (json_is_null(v)) {
			pj_pop(p, old);
			continue; /* the default */
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			r = pj_repeated(p, f, v, base);
		} else {
			/* A field set twice (a JSON object has each key once) cannot be. */
			r = pj_one(p, f, v, base + f->offset);
			if (r == 0 && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
				*(uint32_t *)(base + f->quantifier_offset) = f->id;
			else if (r == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
				 f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
				*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
		}
		if (r < 0)
			break;
		pj_pop(p, old);
	}
	return r;
}

int pbjson_decode(const ProtobufCMessageDescriptor *d, json_t *j, ProtobufCMessage **out, char *err, size_t errlen)
{
	struct pj p = { .err = err, .errlen = errlen };
	ProtobufCMessage *m;
	int r;

	if (!json_is_object(j)) {
		snprintf(err, errlen, "must be a JSON object (%s)", d->short_name);
		return -EINVAL;
	}
	m = pj_new(d);
	if (!m)
		return -ENOMEM;
	/* A Struct is its map, here as in a field. */
	r = pj_is(d, "google.protobuf.Struct") ? pj_struct(&p, j, m) : pj_message(&p, d, j, m);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		protobuf_c_message_free_unpacked(m, NULL);
		return r;
	}
	*out = m;
	return 0;
}

int pbjson_check(const ProtobufCMessageDescriptor *d, json_t *j, char *err, size_t errlen)
{
	ProtobufCMessage *m;
	int r = pbjson_decode(d, j, &m, err, errlen);

	if (r == 0)
		protobuf_c_message_free_unpacked(m, NULL);
	return r;
}

int pbjson_pack(const ProtobufCMessageDescriptor *d, json_t *j, uint8_t **out, size_t *len, char *err,
		size_t errlen)
{
	ProtobufCMessage *m;
	int r = pbjson_decode(d, j, &m, err, errlen);
	size_t n;

	if (r < 0)
		return r;
	n = protobuf_c_message_get_packed_size(m);
	*out = malloc(n ? n : 1);
	if (!*out) {
		protobuf_c_message_free_unpacked(m, NULL);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*len = protobuf_c_message_pack(m, *out);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* ---- message -> JSON ---- */

static json_t *pj_enc_message(const ProtobufCMessage *m, unsigned depth);

static json_t *pj_enc_time(const ProtobufCMessage *m)
{
	int64_t secs = *(const int64_t *)((const char *)m + m->descriptor->fields[0].offset);
	int32_t nanos = *(const int32_t *)((const char *)m + m->descriptor->fields[1].offset);
	time_t t = (time_t)secs;
	char buf[48];
	struct tm tm;
	size_t n;

	/* proto3's range: 0001-01-01 to 9999-12-31, nanos within a second */
	if (secs < -62135596800LL || secs > 253402300799LL || nanos < 0 || nanos > 999999999 || !gmtime_r(&t, &tm))
		return NULL;
	n = (size_t)snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (nanos > 0)
		snprintf(buf + n, sizeof(buf) - n, ".%09dZ", (int)nanos);
	else
		snprintf(buf + n, sizeof(buf) - n, "Z");
	return json_string(buf);
}

static json_t *pj_enc_one(const ProtobufCFieldDescriptor *f, const void *slot, unsigned depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)slot);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)slot);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)slot);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t u = *(const uint64_t *)slot;
		char buf[24];
		if (u <= INT64_MAX)
			return json_integer((json_int_t)u);
		snprintf(buf, sizeof(buf), "%" PRIu64, u);
		return json_string(buf);
	}
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double x = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)slot : *(const double *)slot;
		if (isnan(x))
			return json_string("NaN");
		if (isinf(x))
			return json_string(x > 0 ? "Infinity" : "-Infinity");
		/* A Value's whole number reads back as the JSON integer it was. */
		if (f->type == PROTOBUF_C_TYPE_DOUBLE && x == floor(x) && fabs(x) < 9e15)
			return json_integer((json_int_t)x);
		return json_real(x);
	}
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)slot);
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int32_t *)slot);
		return ev ? json_string(ev->name) : json_integer(*(const int32_t *)slot);
	}
	case PROTOBUF_C_TYPE_STRING:
		return json_string(*(char *const *)slot ? *(char *const *)slot : "");
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = slot;
		char *s = malloc(b->len / 3 * 4 + 5);
		json_t *o;
		if (!s)
			return NULL;
		EVP_EncodeBlock((unsigned char *)s, b->data, (int)b->len);
		o = json_string(s);
		free(s);
		return o;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
		const ProtobufCMessageDescriptor *md = f->descriptor;
		if (!sub)
			return json_null();
		if (depth > PBJSON_DEPTH_MAX)
			return NULL;
		if (pj_is(md, "google.protobuf.Timestamp"))
			return pj_enc_time(sub);
		if (pbjson_is_wrapper(md))
			return pj_enc_one(&md->fields[0], (const char *)sub + md->fields[0].offset, depth + 1);
		if (pj_is_value(md)) {
			uint32_t kind = *(const uint32_t *)((const char *)sub + md->fields[0].quantifier_offset);
			for (unsigned i = 0; i < md->n_fields; i++)
				if (md->fields[i].id == kind)
					return md->fields[i].type == PROTOBUF_C_TYPE_ENUM
						       ? json_null()
						       : pj_enc_one(&md->fields[i], (const char *)sub + md->fields[i].offset,
								    depth + 1);
			return json_null();
		}
		if (pj_is(md, "google.protobuf.Struct")) {
			json_t *o = pj_enc_message(sub, depth + 1);
			json_t *fields = json_incref(json_object_get(o, "fields"));
			json_decref(o);
			return fields ? fields : json_object();
		}
		if (pj_is(md, "google.protobuf.ListValue")) {
			json_t *o = pj_enc_message(sub, depth + 1);
			json_t *values = json_incref(json_object_get(o, "values"));
			json_decref(o);
			return values ? values : json_array();
		}
		return pj_enc_message(sub, depth + 1);
	}
	}
	return NULL;
}

/* Whether a singular field is worth writing (not at its default). */
static bool pj_present(const ProtobufCFieldDescriptor *f, const char *base)
{
	const void *slot = base + f->offset;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE)
		return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return *(char *const *)slot && (**(char *const *)slot || f->label == PROTOBUF_C_LABEL_OPTIONAL);
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)slot != NULL;
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)slot)->len > 0;
	default: {
		static const char zero[16];
		return memcmp(slot, zero, pj_size(f->type)) != 0;
	}
	}
}

static json_t *pj_enc_message(const ProtobufCMessage *m, unsigned depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	json_t *o = json_object();

	if (!o || depth > PBJSON_DEPTH_MAX) {
		json_decref(o);
		return NULL;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		json_t *v;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset), sz = pj_size(f->type);
			const char *arr = *(char *const *)(base + f->offset);
			bool map = pbjson_is_map(f);

			if (!n)
				continue;
			v = map ? json_object() : json_array();
			for (size_t k = 0; v && k < n; k++) {
				const void *slot = arr + k * sz;
				if (map) {
					const ProtobufCMessage *e = *(ProtobufCMessage *const *)slot;
					const ProtobufCMessageDescriptor *ed = f->descriptor;
					const char *key = *(char *const *)((const char *)e + ed->fields[0].offset);
					json_t *ev = pj_enc_one(&ed->fields[1], (const char *)e + ed->fields[1].offset,
								depth + 1);
					if (!ev || json_object_set_new(v, key ? key : "", ev) < 0) {
						json_decref(v);
						v = NULL;
					}
				} else if (json_array_append_new(v, pj_enc_one(f, slot, depth + 1)) < 0) {
					json_decref(v);
					v = NULL;
				}
			}
		} else {
			if (!pj_present(f, base))
				continue;
			v = pj_enc_one(f, base + f->offset, depth + 1);
		}
		if (!v || json_object_set_new(o, f->name, v) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

json_t *pbjson_encode(const ProtobufCMessage *m)
{
	return pj_enc_message(m, 0);
}

json_t *pbjson_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len, char *err,
		      size_t errlen)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, data);
	json_t *j;

	if (!m) {
		snprintf(err, errlen, "the body is not a valid protobuf message %s", d->name);
		return NULL;
	}
	j = pbjson_encode(m);
	protobuf_c_message_free_unpacked(m, NULL);
	if (!j)
		snprintf(err, errlen, "the message %s cannot be written as JSON (a string that is not UTF-8, a time out "
			 "of range, or out of memory)", d->name);
	return j;
}
