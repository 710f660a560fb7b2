/* The agent port: one mutual-TLS session per board, initiated by the board.
 *
 * A connection without a client certificate may only enroll.  A connection
 * with one is a board session once its certificate checks out against the
 * store (issued by us, to that board, not revoked).  Frames are size-checked
 * before anything is allocated (common/frame.c).  What boards report goes to
 * the rest of the controller through struct agentlink_ops, never by calling
 * into it.  Layers: agentlink_priv.h.
 *
 * Threads (loops.c has the model): everything here runs on the main loop;
 * each session's transport (socket, TLS, framing) runs on the session loop
 * the listener's accepted socket was handed to (al_conn.c), and reports
 * through al_conn_ops below. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/x509.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/loops.h"
#include "controller/skyrootd/store.h"

static void al_hello(struct session *s, const Skyroot__Hello *h, const uint8_t *raw, size_t raw_len)
{
	uint8_t hash[32];
	bool first = !s->hello_seen;

	s->hello_seen = true;
	if (first) {
		/* The firmware is back: a board that ran a bare-metal OS is a
		 * hypervisor again, and its guests are driven to their state. */
		db_board_set_baremetal(s->al->ctl->db, s->board_id, false);
		if (s->al->ops.board_up)
			s->al->ops.board_up(s->al->ops_ctx, s->board_id);
	}
	uint64_t hb = h->heartbeat_ms ? h->heartbeat_ms : AL_DEFAULT_HB_MS;

	if (hb < 100)
		hb = 100;
	if (hb > 600000)
		hb = 600000;
	s->hb_ms = hb;
	/* Offline after three missed heartbeats: the session is closed then. */
	al_sess_idle(s, 3 * hb + hb / 2);
	al_session_touch(s);
	sky_sha256(raw, raw_len, hash);
	if (memcmp(hash, s->inv_hash, sizeof(hash)) == 0)
		return;
	int r = db_board_set_inventory(s->al->ctl->db, s->board_id, raw, raw_len);
	if (r < 0) {
		log_error("board %s: cannot store inventory: %s", s->board_id, strerror(-r));
		return;
	}
	memcpy(s->inv_hash, hash, sizeof(hash));
	log_info("board %s: inventory updated (%u cpus, %llu MiB, kvm %s)", s->board_id, h->cpus,
		 (unsigned long long)(h->memory_bytes >> 20), h->kvm ? "yes" : "no");
}

static void al_heartbeat(struct session *s, uint64_t req, const Skyroot__Heartbeat *hb)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__Heartbeat echo = SKYROOT__HEARTBEAT__INIT;
	al_session_touch(s);
	echo.seq = hb->seq;
	echo.sent_unix_ms = hb->sent_unix_ms;
	env.request_id = req;
	env.body_case = SKYROOT__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &echo;
	al_session_send(s, &env);
	al_quote_heartbeat(s);
}

/* What changed since the board's last report, as events: an image now in
 * its cache (not on the session's first report: that is what it had), an
 * error it did not report before. */
static void al_image_events(struct session *s, const Skyroot__ImageStatus *was, const Skyroot__ImageStatus *now)
{
	const struct agentlink_ops *ops = &s->al->ops;

	if (!ops->event)
		return;
	for (size_t i = 0; was && i < now->n_images; i++) {
		bool known = false;
		for (size_t j = 0; j < was->n_images && !known; j++)
			known = now->images[i]->id && was->images[j]->id && strcmp(now->images[i]->id, was->images[j]->id) == 0;
		if (!known && now->images[i]->id)
			ops->event(s->al->ops_ctx, false, "board.image_loaded", "board", s->board_id,
				   (const char *const[]){ "image", now->images[i]->id, NULL });
	}
	for (size_t i = 0; i < now->n_errors; i++) {
		const Skyroot__ImageError *e = now->errors[i];
		bool known = false;
		for (size_t j = 0; was && j < was->n_errors && !known; j++)
			known = e->id && e->error && was->errors[j]->id && was->errors[j]->error &&
				strcmp(e->id, was->errors[j]->id) == 0 && strcmp(e->error, was->errors[j]->error) == 0;
		if (!known && e->id)
			ops->event(s->al->ops_ctx, false, "board.image_failed", "board", s->board_id,
				   (const char *const[]){ "image", e->id, "reason", e->error, NULL });
	}
}

