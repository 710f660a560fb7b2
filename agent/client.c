/* skyagent's controller link.  The board dials out (it never listens):
 * first without a client certificate to enroll with a token, then with the
 * certificate it got, which together with its key lives only in memory. */
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/backoff.h"
#include "agent/ctlset.h"
#include "agent/images.h"
#include "agent/offloop.h"
#include "agent/guests.h"
#include "agent/hello.h"
#include "agent/identity.h"
#include "agent/pending.h"
#include "agent/pin.h"
#include "agent/reboot.h"
#include "agent/tpm_link.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/x509.h"

#define INVENTORY_POLL_MS 10000u
#define CONNECT_TIMEOUT_MS 15000u

enum link_mode { LINK_IDLE, LINK_ENROLL, LINK_SESSION };

struct agent {
	uv_loop_t *loop;
	const struct agent_config *cfg;
	const struct inventory *inv_override;
	struct agent_hooks hooks;
	void *ud;

	/* Identity: RAM only. */
	EVP_PKEY *key;
	X509 *cert;
	EVP_PKEY *pending_key;        /* during renewal */
	struct agent_tpm_link *tpm;   /* the TPM during an enrollment (tpm_link.h) */
	struct agent_tpm_kept tpm_kept; /* its AK, for fresh quotes in sessions */
	char board_id[64];
	uint8_t signing_pub[32];
	int64_t not_after;

	struct sky_tls *tls;
	struct sky_frame_decoder dec;
	enum link_mode mode;
	uv_getaddrinfo_t gai;
	uv_connect_t connect_req;
	bool resolving, connecting;
	uv_timer_t retry_timer;
	uv_timer_t hb_timer;
	uv_timer_t inv_timer;
	uv_timer_t renew_timer;
	uv_timer_t tick_timer;
	struct imgcache *cache;
	struct guestmgr *guests;
	int handles_open;
	unsigned attempt;
	uint64_t next_req;
	uint64_t hb_seq;
	uint64_t last_rtt_us;
	uint8_t hello_hash[32];
	bool hello_sent;
	bool just_enrolled;
	bool stopping;
	/* Enrollment with no token: the controller's word on when to ask
	 * again (0: the usual backoff), and the pending id last logged. */
	uint64_t retry_ms;
	char pending_id[64];
	struct agent_pin_check pin;   /* this connection's pin check */
	struct agent_ctlset ctl;      /* the controllers and which one now */
	char ctl_desc[320];           /* the one dialled, for the log */
	struct sky_hostport own_ctl;  /* when the configuration has no list */
	char fail_why[300];           /* why the dial failed, "" = see the close */
	char last_error[512];
};

static void agent_emit(struct agent *a, enum agent_event ev)
{
	if (a->hooks.on_event)
		a->hooks.on_event(a, ev, a->ud);
}

static void agent_schedule_retry(struct agent *a, uint64_t delay_ms);
static void agent_connect(struct agent *a);

/* ---- inventory -> Hello (agent/hello.c) ---- */

/* The board's inventory: the override given at start, else read now into
 * *local (inventory_free it when *inv == local). */
static int agent_inventory(struct agent *a, struct inventory *local, const struct inventory **inv)
{
	*inv = a->inv_override;
	if (!*inv) {
		struct inv_roots roots = {a->cfg->sysfs_root, a->cfg->procfs_root, a->cfg->devfs_root};
		int r = inventory_read(&roots, local);
		if (r < 0)
			return r;
		*inv = local;
	}
	return 0;
}

static int agent_build_hello(struct agent *a, uint8_t **out, size_t *out_len)
{
	struct inventory local = {0};
	const struct inventory *inv;
	int r = agent_inventory(a, &local, &inv);

	if (r == 0)
		r = hello_pack(inv, (uint32_t)a->cfg->heartbeat_ms, a->cfg->allow_reboot != 0, out, out_len);
	if (inv == &local)
		inventory_free(&local);
	return r;
}

static int agent_machine_id(struct agent *a, char *uuid, size_t ulen, char *host, size_t hlen,
			    struct hello_claims *claims)
{
	struct inventory local = {0};
	const struct inventory *inv;
	int r = agent_inventory(a, &local, &inv);

	if (r == 0)
		r = hello_machine_id(inv, uuid, ulen, host, hlen);
	if (r == 0)
		hello_claims(inv, claims);
	if (inv == &local)
		inventory_free(&local);
	return r;
}

/* ---- sending ---- */

