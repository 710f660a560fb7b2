/* The agent port: one mutual-TLS session per board, initiated by the board.
 *
 * A connection without a client certificate may only enroll.  A connection
 * with one is a board session once its certificate checks out against the
 * store (issued by us, to that board, not revoked).  Frames are size-checked
 * before anything is allocated (common/frame.c). */
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
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/store.h"
#include "controller/skyrootd/guests.h"

#define AL_BUCKETS 16384
#define AL_ENROLL_TIMEOUT_MS 30000
#define AL_DEFAULT_HB_MS 10000
#define AL_MAX_TOKEN 128
#define AL_MAX_UUID 63
#define AL_MAX_HOSTNAME 64
/* Chunks one board may have asked for and not yet received. */
#define AL_CHUNK_WINDOW 16
/* Chunk bytes being read or waiting in send queues, for all boards together:
 * the controller's memory does not grow with image size or board count. */
#define AL_CHUNK_BUDGET (64u << 20)
/* Do not queue more behind a board's socket than this: its control
 * messages would wait behind the bulk. */
#define AL_SESSION_QUEUE_MAX (2u << 20)

enum session_state { SESS_HANDSHAKE, SESS_ENROLL_ONLY, SESS_BOARD };

struct session {
	struct agentlink *al;
	struct sky_tls *tls;
	struct sky_frame_decoder dec;
	struct session *next;         /* hash chain (boards only) */
	struct session *prev_all, *next_all; /* every connection */
	enum session_state state;
	bool cert_expired;
	bool seen_dirty;
	bool hashed;
	int64_t last_seen;
	uint64_t hb_ms;
	uint8_t inv_hash[32];
	char board_id[DB_ID_MAX];
	struct enroll_item *enrolling; /* queued for the next group commit */
	struct chunk_job *jobs;       /* this session's chunk requests (snext) */
	unsigned chunk_inflight;
	size_t charged;               /* chunk bytes in our send queue */
	Skyroot__ImageStatus *images; /* the board's last report (owned) */
	bool hello_seen;
};

struct chunk_job {
	struct chunk_job *next;       /* the global queue */
	struct chunk_job *snext, **sprev; /* the session's list */
	struct session *s;            /* NULL once the session is gone */
	struct agentlink *al;
	uv_work_t work;
	uint64_t req;
	int64_t rowid;
	uint8_t digest[32];
	uint32_t size;
	uint32_t index;
	int result;
	uint8_t *buf;
	char image_id[DB_ID_MAX];
};

struct agentlink {
	struct controller *ctl;
	uv_tcp_t listener;
	uv_timer_t flush_timer;
	SSL_CTX *ssl_ctx;
	struct session *buckets[AL_BUCKETS];
	struct session *all;
	uv_check_t enroll_check;
	struct enroll_item *enroll_head, **enroll_tail;
	struct chunk_job *chunk_head, **chunk_tail;
	size_t chunk_bytes;           /* budget in use: reading + queued to send */
	unsigned chunk_reading;
	size_t n_sessions;
	int closed_handles;
	bool stopping;
};

static int al_ex_index = -1;

static void al_enroll_batch(uv_check_t *h);

static unsigned bucket_of(const char *id)
{
	uint32_t h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h % AL_BUCKETS;
}

static struct session *al_find(struct agentlink *al, const char *id)
{
	for (struct session *s = al->buckets[bucket_of(id)]; s; s = s->next)
		if (strcmp(s->board_id, id) == 0)
			return s;
	return NULL;
}

static void al_unhash(struct session *s)
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
}

/* ---- sending ---- */

static int session_send(struct session *s, Skyroot__Envelope *env)
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