static void al_image_status(struct session *s, const Skyroot__ImageStatus *st)
{
	size_t n = skyroot__image_status__get_packed_size(st);
	uint8_t *raw = malloc(n ? n : 1);
	Skyroot__ImageStatus *copy;
	if (!raw)
		return;
	skyroot__image_status__pack(st, raw);
	copy = skyroot__image_status__unpack(NULL, n, raw);
	free(raw);
	if (!copy)
		return;
	al_image_events(s, s->images, copy);
	if (s->images)
		skyroot__image_status__free_unpacked(s->images, NULL);
	s->images = copy;
	for (size_t i = 0; i < st->n_errors; i++)
		log_warn("board %s: image %s: %s", s->board_id, st->errors[i]->id, st->errors[i]->error);
}

/* A new fetch order supersedes the board's last error for that image:
 * until the board reports again, the API shows no stale refusal. */
static void al_forget_image_error(struct session *s, const char *image_id)
{
	Skyroot__ImageStatus *st = s->images;
	size_t k = 0;

	for (size_t i = 0; st && i < st->n_errors; i++) {
		if (st->errors[i]->id && strcmp(st->errors[i]->id, image_id) == 0)
			skyroot__image_error__free_unpacked(st->errors[i], NULL);
		else
			st->errors[k++] = st->errors[i];
	}
	if (st)
		st->n_errors = k;
}

static void al_on_drained(void *owner)
{
	al_chunks_drained(owner);
}

int agentlink_board_fetch(struct agentlink *al, const char *board_id, const char *image_id)
{
	struct session *s = al ? al_find(al, board_id) : NULL;
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__ImageFetch f = SKYROOT__IMAGE_FETCH__INIT;
	Skyroot__SignedManifest sm = SKYROOT__SIGNED_MANIFEST__INIT;
	uint8_t *man = NULL, *sig = NULL;
	size_t man_len = 0, sig_len = 0;
	int r;

	if (!s || !al_sess_ready(s))
		return -ENOTCONN;
	r = store_image_manifest(al->ctl->store, board_id, image_id, &man, &man_len, &sig, &sig_len);
	if (r < 0)
		return r;
	sm.manifest.data = man;
	sm.manifest.len = man_len;
	sm.signature.data = sig;
	sm.signature.len = sig_len;
	f.manifest = &sm;
	env.body_case = SKYROOT__ENVELOPE__BODY_IMAGE_FETCH;
	env.image_fetch = &f;
	r = al_session_send(s, &env);
	free(man);
	free(sig);
	if (r == 0) {
		al_forget_image_error(s, image_id);
		log_info("board %s: asked to fetch image %s", board_id, image_id);
	}
	return r;
}

int agentlink_board_send(struct agentlink *al, const char *board_id, Skyroot__Envelope *env)
{
	struct session *s = al ? al_find(al, board_id) : NULL;
	if (!s || !al_sess_ready(s))
		return -ENOTCONN;
	return al_session_send(s, env);
}

int agentlink_board_baremetal(struct agentlink *al, const char *board_id, bool on)
{
	return db_board_set_baremetal(al->ctl->db, board_id, on);
}

const Skyroot__ImageStatus *agentlink_board_images(struct agentlink *al, const char *board_id)
{
	struct session *s = al ? al_find(al, board_id) : NULL;
	return s ? s->images : NULL;
}

