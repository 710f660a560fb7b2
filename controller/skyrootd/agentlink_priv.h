/* The agent link's insides, shared by its files and by nobody else:
 *   al_conn.c     a session's transport on its session loop (loops.c has
 *                 the threading model): the bottom layer
 *   al_session.c  the session table and sending frames
 *   al_tpm.c      an enrollment's TPM step: challenge, proof (issue 16)
 *   al_quote.c    fresh quotes in sessions, judged by the measured-boot gate
 *   al_enroll.c   enrollment in group commits, certificate issue and renewal
 *   al_chunks.c   serving image chunks with a window and a memory budget
 *   al_report.c   boards' reports of a corrupt chunk, bounded, to scrub.c
 *   agentlink.c   the listener, TLS callbacks, frame dispatch, the interface
 * Calls go downwards only: agentlink.c -> al_quote.c -> al_tpm.c -> al_enroll.c, al_chunks.c ->
 * al_session.c -> al_conn.c (tests/unit/circles.py checks it); al_conn.c
 * reports back through struct al_conn_ops. */
#ifndef SKY_CONTROLLER_AGENTLINK_PRIV_H
#define SKY_CONTROLLER_AGENTLINK_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/frame.h"
#include "common/tls.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/listener.h"
#include "controller/skyrootd/store.h"

#define AL_BUCKETS 16384
/* A frame on a connection without a client certificate (an enrollment
 * request: token, CSR, labels) is far smaller than a board's inventory:
 * what an unauthenticated peer can make us buffer stays small. */
#define AL_ENROLL_FRAME_MAX (64u * 1024u)
#define AL_DEFAULT_HB_MS 10000
#define AL_MAX_TOKEN 128
#define AL_MAX_UUID 63
#define AL_MAX_HOSTNAME 64
/* Chunks one board may have asked for and not yet received (requests
 * only: a request waiting for its turn holds no chunk buffer). */
#define AL_CHUNK_WINDOW 16
/* THE MEMORY OF STREAMING, and its bounds (al_chunks.c, al_pool.c).
 *
 * Chunk bytes being read or waiting in send queues, for all boards
 * together (al->chunk_bytes): the controller's memory does not grow with
 * image size or board count.  16 chunks of 1 MiB in flight keep the wire
 * busy: a chunk is read in about 0.5 ms and sealed in about as long, and
 * the kernel's socket buffers hold the rest.  Measured: 32 boards fetching
 * 128 MiB each (tests/bench/images.py's pieces), this controller and the
 * one with a 64 MiB budget interleaved on a loaded 2-core machine: 244 and
 * 318 MB/s against 223 and 126 MB/s.
 *
 * The bytes live in the pool's buffers (al_pool.c): AL_POOL_BUF each, a
 * chunk with room for its frame prefix, or the TLS records sealed from
 * such a frame (SKY_TLS_WRITE_ROOM: 1 MiB + 16.3 KiB).  A chunk holds one
 * buffer from its read until its records are written to the socket, and
 * two only while its session loop seals it (the plaintext buffer is given
 * back right after).  So the pool holds at most
 *     AL_POOL_JOBS                 chunks in flight (main takes a buffer
 *                                  for a job only below this)
 *   + one per loop that seals,     (the session loops, or the main loop
 *     AL_POOL_TRANSIENTS at most    when it is the only one)
 * buffers, and never more: al_pool_get refuses past that bound (a loop
 * that finds no transient buffer seals into a buffer of sky_tls's own,
 * mapped and given back whole once written: main.c's mallopt).  With the
 * 2 loops of a 2-core machine: (16 + 1) x 1,066,246 bytes = 17.3 MiB, all
 * of the chunk memory while any number of boards stream; with 5 loops or
 * more, (16 + 4) x 1,066,246 bytes = 20.3 MiB, whatever the cores.  Measured (tests/bench/images.py,
 * 32 boards x 256 MiB): peak RSS 40 MiB, 16 MiB over the idle controller
 * with its 32 sessions; it was 163 MiB with malloc'd chunks and a 64 MiB
 * budget.  Buffers are allocated once and reused
 * (GET /metrics: skyroot_chunk_pool_*_bytes shows the bound and the high-
 * water mark); a chunk sent in the protobuf form (a board that did not ask
 * for the tail form) is packed into a frame of its own, still counted in
 * AL_CHUNK_BUDGET. */
