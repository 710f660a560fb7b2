/* The agent link's bottom layer: the table of board sessions and sending
 * frames on them.  Calls nothing else of the agent link. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink_priv.h"
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
	sky_tls_close(s->tls, 0);
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

/* ---- sending ---- */

int al_session_send(struct session *s, Skyroot__Envelope *env)
{
	struct sky_buf out;
	int r;
	sky_buf_init(&out, SKY_FRAME_MAX_BULK + SKY_FRAME_HEADER);
	r = sky_frame_encode(env, SKY_FRAME_MAX_BULK, &out);
	if (r == 0)
		r = sky_tls_write(s->tls, out.data, out.len);
	sky_buf_free(&out);
	return r;
}

int al_session_send_tail(struct session *s, const Skyroot__Envelope *hdr, uint8_t *tail, size_t tail_len)
{
	uint8_t prefix[SKY_FRAME_TAIL_PREFIX_MAX];
	int n = sky_frame_encode_tail_prefix(hdr, tail_len, SKY_FRAME_MAX_BULK, prefix, sizeof(prefix));

	if (n < 0)
		return n;
	/* The prefix goes in front of the payload, in the room the caller left,
	 * so the frame is one contiguous run for TLS: full-size records, and
	 * the payload is not copied to make the frame. */
	memcpy(tail - n, prefix, (size_t)n);
	return sky_tls_write(s->tls, tail - n, (size_t)n + tail_len);
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
	if (al->stopping && al->closed_handles == 2 && al->n_sessions == 0 && al->chunk_reading == 0) {
		while (al->chunk_head) {
			struct chunk_job *j = al->chunk_head;
			al->chunk_head = j->next;
			free(j);
		}
		SSL_CTX_free(al->ssl_ctx);
		free(al);
	}
}