/* A frame with what its session loop prepared (al_enroll_prepare), or NULL. */
static void al_on_frame_prep(void *owner, Skyroot__Envelope *env, void *prep)
{
	struct session *s = owner;
	uint64_t req = env->request_id;

	if (env->body_case == SKYROOT__ENVELOPE__BODY_ENROLL_REQUEST) {
		if (!prep)
			prep = al_enroll_prepare(env);
		if (prep)
			al_tpm_enroll(s, req, prep); /* the TPM step first, when the board has one */
		else
			al_enroll(s, req, env->enroll_request);
		prep = NULL;
	} else if (env->body_case == SKYROOT__ENVELOPE__BODY_TPM_PROOF && s->state != SESS_BOARD) {
		al_tpm_proof(s, req, env->tpm_proof);
	} else if (s->state != SESS_BOARD) {
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_NOT_ENROLLED,
			      "this connection has no client certificate: it may only enroll");
		al_sess_close(s, 0);
	} else {
		switch (env->body_case) {
		case SKYROOT__ENVELOPE__BODY_HELLO: {
			size_t n = skyroot__hello__get_packed_size(env->hello);
			uint8_t *raw = malloc(n ? n : 1);
			if (raw) {
				skyroot__hello__pack(env->hello, raw);
				al_hello(s, env->hello, raw, n);
				free(raw);
			}
			break;
		}
		case SKYROOT__ENVELOPE__BODY_HEARTBEAT:
			al_heartbeat(s, req, env->heartbeat);
			break;
		case SKYROOT__ENVELOPE__BODY_TPM_QUOTE:
			al_quote_answer(s, req, env->tpm_quote);
			break;
		case SKYROOT__ENVELOPE__BODY_RENEW_REQUEST:
			al_renew(s, req, env->renew_request);
			break;
		case SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST:
			al_chunk_request(s, req, env->chunk_request);
			break;
		case SKYROOT__ENVELOPE__BODY_IMAGE_STATUS:
			al_image_status(s, env->image_status);
			break;
		case SKYROOT__ENVELOPE__BODY_REBOOT_RESULT:
			al_reboot_result(s, env->reboot_result);
			break;
		case SKYROOT__ENVELOPE__BODY_CHUNK_CORRUPT:
			al_chunk_report(s, env->chunk_corrupt);
			break;
		case SKYROOT__ENVELOPE__BODY_GUEST_REPORT:
			if (s->al->ops.guest_report)
				s->al->ops.guest_report(s->al->ops_ctx, s->board_id, env->guest_report);
			break;
		case SKYROOT__ENVELOPE__BODY_CONSOLE_DATA:
			if (s->al->ops.console)
				s->al->ops.console(s->al->ops_ctx, s->board_id, env->console_data);
			break;
		case SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT:
			if (s->al->ops.boot_result)
				s->al->ops.boot_result(s->al->ops_ctx, s->board_id, req, env->bare_metal_boot_result);
			break;
		default:
			al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "unexpected message %d",
				      (int)env->body_case);
			break;
		}
	}
	al_enroll_prep_free(prep);
	skyroot__envelope__free_unpacked(env, NULL);
}

int al_on_frame(void *ctx, Skyroot__Envelope *env)
{
	al_on_frame_prep(ctx, env, NULL);
	return 0;
}

/* On the session loop: an enrollment's CSR is checked there. */
static void *al_loop_frame(const Skyroot__Envelope *env)
{
	return env->body_case == SKYROOT__ENVELOPE__BODY_ENROLL_REQUEST ? al_enroll_prepare(env) : NULL;
}

/* Accept expired client certificates through the handshake so the board
 * can be told, in a message, to re-enroll.  Everything else must verify. */
static int al_verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl;
	bool *expired;
	int err;
	if (ok)
		return 1;
	err = X509_STORE_CTX_get_error(store);
	if (err != X509_V_ERR_CERT_HAS_EXPIRED || X509_STORE_CTX_get_error_depth(store) != 0) {
		/* The handshake ends with an alert; the log says whose and why. */
		X509 *bad = X509_STORE_CTX_get_current_cert(store);
		char cn[DB_ID_MAX];
		if (!bad || sky_cert_cn(bad, cn, sizeof(cn)) < 0)
			snprintf(cn, sizeof(cn), "(no usable name)");
		log_warn("agent link: client certificate %s refused at depth %d: %s", cn,
			 X509_STORE_CTX_get_error_depth(store), X509_verify_cert_error_string(err));
		return 0;
	}
	ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	expired = ssl ? SSL_get_ex_data(ssl, al_conn_ex_index()) : NULL;
	if (!expired)
		return 0;
	*expired = true; /* on the session loop: al_conn.c passes it on */
	return 1;
}

