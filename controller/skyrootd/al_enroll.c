/* Enrollment and certificates: enrollments read in one loop iteration are
 * committed together (one fsync), nobody is answered before the commit;
 * client certificates are issued here and renewed in-band.
 *
 * Where the work runs (loops.c has the threading model): the CSR's check
 * on the session loop (al_enroll_prepare); the decision, the store writes
 * and the group commit on the main loop, as every store write; the
 * certificate's signature with the CA key, once the commit is durable, on
 * libuv's thread pool (al_enroll_sign), and the answer back on main.  The
 * token's single use is decided in the transaction as before: signing
 * comes after and decides nothing (a signature that fails, out of memory,
 * answers an internal error, and the serial recorded for it is never
 * seen by anyone). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/db_tpm.h"
#include "controller/skyrootd/fwgate.h"
#include "controller/skyrootd/metrics.h"
#include "controller/skyrootd/pending.h"
#include <openssl/crypto.h>

#include "common/x509.h"

static uint64_t new_serial(void)
{
	uint64_t v = 0;
	sky_random(&v, sizeof(v));
	v &= 0x7fffffffffffffffULL;
	return v ? v : 1;
}

/* Record a client certificate for board_id, to be signed (spec): inside
 * the caller's transaction, its serial and dates; spec->cn is board_id.
 * revoke_earlier: the board's earlier certificates are revoked at once (an
 * enrollment).  A renewal leaves them until the board's first session on
 * the new one (agentlink.c, al_on_ready). */
static int al_issue_record(struct controller *ctl, const char *board_id, bool revoke_earlier,
			   struct sky_cert_spec *spec)
{
	int64_t now = sky_unix_now();
	int r;

	*spec = (struct sky_cert_spec){
		.kind = SKY_CERT_CLIENT, .cn = board_id, .serial = new_serial(),
		.not_before = now - 300, .not_after = now + ctl->opt.cert_ttl,
	};
	r = db_cert_insert(ctl->db, spec->serial, board_id, spec->not_after);
	if (r == 0)
		r = db_board_set_cert(ctl->db, board_id, spec->serial, spec->not_after);
	if (r == 0 && revoke_earlier) {
		r = db_cert_revoke_older(ctl->db, board_id, spec->serial);
		r = r > 0 ? 0 : r;
	}
	return r;
}

/* A board name from its host name, unique: the host name's letters (in
 * lower case), digits, '.', '_' and '-', without leading '.' or '-'; "board"
 * when that is not a name (sky_name_ok: empty, or starting with the board
 * id prefix "brd-", which the board chooses and must not pass for an id). */
static int al_pick_name(struct db *db, const char *hostname, const char *id, char *out, size_t outlen)
{
	char base[DB_NAME_MAX - 8];
	size_t n = 0;
	for (const char *p = hostname; *p && n < sizeof(base) - 1; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (n == 0 && (c == '-' || c == '.'))
			continue;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')
			base[n++] = c;
	}
	base[n] = '\0';
	/* "(none)": the kernel's host name when none was set. */
	if (!sky_name_ok(base, "brd-") || strcmp(base, "localhost") == 0 || strcmp(hostname, "(none)") == 0)
		snprintf(base, sizeof(base), "board");
	snprintf(out, outlen, "%s", base);
	int taken = db_board_name_taken(db, out);
	if (taken < 0)
		return taken;
	if (taken) /* ids are "brd-<hex>": the hex tail makes it unique */
		snprintf(out, outlen, "%s-%.6s", base, id + 4);
	return 0;
}

static const char *token_error_text(int r)
{
	switch (r) {
	case -ENOENT:
		return "enrollment token is not known to this controller; create one with 'skyctl token create'";
	case -EKEYEXPIRED:
		return "enrollment token has expired; create a new one with 'skyctl token create'";
	case -EKEYREVOKED:
		return "enrollment token was revoked; create a new one with 'skyctl token create'";
	case -EUSERS:
		return "enrollment token has already been used; create a new one with 'skyctl token create'";
	default:
		return "enrollment token could not be checked";
	}
}

/* Enrollments are committed in groups: every request read in one loop
 * iteration shares one transaction (one fsync), each in its own savepoint,
 * and nobody is answered before the commit is durable. */
