/* The credential a request bears (creds.c), and what a wrong token costs: each failure is
 * logged at warn with the peer's address (at most one line a second, with
 * a count of the rest, so a flood cannot fill the disk); a connection is
 * closed after API_AUTH_CONN_FAILS wrong tokens; and the 401s to one
 * address are delayed, one after the other, by a delay that doubles with
 * each recent failure from it (a bounded table of addresses). */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"

#define API_AUTH_CONN_FAILS 5
#define API_AUTH_ADDRS 256
#define API_AUTH_DELAY_MIN_MS 50
#define API_AUTH_DELAY_MAX_MS 5000
/* An address's failures are forgotten after this long without one. */
#define API_AUTH_FORGET_MS (10 * 60 * 1000)
#define API_AUTH_LOG_EVERY_MS 1000

struct api_auth_addr {
	char key[64];
	unsigned fails;
	uint64_t last_ms;
	uint64_t next_free_ms;      /* the next 401 to it is not sent before */
};

/* A 401 waiting for its time. */
struct api_auth_wait {
	struct api_auth_wait *next;
	struct http_conn *c;
	uint64_t due_ms;
	json_t *body;
	const char *headers;
};

struct api_auth {
	uv_timer_t timer;
	struct api_auth_addr addrs[API_AUTH_ADDRS];
	struct api_auth_wait *waits;
	uint64_t logged_ms;
	unsigned unlogged;
};

/* The credential whose token is token[0..n): creds_find's answer, with a
 * store failure logged.  The token is found by the first bytes of its
 * hash, then all of it compared in constant time (creds_find). */
static int api_auth__find(const struct controller *ctl, const char *token, size_t n, struct creds_row *cr)
{
	uint8_t hash[32];
	int r;

	if (!ctl->db)
		return -ENOENT;
	sky_sha256(token, n, hash);
	r = creds_find(ctl->db, hash, sky_unix_now(), cr);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (r < 0 && r != -ENOENT && r != -EKEYREVOKED && r != -EKEYEXPIRED)
		log_warn("api: cannot look up a credential: %s", strerror(-r));
	return r;
}

enum creds_role api_auth_role(const struct api *api, const struct http_request *req, char name[DB_NAME_MAX],
			      int *state)
{
	const char *v = req->authorization;
	size_t n = req->authorization_len;
	struct creds_row cr;
	int r;

	name[0] = '\0';
	*state = -ENOENT;
	if (req->authorization_count != 1 || !v)
		return CREDS_NONE;
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		n--;
	}
	/* RFC 7235: the scheme is case-insensitive, then at least one space. */
	if (n < 7 || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
		return CREDS_NONE;
	v += 7;
	n -= 7;
	while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		n--;
	}
	if (n == 0)
		return CREDS_NONE;
	r = api_auth__find(api->ctl, v, n, &cr);
	*state = r;
	if (r == 0 || r == -EKEYREVOKED || r == -EKEYEXPIRED)
		snprintf(name, DB_NAME_MAX, "%s", cr.name);
	return r == 0 ? cr.role : CREDS_NONE;
}

int api_auth_basic(struct controller *ctl, const char *user, const char *secret, enum creds_role *role)
{
	struct creds_row cr;
	int r;

	/* The password is a credential's token; the user name must be that
	 * credential's name ("admin" for the one from init). */
	*role = CREDS_NONE;
	r = api_auth__find(ctl, secret, strlen(secret), &cr);
	if (r == -EKEYREVOKED || r == -EKEYEXPIRED)
		log_warn("api: Redfish login as '%s': the credential '%s' is %s", strcmp(user, cr.name) == 0 ? cr.name : "?",
			 cr.name, r == -EKEYREVOKED ? "revoked" : "expired");
	if (r < 0 || strcmp(user, cr.name) != 0)
		return -EACCES;
	*role = cr.role;
	return 0;
}

/* The address's entry: found, or the least recently used one taken. */
static struct api_auth_addr *api_auth__addr(struct api_auth *a, const char *peer, uint64_t now)
{
	struct api_auth_addr *old = &a->addrs[0];

	for (size_t i = 0; i < API_AUTH_ADDRS; i++) {
		struct api_auth_addr *e = &a->addrs[i];
		if (e->key[0] && strcmp(e->key, peer) == 0) {
			if (now - e->last_ms > API_AUTH_FORGET_MS)
				e->fails = 0;
			return e;
		}
		if (e->last_ms < old->last_ms)
			old = e;
	}
	memset(old, 0, sizeof(*old));
	snprintf(old->key, sizeof(old->key), "%s", peer);
	return old;
}

static void api_auth__fire(uv_timer_t *h);

static void api_auth__arm(struct api_auth *a)
{
	uint64_t now = uv_now(a->timer.loop), due = UINT64_MAX;

	for (struct api_auth_wait *w = a->waits; w; w = w->next)
		if (w->due_ms < due)
			due = w->due_ms;
	if (due == UINT64_MAX)
		uv_timer_stop(&a->timer);
	else
		uv_timer_start(&a->timer, api_auth__fire, due > now ? due - now : 0, 0);
}