static int agent_send(struct agent *a, Skyroot__Envelope *env)
{
	struct sky_buf out;
	int r;
	if (!a->tls || !sky_tls_is_ready(a->tls))
		return -ENOTCONN;
	sky_buf_init(&out, SKY_FRAME_MAX_DEFAULT + SKY_FRAME_HEADER);
	/* An answer echoes the controller's request id (a BareMetalBootResult);
	 * anything else gets one of ours. */
	if (env->request_id == 0)
		env->request_id = ++a->next_req;
	r = sky_frame_encode(env, SKY_FRAME_MAX_DEFAULT, &out);
	if (r == 0)
		r = sky_tls_write(a->tls, out.data, out.len);
	sky_buf_free(&out);
	return r;
}

/* For the image cache: only on a live session. */
static int agent_cache_send(void *ctx, Skyroot__Envelope *env, uint64_t *req_id)
{
	struct agent *a = ctx;
	int r;
	if (a->mode != LINK_SESSION || !a->hello_sent)
		return -ENOTCONN;
	r = agent_send(a, env);
	if (r == 0)
		*req_id = env->request_id;
	return r;
}

/* For the image cache: a chunk's check off the loop (offloop.h). */
static int agent_cache_work(void *ctx, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
	struct agent *a = ctx;
	return agent_offloop(a->loop, work, done, arg);
}

static const struct imgcache_ops agent_cache_ops = {
	.send = agent_cache_send,
	.work = agent_cache_work,
};

static int agent_guest_send(void *ctx, Skyroot__Envelope *env)
{
	uint64_t req;
	return agent_cache_send(ctx, env, &req);
}

static const struct guestmgr_ops agent_guest_ops = {
	.send = agent_guest_send,
};

static int agent_send_hello(struct agent *a, bool force)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	uint8_t *raw = NULL, hash[32];
	size_t len = 0;
	int r = agent_build_hello(a, &raw, &len);
	if (r < 0)
		return r;
	sky_sha256(raw, len, hash);
	if (!force && memcmp(hash, a->hello_hash, 32) == 0) {
		free(raw);
		return 0;
	}
	env.body_case = SKYROOT__ENVELOPE__BODY_HELLO;
	env.hello = skyroot__hello__unpack(NULL, len, raw);
	free(raw);
	if (!env.hello)
		return -ENOMEM;
	r = agent_send(a, &env);
	skyroot__hello__free_unpacked(env.hello, NULL);
	if (r == 0) {
		memcpy(a->hello_hash, hash, 32);
		if (!force)
			log_info("inventory changed; sent it again");
	}
	return r;
}

static void agent_send_enroll(struct agent *a)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__EnrollRequest er = SKYROOT__ENROLL_REQUEST__INIT;
	Skyroot__TpmEvidence ev = SKYROOT__TPM_EVIDENCE__INIT;
	char uuid[80], host[INV_MAX_STR];
	struct hello_claims claims;
	char *macs[HELLO_MACS_MAX];
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	int r;

	r = agent_machine_id(a, uuid, sizeof(uuid), host, sizeof(host), &claims);
	if (r < 0) {
		snprintf(a->last_error, sizeof(a->last_error),
			 "no machine identity: no DMI product UUID and no NIC MAC address readable under %.200s",
			 a->cfg->sysfs_root);
		goto fail;
	}
	if (!a->pending_key && sky_key_new_p256(&a->pending_key) < 0)
		goto fail;
	r = sky_csr_new(a->pending_key, "skyagent", &csr, &csr_len);
	if (r < 0)
		goto fail;
	er.token = (char *)a->cfg->token;
	er.csr_der.data = csr;
	er.csr_der.len = csr_len;
	er.machine_uuid = uuid;
	er.hostname = host;
	er.agent_version = SKY_VERSION;
	/* What the operator sees of a board with no token. */
	for (size_t i = 0; i < claims.n_macs; i++)
		macs[i] = claims.macs[i];
	er.dmi_serial = claims.serial;
	er.macs = macs;
	er.n_macs = claims.n_macs;
	if (agent_tpm_link_enroll(a->cfg->tpm_tcti, a->cfg->tpm_explicit, &a->tpm, &ev, a->last_error,
				  sizeof(a->last_error)) < 0)
		goto fail;
	er.tpm = a->tpm ? &ev : NULL;
	env.body_case = SKYROOT__ENVELOPE__BODY_ENROLL_REQUEST;
	env.enroll_request = &er;
	r = agent_send(a, &env);
	OPENSSL_free(csr);
	if (r == 0)
		return;
fail:
	if (!a->last_error[0])
		snprintf(a->last_error, sizeof(a->last_error), "cannot build the enrollment request");
	log_error("%s", a->last_error);
	sky_tls_close(a->tls, -EIO);
}

static void agent_send_heartbeat(struct agent *a)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__Heartbeat hb = SKYROOT__HEARTBEAT__INIT;
	hb.seq = ++a->hb_seq;
	hb.sent_unix_ms = uv_hrtime() / 1000; /* monotonic microseconds, echoed back */
	env.body_case = SKYROOT__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	agent_send(a, &env);
}

