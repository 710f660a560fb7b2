/* The rules of enrollment with no token (pending.h). */
#include "controller/skyrootd/pending.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"

#define PENDING_ID_BYTES 6

static int pending__record(struct db *db, const struct pending_opts *o, const struct pending_claim *c, int64_t now,
			   struct pending_result *res)
{
	struct db_pending p;
	int r = db_pending_count(db);

	if (r < 0)
		return r;
	if ((uint64_t)r >= o->max) {
		res->verdict = PENDING_FULL;
		return 0;
	}
	memset(&p, 0, sizeof(p));
	memcpy(p.key_sha256, c->key_sha256, 32);
	p.state = DB_PENDING_WAITING;
	snprintf(p.serial, sizeof(p.serial), "%s", c->serial);
	snprintf(p.uuid, sizeof(p.uuid), "%s", c->uuid);
	snprintf(p.hostname, sizeof(p.hostname), "%s", c->hostname);
	snprintf(p.macs, sizeof(p.macs), "%s", c->macs);
	snprintf(p.peer, sizeof(p.peer), "%s", c->peer);
	p.first_seen = p.last_seen = now;
	p.expires_at = now + o->ttl;
	for (int attempt = 0; attempt < 3; attempt++) {
		r = db_new_id("pnd-", PENDING_ID_BYTES, p.id, sizeof(p.id));
		if (r == 0)
			r = db_pending_insert(db, &p);
		if (r != -EEXIST)
			break;
	}
	if (r < 0)
		return r;
	snprintf(res->id, sizeof(res->id), "%s", p.id);
	res->verdict = PENDING_WAIT;
	res->is_new = true;
	return 0;
}

/* An expectation of these claims, used up: 1 (its id in res), 0 none. */
static int pending__expected(struct db *db, const struct pending_claim *c, struct pending_result *res)
{
	struct db_expectation e;
	int r;

	if (c->known)
		return 0;
	r = db_expect_find(db, c->serial, c->uuid, &e);
	if (r == -ENOENT)
		return 0;
	if (r == 0)
		r = db_expect_delete(db, e.id);
	if (r < 0)
		return r;
	snprintf(res->expectation, sizeof(res->expectation), "%s", e.id);
	return 1;
}

int pending_decide(struct db *db, const struct pending_opts *o, const struct pending_claim *c, int64_t now,
		   struct pending_result *res)
{
	struct db_pending p;
	int r;

	memset(res, 0, sizeof(*res));
	r = db_pending_expire(db, now);
	if (r < 0)
		return r;
	r = db_pending_by_key(db, c->key_sha256, &p);
	if (r == -ENOENT) {
		r = pending__expected(db, c, res);
		if (r != 0) {
			res->verdict = PENDING_ISSUE;
			return r < 0 ? r : 0;
		}
		return pending__record(db, o, c, now, res);
	}
	if (r < 0)
		return r;
	snprintf(res->id, sizeof(res->id), "%s", p.id);
	if (strcmp(p.serial, c->serial) != 0 || strcmp(p.uuid, c->uuid) != 0) {
		res->verdict = PENDING_MISMATCH;
		return 0;
	}
	switch (p.state) {
	case DB_PENDING_REJECTED:
		res->verdict = PENDING_REJECTED;
		return db_pending_seen(db, p.id, now, c->peer, p.expires_at);
	case DB_PENDING_ACCEPTED:
		res->verdict = PENDING_ISSUE;
		return db_pending_delete(db, p.id);
	case DB_PENDING_WAITING:
		/* An expectation made while it waits takes it now (its claims
		 * are the recorded ones: checked above). */
		r = pending__expected(db, c, res);
		if (r < 0)
			return r;
		if (r > 0) {
			res->verdict = PENDING_ISSUE;
			return db_pending_delete(db, p.id);
		}
		res->verdict = PENDING_WAIT;
		return db_pending_seen(db, p.id, now, c->peer, now + o->ttl);
	}
	return -EINVAL;
}

int pending_accept(struct db *db, const struct pending_opts *o, const char *id, int64_t now)
{
	int r = db_pending_expire(db, now);

	if (r < 0)
		return r;
	return db_pending_decide(db, id, DB_PENDING_WAITING, DB_PENDING_ACCEPTED, now, now + o->ttl);
}

int pending_reject(struct db *db, const struct pending_opts *o, const char *id, int64_t now)
{
	int r = db_pending_expire(db, now);

	if (r < 0)
		return r;
	r = db_pending_decide(db, id, DB_PENDING_WAITING, DB_PENDING_REJECTED, now, now + o->ttl);
	if (r == -EALREADY) /* an accept the board has not collected yet */
		r = db_pending_decide(db, id, DB_PENDING_ACCEPTED, DB_PENDING_REJECTED, now, now + o->ttl);
	return r;
}

/* ---- the claims' syntax ---- */