static void api_auth__fire(uv_timer_t *h)
{
	struct api_auth *a = h->data;
	uint64_t now = uv_now(h->loop);
	struct api_auth_wait **pp = &a->waits;

	while (*pp) {
		struct api_auth_wait *w = *pp;
		struct api_conn_state *st;
		if (w->due_ms > now) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		st = http_conn_user(w->c);
		if (st)
			st->auth_wait = NULL;
		api_reply_send(w->c, 401, w->body, w->headers);
		free(w);
	}
	api_auth__arm(a);
}

static void api_auth__log(struct api_auth *a, const char *peer, uint64_t now, unsigned fails)
{
	if (a->logged_ms && now - a->logged_ms < API_AUTH_LOG_EVERY_MS) {
		a->unlogged++;
		return;
	}
	log_warn("api: wrong API token from %s (%u recent failures from it; %u more not logged)", peer, fails,
		 a->unlogged);
	a->unlogged = 0;
	a->logged_ms = now;
}

/* One more wrong token from the request's address: counted, logged, and
 * the time before which the address gets no further answer to a guess. */
static uint64_t api_auth__penalize(struct api_auth *a, const struct http_request *req, uint64_t now)
{
	struct api_auth_addr *e = api_auth__addr(a, req->peer, now);
	uint64_t delay;

	e->fails++;
	e->last_ms = now;
	api_auth__log(a, req->peer, now, e->fails);
	delay = (uint64_t)API_AUTH_DELAY_MIN_MS << (e->fails > 8 ? 7 : e->fails - 1);
	if (delay > API_AUTH_DELAY_MAX_MS)
		delay = API_AUTH_DELAY_MAX_MS;
	e->next_free_ms = (e->next_free_ms > now ? e->next_free_ms : now) + delay;
	return e->next_free_ms;
}

bool api_auth_waiting(struct api *api, const char *peer, uint64_t *wait_ms)
{
	struct api_auth *a = api->auth;
	uint64_t now = uv_now(a->timer.loop);

	for (size_t i = 0; i < API_AUTH_ADDRS; i++) {
		const struct api_auth_addr *e = &a->addrs[i];
		if (e->key[0] && strcmp(e->key, peer) == 0 && e->next_free_ms > now) {
			*wait_ms = e->next_free_ms - now;
			return true;
		}
	}
	return false;
}

void api_auth_fail(struct api *api, const struct http_request *req)
{
	if (req->authorization_count > 0)
		api_auth__penalize(api->auth, req, uv_now(api->auth->timer.loop));
}

void api_auth_refuse(struct api *api, struct http_conn *c, const struct http_request *req, json_t *body,
		     const char *headers)
{
	struct api_auth *a = api->auth;
	struct api_conn_state *st = api_conn_state(c);
	uint64_t now = uv_now(a->timer.loop);
	struct api_auth_wait *w;

	/* No token at all is a client that forgot it, not a guess (a Redfish
	 * session token or login is one). */
	if ((req->authorization_count == 0 && req->x_auth_token_count == 0 &&
	     !(req->verb == HTTP_VERB_POST && api_redfish_is(req))) || !st) {
		api_reply_send(c, 401, body, headers);
		return;
	}
	if (++st->auth_fails >= API_AUTH_CONN_FAILS)
		http_conn_last(c);
	w = calloc(1, sizeof(*w));
	if (!w) {
		api_auth__penalize(a, req, now);
		api_reply_send(c, 401, body, headers);
		return;
	}
	w->c = c;
	w->due_ms = api_auth__penalize(a, req, now);
	w->body = body;
	w->headers = headers;
	w->next = a->waits;
	a->waits = w;
	st->auth_wait = w;
	http_defer(c);
	api_auth__arm(a);
}

void api_auth_conn_gone(struct api *api, struct api_conn_state *st)
{
	struct api_auth_wait **pp;

	if (!api->auth || !st->auth_wait)
		return;
	for (pp = &api->auth->waits; *pp; pp = &(*pp)->next)
		if (*pp == st->auth_wait) {
			*pp = st->auth_wait->next;
			break;
		}
	json_decref(st->auth_wait->body);
	free(st->auth_wait);
	st->auth_wait = NULL;
}

int api_auth_start(struct api *api)
{
	struct api_auth *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	uv_timer_init(api->ctl->loop, &a->timer);
	a->timer.data = a;
	api->auth = a;
	return 0;
}

static void api_auth__closed(uv_handle_t *h)
{
	free(h->data);
}

void api_auth_stop(struct api *api)
{
	if (!api->auth)
		return;
	/* Connections are gone by now (api_stop stops the server first). */
	uv_close((uv_handle_t *)&api->auth->timer, api_auth__closed);
	api->auth = NULL;
}