/* ---- timers ---- */

static uint64_t jitter(uint64_t ms)
{
	/* +-10 % so a rack that booted together does not beat in step */
	uint64_t spread = ms / 5;
	return ms - ms / 10 + (spread ? sky_random_below(spread) : 0);
}

static void hb_cb(uv_timer_t *t)
{
	struct agent *a = t->data;
	if (a->mode != LINK_SESSION || !a->tls || !sky_tls_is_ready(a->tls))
		return;
	agent_send_heartbeat(a);
	uv_timer_start(&a->hb_timer, hb_cb, jitter(a->cfg->heartbeat_ms), 0);
}

static void inv_cb(uv_timer_t *t)
{
	struct agent *a = t->data;
	if (a->mode == LINK_SESSION && a->tls && sky_tls_is_ready(a->tls))
		agent_send_hello(a, false);
}

static void renew_cb(uv_timer_t *t)
{
	struct agent *a = t->data;
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__RenewRequest rr = SKYROOT__RENEW_REQUEST__INIT;
	uint8_t *csr = NULL;
	size_t len = 0;

	if (a->mode != LINK_SESSION || !a->tls || !sky_tls_is_ready(a->tls))
		return; /* renewed on the next session */
	EVP_PKEY_free(a->pending_key);
	a->pending_key = NULL;
	if (sky_key_new_p256(&a->pending_key) < 0 || sky_csr_new(a->pending_key, "skyagent", &csr, &len) < 0) {
		log_error("cannot make a renewal request; retrying in 60 s");
		uv_timer_start(&a->renew_timer, renew_cb, 60000, 0);
		return;
	}
	rr.csr_der.data = csr;
	rr.csr_der.len = len;
	env.body_case = SKYROOT__ENVELOPE__BODY_RENEW_REQUEST;
	env.renew_request = &rr;
	agent_send(a, &env);
	OPENSSL_free(csr);
	log_info("renewing the certificate (expires %lld)", (long long)a->not_after);
	/* If no answer comes, try again in a minute. */
	uv_timer_start(&a->renew_timer, renew_cb, 60000, 0);
}

static void agent_arm_renewal(struct agent *a)
{
	int64_t now = sky_unix_now();
	/* Renew at 2/3 of the lifetime: not_before is 5 min before issue. */
	const ASN1_TIME *nb = X509_get0_notBefore(a->cert);
	struct tm tm;
	int64_t start = now;
	if (ASN1_TIME_to_tm(nb, &tm))
		start = (int64_t)timegm(&tm) + 300;
	int64_t at = start + (a->not_after - start) * 2 / 3;
	uint64_t delay = at > now ? (uint64_t)(at - now) * 1000 : 1000;
	uv_timer_start(&a->renew_timer, renew_cb, delay, 0);
}

/* ---- frames from the controller ---- */

/* ---- identity kept across agent restarts (agent/identity.c) ---- */

static void agent_identity_keep(struct agent *a)
{
	const char *failed;
	int r;

	if (!a->cfg->identity_dir[0] || !a->cert || !a->key)
		return;
	r = agent_identity_save(a->cfg->identity_dir, a->key, a->cert, a->signing_pub, &failed);
	if (r < 0)
		log_warn("cannot keep the identity in %s/%s: %s", a->cfg->identity_dir, failed, strerror(-r));
}

static void agent_identity_restore(struct agent *a)
{
	int r;

	if (!a->cfg->identity_dir[0])
		return;
	r = agent_identity_load(a->cfg->identity_dir, &a->key, &a->cert, a->signing_pub, a->board_id,
				sizeof(a->board_id));
	if (r == -ENOENT)
		return;
	if (r < 0) {
		log_warn("the kept identity in %s is unusable; enrolling again", a->cfg->identity_dir);
		return;
	}
	a->not_after = sky_cert_not_after(a->cert);
	log_info("kept identity: board %s (certificate valid until %lld)", a->board_id, (long long)a->not_after);
}