struct enroll_item {
	struct enroll_item *next;
	struct session *s;            /* NULL when the connection went away */
	uint64_t req;
	uint8_t token_hash[32];
	char uuid[AL_MAX_UUID + 1];
	char hostname[AL_MAX_HOSTNAME + 1];
	EVP_PKEY *pub;
	/* results */
	int err;                      /* 0, or a negative errno */
	bool new_board;
	bool pending;                 /* known machine, general token: waits for an operator */
	struct pending_ask pa;        /* no token: a pending board (pending.h) */
	const char *how;              /* a known machine: what allowed its re-enrollment */
	char token_id[DB_ID_MAX];
	char token_board[DB_ID_MAX];  /* the token was made for this board ("" = any) */
	char board_id[DB_ID_MAX];
	/* The board's TPM (al_tpm.c): its evidence, until checked (then
	 * freed); tpm_ok once the exchange proved it, with the EK's name. */
	struct al_tpm_claim *tpm;
	bool tpm_ok;
	bool tpm_known;               /* decided: the EK's board, enrolled again with no token */
	char tpm_ek[DB_TPM_EK_MAX];
	char tpm_pcr11[FWGATE_PCR_HEX];   /* its quote's PCR 11, which the gate judges (fwgate.h) */
	uint8_t tpm_ak[AL_TPM_PUBLIC_MAX]; /* its AK, for fresh quotes in sessions (al_quote.c) */
	size_t tpm_ak_len;
	struct sky_cert_spec spec;    /* recorded in the store, to be signed */
	uint8_t *cert_der;
	size_t cert_len;
	int64_t not_after;
	/* signing on the thread pool (al_enroll_sign) */
	struct agentlink *al;
	uv_work_t work;
	X509 *ca_cert;                /* references, for the worker thread */
	EVP_PKEY *ca_key;
};

void al_enroll_item_free(struct enroll_item *it)
{
	if (!it)
		return;
	EVP_PKEY_free(it->pub);
	free(it->tpm);
	OPENSSL_free(it->cert_der);
	X509_free(it->ca_cert);
	EVP_PKEY_free(it->ca_key);
	free(it);
}