static void session_error(struct session *s, uint64_t req, Skyroot__ErrorCode code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Tell the agent what is wrong (it logs this on the board's console). */
static void session_error(struct session *s, uint64_t req, Skyroot__ErrorCode code, const char *fmt, ...)
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
	session_send(s, &env);
}

/* ---- enrollment ---- */

static uint64_t new_serial(void)
{
	uint64_t v = 0;
	sky_random(&v, sizeof(v));
	v &= 0x7fffffffffffffffULL;
	return v ? v : 1;
}

/* Issue a client certificate for board_id to the CSR's key.  Inside the
 * caller's transaction: records the serial. */
static int al_issue(struct agentlink *al, const char *board_id, EVP_PKEY *pub, uint8_t **der,
		    size_t *der_len, int64_t *not_after)
{
	struct controller *ctl = al->ctl;
	int64_t now = sky_unix_now();
	struct sky_cert_spec spec = {
		.kind = SKY_CERT_CLIENT, .cn = board_id, .serial = new_serial(),
		.not_before = now - 300, .not_after = now + ctl->opt.cert_ttl,
	};
	int r = sky_cert_issue_der(&spec, pub, ctl->ca_cert, ctl->ca_key, der, der_len);
	if (r == 0)
		r = db_cert_insert(ctl->db, spec.serial, board_id, spec.not_after);
	if (r == 0)
		r = db_board_set_cert(ctl->db, board_id, spec.serial, spec.not_after);
	if (r == 0)
		*not_after = spec.not_after;
	if (r < 0) {
		OPENSSL_free(*der);
		*der = NULL;
	}
	return r;
}

/* A board name from its host name: [a-z0-9-], unique. */
static int al_pick_name(struct db *db, const char *hostname, const char *id, char *out, size_t outlen)
{
	char base[DB_NAME_MAX - 8];
	size_t n = 0;
	for (const char *p = hostname; *p && n < sizeof(base) - 1; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')
			base[n++] = c;
	}
	base[n] = '\0';
	if (n == 0 || strcmp(base, "localhost") == 0 || strcmp(base, "(none)") == 0)
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

static bool str_ok(const char *s, size_t max)
{
	return s && strnlen(s, max + 1) <= max;
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
	char token_id[DB_ID_MAX];
	char board_id[DB_ID_MAX];
	uint8_t *cert_der;
	size_t cert_len;
	int64_t not_after;
};

static void enroll_item_free(struct enroll_item *it)
{
	EVP_PKEY_free(it->pub);
	OPENSSL_free(it->cert_der);
	free(it);
}

static void al_enroll(struct session *s, uint64_t req, const Skyroot__EnrollRequest *er)
{
	struct agentlink *al = s->al;
	struct enroll_item *it;
	EVP_PKEY *pub = NULL;
	int r;

	if (s->enrolling) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "one enrollment at a time");
		goto close;
	}
	if (!str_ok(er->token, AL_MAX_TOKEN) || !str_ok(er->machine_uuid, AL_MAX_UUID) ||
	    !str_ok(er->hostname, AL_MAX_HOSTNAME) || !str_ok(er->agent_version, 64) ||
	    er->csr_der.len > SKY_CSR_MAX_DER) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "enroll request field over its limit");
		goto close;
	}
	if (!er->token[0]) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_TOKEN_INVALID,
			      "no enrollment token: boot with skyroot.token=TOKEN (see 'skyctl token create')");
		goto close;
	}
	if (!er->machine_uuid[0]) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "no machine identity (DMI product UUID) sent");
		goto close;
	}
	r = sky_csr_verify(er->csr_der.data, er->csr_der.len, &pub);
	if (r < 0) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_CSR_INVALID,
			      "certificate request rejected: %s",
			      r == -EKEYREJECTED ? "its signature does not verify" :
			      r == -EPROTONOSUPPORT ? "its key is not ECDSA P-256" : "it is not a PKCS#10 request");
		goto close;
	}
	it = calloc(1, sizeof(*it));
	if (!it) {
		EVP_PKEY_free(pub);
		goto close;
	}
	it->s = s;
	it->req = req;
	it->pub = pub;
	sky_sha256(er->token, strlen(er->token), it->token_hash);
	snprintf(it->uuid, sizeof(it->uuid), "%s", er->machine_uuid);
	snprintf(it->hostname, sizeof(it->hostname), "%s", er->hostname);
	s->enrolling = it;
	*al->enroll_tail = it;
	al->enroll_tail = &it->next;
	if (!uv_is_active((uv_handle_t *)&al->enroll_check))
		uv_check_start(&al->enroll_check, al_enroll_batch);
	return;
