/* -o yaml: a JSON value as YAML with libyaml's emitter; see yaml.h. */
#include "controller/skyctl/yamlout.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#define YAML_NUMBER_MAX 40 /* bytes of an integer or a real as text */

/* The emitter takes the event and frees it, even when it fails. */
static int yaml__emit(yaml_emitter_t *e, yaml_event_t *ev)
{
	return yaml_emitter_emit(e, ev) ? 0 : -EIO;
}

static int yaml__scalar(yaml_emitter_t *e, const char *s, size_t len, int quoted)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)s, (int)len, !quoted, quoted,
					  quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE))
		return -ENOMEM;
	return yaml__emit(e, &ev);
}

/* A real as YAML 1.1 reads one back: "%.17g" with a '.' in it. */
static int yaml__real(yaml_emitter_t *e, double d)
{
	char buf[YAML_NUMBER_MAX];
	char *exp;
	int n;

	n = snprintf(buf, sizeof(buf), "%.17g", d);
	if (n < 0 || (size_t)n + 3 > sizeof(buf))
		return -EINVAL;
	if (strchr(buf, '.') == NULL) {
		exp = strchr(buf, 'e');
		if (exp == NULL)
			exp = buf + n;
		memmove(exp + 2, exp, strlen(exp) + 1);
		memcpy(exp, ".0", 2);
	}
	return yaml__scalar(e, buf, strlen(buf), 0);
}

static int yaml__value(yaml_emitter_t *e, json_t *v);

/* An object as a mapping, an array as a sequence. */
static int yaml__container(yaml_emitter_t *e, json_t *v)
{
	int map = json_is_object(v);
	yaml_event_t ev;
	const char *key;
	json_t *item;
	size_t i;
	int r;

	if (!(map ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_MAPPING_STYLE)
		  : yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE)))
		return -ENOMEM;
	r = yaml__emit(e, &ev);
	if (map) {
		json_object_foreach(v, key, item) {
			if (r == 0)
				r = yaml__scalar(e, key, strlen(key), 1);
			if (r == 0)
				r = yaml__value(e, item);
		}
	} else {
		json_array_foreach(v, i, item) {
			if (r == 0)
				r = yaml__value(e, item);
		}
	}
	if (r == 0 && !(map ? yaml_mapping_end_event_initialize(&ev) : yaml_sequence_end_event_initialize(&ev)))
		return -ENOMEM;
	return r == 0 ? yaml__emit(e, &ev) : r;
}

/* jansson's parser bounds the depth of what the controller sends. */
static int yaml__value(yaml_emitter_t *e, json_t *v)
{
	char buf[YAML_NUMBER_MAX];

	switch (json_typeof(v)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		return yaml__container(e, v);
	case JSON_STRING:
		return yaml__scalar(e, json_string_value(v), json_string_length(v), 1);
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return yaml__scalar(e, buf, strlen(buf), 0);
	case JSON_REAL:
		return yaml__real(e, json_real_value(v));
	case JSON_TRUE:
		return yaml__scalar(e, "true", 4, 0);
	case JSON_FALSE:
		return yaml__scalar(e, "false", 5, 0);
	case JSON_NULL:
		return yaml__scalar(e, "null", 4, 0);
	}
	return -EINVAL;
}

int skyctl_yaml_write(FILE *f, json_t *v)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	int r;

	if (!yaml_emitter_initialize(&e))
		return -ENOMEM;
	yaml_emitter_set_output_file(&e, f);
	yaml_emitter_set_unicode(&e, 1); /* UTF-8 as it is; control characters are escaped */
	yaml_emitter_set_width(&e, -1);  /* no folded lines */
	r = -ENOMEM;
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))
		goto fail_emitter;
	r = yaml__emit(&e, &ev);
	if (r < 0)
		goto fail_emitter;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) {
		r = -ENOMEM;
		goto fail_emitter;
	}
	r = yaml__emit(&e, &ev);
	if (r == 0)
		r = yaml__value(&e, v);
	if (r == 0 && !yaml_document_end_event_initialize(&ev, 1))
		r = -ENOMEM;
	if (r == 0)
		r = yaml__emit(&e, &ev);
	if (r == 0 && !yaml_stream_end_event_initialize(&ev))
		r = -ENOMEM;
	if (r == 0)
		r = yaml__emit(&e, &ev);
	if (r == 0 && !yaml_emitter_flush(&e))
		r = -EIO;
fail_emitter:
	yaml_emitter_delete(&e);
	return r;
}