static int al_refuse(Skyroot__ErrorCode *code, char *msg, size_t msglen, Skyroot__ErrorCode c, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int al_refuse(Skyroot__ErrorCode *code, char *msg, size_t msglen, Skyroot__ErrorCode c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	*code = c;
	return -EINVAL;
}

int al_enroll_request(const Skyroot__Envelope *env, struct enroll_item **out, Skyroot__ErrorCode *code,
		      char *msg, size_t msglen)
{
	const Skyroot__EnrollRequest *er = env->enroll_request;
	struct enroll_item *it;
	EVP_PKEY *pub = NULL;
	int r;

	if (env->body_case != SKYROOT__ENVELOPE__BODY_ENROLL_REQUEST || !er)
		return al_refuse(code, msg, msglen, SKYROOT__ERROR_CODE__ERROR_NOT_ENROLLED,
				 "this connection has no client certificate: it may only enroll");
	if (!al_str_ok(er->token, AL_MAX_TOKEN) || !al_str_ok(er->machine_uuid, AL_MAX_UUID) ||
	    !al_str_ok(er->hostname, AL_MAX_HOSTNAME) || !al_str_ok(er->agent_version, 64) ||
	    !al_str_ok(er->dmi_serial, DB_PENDING_SERIAL_MAX) || er->n_macs > DB_PENDING_MACS_MAX ||
	    er->csr_der.len > SKY_CSR_MAX_DER)
		return al_refuse(code, msg, msglen, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST,
				 "enroll request field over its limit");
	if (er->tpm && (er->tpm->ek_public.len == 0 || er->tpm->ek_public.len > AL_TPM_PUBLIC_MAX ||
			er->tpm->ak_public.len == 0 || er->tpm->ak_public.len > AL_TPM_PUBLIC_MAX ||
			er->tpm->ek_cert.len > AL_TPM_CERT_MAX))
		return al_refuse(code, msg, msglen, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST,
				 "TPM evidence refused: an EK or AK public key missing or over %u bytes, or an EK "
				 "certificate over %u bytes", AL_TPM_PUBLIC_MAX, AL_TPM_CERT_MAX);
	if (!er->machine_uuid[0])
		return al_refuse(code, msg, msglen, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST,
				 "no machine identity (DMI product UUID) sent");
	r = sky_csr_verify(er->csr_der.data, er->csr_der.len, &pub);
	if (r < 0)
		return al_refuse(code, msg, msglen, SKYROOT__ERROR_CODE__ERROR_CSR_INVALID,
				 "certificate request rejected: %s",
				 r == -EKEYREJECTED ? "its signature does not verify" :
				 r == -EPROTONOSUPPORT ? "its key is not ECDSA P-256" : "it is not a PKCS#10 request");
	it = calloc(1, sizeof(*it));
	if (!it) {
		EVP_PKEY_free(pub);
		return al_refuse(code, msg, msglen, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "out of memory");
	}
	it->req = env->request_id;
	it->pub = pub;
	if (er->tpm) {
		it->tpm = calloc(1, sizeof(*it->tpm));
		if (!it->tpm) {
			al_enroll_item_free(it);
			return al_refuse(code, msg, msglen, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "out of memory");
		}
		memcpy(it->tpm->ek_pub, er->tpm->ek_public.data, er->tpm->ek_public.len);
		it->tpm->ek_pub_len = er->tpm->ek_public.len;
		memcpy(it->tpm->ak_pub, er->tpm->ak_public.data, er->tpm->ak_public.len);
		it->tpm->ak_pub_len = er->tpm->ak_public.len;
		if (er->tpm->ek_cert.len)
			memcpy(it->tpm->ek_cert, er->tpm->ek_cert.data, er->tpm->ek_cert.len);
		it->tpm->ek_cert_len = er->tpm->ek_cert.len;
	}
	if (!er->token[0] && pending_ask_parse(&it->pa, er, pub) < 0) {
		al_enroll_item_free(it);
		return al_refuse(code, msg, msglen, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST,
				 "an enrollment without a token needs a well-formed DMI serial (printable ASCII), "
				 "machine UUID (letters, digits, '-', ':') and MAC addresses (aa:bb:cc:dd:ee:ff)");
	}
	sky_sha256(er->token, strlen(er->token), it->token_hash);
	snprintf(it->uuid, sizeof(it->uuid), "%s", er->machine_uuid);
	snprintf(it->hostname, sizeof(it->hostname), "%s", er->hostname);
	*out = it;
	return 0;
}

/* An enrollment request checked off the main loop (on a session loop):
 * the item to decide, or the refusal to answer. */
struct enroll_prep {
	struct enroll_item *it;       /* NULL: refused */
	Skyroot__ErrorCode code;
	char msg[256];
};

struct enroll_prep *al_enroll_prepare(const Skyroot__Envelope *env)
{
	struct enroll_prep *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (al_enroll_request(env, &p->it, &p->code, p->msg, sizeof(p->msg)) < 0)
		p->it = NULL;
	return p;
}

const struct al_tpm_claim *al_enroll_tpm_claim(const struct enroll_prep *p, const char **uuid)
{
	if (!p->it || !p->it->tpm)
		return NULL;
	*uuid = p->it->uuid;
	return p->it->tpm;
}

void al_enroll_tpm_settle(struct enroll_prep *p, const char *ek, const char *pcr11)
{
	struct enroll_item *it = p->it;

	if (!it)
		return;
	if (ek && it->tpm) {
		memcpy(it->tpm_ak, it->tpm->ak_pub, it->tpm->ak_pub_len);
		it->tpm_ak_len = it->tpm->ak_pub_len;
	}
	free(it->tpm);
	it->tpm = NULL;
	if (ek) {
		it->tpm_ok = true;
		snprintf(it->tpm_ek, sizeof(it->tpm_ek), "%s", ek);
		snprintf(it->tpm_pcr11, sizeof(it->tpm_pcr11), "%s", pcr11 ? pcr11 : "");
	}
}

void al_enroll_prep_free(struct enroll_prep *p)
{
	if (!p)
		return;
	al_enroll_item_free(p->it);
	free(p);
}

void al_enroll_prepared(struct session *s, uint64_t req, struct enroll_prep *p)
{
	struct agentlink *al = s->al;
	struct enroll_item *it = p->it;

	p->it = NULL;
	if (s->enrolling) {
		al_enroll_item_free(it);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "one enrollment at a time");
		goto close;
	}
	if (!it) {
		metrics_enroll_fail(p->code == SKYROOT__ERROR_CODE__ERROR_INTERNAL ? METRICS_ENROLL_INTERNAL :
				    METRICS_ENROLL_BAD_REQUEST);
		al_session_error(s, req, p->code, "%s", p->msg);
		goto close;
	}
	if (it->pa.on) { /* no token: asks are limited per address */
		snprintf(it->pa.peer, sizeof(it->pa.peer), "%s", s->slot ? listener_peer(s->slot) : "local");
		if (al->ctl->pending_rate && !pending_rate_allow(al->ctl->pending_rate, it->pa.peer, sky_now_ms())) {
			al_enroll_item_free(it);
			metrics_enroll_fail(METRICS_ENROLL_PENDING_RATE);
			al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BUSY,
					 "too many enrollments without a token from this address: wait and ask again");
			goto close;
		}
	}
	it->s = s;
	s->enrolling = it;
	*al->enroll_tail = it;
	al->enroll_tail = &it->next;
	if (!uv_is_active((uv_handle_t *)&al->enroll_check))
		uv_check_start(&al->enroll_check, al_enroll_batch);
	al_enroll_prep_free(p);
	return;