close:
	sky_tls_close(s->tls, 0);
}

/* Inside the batch transaction and the item's savepoint. */
static int al_enroll_one(struct agentlink *al, struct enroll_item *it)
{
	struct db *db = al->ctl->db;
	char name[DB_NAME_MAX];
	int r = db_token_consume(db, it->token_hash, sky_unix_now(), it->token_id);
	if (r < 0)
		return r;
	r = db_board_find_uuid(db, it->uuid, it->board_id);
	if (r == -ENOENT) {
		struct db_board b = {0};
		it->new_board = true;
		r = ctl_new_id("brd-", 6, it->board_id, sizeof(it->board_id));
		if (r == 0)
			r = al_pick_name(db, it->hostname, it->board_id, name, sizeof(name));
		if (r == 0) {
			snprintf(b.id, sizeof(b.id), "%s", it->board_id);
			snprintf(b.name, sizeof(b.name), "%s", name);
			snprintf(b.uuid, sizeof(b.uuid), "%s", it->uuid);
			b.enrolled_at = sky_unix_now();
			r = db_board_insert(db, &b);
		}
	}
	if (r == 0)
		r = al_issue(al, it->board_id, it->pub, &it->cert_der, &it->cert_len, &it->not_after);
	return r;
}

static bool token_refusal(int r)
{
	return r == -ENOENT || r == -EKEYEXPIRED || r == -EKEYREVOKED || r == -EUSERS;
}

static void al_enroll_answer(struct agentlink *al, struct enroll_item *it, const uint8_t *ca_der, size_t ca_len)
{
	struct session *s = it->s;

	if (it->err == 0)
		log_info("board %s (machine %s) enrolled with token %s%s", it->board_id, it->uuid, it->token_id,
			 it->new_board ? "" : " (known machine, same board id)");
	else if (token_refusal(it->err))
		log_warn("enrollment refused for machine %s: %s", it->uuid, token_error_text(it->err));
	else
		log_error("enrollment of machine %s failed: %s", it->uuid, strerror(-it->err));
	if (!s)
		return;
	s->enrolling = NULL;
	if (it->err == 0) {
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
		session_send(s, &env);
		return;
	}
	if (token_refusal(it->err))
		session_error(s, it->req, SKYROOT__ERROR_CODE__ERROR_TOKEN_INVALID, "%s", token_error_text(it->err));
	else
		session_error(s, it->req, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "controller failed to enroll: %s",
			      strerror(-it->err));
	sky_tls_close(s->tls, 0);
}

static void al_enroll_batch(uv_check_t *h)
{
	struct agentlink *al = h->data;
	struct db *db = al->ctl->db;
	struct enroll_item *batch = al->enroll_head, *it, *next;
	uint8_t *ca_der = NULL;
	size_t ca_len = 0;
	int r;

	uv_check_stop(h);
	al->enroll_head = NULL;
	al->enroll_tail = &al->enroll_head;
	al->chunk_tail = &al->chunk_head;
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
			it->err = al_enroll_one(al, it);
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
	if (sky_cert_to_der(al->ctl->ca_cert, &ca_der, &ca_len) < 0)
		for (it = batch; it; it = it->next)
			if (it->err == 0)
				it->err = -ENOMEM;
	for (it = batch; it; it = next) {
		next = it->next;
		if (it->err != -ECONNRESET)
			al_enroll_answer(al, it, ca_der, ca_len);
		enroll_item_free(it);
	}
	OPENSSL_free(ca_der);
}

/* ---- board sessions ---- */

static void session_touch(struct session *s)
{
	s->last_seen = sky_unix_now();
	s->seen_dirty = true;
}