bool pending_serial_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > DB_PENDING_SERIAL_MAX)
		return false;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

bool pending_uuid_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > DB_PENDING_UUID_MAX)
		return false;
	for (; *s; s++) {
		char ch = *s;
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' ||
		      ch == ':'))
			return false;
	}
	return true;
}

bool pending_macs_join(char *const *macs, size_t n, char *out, size_t outlen)
{
	size_t at = 0;

	if (outlen == 0 || n > DB_PENDING_MACS_MAX)
		return false;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		uint8_t mac[6];

		if (sky_parse_mac(macs[i], mac) < 0 || at + SKY_MAC_LEN + 1 > outlen)
			return false;
		if (i)
			out[at++] = ',';
		sky_format_mac(mac, out + at);
		at += SKY_MAC_LEN - 1;
	}
	return true;
}

bool pending_expect_check(struct db_expectation *e, const char *serial, const char *uuid, char *err, size_t errlen)
{
	bool has_serial = serial && serial[0], has_uuid = uuid && uuid[0];

	if (has_serial == has_uuid) {
		snprintf(err, errlen, "give exactly one of serial and uuid");
		return false;
	}
	if (has_serial && !pending_serial_ok(serial)) {
		snprintf(err, errlen, "serial must be 1 to %d printable ASCII characters", DB_PENDING_SERIAL_MAX);
		return false;
	}
	if (has_uuid && !pending_uuid_ok(uuid)) {
		snprintf(err, errlen, "uuid must be 1 to %d letters, digits, '-' or ':'", DB_PENDING_UUID_MAX);
		return false;
	}
	snprintf(e->serial, sizeof(e->serial), "%s", has_serial ? serial : "");
	snprintf(e->uuid, sizeof(e->uuid), "%s", has_uuid ? uuid : "");
	for (char *p = e->uuid; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return true;
}

/* ---- the agent link's side ---- */

int pending_ask_parse(struct pending_ask *a, const Skyroot__EnrollRequest *er, EVP_PKEY *pub)
{
	unsigned char *spki = NULL;
	int n;

	memset(a, 0, sizeof(*a));
	if ((er->dmi_serial[0] && !pending_serial_ok(er->dmi_serial)) || !pending_uuid_ok(er->machine_uuid) ||
	    !pending_macs_join(er->macs, er->n_macs, a->macs, sizeof(a->macs)))
		return -EINVAL;
	n = i2d_PUBKEY(pub, &spki);
	if (n <= 0)
		return -EINVAL;
	sky_sha256(spki, (size_t)n, a->key_sha256);
	OPENSSL_free(spki);
	snprintf(a->serial, sizeof(a->serial), "%s", er->dmi_serial);
	a->on = true;
	return 0;
}

int pending_ask_decide(struct db *db, const struct pending_opts *o, struct pending_ask *a, const char *uuid,
		       const char *hostname, int64_t now)
{
	char host[DB_PENDING_HOST_MAX + 1], board[DB_ID_MAX];
	struct pending_claim c = { .serial = a->serial, .uuid = uuid, .hostname = host, .macs = a->macs,
				   .peer = a->peer };
	size_t n = 0;
	int r;

	/* The host name is only shown: printable ASCII, '?' for the rest. */
	for (; hostname[n] && n < DB_PENDING_HOST_MAX; n++)
		host[n] = hostname[n] >= 0x20 && hostname[n] <= 0x7e ? hostname[n] : '?';
	host[n] = '\0';
	r = db_board_find_uuid(db, uuid, board);

	if (r < 0 && r != -ENOENT)
		return r;
	c.known = r == 0;
	memcpy(c.key_sha256, a->key_sha256, 32);
	return pending_decide(db, o, &c, now, &a->res);
}

enum metrics_enroll_fail pending_ask_metric(const struct pending_ask *a)
{
	switch (a->res.verdict) {
	case PENDING_WAIT:
		return METRICS_ENROLL_PENDING;
	case PENDING_FULL:
		return METRICS_ENROLL_PENDING_FULL;
	case PENDING_REJECTED:
		return METRICS_ENROLL_PENDING_REJECTED;
	default:
		return METRICS_ENROLL_BAD_REQUEST;
	}
}

bool pending_ask_answer(struct pending_ask *a, int err, const char *uuid, const char *hostname,
			Skyroot__EnrollResponse *resp, Skyroot__ErrorCode *code, char *msg, size_t msglen)
{
	const struct pending_result *res = &a->res;
	char key[65];

	sky_format_hex(a->key_sha256, 32, key);
	if (err < 0) {
		log_error("enrollment with no token of machine '%s' failed: %s", uuid, strerror(-err));
		*code = SKYROOT__ERROR_CODE__ERROR_INTERNAL;
		snprintf(msg, msglen, "controller failed to record the enrollment: %s", strerror(-err));
		return false;
	}
	switch (res->verdict) {
	case PENDING_FULL:
		log_warn("enrollment with no token from %s (machine '%s') refused: --pending-max boards are pending "
			 "already; accept or reject some ('skyctl board list --pending')", a->peer, uuid);
		*code = SKYROOT__ERROR_CODE__ERROR_BUSY;
		snprintf(msg, msglen, "too many boards wait for an operator already (--pending-max): ask again later");
		return false;
	case PENDING_MISMATCH:
		log_warn("pending board %s: key sha256:%.16s... asked again from %s with other claims (machine '%s', "
			 "serial '%s') than it was recorded with: refused", res->id, key, a->peer, uuid, a->serial);
		*code = SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST;
		snprintf(msg, msglen, "this key asked before as pending board %s with another serial or machine UUID: "
			 "a board keeps its claims while it waits", res->id);
		return false;
	case PENDING_REJECTED:
		log_info("pending board %s (machine '%s', key sha256:%.16s...) asked again: it was rejected", res->id,
			 uuid, key);
		break;
	default:
		if (res->is_new)
			log_info("pending board %s: machine '%s' (serial '%s', MACs %s, host '%s') from %s asks to enroll "
				 "with no token, key sha256:%s; accept it with 'skyctl board accept %s'", res->id, uuid,
				 a->serial, a->macs[0] ? a->macs : "none", hostname, a->peer, key, res->id);
		break;
	}
	resp->board_id = "";
	resp->state = res->verdict == PENDING_REJECTED ? SKYROOT__ENROLL_STATE__ENROLL_REJECTED :
							 SKYROOT__ENROLL_STATE__ENROLL_PENDING;
	resp->pending_id = (char *)res->id;
	resp->retry_ms = res->verdict == PENDING_REJECTED ? PENDING_REJECT_RETRY_MS : PENDING_RETRY_MS;
	resp->key_sha256.data = a->key_sha256;
	resp->key_sha256.len = 32;
	return true;
}

void pending_ask_issued(const struct pending_ask *a, const char *board_id, const char *uuid)
{
	char key[65];

	sky_format_hex(a->key_sha256, 32, key);
	log_info("board %s (machine '%s', serial '%s', key sha256:%.16s...) enrolled with no token: %s%s", board_id,
		 uuid, a->serial, key, a->res.expectation[0] ? "expectation " : "accepted by an operator",
		 a->res.expectation);
}

/* ---- the rate of token-less asks per address ---- */

#define PENDING_RATE_PROBE 8

struct pending_rate_slot {
	char peer[DB_PENDING_PEER_MAX];  /* "" = free */
	uint64_t last_ms;                /* the last refill */
	unsigned tokens;
};

struct pending_rate {
	unsigned burst;
	uint64_t refill_ms;
	size_t n;
	struct pending_rate_slot slots[];
};

struct pending_rate *pending_rate_new(unsigned burst, uint64_t refill_ms, size_t slots)
{
	struct pending_rate *r;

	if (burst == 0 || refill_ms == 0 || slots < PENDING_RATE_PROBE)
		return NULL;
	r = calloc(1, sizeof(*r) + slots * sizeof(r->slots[0]));
	if (!r)
		return NULL;
	r->burst = burst;
	r->refill_ms = refill_ms;
	r->n = slots;
	return r;
}

void pending_rate_free(struct pending_rate *r)
{
	free(r);
}

static uint64_t pending__fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

bool pending_rate_allow(struct pending_rate *r, const char *peer, uint64_t now_ms)
{
	size_t start = (size_t)(pending__fnv(peer) % r->n);
	struct pending_rate_slot *slot = NULL, *stalest = NULL;

	for (size_t i = 0; i < PENDING_RATE_PROBE; i++) {
		struct pending_rate_slot *s = &r->slots[(start + i) % r->n];
		if (strcmp(s->peer, peer) == 0 && s->peer[0]) {
			slot = s;
			break;
		}
		if (!s->peer[0]) { /* a free slot first */
			if (!stalest || stalest->peer[0])
				stalest = s;
		} else if (!stalest || (stalest->peer[0] && s->last_ms < stalest->last_ms)) {
			stalest = s;
		}
	}
	if (!slot) {
		slot = stalest;
		snprintf(slot->peer, sizeof(slot->peer), "%s", peer);
		slot->tokens = r->burst;
		slot->last_ms = now_ms;
	}
	if (now_ms > slot->last_ms) {
		uint64_t add = (now_ms - slot->last_ms) / r->refill_ms;
		if (add >= r->burst || slot->tokens + add >= r->burst) {
			slot->tokens = r->burst;
			slot->last_ms = now_ms;
		} else if (add) {
			slot->tokens += (unsigned)add;
			slot->last_ms += add * r->refill_ms;
		}
	}
	if (slot->tokens == 0)
		return false;
	slot->tokens--;
	return true;
}