close:
	al_enroll_prep_free(p);
	al_sess_close(s, 0);
}

void al_enroll(struct session *s, uint64_t req, const Skyroot__EnrollRequest *er)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	struct enroll_prep *p;

	env.request_id = req;
	env.body_case = SKYROOT__ENVELOPE__BODY_ENROLL_REQUEST;
	env.enroll_request = (Skyroot__EnrollRequest *)er;
	p = al_enroll_prepare(&env);
	if (!p) {
		metrics_enroll_fail(METRICS_ENROLL_INTERNAL);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "out of memory");
		al_sess_close(s, 0);
		return;
	}
	al_enroll_prepared(s, req, p);
}

/* A machine whose UUID is known: which board it claims, and whether that
 * claim is allowed.  A DMI UUID is a label anyone can send, so a general
 * token does not take the board over: it marks a pending re-enrollment
 * (the token is not spent, the board retries it) until an operator allows
 * one, or the board comes with a token made for it. */
static int al_enroll_known(struct db *db, struct enroll_item *it, int64_t now)
{
	int r;

	if (it->token_board[0]) {
		if (strcmp(it->token_board, it->board_id) != 0)
			return -EXDEV;
		it->how = "with a token made for it";
		return db_board_reenroll_done(db, it->board_id);
	}
	r = db_board_reenroll_take(db, it->board_id, now);
	if (r == -EACCES) {
		it->pending = true;
		return db_board_reenroll_pending(db, it->board_id, now);
	}
	it->how = "re-enrollment allowed by an operator";
	return r;
}

