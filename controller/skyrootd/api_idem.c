/* Idempotency-Key on POST (docs/api.md, "Idempotency"): the first answer to
 * a key is kept 24 hours, by credential, and given again to a repeat of the
 * same request without doing it again; the same key with another request is
 * a 422.  Answers may hold secrets (a new enrollment token), so they are
 * kept sealed (AES-256-GCM) under a key derived from the credential that
 * asked: the database alone does not reveal them.  The rows are keyed by
 * the credential's name (the one that authenticated the request: the same
 * credential's key is the same key, whatever token of it was sent); the
 * seal's key comes from its name and the token sent, so after a rotation
 * an answer kept under the old token cannot be read (409). */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/sql.h"

#define API_IDEM_TTL_S (24 * 3600)
#define API_IDEM_NONCE 12
#define API_IDEM_TAG 16

static bool api_idem__key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > HTTP_IDEM_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
			return false;
	return true;
}

/* AES-256-GCM of in (nonce, ciphertext, tag) into a new buffer. */
static int api_idem__seal(const uint8_t key[32], const uint8_t aad[32], const char *in, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(in);
	uint8_t *b = malloc(API_IDEM_NONCE + n + API_IDEM_TAG);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, fin = 0, r = -EIO;

	if (!b || !c)
		goto out;
	if (sky_random(b, API_IDEM_NONCE) < 0 ||
	    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, b) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &len, aad, 32) != 1 ||
	    EVP_EncryptUpdate(c, b + API_IDEM_NONCE, &len, (const uint8_t *)in, (int)n) != 1 ||
	    EVP_EncryptFinal_ex(c, b + API_IDEM_NONCE + len, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, API_IDEM_TAG, b + API_IDEM_NONCE + n) != 1)
		goto out;
	*out = b;
	*outlen = API_IDEM_NONCE + n + API_IDEM_TAG;
	b = NULL;
	r = 0;
out:
	free(b);
	EVP_CIPHER_CTX_free(c);
	return r;
}

static char *api_idem__open(const uint8_t key[32], const uint8_t aad[32], const uint8_t *in, size_t inlen)
{
	size_t n;
	char *p;
	EVP_CIPHER_CTX *c;
	int len = 0, fin = 0;

	if (inlen < API_IDEM_NONCE + API_IDEM_TAG)
		return NULL;
	n = inlen - API_IDEM_NONCE - API_IDEM_TAG;
	p = malloc(n + 1);
	c = EVP_CIPHER_CTX_new();
	if (!p || !c || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &len, aad, 32) != 1 ||
	    EVP_DecryptUpdate(c, (uint8_t *)p, &len, in + API_IDEM_NONCE, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, API_IDEM_TAG, (void *)(in + API_IDEM_NONCE + n)) != 1 ||
	    EVP_DecryptFinal_ex(c, (uint8_t *)p + len, &fin) != 1) {
		EVP_CIPHER_CTX_free(c);
		free(p);
		return NULL;
	}
	EVP_CIPHER_CTX_free(c);
	p[n] = '\0';
	return p;
}

/* The answer kept for st's key, given again (1); 0 when none is kept. */
static int api_idem__lookup(struct api_call *call, struct api_reply *rep, const struct api_idem *st, char *headers,
			    size_t hlen)
{
	struct sql *h = db_sql(call->ctl->db);
	struct sql_stmt *s = NULL;
	int rc, r = 0;

	rc = sql_prepare(h, "SELECT request, sealed FROM idempotency WHERE credential = ? AND key = ? AND created_at > ?",
			 &s);
	if (rc < 0) {
		api_reply_internal(rep, rc, "read the idempotency keys");
		return 1;
	}
	/* st and the request outlive s: bound without a copy. */
	sql_bind_blob(s, 1, st->cred, 32);
	sql_bind_text(s, 2, st->key);
	sql_bind_int64(s, 3, sky_unix_now() - API_IDEM_TTL_S);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		const void *rq = sql_col_blob(s, 0);
		const char *hs;
		char *plain;
		json_t *saved;

		if (!rq || sql_col_bytes(s, 0) != 32 || CRYPTO_memcmp(rq, st->request, 32) != 0) {
			api_reply_error(rep, 422, "idempotency_key_reused",
					"this Idempotency-Key was used for another request in the last 24 hours; "
					"use a new key for a new request");
			r = 1;
			goto out;
		}
		plain = api_idem__open(st->seal, st->cred, sql_col_blob(s, 1), sql_col_bytes(s, 1));
		if (!plain) {
			/* Same credential and request, another token: rotated since. */
			api_reply_error(rep, 409, "conflict",
					"this request was done with this Idempotency-Key under another token of the "
					"credential (rotated since); its answer is sealed under that token: check its "
					"effect, and use a new key for a new request");
			r = 1;
			goto out;
		}
		saved = json_loads(plain, 0, NULL);
		OPENSSL_cleanse(plain, strlen(plain));
		free(plain);
		if (!json_is_object(saved) || !json_is_integer(json_object_get(saved, "status"))) {
			json_decref(saved);
			api_reply_internal(rep, -EIO, "read the answer kept for this Idempotency-Key");
			r = 1;
			goto out;
		}
		json_decref(rep->body);
		rep->status = (int)json_integer_value(json_object_get(saved, "status"));
		rep->body = json_incref(json_object_get(saved, "body"));
		hs = json_string_value(json_object_get(saved, "headers"));
		snprintf(headers, hlen, "Idempotency-Replayed: true\r\n%s", hs ? hs : "");
		rep->headers = headers;
		json_decref(saved);
		r = 1;
	} else if (rc != SQL_DONE) {
		api_reply_internal(rep, rc, "read the idempotency keys");
		r = 1;
	}