#define AL_CHUNK_BUDGET (16u << 20)
#define AL_POOL_JOBS (AL_CHUNK_BUDGET / STORE_CHUNK_SIZE)
#define AL_POOL_BUF SKY_TLS_WRITE_ROOM(SKY_FRAME_TAIL_PREFIX_MAX + STORE_CHUNK_SIZE)
#define AL_POOL_TRANSIENTS 4
/* One board's chunk bytes being read or queued behind its socket: three
 * chunks keep one board's wire busy (read, sealed, being written), and no
 * board takes more than its share of the pool, nor makes its control
 * messages wait behind more than this. */
#define AL_SESSION_CHUNK_MAX (3u << 20)
/* Reports of a corrupt chunk one session may make us re-check: a burst of
 * AL_REPORT_BURST, then one every AL_REPORT_EVERY_MS; more are dropped
 * (counted), so a board cannot make the controller hash without end. */
#define AL_REPORT_BURST 8
#define AL_REPORT_EVERY_MS 5000

enum session_state { SESS_HANDSHAKE, SESS_ENROLL_ONLY, SESS_BOARD };

struct al_conn;
struct loops;

/* What the handshake showed of the client certificate, read on the
 * session loop: no OpenSSL object crosses loops. */
struct al_peer {
	bool present;                 /* a certificate our CA signed (maybe expired) */
	bool expired;                 /* it verified but for its dates */
	bool cn_ok;                   /* cn holds its common name */
	char cn[DB_ID_MAX];
	uint64_t serial;
	int64_t not_after;
};

/* What a connection's transport reports, on the main loop (owner: the
 * session), and the one hook it runs on its session loop. */
struct al_conn_ops {
	/* Handshake done; what the client certificate said. */
	void (*on_ready)(void *owner, const struct al_peer *peer);
	/* A decoded frame (the callee frees env) and what loop_frame made of it. */
	void (*on_frame)(void *owner, Skyroot__Envelope *env, void *prep);
	/* Everything posted was written to the socket. */
	void (*on_drained)(void *owner);
	/* The connection is closed; the owner calls al_conn_release(). */
	void (*on_closed)(void *owner, int err);
	/* On the session loop, per frame, before it is posted: the CPU-heavy
	 * checks that need no state (an enrollment's CSR signature). */
	void *(*loop_frame)(const Skyroot__Envelope *env);
};

struct al_tpm_wait;
struct tpmv_nonces;

/* TPM nonces (enrollments' and fresh quotes') live this long, and this
 * many at once (given, or used and not yet expired); past that,
 * enrollments with a TPM wait (ERROR_BUSY) and quotes are asked later.
 * The bound on unauthenticated connections (listener.h) keeps it far off. */
#define AL_TPM_NONCE_TTL_MS 30000
#define AL_TPM_NONCES 4096