int al_enroll_decide(struct controller *ctl, struct enroll_item *it)
{
	struct db *db = ctl->db;
	struct db_token tok = {0};
	char name[DB_NAME_MAX];
	int64_t now = sky_unix_now();
	int r;

	if (it->tpm_ok) { /* a TPM proved its EK: the board bound to it needs no token */
		r = db_tpm_find_ek(db, it->tpm_ek, it->board_id);
		if (r == 0) {
			it->tpm_known = true;
			it->how = "by its TPM (known EK, credential activated, quote verified)";
			r = db_board_reenroll_done(db, it->board_id);
			if (r == 0)
				r = db_tpm_quoted(db, it->board_id, it->tpm_pcr11, now);
			if (r == 0)
				r = db_tpm_set_ak(db, it->board_id, it->tpm_ak, it->tpm_ak_len);
			if (r == 0)
				r = al_issue_record(ctl, it->board_id, true, &it->spec);
			if (r == 0)
				it->not_after = it->spec.not_after;
			return r;
		}
		if (r != -ENOENT)
			return r;
		it->board_id[0] = '\0';
	}
	if (it->pa.on) { /* no token: a pending board, unless accepted */
		struct pending_opts o = { .max = ctl->opt.pending_max, .ttl = ctl->opt.pending_ttl };
		r = pending_ask_decide(db, &o, &it->pa, it->uuid, it->hostname, now);
		if (r < 0 || it->pa.res.verdict != PENDING_ISSUE)
			return r;
	}
	r = it->pa.on ? 0 : db_token_find(db, it->token_hash, now, &tok);
	if (r < 0)
		return r;
	snprintf(it->token_id, sizeof(it->token_id), "%s", tok.id);
	snprintf(it->token_board, sizeof(it->token_board), "%s", tok.board_id);
	r = db_board_find_uuid(db, it->uuid, it->board_id);
	if (r == 0) {
		/* An accepted pending board gets its known board back. */
		r = it->pa.on ? db_board_reenroll_done(db, it->board_id) : al_enroll_known(db, it, now);
		if (r < 0 || it->pending)
			return r;
	} else if (r == -ENOENT) {
		if (it->token_board[0]) /* a board's token enrolls that board only */
			return -EXDEV;
		struct db_board b = {0};
		it->new_board = true;
		r = db_new_id("brd-", 6, it->board_id, sizeof(it->board_id));
		if (r == 0)
			r = al_pick_name(db, it->hostname, it->board_id, name, sizeof(name));
		if (r == 0) {
			snprintf(b.id, sizeof(b.id), "%s", it->board_id);
			snprintf(b.name, sizeof(b.name), "%s", name);
			snprintf(b.uuid, sizeof(b.uuid), "%s", it->uuid);
			b.enrolled_at = now;
			r = db_board_insert(db, &b);
		}
	}
	if (r == 0 && !it->pa.on)
		r = db_token_consume(db, it->token_hash, now, it->token_id);
	if (r == 0)
		r = al_issue_record(ctl, it->board_id, !it->new_board, &it->spec);
	if (r == 0 && it->tpm_ok) /* the first enrollment binds EK -> board */
		r = db_tpm_bind(db, it->board_id, it->tpm_ek, it->tpm_pcr11, now);
	if (r == 0 && it->tpm_ok)
		r = db_tpm_set_ak(db, it->board_id, it->tpm_ak, it->tpm_ak_len);
	if (r == 0)
		it->not_after = it->spec.not_after;
	return r;
}

int al_enroll_sign(struct controller *ctl, struct enroll_item *it)
{
	if (it->spec.serial == 0)
		return -EINVAL; /* nothing recorded: not a decided enrollment */
	it->spec.cn = it->board_id;
	return sky_cert_issue_der(&it->spec, it->pub, it->ca_cert ? it->ca_cert : ctl->ca_cert,
				  it->ca_key ? it->ca_key : ctl->ca_key, &it->cert_der, &it->cert_len);
}

static bool token_refusal(int r)
{
	return r == -ENOENT || r == -EKEYEXPIRED || r == -EKEYREVOKED || r == -EUSERS;
}

/* An enrollment decided: skyroot_enrollments_total or a failure by reason
 * (a board that went away before its answer is neither). */
static void al_enroll_count(const struct enroll_item *it)
{
	switch (it->err) {
	case 0:
		if (it->pa.on && !it->tpm_known && it->pa.res.verdict != PENDING_ISSUE)
			metrics_enroll_fail(pending_ask_metric(&it->pa));
		else if (it->pending)
			metrics_enroll_fail(METRICS_ENROLL_REENROLL_PENDING);
		else
			metrics_enroll_ok();
		return;
	case -ECONNRESET:
		return;
	case -ENOENT:
		metrics_enroll_fail(METRICS_ENROLL_TOKEN_UNKNOWN);
		return;
	case -EKEYEXPIRED:
		metrics_enroll_fail(METRICS_ENROLL_TOKEN_EXPIRED);
		return;
	case -EKEYREVOKED:
		metrics_enroll_fail(METRICS_ENROLL_TOKEN_REVOKED);
		return;
	case -EUSERS:
		metrics_enroll_fail(METRICS_ENROLL_TOKEN_USED);
		return;
	case -EXDEV:
		metrics_enroll_fail(METRICS_ENROLL_TOKEN_OTHER_BOARD);
		return;
	default:
		metrics_enroll_fail(METRICS_ENROLL_INTERNAL);
	}
}