static void al_on_ready(void *owner, const struct al_peer *peer)
{
	struct session *s = owner;
	struct agentlink *al = s->al;
	const char *cn = peer->cn;
	int r;

	s->cert_expired = peer->expired;
	if (!peer->present) {
		s->state = SESS_ENROLL_ONLY;
		return;
	}
	if (!peer->cn_ok) {
		al_sess_abort(s, -EPROTO);
		return;
	}
	snprintf(s->board_id, sizeof(s->board_id), "%s", cn);
	if (s->cert_expired) {
		char when[32];
		sky_fmt_time(peer->not_after, when, sizeof(when));
		log_warn("board %s: client certificate expired at %s; refused", cn, when);
		al_session_error(s, 0, SKYROOT__ERROR_CODE__ERROR_CERT_EXPIRED,
			      "the certificate of board %s expired at %s: boot the board with a new "
			      "enrollment token (skyctl token create) to re-enroll", cn, when);
		al_sess_close(s, 0);
		return;
	}
	r = db_cert_check(al->ctl->db, peer->serial, cn);
	if (r < 0) {
		log_warn("board %s: certificate %s; session refused", cn,
			 r == -EKEYREVOKED ? "revoked (board deleted)" :
			 r == -ESTALE ? "revoked (replaced by a newer one)" : "unknown to this controller");
		al_session_error(s, 0, r == -ENOENT ? SKYROOT__ERROR_CODE__ERROR_NOT_ENROLLED : SKYROOT__ERROR_CODE__ERROR_REVOKED,
			      r == -EKEYREVOKED ? "board %s was deleted from the fleet: enroll it again with a new token" :
			      r == -ESTALE ? "this certificate of board %s was replaced by a newer one and is revoked: "
					     "enroll again with a token made for the board ('skyctl token create --board')" :
					     "board %s is not known to this controller: enroll it with a token", cn);
		al_sess_close(s, 0);
		return;
	}
	/* A session on a renewed certificate: the earlier ones are revoked now. */
	r = db_cert_revoke_older(al->ctl->db, cn, peer->serial);
	if (r > 0)
		log_info("board %s: session on its newest certificate; %d earlier one%s revoked", cn, r,
			 r == 1 ? "" : "s");
	struct session *old = al_find(al, cn);
	if (old) {
		/* The board reconnected before its old session timed out. */
		al_unhash(old);
		al_sess_abort(old, -ECONNRESET);
	}
	s->state = SESS_BOARD;
	/* A board: past admission (no deadline, not counted against its
	 * address: a rack behind one NAT address), and its frames may be
	 * as large as an inventory. */
	listener_admit(s->slot);
	if (s->c) /* its loop raised the frame limit at the handshake already */
		al_conn_admit(s->c);
	else
		sky_frame_decoder_init(&s->dec, SKY_FRAME_MAX_DEFAULT);
	s->hb_ms = AL_DEFAULT_HB_MS;
	al_hash(s);
	al_session_touch(s);
	al_sess_idle(s, 3 * s->hb_ms + s->hb_ms / 2);
	log_info("board %s: session up", cn);
}


static void al_flush_one(struct agentlink *al, struct session *s)
{
	if (!s->seen_dirty)
		return;
	db_board_set_last_seen(al->ctl->db, s->board_id, s->last_seen);
	s->seen_dirty = false;
}