static void al_hello(struct session *s, const Skyroot__Hello *h, const uint8_t *raw, size_t raw_len)
{
	uint8_t hash[32];
	bool first = !s->hello_seen;

	s->hello_seen = true;
	if (first) {
		/* The firmware is back: a board that ran a bare-metal OS is a
		 * hypervisor again, and its guests are driven to their state. */
		db_board_set_baremetal(s->al->ctl->db, s->board_id, false);
		if (s->al->ctl->guests)
			guests_board_up(s->al->ctl->guests, s->board_id);
	}
	uint64_t hb = h->heartbeat_ms ? h->heartbeat_ms : AL_DEFAULT_HB_MS;

	if (hb < 100)
		hb = 100;
	if (hb > 600000)
		hb = 600000;
	s->hb_ms = hb;
	/* Offline after three missed heartbeats: the session is closed then. */
	sky_tls_set_idle_timeout(s->tls, 3 * hb + hb / 2);
	session_touch(s);
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
	session_touch(s);
	echo.seq = hb->seq;
	echo.sent_unix_ms = hb->sent_unix_ms;
	env.request_id = req;
	env.body_case = SKYROOT__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &echo;
	session_send(s, &env);
}

static void al_renew(struct session *s, uint64_t req, const Skyroot__RenewRequest *rr)
{
	struct db *db = s->al->ctl->db;
	EVP_PKEY *pub = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int64_t not_after = 0;
	int r = sky_csr_verify(rr->csr_der.data, rr->csr_der.len, &pub);
	if (r < 0) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_CSR_INVALID, "renewal request is not a valid P-256 CSR");
		return;
	}
	r = db_begin(db);
	if (r == 0)
		r = al_issue(s->al, s->board_id, pub, &der, &len, &not_after);
	if (r == 0)
		r = db_commit(db);
	if (r < 0) {
		db_rollback(db);
		log_error("board %s: renewal failed: %s", s->board_id, strerror(-r));
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "renewal failed: %s", strerror(-r));
	} else {
		Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
		Skyroot__RenewResponse resp = SKYROOT__RENEW_RESPONSE__INIT;
		resp.cert_der.data = der;
		resp.cert_der.len = len;
		resp.not_after = (uint64_t)not_after;
		env.request_id = req;
		env.body_case = SKYROOT__ENVELOPE__BODY_RENEW_RESPONSE;
		env.renew_response = &resp;
		session_send(s, &env);
		log_info("board %s: certificate renewed until %lld", s->board_id, (long long)not_after);
	}
	OPENSSL_free(der);
	EVP_PKEY_free(pub);
}

/* ---- image chunks ----
 *
 * A board pulls chunks with a window of requests.  Each request becomes a
 * job: a worker thread reads the chunk with its own read-only connection
 * and re-hashes it; the loop sends it.  All jobs together hold at most
 * AL_CHUNK_BUDGET bytes, counting both chunks being read and chunks queued
 * behind sockets, and no board's socket queue grows past
 * AL_SESSION_QUEUE_MAX, so control messages never wait long. */

static void al_chunk_dispatch(struct agentlink *al);
static void al_maybe_free(struct agentlink *al);

static void chunk_job_unlink(struct chunk_job *j)
{
	if (j->sprev) {
		*j->sprev = j->snext;
		if (j->snext)
			j->snext->sprev = j->sprev;
		j->sprev = NULL;
		j->snext = NULL;
	}
}

static void chunk_work(uv_work_t *w)
{
	struct chunk_job *j = w->data;
	j->result = store_chunk_read(j->al->ctl->db_path, j->rowid, j->digest, j->buf, j->size);
}