/* No token and no certificate (yet): tell the board to wait, that it was
 * rejected or why not, and hang up; it asks again on a new connection. */
static void al_enroll_answer_pending(struct enroll_item *it)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__EnrollResponse resp = SKYROOT__ENROLL_RESPONSE__INIT;
	Skyroot__ErrorCode code = SKYROOT__ERROR_CODE__ERROR_INTERNAL;
	char msg[256];
	bool answer = pending_ask_answer(&it->pa, it->err, it->uuid, it->hostname, &resp, &code, msg, sizeof(msg));

	if (!it->s)
		return;
	it->s->enrolling = NULL;
	if (answer) {
		env.request_id = it->req;
		env.body_case = SKYROOT__ENVELOPE__BODY_ENROLL_RESPONSE;
		env.enroll_response = &resp;
		al_session_send(it->s, &env);
	} else {
		al_session_error(it->s, it->req, code, "%s", msg);
	}
	al_sess_close(it->s, 0);
}

/* A TPM board whose PCR 11 the measured-boot gate does not pass enrolls
 * quarantined (fwgate.h): said in the log and an event. */
static void al_enroll_gate(struct agentlink *al, const struct enroll_item *it)
{
	char why[FWGATE_WHY_MAX];

	if (!it->tpm_ok || fwgate_board(al->ctl->db, it->board_id, NULL, why) != 1)
		return;
	log_warn("board %s (machine %s) enrolled quarantined: %s; it gets no images, guests or boot orders until "
		 "its firmware is allowed ('skyctl firmware allow --pcr11 HEX --name NAME')", it->board_id, it->uuid,
		 why);
	al->ops.event(al->ops_ctx, true, "board.quarantined", "board", it->board_id,
		      (const char *const[]){ "reason", why, "pcr11", it->tpm_pcr11, NULL });
}

static void al_enroll_answer(struct agentlink *al, struct enroll_item *it, const uint8_t *ca_der, size_t ca_len)
{
	struct session *s = it->s;

	al_enroll_count(it);

	if (it->pa.on && !it->tpm_known && (it->err != 0 || it->pa.res.verdict != PENDING_ISSUE)) {
		al_enroll_answer_pending(it);
		return;
	}
	if (it->err == 0 && it->tpm_known)
		log_info("board %s (machine %s) enrolled again %s with no token (EK %.16s...); its earlier "
			 "certificates are revoked", it->board_id, it->uuid, it->how, it->tpm_ek);
	else if (it->pa.on)
		pending_ask_issued(&it->pa, it->board_id, it->uuid);
	else if (it->err == 0 && it->pending)
		log_warn("board %s: machine %s asks to enroll again with the general token %s: an operator must "
			 "allow the re-enrollment of board %s ('skyctl board reenroll-allow %s') or give it a token "
			 "made for it ('skyctl token create --board %s')", it->board_id, it->uuid, it->token_id,
			 it->board_id, it->board_id, it->board_id);
	else if (it->err == 0)
		log_info("board %s (machine %s) enrolled with token %s%s%s%s", it->board_id, it->uuid, it->token_id,
			 it->new_board ? "" : " (known machine, ", it->new_board ? "" : it->how,
			 it->new_board ? "" : "; its earlier certificates are revoked)");
	else if (it->err == -EXDEV)
		log_warn("enrollment refused for machine %s: token %s was created for board %s", it->uuid,
			 it->token_id, it->token_board);
	else if (token_refusal(it->err))
		log_warn("enrollment refused for machine %s: %s", it->uuid, token_error_text(it->err));
	else
		log_error("enrollment of machine %s failed: %s", it->uuid, strerror(-it->err));
	if (!s)
		return;
	s->enrolling = NULL;
	if (it->err == 0 && it->pending) {
		al_session_error(s, it->req, SKYROOT__ERROR_CODE__ERROR_REENROLL_PENDING,
			      "pending: an operator must allow the re-enrollment of board %s (machine %s is already "
			      "enrolled): run 'skyctl board reenroll-allow %s' and this board's next attempt "
			      "succeeds, or boot it with a token made for it ('skyctl token create --board %s'); "
			      "the token was not used up", it->board_id, it->uuid, it->board_id, it->board_id);
		al_sess_close(s, 0);
		return;
	}
	if (it->err == 0) {
		if (!it->new_board)
			al_kick(al, it->board_id, "board %s was enrolled again: this certificate was replaced",
				it->board_id);
		Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
		Skyroot__EnrollResponse resp = SKYROOT__ENROLL_RESPONSE__INIT;
		resp.board_id = it->board_id;
		resp.cert_der.data = it->cert_der;
		resp.cert_der.len = it->cert_len;
		resp.ca_der.data = (uint8_t *)ca_der;
		resp.ca_der.len = ca_len;
		resp.image_signing_pubkey.data = al->ctl->signing_pub;
		resp.image_signing_pubkey.len = sizeof(al->ctl->signing_pub);
		resp.not_after = (uint64_t)it->not_after;
		env.request_id = it->req;
		env.body_case = SKYROOT__ENVELOPE__BODY_ENROLL_RESPONSE;
		env.enroll_response = &resp;
		al_session_send(s, &env);
		return;
	}
	if (it->err == -EXDEV)
		al_session_error(s, it->req, SKYROOT__ERROR_CODE__ERROR_TOKEN_INVALID,
			      "enrollment token %s was created for board %s, and this machine (%s) is not that board: "
			      "use a general token ('skyctl token create')", it->token_id, it->token_board, it->uuid);
	else if (token_refusal(it->err))
		al_session_error(s, it->req, SKYROOT__ERROR_CODE__ERROR_TOKEN_INVALID, "%s", token_error_text(it->err));
	else
		al_session_error(s, it->req, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "controller failed to enroll: %s",
			      strerror(-it->err));
	al_sess_close(s, 0);
}