static void al_on_closed(void *owner, int err)
{
	struct session *s = owner;
	struct agentlink *al = s->al;

	if (s->state == SESS_BOARD) {
		if (s->hashed) {
			const char *why = err == -ETIMEDOUT ? "missed 3 heartbeats: offline" : err ? strerror(-err) : "closed";
			al_unhash(s);
			log_info("board %s: session down (%s)", s->board_id, why);
			if (s->hello_seen && !al->stopping && al->ops.event)
				al->ops.event(al->ops_ctx, false, "board.offline", "board", s->board_id,
					      (const char *const[]){ "reason", why, NULL });
			if (s->hello_seen && !al->stopping && al->ops.board_down)
				al->ops.board_down(al->ops_ctx, s->board_id);
		}
		if (!al->stopping)
			al_flush_one(al, s);
	}
	al_tpm_session_gone(s);
	al_enroll_session_gone(s);
	al_chunks_session_gone(s);
	if (s->images)
		skyroot__image_status__free_unpacked(s->images, NULL);
	sky_frame_decoder_free(&s->dec);
	if (s->prev_all)
		s->prev_all->next_all = s->next_all;
	else
		al->all = s->next_all;
	if (s->next_all)
		s->next_all->prev_all = s->prev_all;
	al->n_sessions--;
	listener_release(s->slot);
	al_conn_release(s->c);
	free(s);
	loops_hold(al->loops, false);
	al_maybe_free(al);
}

static const struct al_conn_ops al_conn_cbs = {
	.on_ready = al_on_ready,
	.on_frame = al_on_frame_prep,
	.on_drained = al_on_drained,
	.on_closed = al_on_closed,
	.loop_frame = al_loop_frame,
};

/* The listener admitted a connection (fd): it becomes a session, which
 * may only enroll until its client certificate checks out; its transport
 * goes to a session loop. */
static int al_handoff(void *ctx, int fd, struct listener_slot *slot, const struct listener_limits *lim)
{
	struct agentlink *al = ctx;
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->al = al;
	s->slot = slot;
	sky_frame_decoder_init(&s->dec, AL_ENROLL_FRAME_MAX);
	s->c = al_conn_open(al->loops, &al_conn_cbs, s, fd, al->ssl_ctx, lim->handshake_ms, lim->admit_ms);
	if (!s->c) {
		free(s);
		return -ENOMEM;
	}
	al->n_sessions++;
	loops_hold(al->loops, true);
	s->next_all = al->all;
	if (al->all)
		al->all->prev_all = s;
	al->all = s;
	return 0;
}

void agentlink_flush(struct agentlink *al)
{
	struct db *db = al->ctl->db;
	bool any = false;
	for (unsigned i = 0; i < AL_BUCKETS && !any; i++)
		for (struct session *s = al->buckets[i]; s && !any; s = s->next)
			any = s->seen_dirty;
	if (!any)
		return;
	/* One transaction for all: last-seen times are not acknowledged writes. */
	if (db_begin(db) < 0)
		return;
	for (unsigned i = 0; i < AL_BUCKETS; i++)
		for (struct session *s = al->buckets[i]; s; s = s->next)
			al_flush_one(al, s);
	if (db_commit(db) < 0)
		db_rollback(db);
}