static void agent_take_identity(struct agent *a, const Skyroot__EnrollResponse *er)
{
	X509 *cert = NULL, *ca = NULL;
	uint8_t pin[32];

	if (sky_cert_from_der(er->ca_der.data, er->ca_der.len, &ca) < 0 || sky_cert_pin(ca, pin) < 0 ||
	    !sky_memeq_ct(pin, a->cfg->ca_pin, 32)) {
		snprintf(a->last_error, sizeof(a->last_error), "enrollment answer carries a CA that does not match the pin");
		goto fail;
	}
	if (sky_cert_from_der(er->cert_der.data, er->cert_der.len, &cert) < 0 ||
	    X509_check_private_key(cert, a->pending_key) != 1 ||
	    !er->board_id || strlen(er->board_id) >= sizeof(a->board_id) ||
	    er->image_signing_pubkey.len != sizeof(a->signing_pub)) {
		ERR_clear_error();
		snprintf(a->last_error, sizeof(a->last_error), "enrollment answer is malformed");
		goto fail;
	}
	X509_free(a->cert);
	EVP_PKEY_free(a->key);
	a->cert = cert;
	a->key = a->pending_key;
	a->pending_key = NULL;
	snprintf(a->board_id, sizeof(a->board_id), "%s", er->board_id);
	memcpy(a->signing_pub, er->image_signing_pubkey.data, sizeof(a->signing_pub));
	a->not_after = (int64_t)er->not_after;
	a->just_enrolled = true;
	X509_free(ca);
	agent_identity_keep(a);
	log_info("enrolled as board %s; certificate valid until %lld", a->board_id, (long long)a->not_after);
	agent_emit(a, AGENT_EV_ENROLLED);
	return;
fail:
	X509_free(cert);
	X509_free(ca);
	log_error("%s", a->last_error);
}

static void agent_take_renewal(struct agent *a, const Skyroot__RenewResponse *rr)
{
	X509 *cert = NULL;
	if (!a->pending_key || sky_cert_from_der(rr->cert_der.data, rr->cert_der.len, &cert) < 0 ||
	    X509_check_private_key(cert, a->pending_key) != 1) {
		ERR_clear_error();
		X509_free(cert);
		log_error("renewal answer does not match our request; keeping the current certificate");
		return;
	}
	X509_free(a->cert);
	EVP_PKEY_free(a->key);
	a->cert = cert;
	a->key = a->pending_key;
	a->pending_key = NULL;
	a->not_after = (int64_t)rr->not_after;
	log_info("certificate renewed; valid until %lld", (long long)a->not_after);
	agent_identity_keep(a);
	agent_arm_renewal(a);
	agent_emit(a, AGENT_EV_RENEWED);
}

static void agent_forget_identity(struct agent *a)
{
	if (a->cfg->identity_dir[0])
		agent_identity_forget(a->cfg->identity_dir);
	X509_free(a->cert);
	EVP_PKEY_free(a->key);
	a->cert = NULL;
	a->key = NULL;
	a->board_id[0] = '\0';
	uv_timer_stop(&a->renew_timer);
}

/* The controller keeps us waiting (no token: an operator must accept this
 * key) or rejected the key.  The key stays in RAM: the next ask is with
 * the same key, which is the one a certificate can be issued to. */
static void agent_pending(struct agent *a, const Skyroot__EnrollResponse *er)
{
	struct agent_pending p;

	agent_pending_read(er, &p);
	snprintf(a->last_error, sizeof(a->last_error), "%s", p.text);
	if (p.rejected) {
		log_error("%s", p.text);
		a->pending_id[0] = '\0';
		agent_emit(a, AGENT_EV_REFUSED);
	} else {
		if (strcmp(a->pending_id, p.id) != 0)
			log_info("%s, asking again every %llu s", p.text, (unsigned long long)(p.retry_ms / 1000));
		else
			log_debug("still pending as %s", p.id);
		snprintf(a->pending_id, sizeof(a->pending_id), "%s", p.id);
		if (a->cfg->once) /* --once does not wait for an operator: it gives up */
			agent_emit(a, AGENT_EV_REFUSED);
	}
	a->retry_ms = p.retry_ms;
	a->attempt = 0;
}

static void tick_cb(uv_timer_t *t);

static void agent_tick_on(struct agent *a)
{
	if (!a->stopping && !uv_is_active((uv_handle_t *)&a->tick_timer))
		uv_timer_start(&a->tick_timer, tick_cb, 500, 500);
}