out:
	sql_finalize(s);
	return r;
}


int api_idem_begin(struct api_call *call, struct api_reply *rep, struct api_idem *st, char *headers, size_t hlen)
{
	const struct http_request *req = call->req;
	const struct api_conn_state *cs;
	const char *who;
	int r;

	memset(st, 0, sizeof(*st));
	if (req->verb != HTTP_VERB_POST || !req->idempotency_key)
		return 0;
	if (req->idempotency_key_bad || !api_idem__key_ok(req->idempotency_key)) {
		api_reply_error(rep, 400, "bad_request",
				"give one Idempotency-Key of 1 to %u printable ASCII characters without spaces "
				"(a UUID is fine)",
				HTTP_IDEM_KEY_MAX);
		return 1;
	}
	if (api_images_is_upload(req)) {
		api_reply_error(rep, 400, "bad_request",
				"image uploads take no Idempotency-Key: a name is stored once, a repeat is 409 conflict; "
				"see 'skyctl image list'");
		return 1;
	}
	st->key = req->idempotency_key;
	cs = call->conn ? http_conn_user(call->conn) : NULL;
	who = cs && cs->credential[0] ? cs->credential : NULL;
	if (!who) { /* dispatch authenticates every POST under /v1 first */
		api_reply_internal(rep, -EACCES, "tell which credential sent this Idempotency-Key");
		return 1;
	}
	{
		/* The rows' key: the credential; the seal's: it and the token
		 * sent; the request's: path, query and body. */
		static const char cred_label[] = "skyroot idempotency credential v2";
		static const char seal_label[] = "skyroot idempotency seal v2";
		const struct sky_piece cred[] = { { cred_label, sizeof(cred_label) }, { who, strlen(who) } };
		const struct sky_piece seal[] = { { seal_label, sizeof(seal_label) },
						  { who, strlen(who) + 1 },
						  { req->authorization, req->authorization ? req->authorization_len : 0 } };
		const struct sky_piece request[] = { { req->path, req->path_len },
						     { "?", 1 },
						     { req->query, req->query ? req->query_len : 0 },
						     { "\n", 1 },
						     { req->body, req->body_len } };

		if (sky_sha256_pieces(cred, SKY_ARRAY_SIZE(cred), st->cred) < 0 ||
		    sky_sha256_pieces(seal, SKY_ARRAY_SIZE(seal), st->seal) < 0 ||
		    sky_sha256_pieces(request, SKY_ARRAY_SIZE(request), st->request) < 0) {
			api_reply_internal(rep, -EIO, "hash the request and its credential for the Idempotency-Key");
			return 1;
		}
	}
	r = api_idem__lookup(call, rep, st, headers, hlen);
	if (r == 0) {
		st->on = true; /* new: keep its answer */
		/* what it does and its answer commit together */
		st->held = db_hold(call->ctl->db) == 0;
	}
	return r;
}

/* Keeps rep as the answer to st's key: 1 kept, 0 another answer to the key
 * is kept already (first: a concurrent request with the key, on this or
 * another controller, committed before us), -errno.  Replaces an older one
 * unless first. */