struct session {
	struct agentlink *al;
	/* The transport: c (a session loop, al_conn.c) or, without loops,
	 * tls directly on the caller's loop (the fuzzer, tests/fuzz). */
	struct al_conn *c;
	struct sky_tls *tls;
	struct listener_slot *slot;   /* admission (listener.c) */
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
	struct al_tpm_wait *tpm_wait; /* a TPM challenge sent, its proof awaited (al_tpm.c) */
	/* Fresh quotes (al_quote.c): when to ask next (sky_now_ms; 0: at the
	 * next heartbeat), the request outstanding (0: none) with its nonce,
	 * and the requests in a row that got no answer in time. */
	uint64_t quote_next_ms, quote_req, quote_sent_ms;
	uint8_t quote_nonce[32];
	unsigned quote_misses;
	struct chunk_job *jobs;       /* this session's chunk requests (snext) */
	unsigned chunk_inflight;
	size_t chunk_reading;         /* chunk bytes being read for it */
	size_t charged;               /* chunk bytes in our send queue */
	Skyroot__ImageStatus *images; /* the board's last report (owned) */
	bool hello_seen;
	uint32_t report_tokens;       /* re-checks left (al_report.c) */
	uint64_t report_refill;       /* sky_now_ms() of the last refill */
	bool report_dropped;          /* a dropped report was logged */
	bool report_started;
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
	bool raw_tail;                /* the board takes the tail form */
	uint8_t *buf;                 /* a pool buffer: SKY_FRAME_TAIL_PREFIX_MAX of room, then the chunk */
	char image_id[DB_ID_MAX];
};

struct agentlink {
	struct controller *ctl;
	struct loops *loops;          /* where sessions' transports run */
	struct agentlink_ops ops;     /* what boards report goes there */
	void *ops_ctx;
	struct listener *listener;    /* admission, caps, deadlines */
	uv_timer_t flush_timer;
	SSL_CTX *ssl_ctx;
	struct session *buckets[AL_BUCKETS];
	struct session *all;
	uv_check_t enroll_check;
	struct enroll_item *enroll_head, **enroll_tail;
	unsigned enroll_signing;      /* certificates being signed on the thread pool */
	uint8_t *ca_der;              /* the CA certificate, for enrollment answers */
	struct tpmv_nonces *tpm_nonces; /* quotes' nonces, single use (al_tpm.c) */
	size_t ca_der_len;
	struct chunk_job *chunk_head, **chunk_tail;
	size_t chunk_bytes;           /* budget in use: reading + queued to send */
	struct al_pool *pool;         /* the chunk buffers (al_pool.c) */
	unsigned chunk_reading;
	size_t n_sessions;
	size_t n_online;              /* board sessions in the hash (agentlink_online_count) */
	int closed_handles;
	bool stopping;
};

/* agentlink.c */
/* One decoded frame of session ctx (a struct session *), as the socket's
 * bytes give it (sky_frame_feed): enrollment, or a board's messages once
 * its certificate checked out; frees env.  The fuzzer's way into every
 * handler of a board's messages (tests/fuzz/fuzz_agent.c). */
int al_on_frame(void *ctx, Skyroot__Envelope *env);

/* al_conn.c: main loop only, but for al_conn_ex_index(). */
/* The SSL ex_data index that holds a connection's cert_expired flag (a
 * bool *, set by the verify callback during the handshake). */
int al_conn_ex_index(void);
/* Hand the accepted socket fd to a session loop (round-robin) with TLS
 * from ssl_ctx (a reference is taken) and its deadlines.  NULL on failure
 * (fd is left to the caller then). */
struct al_conn *al_conn_open(struct loops *loops, const struct al_conn_ops *ops, void *owner, int fd,
			     SSL_CTX *ssl_ctx, uint64_t handshake_ms, uint64_t admit_ms);
/* Send buf[off..off+len) (an encoded frame): buf changes hands (freed in
 * any case; given back to pool when pool is not NULL: then the session
 * loop seals it into a second buffer of the pool, al_pool.c).  -ENOTCONN
 * before ready or once closing. */
int al_conn_send(struct al_conn *c, uint8_t *buf, size_t off, size_t len, struct al_pool *pool);
void al_conn_close(struct al_conn *c, int err);
void al_conn_abort(struct al_conn *c, int err);
void al_conn_idle(struct al_conn *c, uint64_t ms);
/* Admitted: the enrollment deadline is off. */
void al_conn_admit(struct al_conn *c);
/* After on_closed: nothing more is posted for c. */
void al_conn_release(struct al_conn *c);
bool al_conn_ready(const struct al_conn *c);
/* Bytes posted and not yet written to the socket. */
size_t al_conn_queued(const struct al_conn *c);