static int agent_on_frame(void *ctx, Skyroot__Envelope *env)
{
	struct agent *a = ctx;

	switch (env->body_case) {
	case SKYROOT__ENVELOPE__BODY_ENROLL_RESPONSE:
		if (a->mode == LINK_ENROLL && env->enroll_response->state != SKYROOT__ENROLL_STATE__ENROLL_ISSUED) {
			agent_pending(a, env->enroll_response);
			if (a->tls)
				sky_tls_close(a->tls, 0); /* ask again on a new connection */
		} else if (a->mode == LINK_ENROLL) {
			agent_take_identity(a, env->enroll_response);
			agent_tpm_link_keep(a->tpm, &a->tpm_kept);
			a->attempt = 0;
			if (a->tls) /* none when fed by agent_link_feed alone */
				sky_tls_close(a->tls, 0); /* reconnect with the certificate */
		}
		break;
	case SKYROOT__ENVELOPE__BODY_TPM_CHALLENGE: { /* the proof, under the enrollment's id */
		Skyroot__Envelope *pe = agent_tpm_link_proof(a->mode == LINK_ENROLL ? a->tpm : NULL, env, a->last_error,
							     sizeof(a->last_error));
		if ((!pe || agent_send(a, pe) < 0) && a->tls)
			sky_tls_close(a->tls, -EIO); /* tpm_link.c logged why */
		break;
	}
	case SKYROOT__ENVELOPE__BODY_TPM_QUOTE_REQUEST: /* the gate's fresh quote */
		if (a->mode == LINK_SESSION && agent_send(a, agent_tpm_link_quote(&a->tpm_kept, a->cfg->tpm_tcti, env)) < 0)
			log_warn("cannot send the quote to the controller");
		break;
	case SKYROOT__ENVELOPE__BODY_HEARTBEAT:
		a->last_rtt_us = uv_hrtime() / 1000 - env->heartbeat->sent_unix_ms;
		agent_emit(a, AGENT_EV_HEARTBEAT);
		break;
	case SKYROOT__ENVELOPE__BODY_RENEW_RESPONSE:
		agent_take_renewal(a, env->renew_response);
		break;
	case SKYROOT__ENVELOPE__BODY_IMAGE_FETCH:
		if (a->mode == LINK_SESSION)
			imgcache_on_fetch(a->cache, env->image_fetch);
		agent_tick_on(a);
		break;
	case SKYROOT__ENVELOPE__BODY_GUEST_COMMAND:
		if (a->mode == LINK_SESSION)
			guestmgr_on_command(a->guests, env->guest_command);
		agent_tick_on(a);
		break;
	case SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT:
		if (a->mode == LINK_SESSION)
			guestmgr_on_baremetal(a->guests, env->request_id, env->bare_metal_boot);
		agent_tick_on(a);
		break;
	case SKYROOT__ENVELOPE__BODY_REBOOT:
		if (a->mode == LINK_SESSION)
			agent_reboot(a->cfg, env->request_id, env->reboot, agent_guest_send, a);
		break;
	case SKYROOT__ENVELOPE__BODY_CHUNK_DATA:
		if (!imgcache_on_chunk(a->cache, env->request_id, env->chunk_data))
			log_warn("ignoring a chunk nobody asked for");
		break;
	case SKYROOT__ENVELOPE__BODY_ERROR: {
		const Skyroot__Error *e = env->error;
		if (imgcache_on_error(a->cache, env->request_id, e))
			break;
		snprintf(a->last_error, sizeof(a->last_error), "controller refused: %s",
			 e->message ? e->message : "(no reason given)");
		log_error("%s", a->last_error);
		if (e->code == SKYROOT__ERROR_CODE__ERROR_CERT_EXPIRED ||
		    e->code == SKYROOT__ERROR_CODE__ERROR_REVOKED ||
		    e->code == SKYROOT__ERROR_CODE__ERROR_NOT_ENROLLED) {
			agent_forget_identity(a);
			if (!a->cfg->token[0])
				log_warn("no enrollment token to enroll again with: asking as a pending board");
		}
		if (e->code != SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST)
			agent_emit(a, AGENT_EV_REFUSED);
		break;
	}
	default:
		log_warn("ignoring unexpected message %d from the controller", (int)env->body_case);
		break;
	}
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

/* Chunks in the frame's tail form go to the image cache as they arrive. */
static int agent_tail_begin(void *ctx, Skyroot__Envelope *env, size_t len)
{
	struct agent *a = ctx;

	if (!imgcache_chunk_begin(a->cache, env->request_id, env->chunk_data, len))
		log_warn("ignoring a chunk nobody asked for");
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

static int agent_tail_data(void *ctx, const uint8_t *p, size_t len)
{
	struct agent *a = ctx;
	imgcache_chunk_data(a->cache, p, len);
	return 0;
}

static int agent_tail_end(void *ctx)
{
	struct agent *a = ctx;
	imgcache_chunk_end(a->cache);
	return 0;
}

static const struct sky_frame_tail_ops agent_tail_ops = {
	.begin = agent_tail_begin,
	.data = agent_tail_data,
	.end = agent_tail_end,
};

/* ---- connection ---- */

static void tick_cb(uv_timer_t *t)
{
	struct agent *a = t->data;
	imgcache_tick(a->cache);
	guestmgr_tick(a->guests);
	/* Idle boards do not tick (thousands share a loop in the benchmarks). */
	if (!imgcache_active(a->cache) && !guestmgr_active(a->guests))
		uv_timer_stop(&a->tick_timer);
}

static void agent_on_ready(struct sky_tls *t)
{
	struct agent *a = sky_tls_data(t);
	if (a->mode == LINK_ENROLL) {
		if (a->cfg->token[0])
			log_info("connected to %s; enrolling with the token", a->ctl_desc);
		else if (!a->pending_id[0])
			log_info("connected to %s; no enrollment token: asking to enroll as a pending board "
				 "(an operator accepts it)", a->ctl_desc);
		agent_send_enroll(a);
		return;
	}
	memset(a->hello_hash, 0, sizeof(a->hello_hash));
	if (agent_send_hello(a, true) < 0) {
		log_error("cannot read the inventory to send");
		sky_tls_close(t, -EIO);
		return;
	}
	a->hello_sent = true;
	a->attempt = 0;
	log_info("session up as board %s with controller %s", a->board_id, a->ctl_desc);
	uv_timer_start(&a->hb_timer, hb_cb, jitter(a->cfg->heartbeat_ms), 0);
	if (!a->inv_override)
		uv_timer_start(&a->inv_timer, inv_cb, INVENTORY_POLL_MS, INVENTORY_POLL_MS);
	agent_arm_renewal(a);
	imgcache_set_signing_key(a->cache, a->signing_pub);
	imgcache_session_up(a->cache);
	guestmgr_session_up(a->guests);
	uv_timer_start(&a->tick_timer, tick_cb, 500, 500);
	agent_emit(a, AGENT_EV_SESSION_UP);
}

int agent_link_feed(struct agent *a, const uint8_t *data, size_t len)
{
	return sky_frame_feed(&a->dec, data, len, agent_on_frame, a);
}

static void agent_on_data(struct sky_tls *t, const uint8_t *data, size_t len)
{
	struct agent *a = sky_tls_data(t);
	int r = agent_link_feed(a, data, len);
	if (r < 0) {
		log_error("malformed data from the controller (%s); reconnecting", strerror(-r));
		sky_tls_abort(t, r);
	}
}

void agent_link_end(struct agent *a)
{
	a->tls = NULL;
	agent_tpm_link_free(a->tpm); /* one enrollment's */
	a->tpm = NULL;
	sky_frame_decoder_free(&a->dec);
	uv_timer_stop(&a->hb_timer);
	uv_timer_stop(&a->inv_timer);
	if (!a->stopping)
		uv_timer_stop(&a->tick_timer);
	if (a->cache)
		imgcache_session_down(a->cache);
	a->hello_sent = false;
	a->mode = LINK_IDLE;
}

/* The link to the current controller failed or was lost: say which one
 * and why, and which one comes next, after the backoff: it grows by one
 * step for each whole round of the list that failed (agent/ctlset.h). */
static void agent_failover(struct agent *a, const char *why, bool was_session)
{
	char to[sizeof(a->ctl_desc)];
	uint64_t delay;
	bool round;

	if (a->stopping)
		return;
	if (was_session) /* a session that worked: come back soon, then back off */
		a->attempt = 0;
	round = agent_ctlset_advance(&a->ctl);
	delay = agent_backoff_ms(a->attempt);
	if (round && a->attempt < 32)
		a->attempt++;
	agent_ctlset_describe(&a->ctl, to, sizeof(to));
	log_warn("controller %s %s: %s; next: controller %s in %llu ms", a->ctl_desc,
		 was_session ? "lost" : "failed", why, to, (unsigned long long)delay);
	agent_schedule_retry(a, delay);
}

static void agent_on_close(struct sky_tls *t, int err)
{
	struct agent *a = sky_tls_data(t);
	bool was_session = a->mode == LINK_SESSION && a->hello_sent;
	char why[sizeof(a->pin.verify_error) + 64];

	agent_link_end(a);
	snprintf(why, sizeof(why), "%s", a->fail_why[0] ? a->fail_why
					 : err ? strerror(-err) : "the connection was closed");
	a->fail_why[0] = '\0';
	if (a->pin.verify_error[0]) {
		snprintf(a->last_error, sizeof(a->last_error), "%s", a->pin.verify_error);
		snprintf(why, sizeof(why), "refused: %s", a->pin.verify_error);
		log_error("refusing the controller at %s: %s", a->ctl_desc, a->pin.verify_error);
		a->pin.verify_error[0] = '\0';
		agent_emit(a, AGENT_EV_REFUSED);
	}
	if (was_session) {
		log_info("session down");
		agent_emit(a, AGENT_EV_SESSION_DOWN);
	}
	a->handles_open--;
	if (a->stopping) {
		if (a->handles_open == 0)
			free(a);
		return;
	}
	/* Straight back after an enrollment; when the controller said when
	 * (a pending board), then, to the same controller; else the next
	 * controller with exponential backoff. */
	if (a->retry_ms && !a->cert) {
		uint64_t ms = a->retry_ms;
		a->retry_ms = 0;
		agent_schedule_retry(a, jitter(ms));
	} else if (a->cert && a->just_enrolled) {
		a->just_enrolled = false;
		agent_schedule_retry(a, 0);
	} else {
		agent_failover(a, why, was_session);
	}
}

static const struct sky_tls_cbs agent_tls_cbs = {
	.on_ready = agent_on_ready,
	.on_data = agent_on_data,
	.on_close = agent_on_close,
};

static void agent_connected(uv_connect_t *req, int status)
{
	struct agent *a = req->data;
	a->connecting = false;
	if (status < 0) {
		if (status != UV_ECANCELED)
			snprintf(a->fail_why, sizeof(a->fail_why), "cannot connect: %s", uv_strerror(status));
		sky_tls_abort(a->tls, status);
		return;
	}
	uv_tcp_nodelay(sky_tls_tcp(a->tls), 1);
	if (sky_tls_start(a->tls) < 0)
		sky_tls_abort(a->tls, -EIO);
}

bool agent_link_begin(struct agent *a)
{
	a->mode = a->cert ? LINK_SESSION : LINK_ENROLL;
	/* Chunks and manifests are larger than control messages. */
	sky_frame_decoder_init(&a->dec, SKY_FRAME_MAX_BULK);
	sky_frame_decoder_accept_tail(&a->dec, &agent_tail_ops);
	return a->mode == LINK_SESSION;
}

/* Dial the current controller's current address, with the identity we hold. */
static void agent_dial(struct agent *a)
{
	int r;

	agent_ctlset_describe(&a->ctl, a->ctl_desc, sizeof(a->ctl_desc));
	agent_link_begin(a);
	r = sky_tls_new(a->loop, agent_pin_ctx(), SKY_TLS_CLIENT, &agent_tls_cbs, a, &a->tls);
	if (r < 0) {
		a->mode = LINK_IDLE;
		sky_frame_decoder_free(&a->dec);
		agent_failover(a, strerror(-r), false);
		return;
	}
	a->handles_open++;
	SSL *ssl = sky_tls_ssl(a->tls);
	a->pin.pin = a->cfg->ca_pin;
	a->pin.verify_error[0] = '\0';
	agent_pin_attach(ssl, &a->pin);
	if (a->mode == LINK_SESSION) {
		SSL_use_certificate(ssl, a->cert);
		SSL_use_PrivateKey(ssl, a->key);
	}
	a->connect_req.data = a;
	sky_tls_set_idle_timeout(a->tls, CONNECT_TIMEOUT_MS + 3 * a->cfg->heartbeat_ms);
	log_debug("dialling controller %s", a->ctl_desc);
	r = uv_tcp_connect(&a->connect_req, sky_tls_tcp(a->tls), agent_ctlset_addr(&a->ctl), agent_connected);
	if (r < 0) {
		snprintf(a->fail_why, sizeof(a->fail_why), "cannot connect: %s", uv_strerror(r));
		sky_tls_abort(a->tls, r);
		return;
	}
	a->connecting = true;
}

static void agent_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct agent *a = req->data;
	char why[128];

	a->resolving = false;
	a->handles_open--;
	if (a->stopping) {
		uv_freeaddrinfo(res);
		if (a->handles_open == 0)
			free(a);
		return;
	}
	if (status < 0 || agent_ctlset_set_addrs(&a->ctl, res) == 0) {
		snprintf(why, sizeof(why), "cannot resolve it: %s",
			 status < 0 ? uv_strerror(status) : "no IPv4 or IPv6 address");
		uv_freeaddrinfo(res);
		agent_failover(a, why, false);
		return;
	}
	uv_freeaddrinfo(res);
	agent_dial(a);
}

static void agent_connect(struct agent *a)
{
	const struct sky_hostport *c = agent_ctlset_current(&a->ctl);
	char port[8];
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int r;

	if (!agent_ctlset_need_resolve(&a->ctl)) {
		agent_dial(a); /* the same address again, or the next one of a name */
		return;
	}
	agent_ctlset_describe(&a->ctl, a->ctl_desc, sizeof(a->ctl_desc));
	snprintf(port, sizeof(port), "%u", c->port);
	a->gai.data = a;
	r = uv_getaddrinfo(a->loop, &a->gai, agent_resolved, c->host, port, &hints);
	if (r < 0) {
		agent_failover(a, uv_strerror(r), false);
		return;
	}
	a->resolving = true;
	a->handles_open++;
}

static void retry_cb(uv_timer_t *t)
{
	agent_connect(t->data);
}

/* delay UINT64_MAX: the next exponential backoff step with full jitter. */
static void agent_schedule_retry(struct agent *a, uint64_t delay_ms)
{
	if (a->stopping)
		return;
	if (delay_ms == UINT64_MAX) {
		delay_ms = agent_backoff_ms(a->attempt);
		if (a->attempt < 32)
			a->attempt++;
	}
	uv_timer_start(&a->retry_timer, retry_cb, delay_ms, 0);
}

/* ---- lifecycle ---- */

int agent_new(uv_loop_t *loop, const struct agent_config *cfg, const struct inventory *inv_override,
	      const struct agent_hooks *hooks, void *ud, struct agent **out)
{
	struct agent *a;
	int r;
	if (!agent_pin_ctx())
		return -ENOMEM;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->cfg = cfg;
	if (cfg->n_controllers > 0) {
		agent_ctlset_init(&a->ctl, cfg->controllers, cfg->n_controllers);
	} else { /* a configuration made by hand (benchmarks): the one controller */
		snprintf(a->own_ctl.host, sizeof(a->own_ctl.host), "%s", cfg->controller_host);
		a->own_ctl.port = cfg->controller_port;
		agent_ctlset_init(&a->ctl, &a->own_ctl, 1);
	}
	agent_ctlset_describe(&a->ctl, a->ctl_desc, sizeof(a->ctl_desc));
	a->inv_override = inv_override;
	if (hooks)
		a->hooks = *hooks;
	a->ud = ud;
	agent_identity_restore(a);
	r = imgcache_new(&agent_cache_ops, a, cfg->cache_max, &a->cache);
	if (r < 0) {
		free(a);
		return r;
	}
	struct guestmgr_config gcfg = {
		.sysfs_root = cfg->sysfs_root,
		.devfs_root = cfg->devfs_root,
		.qemu_path = cfg->qemu_path[0] ? cfg->qemu_path : NULL,
		.skyvmm_path = cfg->skyvmm_path[0] ? cfg->skyvmm_path : NULL,
		.bridge = cfg->bridge[0] ? cfg->bridge : NULL,
		.allow_kexec = cfg->allow_kexec,
	};
	r = guestmgr_new(loop, &gcfg, a->cache, &agent_guest_ops, a, &a->guests);
	if (r < 0) {
		imgcache_free(a->cache);
		free(a);
		return r;
	}
	uv_timer_t *timers[] = {&a->retry_timer, &a->hb_timer, &a->inv_timer, &a->renew_timer, &a->tick_timer};
	for (size_t i = 0; i < SKY_ARRAY_SIZE(timers); i++) {
		uv_timer_init(loop, timers[i]);
		timers[i]->data = a;
		a->handles_open++;
	}
	*out = a;
	return 0;
}

int agent_start(struct agent *a)
{
	agent_connect(a);
	return 0;
}

static void agent_handle_closed(uv_handle_t *h)
{
	struct agent *a = h->data;
	a->handles_open--;
	if (a->handles_open == 0)
		free(a);
}

static void agent__stop(struct agent *a, bool abrupt)
{
	if (!a || a->stopping)
		return;
	a->stopping = true;
	uv_timer_t *timers[] = {&a->retry_timer, &a->hb_timer, &a->inv_timer, &a->renew_timer, &a->tick_timer};
	for (size_t i = 0; i < SKY_ARRAY_SIZE(timers); i++)
		uv_close((uv_handle_t *)timers[i], agent_handle_closed);
	/* Guests and cached images (memfds) go with us. */
	guestmgr_free(a->guests);
	a->guests = NULL;
	imgcache_free(a->cache);
	a->cache = NULL;
	if (a->resolving)
		uv_cancel((uv_req_t *)&a->gai);
	if (a->tls && abrupt)
		sky_tls_abort(a->tls, -ECONNABORTED);
	else if (a->tls)
		sky_tls_close(a->tls, 0);
	/* Identity is wiped: it never leaves RAM and does not outlive us. */
	X509_free(a->cert);
	EVP_PKEY_free(a->key);
	EVP_PKEY_free(a->pending_key);
	a->cert = NULL;
	a->key = NULL;
	a->pending_key = NULL;
}

void agent_stop(struct agent *a)
{
	agent__stop(a, false);
}

void agent_kill(struct agent *a)
{
	agent__stop(a, true);
}

const char *agent_board_id(const struct agent *a) { return a->board_id; }
const char *agent_last_error(const struct agent *a) { return a->last_error; }
const char *agent_controller(const struct agent *a) { return a->ctl_desc; }
uint64_t agent_last_rtt_us(const struct agent *a) { return a->last_rtt_us; }
bool agent_in_session(const struct agent *a) { return a->tls && a->mode == LINK_SESSION && a->hello_sent; }
struct imgcache *agent_images(struct agent *a) { return a->cache; }
