/* The table of board sessions and sending frames on them, over their
 * transport (al_conn.c, or a sky_tls directly).  Main loop only. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/tpm_verify.h"
#include <openssl/ssl.h>

static unsigned bucket_of(const char *id)
{
	uint32_t h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h % AL_BUCKETS;
}

struct session *al_find(struct agentlink *al, const char *id)
{
	for (struct session *s = al->buckets[bucket_of(id)]; s; s = s->next)
		if (strcmp(s->board_id, id) == 0)
			return s;
	return NULL;
}

void al_kick(struct agentlink *al, const char *id, const char *fmt, ...)
{
	struct session *s = al_find(al, id);
	char msg[256];
	va_list ap;

	if (!s)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	al_unhash(s);
	log_info("board %s: closing its session: %s", id, msg);
	al_session_error(s, 0, SKYROOT__ERROR_CODE__ERROR_REVOKED, "%s", msg);
	al_sess_close(s, 0);
}

void al_unhash(struct session *s)
{
	struct session **pp;
	if (!s->hashed)
		return;
	for (pp = &s->al->buckets[bucket_of(s->board_id)]; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	s->hashed = false;
	s->al->n_online--;
}

void al_hash(struct session *s)
{
	unsigned b = bucket_of(s->board_id);

	s->next = s->al->buckets[b];
	s->al->buckets[b] = s;
	s->hashed = true;
	s->al->n_online++;
}

/* ---- the transport ---- */

bool al_sess_ready(const struct session *s)
{
	return s->c ? al_conn_ready(s->c) : sky_tls_is_ready(s->tls);
}

size_t al_sess_queued(const struct session *s)
{
	return s->c ? al_conn_queued(s->c) : sky_tls_queued(s->tls);
}

void al_sess_close(struct session *s, int err)
{
	if (s->c)
		al_conn_close(s->c, err);
	else
		sky_tls_close(s->tls, err);
}

void al_sess_abort(struct session *s, int err)
{
	if (s->c)
		al_conn_abort(s->c, err);
	else
		sky_tls_abort(s->tls, err);
}

void al_sess_idle(struct session *s, uint64_t ms)
{
	if (s->c)
		al_conn_idle(s->c, ms);
	else
		sky_tls_set_idle_timeout(s->tls, ms);
}

/* ---- sending ---- */

int al_session_send(struct session *s, Skyroot__Envelope *env)
{
	struct sky_buf out;
	int r;
	sky_buf_init(&out, SKY_FRAME_MAX_BULK + SKY_FRAME_HEADER);
	r = sky_frame_encode(env, SKY_FRAME_MAX_BULK, &out);
	if (r == 0 && s->c) /* the encoded frame changes hands: no copy */
		return al_conn_send(s->c, out.data, 0, out.len, NULL);
	if (r == 0)
		r = sky_tls_write(s->tls, out.data, out.len);
	sky_buf_free(&out);
	return r;
}

int al_session_send_tail(struct session *s, const Skyroot__Envelope *hdr, uint8_t *tail, size_t tail_len,
			 uint8_t **owner)
{
	uint8_t *buf;
	uint8_t prefix[SKY_FRAME_TAIL_PREFIX_MAX];
	int n = sky_frame_encode_tail_prefix(hdr, tail_len, SKY_FRAME_MAX_BULK, prefix, sizeof(prefix));

	if (n < 0)
		return n;
	/* The prefix goes in front of the payload, in the room the caller left,
	 * so the frame is one contiguous run for TLS: full-size records, and
	 * the payload is not copied to make the frame. */
	memcpy(tail - n, prefix, (size_t)n);
	if (!s->c)
		return sky_tls_write(s->tls, tail - n, (size_t)n + tail_len);
	/* To the session's loop: the pool buffer changes hands, no copy. */
	buf = *owner;
	*owner = NULL;
	return al_conn_send(s->c, buf, (size_t)(tail - n - buf), (size_t)n + tail_len, s->al->pool);
}

/* Tell the agent what is wrong (it logs this on the board's console). */
void al_session_error(struct session *s, uint64_t req, Skyroot__ErrorCode code, const char *fmt, ...)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__Error err = SKYROOT__ERROR__INIT;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err.code = code;
	err.message = msg;
	env.request_id = req;
	env.body_case = SKYROOT__ENVELOPE__BODY_ERROR;
	env.error = &err;
	al_session_send(s, &env);
}

bool al_str_ok(const char *s, size_t max)
{
	return s && strnlen(s, max + 1) <= max;
}

void al_session_touch(struct session *s)
{
	s->last_seen = sky_unix_now();
	s->seen_dirty = true;
}

void al_maybe_free(struct agentlink *al)
{
	if (al->stopping && al->closed_handles == 2 && al->n_sessions == 0 && al->chunk_reading == 0 &&
	    al->enroll_signing == 0) {
		while (al->chunk_head) {
			struct chunk_job *j = al->chunk_head;
			al->chunk_head = j->next;
			free(j);
		}
		SSL_CTX_free(al->ssl_ctx);
		OPENSSL_free(al->ca_der);
		tpmv_nonces_free(al->tpm_nonces);
		al_pool_free(al->pool);
		free(al);
	}
}