SSL_CTX *agentlink_tls_ctx(X509 *cert, EVP_PKEY *key, X509 *ca)
{
	SSL_CTX *ctx = sky_tls_ctx_new(SKY_TLS_SERVER, TLS1_3_VERSION);
	X509_STORE *store;
	if (!ctx)
		return NULL;
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_add1_chain_cert(ctx, ca) != 1)
		goto fail;
	store = SSL_CTX_get_cert_store(ctx);
	if (X509_STORE_add_cert(store, ca) != 1)
		goto fail;
	/* Ask for a client certificate but let enrollment in without one. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, al_verify_cb);
	SSL_CTX_set_verify_depth(ctx, 2);
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

static void al_handle_closed(uv_handle_t *h)
{
	struct agentlink *al = h->data;
	al->closed_handles++;
	al_maybe_free(al);
}

int agentlink_start(struct controller *ctl, const struct sockaddr *addr, const struct listener_limits *lim,
		    const struct agentlink_ops *ops, void *ops_ctx)
{
	struct agentlink *al = calloc(1, sizeof(*al));
	int r;

	if (!al)
		return -ENOMEM;
	al_conn_ex_index();
	al->ctl = ctl;
	al->loops = ctl->loops;
	if (ops)
		al->ops = *ops;
	al->ops_ctx = ops_ctx;
	al->ssl_ctx = agentlink_tls_ctx(ctl->server_cert, ctl->server_key, ctl->ca_cert);
	if (!al->ssl_ctx) {
		free(al);
		return -EIO;
	}
	/* Frames are sealed on the session loops, or on main when it is the
	 * only loop: one transient buffer for each, AL_POOL_TRANSIENTS at most
	 * (agentlink_priv.h). */
	unsigned sealers = loops_count(al->loops) > 1 ? loops_count(al->loops) - 1 : 1;

	r = al_pool_new(al->loops, AL_POOL_JOBS, sealers < AL_POOL_TRANSIENTS ? sealers : AL_POOL_TRANSIENTS,
			al_chunk_pool_ready, al, &al->pool);
	if (r < 0) {
		SSL_CTX_free(al->ssl_ctx);
		free(al);
		return r;
	}
	uv_timer_init(ctl->loop, &al->flush_timer);
	uv_check_init(ctl->loop, &al->enroll_check);
	al->flush_timer.data = al;
	al->enroll_check.data = al;
	al->enroll_tail = &al->enroll_head;
	al->chunk_tail = &al->chunk_head;
	r = listener_start_handoff(ctl->loop, "agent port", addr, lim, al_handoff, al, &al->listener);
	if (r < 0) {
		al->stopping = true;
		uv_close((uv_handle_t *)&al->flush_timer, al_handle_closed);
		uv_close((uv_handle_t *)&al->enroll_check, al_handle_closed);
		return r;
	}
	/* Last-seen times of live sessions are served from memory and written
	 * when a session ends and at shutdown: writing 10,000 rows every few
	 * seconds stalled heartbeats (measured: tests/bench/run.sh). */
	ctl->agents = al;
	return 0;
}

void agentlink_set_tls(struct agentlink *al, SSL_CTX *ssl_ctx, const struct listener_limits *lim)
{
	if (!al || al->stopping || SSL_CTX_up_ref(ssl_ctx) != 1)
		return;
	SSL_CTX_free(al->ssl_ctx);
	al->ssl_ctx = ssl_ctx;
	listener_set(al->listener, ssl_ctx, lim);
}

void agentlink_stop(struct agentlink *al)
{
	if (!al || al->stopping)
		return;
	agentlink_flush(al);
	al->stopping = true;
	for (struct session *s = al->all; s; s = s->next_all) {
		al_unhash(s);
		al_sess_close(s, 0);
	}
	uv_timer_stop(&al->flush_timer);
	uv_close((uv_handle_t *)&al->flush_timer, al_handle_closed);
	listener_stop(al->listener);
	/* Answer (and commit) what is queued before the check handle goes. */
	al_enroll_batch(&al->enroll_check);
	uv_close((uv_handle_t *)&al->enroll_check, al_handle_closed);
}

bool agentlink_board_online(struct agentlink *al, const char *board_id, int64_t *last_seen)
{
	struct session *s = al ? al_find(al, board_id) : NULL;
	if (!s)
		return false;
	if (last_seen)
		*last_seen = s->last_seen;
	return true;
}

void agentlink_pool_stats(const struct agentlink *al, struct agentlink_pool_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (al && al->pool)
		al_pool_stats(al->pool, st);
}

size_t agentlink_online_count(const struct agentlink *al)
{
	return al ? al->n_online : 0;
}

void agentlink_board_kick(struct agentlink *al, const char *board_id)
{
	if (al)
		al_kick(al, board_id, "board %s was deleted from the fleet: enroll it again with a new token", board_id);
}
