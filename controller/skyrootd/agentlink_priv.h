/* The agent link's insides, shared by its files and by nobody else:
 *   al_session.c  the session table and sending frames (the bottom layer)
 *   al_enroll.c   enrollment in group commits, certificate issue and renewal
 *   al_chunks.c   serving image chunks with a window and a memory budget
 *   al_report.c   boards' reports of a corrupt chunk, bounded, to scrub.c
 *   agentlink.c   the listener, TLS callbacks, frame dispatch, the interface
 * Calls go downwards only: agentlink.c -> al_enroll.c, al_chunks.c ->
 * al_session.c (tests/unit/circles.sh checks it). */
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

#define AL_BUCKETS 16384
/* A frame on a connection without a client certificate (an enrollment
 * request: token, CSR, labels) is far smaller than a board's inventory:
 * what an unauthenticated peer can make us buffer stays small. */
#define AL_ENROLL_FRAME_MAX (64u * 1024u)
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
/* Reports of a corrupt chunk one session may make us re-check: a burst of
 * AL_REPORT_BURST, then one every AL_REPORT_EVERY_MS; more are dropped
 * (counted), so a board cannot make the controller hash without end. */
#define AL_REPORT_BURST 8
#define AL_REPORT_EVERY_MS 5000

enum session_state { SESS_HANDSHAKE, SESS_ENROLL_ONLY, SESS_BOARD };

struct session {
	struct agentlink *al;
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
	struct chunk_job *jobs;       /* this session's chunk requests (snext) */
	unsigned chunk_inflight;
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
	uint8_t *buf;                 /* SKY_FRAME_TAIL_PREFIX_MAX of room, then the chunk */
	char image_id[DB_ID_MAX];
};

struct agentlink {
	struct controller *ctl;
	struct agentlink_ops ops;     /* what boards report goes there */
	void *ops_ctx;
	struct listener *listener;    /* admission, caps, deadlines */
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

/* al_session.c */
struct session *al_find(struct agentlink *al, const char *id);
/* Close the board's session, if any, telling it why (ERROR_REVOKED). */
void al_kick(struct agentlink *al, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void al_hash(struct session *s);
void al_unhash(struct session *s);
int al_session_send(struct session *s, Skyroot__Envelope *env);
/* Send a ChunkData envelope hdr (data empty) in the tail form with tail_len
 * raw bytes at tail (common/frame.h); the SKY_FRAME_TAIL_PREFIX_MAX bytes
 * before tail must be the caller's to overwrite. */
int al_session_send_tail(struct session *s, const Skyroot__Envelope *hdr, uint8_t *tail, size_t tail_len);
void al_session_error(struct session *s, uint64_t req, Skyroot__ErrorCode code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void al_session_touch(struct session *s);
bool al_str_ok(const char *s, size_t max);
/* Free the agent link once it is stopping and nothing refers to it. */
void al_maybe_free(struct agentlink *al);

/* al_enroll.c */
void al_enroll(struct session *s, uint64_t req, const Skyroot__EnrollRequest *er);
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
void al_enroll_item_free(struct enroll_item *it);
void al_renew(struct session *s, uint64_t req, const Skyroot__RenewRequest *rr);

/* al_chunks.c */
void al_chunk_request(struct session *s, uint64_t req, const Skyroot__ChunkRequest *cr);
void al_chunk_dispatch(struct agentlink *al);
/* The session's socket drained / the session is gone. */
void al_chunks_drained(struct session *s);
void al_chunks_session_gone(struct session *s);

/* al_report.c */
void al_chunk_report(struct session *s, const Skyroot__ChunkCorrupt *cc);
void al_reboot_result(struct session *s, const Skyroot__RebootResult *rr);

#endif
