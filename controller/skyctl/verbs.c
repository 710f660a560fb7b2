/* The shapes that commands of every noun share; see verbs.h. */
#include "controller/skyctl/verbs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/yamlout.h"

#ifndef SKY_VERSION
#error "SKY_VERSION must be defined by the build (meson does it)"
#endif

int skyctl_answer_lacks(const char *what)
{
	skyctl_err("the controller's answer has no %s; is it a Skyroot controller of the same version (%s)?",
		   what, SKY_VERSION);
	return -EPROTO;
}

int skyctl_print_answer(const struct skyctl_opts *o, json_t *answer)
{
	int r;

	if (o->output != SKYCTL_OUTPUT_YAML)
		return skyctl_print_json(answer);
	r = skyctl_yaml_write(stdout, answer);
	if (r < 0)
		skyctl_err("cannot write the YAML output: %s", strerror(-r));
	return r;
}

int skyctl_verb_list(struct skyctl *ctl, const struct skyctl_list *l)
{
	char scratch[SKYCTL_LIST_COLS][SKYCTL_CELL_MAX];
	struct skyctl_table t = { 0 };
	json_t *answer = NULL, *list, *item;
	size_t i;
	int r;

	r = skyctl_request(ctl, "GET", l->path, NULL, NULL, &answer);
	if (r < 0)
		return r;
	list = skyctl_list_of(answer, l->key, ctl->conf.controller);
	if (list == NULL) {
		r = -EPROTO;
		goto done;
	}
	if (skyctl_as_data(ctl->opts)) {
		r = skyctl_print_answer(ctl->opts, answer);
		goto done;
	}
	r = skyctl_table_init(&t, ctl->opts->output == SKYCTL_OUTPUT_WIDE ? l->ncols : l->ncols - l->nwide,
			      json_array_size(list) + 1);
	if (r == 0 && !skyctl_has(ctl->opts, FLAG_NO_HEADERS))
		r = skyctl_table_add(&t, l->header);
	json_array_foreach(list, i, item) {
		const char *cells[SKYCTL_LIST_COLS] = { 0 };
		if (r < 0)
			break;
		l->row(item, cells, scratch);
		r = skyctl_table_add(&t, cells);
	}
	if (r < 0) {
		skyctl_err("out of memory");
		goto done;
	}
	skyctl_table_print(&t, stdout, 0);
	if (json_array_size(list) == 0)
		fprintf(stderr, "%s\n", l->empty);
done:
	skyctl_table_free(&t);
	json_decref(answer);
	return r;
}

int skyctl_verb_show(struct skyctl *ctl, const char *path, const char *id, void (*print)(json_t *answer),
		     int (*check)(json_t *answer))
{
	json_t *answer = NULL;
	int r;

	r = skyctl_request(ctl, "GET", path, id, NULL, &answer);
	if (r < 0)
		return r;
	if (skyctl_as_data(ctl->opts))
		r = skyctl_print_answer(ctl->opts, answer);
	else if (check == NULL || (r = check(answer)) == 0)
		print(answer);
	json_decref(answer);
	return r;
}

int skyctl_verb_delete(struct skyctl *ctl, const char *path, const char *id, const char *done,
		       const char *what)
{
	json_t *answer = NULL;
	int r;

	r = skyctl_request(ctl, "DELETE", path, id, NULL, &answer);
	if (r < 0)
		return r;
	if (skyctl_as_data(ctl->opts)) {
		r = skyctl_print_answer(ctl->opts, answer);
	} else {
		printf("%s %s ", done, what);
		skyctl_put_clean(stdout, skyctl_jstr(answer, done, id));
		fputc('\n', stdout);
	}
	json_decref(answer);
	return r;
}

int skyctl_body_set_flag(json_t *obj, const struct skyctl_opts *o, const char *key, int flag)
{
	json_t *v;

	if (!skyctl_has(o, flag))
		return 0;
	v = json_string(o->value[flag]);
	if (v == NULL || json_object_set_new(obj, key, v) < 0) {
		skyctl_err("out of memory");
		return -ENOMEM;
	}
	return 0;
}

int skyctl_body_set_int(json_t *obj, const char *key, uint64_t v)
{
	if (json_object_set_new(obj, key, json_integer((json_int_t)v)) < 0) {
		skyctl_err("out of memory");
		return -ENOMEM;
	}
	return 0;
}