static void chunk_after(uv_work_t *w, int status)
{
	struct chunk_job *j = w->data;
	struct agentlink *al = j->al;
	struct session *s = j->s;
	char hex[65];

	al->chunk_bytes -= j->size;
	al->chunk_reading--;
	if (status < 0)
		j->result = status;
	if (j->result == -EBADMSG) {
		sky_hex(j->digest, 32, hex);
		log_error("chunk %u of image %s (sha256 %s) is corrupt in the store and was not sent; "
			  "run 'skyctl image verify %s'", j->index, j->image_id, hex, j->image_id);
	}
	if (s) {
		s->chunk_inflight--;
		chunk_job_unlink(j);
		if (j->result == 0 && sky_tls_is_ready(s->tls)) {
			Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
			Skyroot__ChunkData cd = SKYROOT__CHUNK_DATA__INIT;
			size_t before = sky_tls_queued(s->tls);
			cd.image_id = j->image_id;
			cd.index = j->index;
			cd.data.data = j->buf;
			cd.data.len = j->size;
			env.request_id = j->req;
			env.body_case = SKYROOT__ENVELOPE__BODY_CHUNK_DATA;
			env.chunk_data = &cd;
			if (session_send(s, &env) == 0) {
				size_t added = sky_tls_queued(s->tls) - before;
				s->charged += added;
				al->chunk_bytes += added;
			}
		} else if (j->result == -EBADMSG) {
			session_error(s, j->req, SKYROOT__ERROR_CODE__ERROR_CHUNK_CORRUPT,
				      "chunk %u of image %s is corrupt in the controller's store; it was not sent",
				      j->index, j->image_id);
		} else if (j->result < 0) {
			session_error(s, j->req, SKYROOT__ERROR_CODE__ERROR_INTERNAL,
				      "cannot read chunk %u of image %s: %s", j->index, j->image_id,
				      strerror(-j->result));
		}
	}
	free(j->buf);
	free(j);
	if (al->stopping) {
		al_maybe_free(al);
		return;
	}
	al_chunk_dispatch(al);
}

static void al_chunk_dispatch(struct agentlink *al)
{
	struct chunk_job **pp = &al->chunk_head;

	while (*pp) {
		struct chunk_job *j = *pp;
		if (!j->s) { /* its board went away */
			*pp = j->next;
			free(j);
			continue;
		}
		if (al->chunk_bytes + j->size > AL_CHUNK_BUDGET && al->chunk_bytes > 0)
			break;
		if (sky_tls_queued(j->s->tls) > AL_SESSION_QUEUE_MAX) {
			pp = &j->next; /* that board's socket is full: let others go */
			continue;
		}
		j->buf = malloc(j->size ? j->size : 1);
		if (!j->buf)
			break;
		*pp = j->next;
		j->next = NULL;
		al->chunk_bytes += j->size;
		al->chunk_reading++;
		j->work.data = j;
		if (uv_queue_work(al->ctl->loop, &j->work, chunk_work, chunk_after) < 0) {
			j->result = -EIO;
			al->chunk_reading--;
			al->chunk_bytes -= j->size;
			j->s->chunk_inflight--;
			chunk_job_unlink(j);
			free(j->buf);
			free(j);
		}
	}
	/* keep the tail pointer right after removals */
	al->chunk_tail = &al->chunk_head;
	while (*al->chunk_tail)
		al->chunk_tail = &(*al->chunk_tail)->next;
}

static void al_chunk_request(struct session *s, uint64_t req, const Skyroot__ChunkRequest *cr)
{
	struct agentlink *al = s->al;
	struct chunk_job *j;
	int r;

	if (!str_ok(cr->image_id, DB_ID_MAX - 1)) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "image id over its limit");
		return;
	}
	if (s->chunk_inflight >= AL_CHUNK_WINDOW) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BUSY, "more than %u chunk requests outstanding",
			      AL_CHUNK_WINDOW);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_INTERNAL, "out of memory");
		return;
	}
	r = store_image_chunk(al->ctl->store, cr->image_id, cr->index, &j->rowid, j->digest, &j->size);
	if (r < 0 || j->size > STORE_CHUNK_SIZE) {
		free(j);
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_NOT_FOUND, "image %s has no chunk %u",
			      cr->image_id, cr->index);
		return;
	}
	j->al = al;
	j->s = s;
	j->req = req;
	j->index = cr->index;
	snprintf(j->image_id, sizeof(j->image_id), "%s", cr->image_id);
	j->snext = s->jobs;
	if (s->jobs)
		s->jobs->sprev = &j->snext;
	s->jobs = j;
	j->sprev = &s->jobs;
	s->chunk_inflight++;
	*al->chunk_tail = j;
	al->chunk_tail = &j->next;
	al_chunk_dispatch(al);
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
	if (s->images)
		skyroot__image_status__free_unpacked(s->images, NULL);
	s->images = copy;
	for (size_t i = 0; i < st->n_errors; i++)
		log_warn("board %s: image %s: %s", s->board_id, st->errors[i]->id, st->errors[i]->error);
}