static int api_idem__keep(struct api_call *call, const struct api_idem *st, const struct api_reply *rep, bool first)
{
	struct sql *h = db_sql(call->ctl->db);
	struct sql_stmt *s = NULL;
	json_t *saved;
	char *plain = NULL;
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	int64_t now = sky_unix_now();
	int rc = -ENOMEM;

	saved = json_pack("{s:i, s:O?, s:s}", "status", rep->status, "body", rep->body, "headers",
			  rep->headers ? rep->headers : "");
	plain = saved ? json_dumps(saved, JSON_COMPACT) : NULL;
	json_decref(saved);
	if (!plain || api_idem__seal(st->seal, st->cred, plain, &sealed, &sealed_len) < 0)
		goto out;
	/* The old rows go first; failing that is no reason not to keep this
	 * answer (the next one tries again). */
	if (sql_prepare(h, "DELETE FROM idempotency WHERE created_at <= ?", &s) == 0) {
		sql_bind_int64(s, 1, now - API_IDEM_TTL_S);
		(void)sql_once_done(s);
	}
	s = NULL;
	/* st and sealed outlive s: bound without a copy. */
	rc = sql_prepare(h, first ? "INSERT INTO idempotency (credential, key, request, sealed, created_at) "
				    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (credential, key) DO NOTHING"
				  : "INSERT INTO idempotency (credential, key, request, sealed, created_at) "
				    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (credential, key) DO UPDATE SET "
				    "request = excluded.request, sealed = excluded.sealed, created_at = excluded.created_at",
			 &s);
	if (rc == 0) {
		sql_bind_blob(s, 1, st->cred, 32);
		sql_bind_text(s, 2, st->key);
		sql_bind_blob(s, 3, st->request, 32);
		sql_bind_blob(s, 4, sealed, sealed_len);
		sql_bind_int64(s, 5, now);
		rc = sql_once_changed(s);
		if (rc == -ENOENT)
			rc = 0; /* DO NOTHING: the key's row is another's */
		else if (rc == 0)
			rc = 1;
	}
out:
	if (plain) {
		OPENSSL_cleanse(plain, strlen(plain));
		free(plain);
	}
	free(sealed);
	return rc;
}

static void api_idem__undone(struct api_reply *rep)
{
	api_reply_error(rep, 503, "unavailable",
			"the controller could not keep this request's effect and answer together, so it kept "
			"neither: nothing was done; send it again with the same Idempotency-Key");
	rep->headers = "Retry-After: 1\r\n";
}

void api_idem_end(struct api_call *call, struct api_idem *st, struct api_reply *rep, char *headers, size_t hlen)
{
	struct db *db = call->ctl->db;
	/* Answers of a moment (5xx, 401, 429) and later ones (status 0) are
	 * not kept: the request may be tried again. */
	bool keep = st->on && rep->status >= 200 && rep->status < 500 && rep->status != 401 && rep->status != 429;
	int r;

	if (!st->held) {
		if (keep && (r = api_idem__keep(call, st, rep, false)) < 0)
			log_warn("api: cannot keep the answer of an Idempotency-Key request: %s; a repeat will be done "
				 "again", strerror(-r));
		return;
	}
	st->held = false;
	if (!keep) {
		/* what it did is kept as it would be without a key */
		r = db_hold_commit(db);
		if (r < 0 && rep->status >= 200 && rep->status < 300)
			api_idem__undone(rep);
		return;
	}
	r = api_idem__keep(call, st, rep, true);
	if (r == 1) {
		r = db_hold_commit(db);
		if (r < 0) {
			log_warn("api: a request with an Idempotency-Key could not commit: %s; answered 503",
				 strerror(-r));
			api_idem__undone(rep);
		}
		return;
	}
	db_hold_rollback(db);
	if (r == 0) {
		/* The same key's request committed first elsewhere: its answer,
		 * and ours undone. */
		log_info("api: request %s: its Idempotency-Key was answered meanwhile by another request; that "
			 "answer is given again", call->conn ? http_conn_request_id(call->conn) : "-");
		if (api_idem__lookup(call, rep, st, headers, hlen) == 0)
			api_idem__undone(rep);
		return;
	}
	log_warn("api: cannot keep the answer of an Idempotency-Key request: %s", strerror(-r));
	if (rep->status < 300) {
		api_idem__undone(rep);
		return;
	}
	/* a refusal (4xx) did nothing: its answer is kept on its own */
	if ((r = api_idem__keep(call, st, rep, false)) < 0)
		log_warn("api: cannot keep the answer of an Idempotency-Key request: %s; a repeat will be done again",
			 strerror(-r));
}
