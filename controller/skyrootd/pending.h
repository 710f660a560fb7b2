/* Enrollment with no token (docs/api.md "Pending boards"): a board that
 * holds the CA pin but no token asks with its CSR and its claims (DMI
 * serial, UUID, MACs); it waits as a pending board, bound to the key of
 * that CSR, until an operator accepts or rejects it, or an expectation
 * (a serial or UUID an operator listed beforehand) matches its claims.
 * The serial and UUID are claims of the board, not proof: an expectation
 * admits whoever claims them first (but never as a board already
 * enrolled: see struct pending_claim).  What is issued goes to the key that
 * was pending and to no other.
 *
 * Bounds: at most max rows (pending, accepted and rejected together); a
 * waiting row lives ttl after the board's last ask, a decided one ttl after
 * the decision; token-less asks are rate-limited per peer address. */
#ifndef SKY_CONTROLLER_PENDING_H
#define SKY_CONTROLLER_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "controller/skyrootd/db_pending.h"
#include "controller/skyrootd/metrics.h"
#include "proto/skyroot.pb-c.h"

#define PENDING_MAX_DEFAULT 1024
#define PENDING_TTL_DEFAULT (24 * 3600)
#define PENDING_EXPECT_MAX 16384       /* expectations kept at once */
#define PENDING_RETRY_MS 3000          /* a pending board asks again after about this long */
#define PENDING_REJECT_RETRY_MS (3600u * 1000u) /* a rejected one after this long */
/* Token-less asks from one address: a burst, then one per refill period. */
#define PENDING_RATE_BURST 10
#define PENDING_RATE_REFILL_MS 1000
#define PENDING_RATE_SLOTS 4096

struct pending_opts {
	uint64_t max;                  /* rows kept at once */
	int64_t ttl;                   /* seconds */
};

/* What a board claims, checked (pending_serial_ok and the others below).
 * known: its UUID is an enrolled board's.  An expectation never admits
 * such a machine (that would hand a board's identity to whoever claims its
 * UUID): it waits for an operator, whose accept gives it that board. */
struct pending_claim {
	uint8_t key_sha256[32];
	const char *serial, *uuid, *hostname, *macs, *peer;
	bool known;
};

enum pending_verdict {
	PENDING_WAIT,      /* recorded (or seen again): ask again later */
	PENDING_ISSUE,     /* accepted by an operator or an expectation: issue to this key now */
	PENDING_REJECTED,  /* an operator refused this key */
	PENDING_FULL,      /* max rows: refused before it is recorded */
	PENDING_MISMATCH,  /* the key's row has other claims (serial, UUID): refused, nothing changed */
};

struct pending_result {
	enum pending_verdict verdict;
	char id[DB_ID_MAX];            /* the row's id ("" when none was made) */
	char expectation[DB_ID_MAX];   /* PENDING_ISSUE by an expectation: its id (used up) */
	bool is_new;                   /* PENDING_WAIT: the row was made now */
};

/* Decide a token-less enrollment in the store, inside the caller's
 * transaction: expire old rows, then find the key's row, or match an
 * expectation, or record a new row.  A key keeps the serial and UUID of
 * its first ask while its row lives: what an operator accepted is what is
 * issued.  0 with res, or a negative errno. */
int pending_decide(struct db *db, const struct pending_opts *o, const struct pending_claim *c, int64_t now,
		   struct pending_result *res);
/* An operator's decision on a waiting row: accept (the board's next ask
 * gets its certificate) or reject (kept ttl so the key cannot queue again).
 * Reject also takes back an accept the board has not collected.
 * -ENOENT, -EALREADY (already decided), or 0. */
int pending_accept(struct db *db, const struct pending_opts *o, const char *id, int64_t now);
int pending_reject(struct db *db, const struct pending_opts *o, const char *id, int64_t now);

/* The claims' syntax.  A serial: 1 to 64 printable ASCII bytes.  A UUID
 * (or the agent's "mac-..." stand-in): 1 to 63 of letters, digits, '-'
 * and ':'. */
bool pending_serial_ok(const char *s);
bool pending_uuid_ok(const char *s);
/* The MACs (n of them, each read by sky_parse_mac; at most
 * DB_PENDING_MACS_MAX) joined with ',' in lower case into out.  false when
 * one is malformed or there are too many. */
bool pending_macs_join(char *const *macs, size_t n, char *out, size_t outlen);
/* An expectation's serial or uuid (exactly one of them given), checked;
 * the uuid in lower case.  false with a reason in err. */
bool pending_expect_check(struct db_expectation *e, const char *serial, const char *uuid, char *err, size_t errlen);

/* ---- the agent link's side (al_enroll.c holds one per enrollment) ---- */

/* One enrollment request with no token. */
struct pending_ask {
	bool on;                       /* the request had no token */
	uint8_t key_sha256[32];        /* SHA-256 of the CSR key's SubjectPublicKeyInfo */
	char serial[DB_PENDING_SERIAL_MAX + 1];
	char macs[DB_PENDING_MACS_LEN];
	char peer[DB_PENDING_PEER_MAX];
	struct pending_result res;
};
/* A request with no token (er, its CSR's key pub): its claims checked
 * into a (on set) and its key's fingerprint.  0, or -EINVAL when a claim
 * is malformed (the caller answers ERROR_BAD_REQUEST). */
int pending_ask_parse(struct pending_ask *a, const Skyroot__EnrollRequest *er, EVP_PKEY *pub);
/* Decide it in the store, inside the caller's transaction (uuid and
 * hostname as the request gave them, checked).  0 with a->res, or a
 * negative errno. */
int pending_ask_decide(struct db *db, const struct pending_opts *o, struct pending_ask *a, const char *uuid,
		       const char *hostname, int64_t now);
/* The failure counted for a decision that issued nothing. */
enum metrics_enroll_fail pending_ask_metric(const struct pending_ask *a);
/* Log a decision that issued nothing (err: the decision's, 0 or a
 * negative errno) and make its answer: true with resp filled (PENDING or
 * REJECTED; its pointers into a), or false with an error to answer. */
bool pending_ask_answer(struct pending_ask *a, int err, const char *uuid, const char *hostname,
			Skyroot__EnrollResponse *resp, Skyroot__ErrorCode *code, char *msg, size_t msglen);
/* Log a certificate issued to board_id for it. */
void pending_ask_issued(const struct pending_ask *a, const char *board_id, const char *uuid);

/* Rate of token-less asks per peer address (a token bucket each, in a
 * table of slots; the stalest address gives way when the table is full). */
struct pending_rate;
struct pending_rate *pending_rate_new(unsigned burst, uint64_t refill_ms, size_t slots);
void pending_rate_free(struct pending_rate *r);
/* One ask from peer at now_ms: true when it may go on. */
bool pending_rate_allow(struct pending_rate *r, const char *peer, uint64_t now_ms);

#endif