/* The CA's certificate in DER, for the answers: made once. */
static int al_ca_der(struct agentlink *al)
{
	if (al->ca_der)
		return 0;
	return sky_cert_to_der(al->ctl->ca_cert, &al->ca_der, &al->ca_der_len);
}

static void al_enroll_finish(struct agentlink *al, struct enroll_item *it)
{
	if (it->err == 0 && !it->pending && al_ca_der(al) < 0)
		it->err = -ENOMEM;
	if (it->err != -ECONNRESET)
		al_enroll_answer(al, it, al->ca_der, al->ca_der_len);
	al_enroll_item_free(it);
}

static void al_enroll_sign_work(uv_work_t *w)
{
	struct enroll_item *it = w->data;

	it->err = al_enroll_sign(it->al->ctl, it);
}

static void al_enroll_signed(uv_work_t *w, int status)
{
	struct enroll_item *it = w->data;
	struct agentlink *al = it->al;

	al->enroll_signing--;
	if (status < 0 && it->err == 0)
		it->err = status;
	al_enroll_finish(al, it);
	if (al->stopping)
		al_maybe_free(al);
}

/* Committed: its certificate is signed on the thread pool, then answered
 * (or here, when the pool cannot take it). */
static void al_enroll_sign_start(struct agentlink *al, struct enroll_item *it)
{
	struct controller *ctl = al->ctl;

	it->al = al;
	it->work.data = it;
	if (ctl->ca_cert && ctl->ca_key && X509_up_ref(ctl->ca_cert) == 1) {
		it->ca_cert = ctl->ca_cert;
		if (EVP_PKEY_up_ref(ctl->ca_key) == 1) {
			it->ca_key = ctl->ca_key;
			if (uv_queue_work(ctl->loop, &it->work, al_enroll_sign_work, al_enroll_signed) == 0) {
				al->enroll_signing++;
				return;
			}
		}
	}
	it->err = al_enroll_sign(ctl, it);
	al_enroll_finish(al, it);
}