static void al_on_drain(struct sky_tls *t)
{
	struct session *s = sky_tls_data(t);
	struct agentlink *al = s->al;
	al->chunk_bytes -= s->charged;
	s->charged = 0;
	if (al->chunk_head)
		al_chunk_dispatch(al);
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

	if (!s || !sky_tls_is_ready(s->tls))
		return -ENOTCONN;
	r = store_image_manifest(al->ctl->store, image_id, &man, &man_len, &sig, &sig_len);
	if (r < 0)
		return r;
	sm.manifest.data = man;
	sm.manifest.len = man_len;
	sm.signature.data = sig;
	sm.signature.len = sig_len;
	f.manifest = &sm;
	env.body_case = SKYROOT__ENVELOPE__BODY_IMAGE_FETCH;
	env.image_fetch = &f;
	r = session_send(s, &env);
	free(man);
	free(sig);
	if (r == 0)
		log_info("board %s: asked to fetch image %s", board_id, image_id);
	return r;
}

int agentlink_board_send(struct agentlink *al, const char *board_id, Skyroot__Envelope *env)
{
	struct session *s = al ? al_find(al, board_id) : NULL;
	if (!s || !sky_tls_is_ready(s->tls))
		return -ENOTCONN;
	return session_send(s, env);
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

static int al_on_frame(void *ctx, Skyroot__Envelope *env)
{
	struct session *s = ctx;
	uint64_t req = env->request_id;

	if (env->body_case == SKYROOT__ENVELOPE__BODY_ENROLL_REQUEST) {
		al_enroll(s, req, env->enroll_request);
	} else if (s->state != SESS_BOARD) {
		session_error(s, req, SKYROOT__ERROR_CODE__ERROR_NOT_ENROLLED,
			      "this connection has no client certificate: it may only enroll");
		sky_tls_close(s->tls, 0);
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
		case SKYROOT__ENVELOPE__BODY_RENEW_REQUEST:
			al_renew(s, req, env->renew_request);
			break;
		case SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST:
			al_chunk_request(s, req, env->chunk_request);
			break;
		case SKYROOT__ENVELOPE__BODY_IMAGE_STATUS:
			al_image_status(s, env->image_status);
			break;
		case SKYROOT__ENVELOPE__BODY_GUEST_REPORT:
			if (s->al->ctl->guests)
				guests_on_report(s->al->ctl->guests, s->board_id, env->guest_report);
			break;
		case SKYROOT__ENVELOPE__BODY_CONSOLE_DATA:
			if (s->al->ctl->guests)
				guests_on_console(s->al->ctl->guests, s->board_id, env->console_data);
			break;
		default:
			session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "unexpected message %d",
				      (int)env->body_case);
			break;
		}
	}
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

static void al_on_data(struct sky_tls *t, const uint8_t *data, size_t len)
{
	struct session *s = sky_tls_data(t);
	int r = sky_frame_feed(&s->dec, data, len, al_on_frame, s);
	if (r < 0) {
		log_warn("agent link %s: %s; closing the connection", s->board_id[0] ? s->board_id : "(enrolling)",
			 r == -EMSGSIZE ? "frame over the size limit" : "malformed frame");
		sky_tls_abort(t, r);
	}
}

/* Accept expired client certificates through the handshake so the board
 * can be told, in a message, to re-enroll.  Everything else must verify. */
static int al_verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl;
	struct session *s;
	if (ok)
		return 1;
	if (X509_STORE_CTX_get_error(store) != X509_V_ERR_CERT_HAS_EXPIRED ||
	    X509_STORE_CTX_get_error_depth(store) != 0)
		return 0;
	ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	s = ssl ? SSL_get_ex_data(ssl, al_ex_index) : NULL;
	if (!s)
		return 0;
	s->cert_expired = true;
	return 1;
}

