/* The shapes that commands of every noun share; see verbs.h. */
#include "controller/skyctl/verbs.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* "PATH?limit=N&..." for one page: every value escaped. */
static int verbs__list_path(const struct skyctl_list *l, const struct skyctl_opts *o, uint64_t limit,
			    const char *token, char *out, size_t len)
{
	static const struct { const char *key; int flag; } filters[] = {
		{ "state", FLAG_STATE }, { "board", FLAG_BOARD }, { "type", FLAG_TYPE }, { "kind", FLAG_KIND },
		{ "id", FLAG_ID },
	};
	size_t n;
	int w = snprintf(out, len, "%s?limit=%llu", l->path, (unsigned long long)limit);

	if (w >= 0 && (size_t)w < len && skyctl_has(o, FLAG_SINCE))
		w += snprintf(out + w, len - (size_t)w, "&since=%llu", (unsigned long long)o->since);

	for (size_t i = 0; i <= sizeof(filters) / sizeof(filters[0]); i++) {
		const char *key = i < sizeof(filters) / sizeof(filters[0]) ? filters[i].key : "page_token";
		const char *v = i < sizeof(filters) / sizeof(filters[0]) ? o->value[filters[i].flag] : token;
		char *e;

		if (w < 0 || (size_t)w >= len)
			return -ENAMETOOLONG;
		if (v == NULL)
			continue;
		e = curl_easy_escape(NULL, v, 0);
		if (e == NULL)
			return -ENOMEM;
		n = (size_t)w;
		w = snprintf(out + n, len - n, "&%s=%s", key, e);
		w = w < 0 ? w : w + (int)n;
		curl_free(e);
	}
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

/* The list, every page of it (or the one page --limit or --page-token
 * asks for) into one answer {"KEY": [...], "next_page_token": ...}. */
static int verbs__list_get(struct skyctl *ctl, const struct skyctl_list *l, json_t **out)
{
	const struct skyctl_opts *o = ctl->opts;
	bool one = (o->seen & (FLAG_BIT(FLAG_LIMIT) | FLAG_BIT(FLAG_PAGE_TOKEN))) != 0 || l->limit_default;
	uint64_t limit = (o->seen & FLAG_BIT(FLAG_LIMIT)) ? o->limit : l->limit_default ? l->limit_default : one ? 100 : 1000;
	uint64_t limit_max = l->limit_max ? l->limit_max : SKYCTL_PAGE_MAX;
	char path[1024], *token = NULL;
	json_t *all = NULL, *answer, *list, *next;
	int r = 0;

	if (limit > limit_max) {
		skyctl_err("--limit here is 1 to %llu", (unsigned long long)limit_max);
		return -EINVAL;
	}
	if (o->value[FLAG_PAGE_TOKEN] && (token = strdup(o->value[FLAG_PAGE_TOKEN])) == NULL)
		return -ENOMEM;
	/* Each page holds at least one item, so this ends; the cap is for a
	 * controller that answers the same token again and again. */
	for (unsigned page = 0;; page++) {
		if (page == 100000) {
			skyctl_err("the controller at %s keeps giving another page; is it a Skyroot controller "
				   "of the same version (%s)?", ctl->conf.controller, SKY_VERSION);
			r = -EPROTO;
			break;
		}
		r = verbs__list_path(l, o, limit, token, path, sizeof(path));
		if (r < 0) {
			skyctl_err("the filters are too long for a URL; give shorter ones");
			break;
		}
		answer = NULL;
		r = skyctl_request(ctl, "GET", path, NULL, NULL, &answer);
		if (r < 0)
			break;
		list = skyctl_list_of(answer, l->key, ctl->conf.controller);
		next = json_object_get(answer, "next_page_token");
		if (list == NULL || (next != NULL && !json_is_string(next))) {
			if (list != NULL)
				skyctl_answer_lacks("valid next_page_token");
			json_decref(answer);
			r = -EPROTO;
			break;
		}
		free(token);
		token = next ? strdup(json_string_value(next)) : NULL;
		if (all == NULL) {
			all = answer;
		} else {
			r = json_array_extend(json_object_get(all, l->key), list);
			json_decref(answer);
			if (r < 0) {
				r = -ENOMEM;
				break;
			}
		}
		if (one || next == NULL)
			break;
		if (token == NULL) {
			r = -ENOMEM;
			break;
		}
	}
	if (r == 0 && !one)
		json_object_del(all, "next_page_token");
	free(token);
	if (r < 0) {
		if (r == -ENOMEM)
			skyctl_err("out of memory");
		json_decref(all);
		return r;
	}
	*out = all;
	return 0;
}

int skyctl_verb_list(struct skyctl *ctl, const struct skyctl_list *l)
{
	char scratch[SKYCTL_LIST_COLS][SKYCTL_CELL_MAX];
	struct skyctl_table t = { 0 };
	json_t *answer = NULL, *list, *item;
	const char *next;
	size_t i;
	int r;

	r = verbs__list_get(ctl, l, &answer);
	if (r < 0)
		return r;
	list = json_object_get(answer, l->key);
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
	next = json_string_value(json_object_get(answer, "next_page_token"));
	if (next != NULL) {
		fputs("More: add --page-token ", stderr);
		skyctl_put_clean(stderr, next);
		fputc('\n', stderr);
	} else if (json_array_size(list) == 0 && !ctl->opts->value[FLAG_STATE] && !ctl->opts->value[FLAG_BOARD] &&
		   !ctl->opts->value[FLAG_PAGE_TOKEN]) {
		fprintf(stderr, "%s\n", l->empty);
	}
done:
	skyctl_table_free(&t);
	json_decref(answer);
	return r;
}

int skyctl_verb_set(struct skyctl *ctl, const char *path, const char *id, const char *what)
{
	const struct skyctl_opts *o = ctl->opts;
	struct skyctl_req req = { .method = "PATCH", .path = path, .id = id, .if_match = o->value[FLAG_IF_MATCH] };
	json_t *body = json_object(), *labels = NULL, *answer = NULL;
	int r = -ENOMEM;

	if (body == NULL)
		goto done;
	if (o->value[FLAG_NAME] && json_object_set_new(body, "name", json_string(o->value[FLAG_NAME])) < 0)
		goto done;
	if (o->value[FLAG_DESCRIPTION] &&
	    json_object_set_new(body, "description", json_string(o->value[FLAG_DESCRIPTION])) < 0)
		goto done;
	for (unsigned i = 0; i < o->labels.n; i++) {
		const char *l = o->labels.v[i], *eq = strchr(l, '=');
		size_t n = strlen(l);
		char key[128];

		if (labels == NULL && (labels = json_object()) == NULL)
			goto done;
		if (eq == NULL && n > 1 && n < sizeof(key) && l[n - 1] == '-') {
			snprintf(key, sizeof(key), "%.*s", (int)(n - 1), l);
			r = json_object_set_new(labels, key, json_null());
		} else if (eq != NULL && eq > l && (size_t)(eq - l) < sizeof(key)) {
			snprintf(key, sizeof(key), "%.*s", (int)(eq - l), l);
			r = json_object_set_new(labels, key, json_string(eq + 1));
		} else {
			skyctl_err("--label '%s' is neither KEY=VALUE nor KEY- (to remove it)", l);
			r = -EINVAL;
			goto done;
		}
		if (r < 0) {
			r = -ENOMEM;
			goto done;
		}
	}
	if (labels != NULL && json_object_set_new(body, "labels", labels) < 0) {
		labels = NULL;
		goto done;
	}
	labels = NULL;
	if (json_object_size(body) == 0) {
		skyctl_err("nothing to change: give --name, --label or --description");
		r = -EINVAL;
		goto done;
	}
	req.body = body;
	r = skyctl_call(ctl, &req, &answer);
	if (r < 0)
		goto done;
	if (skyctl_as_data(o)) {
		r = skyctl_print_answer(o, answer);
	} else {
		printf("updated %s ", what);
		skyctl_put_clean(stdout, skyctl_jstr(answer, "id", id));
		fputc('\n', stdout);
	}
done:
	if (r == -ENOMEM)
		skyctl_err("out of memory");
	json_decref(labels);
	json_decref(body);
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
		skyctl_put_clean(stdout, skyctl_jstr(answer, "id", id));
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

json_t *skyctl_body_make(const struct skyctl_opts *o, const char *arg_key, const char *arg,
			 const struct skyctl_member *members)
{
	json_t *body = json_object();
	int r = body ? 0 : -ENOMEM;

	if (r == 0 && arg_key) {
		json_t *v = json_string(arg);
		if (!v) {
			skyctl_err("the %s given is not valid UTF-8 text", arg_key);
			json_decref(body);
			return NULL;
		}
		r = json_object_set_new(body, arg_key, v) < 0 ? -ENOMEM : 0;
	}
	if (r < 0)
		skyctl_err("out of memory");
	for (const struct skyctl_member *m = members; r == 0 && m && m->key; m++) {
		if (!m->int_at)
			r = skyctl_body_set_flag(body, o, m->key, m->flag);
		else if (skyctl_has(o, m->flag))
			r = skyctl_body_set_int(body, m->key,
						*(const uint64_t *)(const void *)((const char *)o + m->int_at - 1));
	}
	if (r < 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

int skyctl_verb_create(struct skyctl *ctl, const struct skyctl_create *c, const char *arg)
{
	const struct skyctl_opts *o = ctl->opts;
	struct skyctl_req req = { .method = "POST", .path = c->path };
	json_t *answer = NULL;
	int r;

	req.body = skyctl_body_make(o, c->arg_key, arg, c->members);
	if (!req.body)
		return -EINVAL;
	r = skyctl_call(ctl, &req, &answer);
	json_decref(req.body);
	if (r < 0)
		return r;
	if (skyctl_as_data(o))
		r = skyctl_print_answer(o, answer);
	else if (!c->check || (r = c->check(answer)) == 0)
		c->print(answer);
	json_decref(answer);
	return r;
}