void al_enroll_batch(uv_check_t *h)
{
	struct agentlink *al = h->data;
	struct db *db = al->ctl->db;
	struct enroll_item *batch = al->enroll_head, *it, *next;
	int r;

	uv_check_stop(h);
	al->enroll_head = NULL;
	al->enroll_tail = &al->enroll_head;
	if (!batch)
		return;
	r = db_begin(db);
	for (it = batch; it; it = it->next) {
		if (r < 0) {
			it->err = r;
			continue;
		}
		if (!it->s) {
			it->err = -ECONNRESET; /* nobody to answer: do not spend the token */
			continue;
		}
		it->err = db_savepoint(db);
		if (it->err == 0)
			it->err = al_enroll_decide(al->ctl, it);
		if (it->err == 0 && !it->tpm_known && it->pa.on && it->pa.res.verdict == PENDING_WAIT &&
		    it->pa.res.is_new &&
		    al->ops.event) /* a new pending board: durable with its record */
			al->ops.event(al->ops_ctx, true, "board.pending", "pending", it->pa.res.id,
				      (const char *const[]){ "machine", it->uuid, "serial", it->pa.serial, NULL });
		if (it->err == 0 && !it->pending && al->ops.event) { /* durable with the enrollment */
			al->ops.event(al->ops_ctx, true, "board.enrolled", "board", it->board_id,
				      (const char *const[]){ "machine", it->uuid, "token_id", it->token_id, "how",
							     it->new_board ? "new board" : it->how, NULL });
			if (it->token_id[0]) /* not for a pending board's accepted key */
				al->ops.event(al->ops_ctx, true, "token.used", "token", it->token_id,
					      (const char *const[]){ "board", it->board_id, NULL });
			al_enroll_gate(al, it);
		}
		if (it->err == 0)
			it->err = db_release(db);
		else
			db_rollback_to(db);
	}
	if (r == 0) {
		r = db_commit(db);
		if (r < 0) {
			db_rollback(db);
			for (it = batch; it; it = it->next)
				if (it->err == 0)
					it->err = r;
		}
	}
	for (it = batch; it; it = next) {
		next = it->next;
		it->next = NULL;
		/* Sign only what was issued: not a board left waiting (a known
		 * machine's general token, or a key with no token not accepted). */
		if (it->err == 0 && !it->pending &&
		    (it->tpm_known || !(it->pa.on && it->pa.res.verdict != PENDING_ISSUE)))
			al_enroll_sign_start(al, it);
		else
			al_enroll_finish(al, it);
	}
}

void al_renew(struct session *s, uint64_t req, const Skyroot__RenewRequest *rr)
{
	struct db *db = s->al->ctl->db;
	EVP_PKEY *pub = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int64_t not_after = 0;
	struct sky_cert_spec spec;
	int r = sky_csr_verify(rr->csr_der.data, rr->csr_der.len, &pub);
	if (r < 0) {
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_CSR_INVALID, "renewal request is not a valid P-256 CSR");
		return;
	}
	r = db_begin(db);
	if (r == 0)
		r = al_issue_record(s->al->ctl, s->board_id, false, &spec);
	if (r == 0)
		r = sky_cert_issue_der(&spec, pub, s->al->ctl->ca_cert, s->al->ctl->ca_key, &der, &len);
	if (r == 0) {
		not_after = spec.not_after;
		r = db_commit(db);
	}
	if (r < 0) {
		db_rollback(db);
		log_error("board %s: renewal failed: %s", s->board_id, strerror(-r));
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "renewal failed: %s", strerror(-r));
	} else {
		Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
		Skyroot__RenewResponse resp = SKYROOT__RENEW_RESPONSE__INIT;
		resp.cert_der.data = der;
		resp.cert_der.len = len;
		resp.not_after = (uint64_t)not_after;
		env.request_id = req;
		env.body_case = SKYROOT__ENVELOPE__BODY_RENEW_RESPONSE;
		env.renew_response = &resp;
		al_session_send(s, &env);
		log_info("board %s: certificate renewed until %lld; the earlier one is revoked at its first "
			 "session on the new one", s->board_id, (long long)not_after);
	}
	OPENSSL_free(der);
	EVP_PKEY_free(pub);
}

void al_enroll_session_gone(struct session *s)
{
	/* Its queued enrollment is answered to nobody (and spends no token). */
	if (s->enrolling)
		s->enrolling->s = NULL;
	s->enrolling = NULL;
}