static void al_on_ready(struct sky_tls *t)
{
	struct session *s = sky_tls_data(t);
	struct agentlink *al = s->al;
	X509 *peer = SSL_get0_peer_certificate(sky_tls_ssl(t));
	char cn[DB_ID_MAX];
	int r;

	if (!peer) {
		s->state = SESS_ENROLL_ONLY;
		return;
	}
	if (sky_cert_cn(peer, cn, sizeof(cn)) < 0) {
		sky_tls_abort(t, -EPROTO);
		return;
	}
	snprintf(s->board_id, sizeof(s->board_id), "%s", cn);
	if (s->cert_expired) {
		char when[32];
		sky_fmt_time(sky_cert_not_after(peer), when, sizeof(when));
		log_warn("board %s: client certificate expired at %s; refused", cn, when);
		session_error(s, 0, SKYROOT__ERROR_CODE__ERROR_CERT_EXPIRED,
			      "the certificate of board %s expired at %s: boot the board with a new "
			      "enrollment token (skyctl token create) to re-enroll", cn, when);
		sky_tls_close(t, 0);
		return;
	}
	r = db_cert_check(al->ctl->db, sky_cert_serial(peer), cn);
	if (r < 0) {
		log_warn("board %s: certificate %s; session refused", cn,
			 r == -EKEYREVOKED ? "revoked (board deleted)" : "unknown to this controller");
		session_error(s, 0, r == -EKEYREVOKED ? SKYROOT__ERROR_CODE__ERROR_REVOKED : SKYROOT__ERROR_CODE__ERROR_NOT_ENROLLED,
			      r == -EKEYREVOKED ? "board %s was deleted from the fleet: enroll it again with a new token" :
						  "board %s is not known to this controller: enroll it with a token", cn);
		sky_tls_close(t, 0);
		return;
	}
	struct session *old = al_find(al, cn);
	if (old) {
		/* The board reconnected before its old session timed out. */
		al_unhash(old);
		sky_tls_abort(old->tls, -ECONNRESET);
	}
	s->state = SESS_BOARD;
	s->hb_ms = AL_DEFAULT_HB_MS;
	unsigned b = bucket_of(cn);
	s->next = al->buckets[b];
	al->buckets[b] = s;
	s->hashed = true;
	session_touch(s);
	sky_tls_set_idle_timeout(t, 3 * s->hb_ms + s->hb_ms / 2);
	log_info("board %s: session up", cn);
}

static void al_flush_one(struct agentlink *al, struct session *s)
{
	if (!s->seen_dirty)
		return;
	db_board_set_last_seen(al->ctl->db, s->board_id, s->last_seen);
	s->seen_dirty = false;
}

static void al_on_close(struct sky_tls *t, int err)
{
	struct session *s = sky_tls_data(t);
	struct agentlink *al = s->al;

	if (s->state == SESS_BOARD) {
		if (s->hashed) {
			al_unhash(s);
			log_info("board %s: session down (%s)", s->board_id,
				 err == -ETIMEDOUT ? "missed 3 heartbeats: offline" : err ? strerror(-err) : "closed");
		}
		if (!al->stopping)
			al_flush_one(al, s);
	}
	if (s->enrolling)
		s->enrolling->s = NULL;
	/* Jobs still queued or being read: they must not touch s again. */
	while (s->jobs) {
		struct chunk_job *j = s->jobs;
		j->s = NULL;
		chunk_job_unlink(j);
	}
	al->chunk_bytes -= s->charged;
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
	free(s);
	al_maybe_free(al);
}

static const struct sky_tls_cbs al_cbs = {
	.on_ready = al_on_ready,
	.on_data = al_on_data,
	.on_drain = al_on_drain,
	.on_close = al_on_close,
};