/* al_pool.c: the chunk buffers, AL_POOL_BUF bytes each (the bound: above).
 * Any thread but for al_pool_new. */
struct al_pool;
/* At most jobs_max buffers for chunk jobs plus transients for sealing;
 * ready(ready_arg) runs on the main loop when buffers came back after
 * al_pool_get found none. */
int al_pool_new(struct loops *loops, unsigned jobs_max, unsigned transients, void (*ready)(void *arg),
		void *ready_arg, struct al_pool **out);
/* A buffer, or NULL: none left for a job (ready() follows), or for a
 * transient (the caller does without), or out of memory. */
uint8_t *al_pool_get(struct al_pool *p, bool transient);
/* Give buf back (NULL is fine); al_pool_put_cb is the same as a
 * sky_tls_release_fn. */
void al_pool_put(struct al_pool *p, uint8_t *buf);
void al_pool_put_cb(void *ctx, uint8_t *buf);
void al_pool_stats(struct al_pool *p, struct agentlink_pool_stats *st);
/* The pool goes once every buffer is back; ready() is not called again. */
void al_pool_free(struct al_pool *p);

/* al_session.c */
/* The session's transport, whichever it is (struct session). */
bool al_sess_ready(const struct session *s);
size_t al_sess_queued(const struct session *s);
void al_sess_close(struct session *s, int err);
void al_sess_abort(struct session *s, int err);
void al_sess_idle(struct session *s, uint64_t ms);
struct session *al_find(struct agentlink *al, const char *id);
/* Close the board's session, if any, telling it why (ERROR_REVOKED). */
void al_kick(struct agentlink *al, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void al_hash(struct session *s);
void al_unhash(struct session *s);
int al_session_send(struct session *s, Skyroot__Envelope *env);
/* Send a ChunkData envelope hdr (data empty) in the tail form with tail_len
 * raw bytes at tail (common/frame.h); the SKY_FRAME_TAIL_PREFIX_MAX bytes
 * before tail must be the caller's to overwrite.  *owner is the pool
 * buffer tail lies in (al_pool.c): over a session loop's transport it
 * changes hands (*owner becomes NULL; the loop gives it back once sealed). */
int al_session_send_tail(struct session *s, const Skyroot__Envelope *hdr, uint8_t *tail, size_t tail_len,
			 uint8_t **owner);
void al_session_error(struct session *s, uint64_t req, Skyroot__ErrorCode code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void al_session_touch(struct session *s);
bool al_str_ok(const char *s, size_t max);
/* Free the agent link once it is stopping and nothing refers to it. */
void al_maybe_free(struct agentlink *al);

/* al_enroll.c */
void al_enroll(struct session *s, uint64_t req, const Skyroot__EnrollRequest *er);
/* The same with the request checked already on the session loop
 * (al_enroll_prepare): prep is consumed. */
struct enroll_prep;
struct enroll_prep *al_enroll_prepare(const Skyroot__Envelope *env);
void al_enroll_prepared(struct session *s, uint64_t req, struct enroll_prep *prep);
void al_enroll_prep_free(struct enroll_prep *prep);
void al_enroll_batch(uv_check_t *h);
void al_enroll_session_gone(struct session *s);
/* The enrollment path without a socket (and the fuzzer's way in,
 * tests/fuzz/fuzz_enroll.c).  A frame from a connection without a
 * certificate: 0 and *out an enrollment to decide, or -EINVAL with the
 * error code and message to answer. */
struct enroll_item;
int al_enroll_request(const Skyroot__Envelope *env, struct enroll_item **out, Skyroot__ErrorCode *code,
		      char *msg, size_t msglen);
/* Decide it in the store, inside the caller's transaction: a new board, a
 * known one re-enrolled (earlier certificates revoked), a pending
 * re-enrollment (0, nothing spent), or a negative errno (-EXDEV: the token
 * is another board's). */
int al_enroll_decide(struct controller *ctl, struct enroll_item *it);
/* Sign the certificate a decided enrollment recorded (any thread: the
 * thread pool's, after the commit): 0 or a negative errno. */
int al_enroll_sign(struct controller *ctl, struct enroll_item *it);
void al_enroll_item_free(struct enroll_item *it);
/* What a board's TPM sends with its EnrollRequest (TpmEvidence), bounded
 * as the agent's own buffers are (agent/tpm.h). */
#define AL_TPM_PUBLIC_MAX 1024u
#define AL_TPM_CERT_MAX 8192u
struct al_tpm_claim {
	uint8_t ek_pub[AL_TPM_PUBLIC_MAX];
	size_t ek_pub_len;
	uint8_t ak_pub[AL_TPM_PUBLIC_MAX];
	size_t ak_pub_len;
	uint8_t ek_cert[AL_TPM_CERT_MAX];
	size_t ek_cert_len;             /* 0: the TPM has none */
};
/* The prepared request's TPM evidence and the machine it claims, or NULL
 * (no TPM, or a refused request). */
const struct al_tpm_claim *al_enroll_tpm_claim(const struct enroll_prep *p, const char **uuid);
/* The TPM step is over: the evidence goes; ek (the EK's name, hex) when
 * it proved itself, NULL when the TPM is not used (the board enrolls as
 * one without). */
void al_enroll_tpm_settle(struct enroll_prep *p, const char *ek, const char *pcr11);
void al_renew(struct session *s, uint64_t req, const Skyroot__RenewRequest *rr);

/* al_tpm.c: an enrollment with TPM evidence gets a TpmChallenge (a
 * credential for the EK and the AK, a nonce) and waits for the board's
 * TpmProof before it is decided (al_enroll_prepared); one without goes
 * straight there.  prep is consumed. */
void al_tpm_enroll(struct session *s, uint64_t req, struct enroll_prep *prep);
void al_tpm_proof(struct session *s, uint64_t req, const Skyroot__TpmProof *tp);
void al_tpm_session_gone(struct session *s);
/* A quote by ak over nonce (its attest, signature and PCR values as the
 * board sent them, bounded here): checked, and the nonce spent once within
 * its time.  TPMV_OK with the PCR values, or the refusal and why (a nonce
 * used before is told as a replay).  The enrollment's proof and sessions'
 * fresh quotes (al_quote.c) both check through it. */
struct tpmv_key;
struct tpmv_pcrs;
enum tpmv_result al_tpm_check_quote(struct agentlink *al, const struct tpmv_key *ak, const ProtobufCBinaryData *attest,
				    const ProtobufCBinaryData *sig, const ProtobufCBinaryData *pcrv, const uint8_t *nonce,
				    size_t nonce_len, struct tpmv_pcrs *pcrs, char *why, size_t whylen);
/* al_quote.c: on each heartbeat of a board's session, ask for a fresh
 * quote when it is time (or count a request unanswered past its deadline);
 * the board's answer. */
void al_quote_heartbeat(struct session *s);
void al_quote_answer(struct session *s, uint64_t req, const Skyroot__TpmQuote *tq);

/* al_chunks.c */
void al_chunk_request(struct session *s, uint64_t req, const Skyroot__ChunkRequest *cr);
void al_chunk_dispatch(struct agentlink *al);
/* The pool's ready(): buffers came back after a dispatch found none. */
void al_chunk_pool_ready(void *arg);
/* The session's socket drained / the session is gone. */
void al_chunks_drained(struct session *s);
void al_chunks_session_gone(struct session *s);

/* al_report.c */
void al_chunk_report(struct session *s, const Skyroot__ChunkCorrupt *cc);
void al_reboot_result(struct session *s, const Skyroot__RebootResult *rr);

#endif