static void al_on_connection(uv_stream_t *server, int status)
{
	struct agentlink *al = server->data;
	struct session *s;
	struct sky_tls *t;

	if (status < 0) {
		log_warn("agent port: accept failed: %s", uv_strerror(status));
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->al = al;
	sky_frame_decoder_init(&s->dec, SKY_FRAME_MAX_DEFAULT);
	if (sky_tls_new(server->loop, al->ssl_ctx, SKY_TLS_SERVER, &al_cbs, s, &t) < 0) {
		free(s);
		return;
	}
	s->tls = t;
	al->n_sessions++;
	s->next_all = al->all;
	if (al->all)
		al->all->prev_all = s;
	al->all = s;
	SSL_set_ex_data(sky_tls_ssl(t), al_ex_index, s);
	if (uv_accept(server, sky_tls_stream(t)) < 0 || sky_tls_start(t) < 0) {
		sky_tls_abort(t, -EIO);
		return;
	}
	uv_tcp_nodelay(sky_tls_tcp(t), 1);
	/* Handshake and enrollment must finish promptly. */
	sky_tls_set_idle_timeout(t, AL_ENROLL_TIMEOUT_MS);
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

static SSL_CTX *al_ssl_ctx(struct controller *ctl)
{
	SSL_CTX *ctx = sky_tls_ctx_new(SKY_TLS_SERVER, TLS1_3_VERSION);
	X509_STORE *store;
	if (!ctx)
		return NULL;
	if (SSL_CTX_use_certificate(ctx, ctl->server_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, ctl->server_key) != 1 ||
	    SSL_CTX_add1_chain_cert(ctx, ctl->ca_cert) != 1)
		goto fail;
	store = SSL_CTX_get_cert_store(ctx);
	if (X509_STORE_add_cert(store, ctl->ca_cert) != 1)
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

static void al_maybe_free(struct agentlink *al)
{
	if (al->stopping && al->closed_handles == 3 && al->n_sessions == 0 && al->chunk_reading == 0) {
		while (al->chunk_head) {
			struct chunk_job *j = al->chunk_head;
			al->chunk_head = j->next;
			free(j);
		}
		SSL_CTX_free(al->ssl_ctx);
		free(al);
	}
}

static void al_handle_closed(uv_handle_t *h)
{
	struct agentlink *al = h->data;
	al->closed_handles++;
	al_maybe_free(al);
}

int agentlink_start(struct controller *ctl, const struct sockaddr *addr)
{
	struct agentlink *al = calloc(1, sizeof(*al));
	int r;

	if (!al)
		return -ENOMEM;
	if (al_ex_index < 0)
		al_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	al->ctl = ctl;
	al->ssl_ctx = al_ssl_ctx(ctl);
	if (!al->ssl_ctx) {
		free(al);
		return -EIO;
	}
	uv_tcp_init(ctl->loop, &al->listener);
	uv_timer_init(ctl->loop, &al->flush_timer);
	uv_check_init(ctl->loop, &al->enroll_check);
	al->listener.data = al;
	al->flush_timer.data = al;
	al->enroll_check.data = al;
	al->enroll_tail = &al->enroll_head;
	al->chunk_tail = &al->chunk_head;
	r = uv_tcp_bind(&al->listener, addr, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&al->listener, 4096, al_on_connection);
	if (r < 0) {
		al->stopping = true;
		uv_close((uv_handle_t *)&al->listener, al_handle_closed);
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

void agentlink_stop(struct agentlink *al)
{
	if (!al || al->stopping)
		return;
	agentlink_flush(al);
	al->stopping = true;
	for (struct session *s = al->all; s; s = s->next_all) {
		al_unhash(s);
		sky_tls_close(s->tls, 0);
	}
	uv_timer_stop(&al->flush_timer);
	uv_close((uv_handle_t *)&al->flush_timer, al_handle_closed);
	uv_close((uv_handle_t *)&al->listener, al_handle_closed);
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

void agentlink_board_kick(struct agentlink *al, const char *board_id)
{
	struct session *s = al ? al_find(al, board_id) : NULL;
	if (!s)
		return;
	al_unhash(s);
	log_info("board %s: deleted; closing its session", board_id);
	session_error(s, 0, SKYROOT__ERROR_CODE__ERROR_REVOKED,
		      "board %s was deleted from the fleet: enroll it again with a new token", board_id);
	sky_tls_close(s->tls, 0);
}
