/* libFuzzer target: what a board with a valid client certificate can make
 * the controller do.  The input is the byte stream of one board session
 * (board "brd-000001"); it is decoded as al_on_data does (common/frame.c)
 * and every frame goes through the agent link's real dispatch,
 * al_on_frame() (agentlink.c): hello, heartbeat, renewal, chunk requests,
 * image status, guest reports, console data, boot answers, enrollment and
 * whatever else a board may send.  The session is plain bytes over a
 * socketpair (common/tls.c without its TLS layer) on a real loop, so the
 * controller's answers are read back and checked.  The store is a real
 * one in a temporary folder: one image granted to the board, one that is
 * not, a guest on the board, a bare-metal boot order (request id 5)
 * waiting for its answer.  Reports reach guests.c, consoles.c and boots.c as main.c
 * wires them.
 *
 * What must hold: every answer is a well-formed frame; each heartbeat is
 * echoed (same request id, seq and time) in order; a message a board may
 * not send is refused with ERROR_BAD_REQUEST; chunk data goes only for the
 * granted image and is byte for byte that image; no more than
 * AL_CHUNK_WINDOW chunk requests are outstanding; the heartbeat interval
 * stays within its bounds; a boot answer settles only order 5, with a
 * bounded reason; the guest's state is one of the documented ones; a
 * guest report makes the controller destroy each guest it names that is
 * not the board's, never the board's own; the guest's console ends with
 * the console data the board sent last. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/x509.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/boots.h"
#include "controller/skyrootd/consoles.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/store.h"
#include "tests/fuzz/fuzz_ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_BOARD "brd-000001"
#define FZ_BOOT_REQ 5
/* The granted image's and the guest's ids, fixed so that seeds can name
 * them (ids are random). */
#define FZ_IMAGE_ID "img-00000000f022"
#define FZ_GUEST_ID "gst-00000000f022"
/* An image in the store that was never sent to the board. */
#define FZ_OTHER_ID "img-00000000beef"
#define FZ_IMAGE_LEN 3000
#define FZ_HB_MAX 512
#define FZ_CONSOLE_TAIL 256

static struct {
	char dir[32];
	uv_loop_t loop;
	struct controller ctl;
	struct agentlink *al;
	struct store_image granted, other;
	uint8_t image[FZ_IMAGE_LEN];
	struct guest guest;
} fz;

/* What the input asks for, read by a second decoder of the same bytes. */
struct fz_expect {
	unsigned n_hb;
	uint64_t hb_req[FZ_HB_MAX], hb_seq[FZ_HB_MAX], hb_ms[FZ_HB_MAX];
	unsigned n_bad;               /* messages a board may not send */
	bool boot_answered;           /* a boot answer for order FZ_BOOT_REQ */
	unsigned n_strangers;         /* reported guests that are not the board's */
	uint8_t console[FZ_CONSOLE_TAIL]; /* the tail of the last console data of the guest */
	size_t console_len;
	bool console_seen;
};

/* What came back. */
struct fz_seen {
	unsigned n_hb;
	unsigned n_bad;
	unsigned n_destroy;
	const struct fz_expect *want;
};

/* ---- the wiring of main.c: reports go to guests and boots ---- */

static void fz_board_up(void *ctx, const char *board_id)
{
	(void)ctx;
	guests_board_up(fz.ctl.guests, board_id);
}

static void fz_guest_report(void *ctx, const char *board_id, const Skyroot__GuestReport *r)
{
	(void)ctx;
	guests_on_report(fz.ctl.guests, board_id, r);
}

static void fz_console(void *ctx, const char *board_id, const Skyroot__ConsoleData *d)
{
	(void)ctx;
	consoles_on_data(fz.ctl.consoles, board_id, d);
}

static void fz_boot_result(void *ctx, const char *board_id, uint64_t req, const Skyroot__BareMetalBootResult *res)
{
	(void)ctx;
	boots_answer(fz.ctl.boots, board_id, req, res->outcome, res->error, sky_unix_now(), NULL);
}

static const struct agentlink_ops fz_al_ops = {
	.board_up = fz_board_up, .guest_report = fz_guest_report, .console = fz_console,
	.boot_result = fz_boot_result,
};

static bool fz_online(void *ctx, const char *board_id)
{
	(void)ctx;
	return agentlink_board_online(fz.al, board_id, NULL);
}

static int fz_send(void *ctx, const char *board_id, Skyroot__Envelope *env)
{
	(void)ctx;
	return agentlink_board_send(fz.al, board_id, env);
}

static const struct guests_ops fz_guests_ops = { .online = fz_online, .send = fz_send };

static void fz_cleanup(void)
{
	fz_ctl_rm_tree(fz.dir);
}

static void fz_setup(void)
{
	struct db_board b = { .id = FZ_BOARD, .name = "known", .uuid = "uuid-known", .enrolled_at = 1 };
	struct guest_request gr = { .name = "web1", .board = FZ_BOARD, .kernel = "vmlinuz", .vcpus = 1,
				    .memory = 64ull << 20, .backend = "qemu" };
	char err[GUEST_ERROR_MAX];
	uint8_t *man = NULL, *sig = NULL;
	size_t man_len, sig_len;
	EVP_PKEY *signing = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	sky_log_init("fuzz", SKY_LOG_NONE);
	snprintf(fz.dir, sizeof(fz.dir), "/tmp/fuzz-agent-XXXXXX");
	if (!signing || !mkdtemp(fz.dir) || uv_loop_init(&fz.loop) != 0)
		abort();
	atexit(fz_cleanup);
	fz.ctl.loop = &fz.loop;
	fz_ctl_ca(&fz.ctl.ca_key, &fz.ctl.ca_cert);
	fz.ctl.opt.cert_ttl = 3600;
	fz.ctl.signing_key = signing;
	/* The database and its folder stay while the process runs (chunks
	 * are read by path on the worker threads), then go (fz_cleanup). */
	fz_ctl_store_open(&fz.ctl, fz.dir, signing);
	for (size_t i = 0; i < sizeof(fz.image); i++)
		fz.image[i] = (uint8_t)(i * 7 + 3);
	fz_ctl_image(&fz.ctl, "vmlinuz", "kernel", fz.image, sizeof(fz.image), FZ_IMAGE_ID, &fz.granted);
	fz_ctl_image(&fz.ctl, "secret", "disk", (const uint8_t *)"not yours", 9, FZ_OTHER_ID, &fz.other);
	if (db_board_insert(fz.ctl.db, &b) != 0)
		abort();
	/* Sent to the board: its chunks may be asked for. */
	if (store_image_manifest(fz.ctl.store, FZ_BOARD, fz.granted.id, &man, &man_len, &sig, &sig_len) != 0)
		abort();
	free(man);
	free(sig);
	if (guests_open(fz.ctl.db, fz.ctl.store, &fz.ctl.guests) != 0 || boots_open(fz.ctl.db, &fz.ctl.boots) != 0 ||
	    consoles_start(&fz.loop, fz.ctl.db, fz.ctl.guests, NULL, &fz.ctl.consoles) != 0)
		abort();
	if (guests_create(fz.ctl.guests, &gr, &fz.guest, err, sizeof(err)) != 0)
		abort();
	fz_ctl_rename(&fz.ctl, "UPDATE guests SET id = ?1 WHERE id = ?2", FZ_GUEST_ID, fz.guest.id,
		      sizeof(fz.guest.id));
	guests_set_ops(fz.ctl.guests, &fz_guests_ops, NULL);

	fz.al = calloc(1, sizeof(*fz.al));
	if (!fz.al)
		abort();
	fz.al->ctl = &fz.ctl;
	fz.al->ops = fz_al_ops;
	fz.al->enroll_tail = &fz.al->enroll_head;
	fz.al->chunk_tail = &fz.al->chunk_head;
	if (al_pool_new(NULL, AL_POOL_JOBS, 1, NULL, NULL, &fz.al->pool) != 0)
		abort();
	uv_check_init(&fz.loop, &fz.al->enroll_check);
	fz.al->enroll_check.data = fz.al;
	fz.ctl.agents = fz.al;
}

/* ---- the expected answers: the same bytes through a second decoder ---- */

static int fz_expect_frame(void *ctx, Skyroot__Envelope *env)
{
	struct fz_expect *e = ctx;

	switch (env->body_case) {
	case SKYROOT__ENVELOPE__BODY_HEARTBEAT:
		if (e->n_hb < FZ_HB_MAX) {
			e->hb_req[e->n_hb] = env->request_id;
			e->hb_seq[e->n_hb] = env->heartbeat->seq;
			e->hb_ms[e->n_hb] = env->heartbeat->sent_unix_ms;
		}
		e->n_hb++;
		break;
	case SKYROOT__ENVELOPE__BODY_GUEST_REPORT:
		for (size_t i = 0; i < env->guest_report->n_guests; i++) {
			const char *id = env->guest_report->guests[i]->id;
			if (id && strlen(id) < DB_ID_MAX && strcmp(id, FZ_GUEST_ID) != 0)
				e->n_strangers++;
		}
		break;
	case SKYROOT__ENVELOPE__BODY_CONSOLE_DATA: {
		const Skyroot__ConsoleData *d = env->console_data;
		size_t n = d->data.len;
		if (d->guest_id && strcmp(d->guest_id, FZ_GUEST_ID) == 0 && n <= 64 * 1024 && n > 0) {
			size_t k = n < FZ_CONSOLE_TAIL ? n : FZ_CONSOLE_TAIL;
			/* A shorter message after a longer one: the ring's tail is
			 * this message after the end of the one before. */
			if (k < FZ_CONSOLE_TAIL && e->console_len) {
				size_t keep = e->console_len + k > FZ_CONSOLE_TAIL ? FZ_CONSOLE_TAIL - k : e->console_len;
				memmove(e->console, e->console + e->console_len - keep, keep);
				e->console_len = keep;
			} else {
				e->console_len = 0;
			}
			memcpy(e->console + e->console_len, d->data.data + n - k, k);
			e->console_len += k;
			e->console_seen = true;
		}
		break;
	}
	case SKYROOT__ENVELOPE__BODY_ENROLL_REQUEST:
	case SKYROOT__ENVELOPE__BODY_HELLO:
	case SKYROOT__ENVELOPE__BODY_RENEW_REQUEST:
	case SKYROOT__ENVELOPE__BODY_CHUNK_REQUEST:
	case SKYROOT__ENVELOPE__BODY_IMAGE_STATUS:
	case SKYROOT__ENVELOPE__BODY_CHUNK_CORRUPT: /* re-checked or ignored, never answered */
	case SKYROOT__ENVELOPE__BODY_REBOOT_RESULT: /* logged */
		break;
	case SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT:
		if (env->request_id == FZ_BOOT_REQ)
			e->boot_answered = true;
		break;
	default:
		e->n_bad++;
		break;
	}
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

/* ---- the answers ---- */

static int fz_answer(void *ctx, Skyroot__Envelope *env)
{
	struct fz_seen *seen = ctx;
	const struct fz_expect *want = seen->want;

	switch (env->body_case) {
	case SKYROOT__ENVELOPE__BODY_HEARTBEAT:
		/* Echoed in order, unchanged. */
		if (seen->n_hb < FZ_HB_MAX && seen->n_hb < want->n_hb &&
		    (env->request_id != want->hb_req[seen->n_hb] || env->heartbeat->seq != want->hb_seq[seen->n_hb] ||
		     env->heartbeat->sent_unix_ms != want->hb_ms[seen->n_hb]))
			abort();
		seen->n_hb++;
		break;
	case SKYROOT__ENVELOPE__BODY_ERROR:
		if (!env->error->message || !env->error->message[0])
			abort(); /* a refusal says why */
		if (env->error->code == SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST)
			seen->n_bad++;
		break;
	case SKYROOT__ENVELOPE__BODY_CHUNK_DATA: {
		const Skyroot__ChunkData *cd = env->chunk_data;
		/* Only the granted image, one chunk of it, its own bytes. */
		if (strcmp(cd->image_id, fz.granted.id) != 0 || cd->index != 0 || cd->data.len != sizeof(fz.image) ||
		    memcmp(cd->data.data, fz.image, sizeof(fz.image)) != 0)
			abort();
		break;
	}
	case SKYROOT__ENVELOPE__BODY_GUEST_COMMAND: {
		const Skyroot__GuestCommand *gc = env->guest_command;
		bool ours = gc->spec && gc->spec->id && strcmp(gc->spec->id, FZ_GUEST_ID) == 0;
		/* A report destroys the strangers it names, never the board's own
		 * guest; the board's own is only driven to its desired state. */
		if (!gc->spec || (gc->action == SKYROOT__GUEST_ACTION__GUEST_DESTROY) == ours)
			abort();
		if (!ours)
			seen->n_destroy++;
		break;
	}
	case SKYROOT__ENVELOPE__BODY_RENEW_RESPONSE:
	case SKYROOT__ENVELOPE__BODY_ENROLL_RESPONSE:
		break;
	default:
		abort(); /* nothing else goes to a board unasked */
	}
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

static bool fz_closed;

static void fz_on_close(struct sky_tls *t, int err)
{
	struct session *s = sky_tls_data(t);

	(void)err;
	/* What al_on_close does for a board's session. */
	al_unhash(s);
	al_enroll_session_gone(s);
	al_chunks_session_gone(s);
	fz_closed = true;
}

static const struct sky_tls_cbs fz_cbs = { .on_close = fz_on_close };

static void fz_read_answers(int fd, struct sky_frame_decoder *d, struct fz_seen *seen)
{
	uint8_t buf[16384];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (sky_frame_feed(d, buf, (size_t)n, fz_answer, seen) < 0)
			abort(); /* the controller sends only well-formed frames */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_expect want = { 0 };
	struct fz_seen seen = { .want = &want };
	struct sky_frame_decoder check, answers;
	struct session *s;
	struct sky_tls *t;
	struct guest g;
	struct boot_status bs;
	int fds[2];
	bool early;

	if (!fz.al)
		fz_setup();
	boots_sent(fz.ctl.boots, FZ_BOARD, FZ_BOOT_REQ, fz.granted.id, sky_unix_now());

	sky_frame_decoder_init(&check, SKY_FRAME_MAX_DEFAULT);
	sky_frame_feed(&check, data, size, fz_expect_frame, &want);
	sky_frame_decoder_free(&check);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0 ||
	    fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0)
		abort();
	s = calloc(1, sizeof(*s));
	if (!s || sky_tls_new(&fz.loop, NULL, SKY_TLS_SERVER, &fz_cbs, s, &t) != 0 ||
	    uv_tcp_open(sky_tls_tcp(t), fds[0]) != 0 || sky_tls_start(t) != 0)
		abort();
	/* A board whose certificate checked out (al_on_ready). */
	s->al = fz.al;
	s->tls = t;
	s->state = SESS_BOARD;
	snprintf(s->board_id, sizeof(s->board_id), "%s", FZ_BOARD);
	sky_frame_decoder_init(&s->dec, SKY_FRAME_MAX_DEFAULT);
	s->hb_ms = AL_DEFAULT_HB_MS;
	al_hash(s);
	fz_closed = false;

	/* al_on_data: a malformed frame ends the session. */
	if (sky_frame_feed(&s->dec, data, size, al_on_frame, s) < 0)
		sky_tls_abort(t, -EPROTO);
	if (s->chunk_inflight > AL_CHUNK_WINDOW)
		abort();
	if (s->hb_ms < 100 || s->hb_ms > 600000)
		abort();

	/* Chunks are read on worker threads, enrollments decided in the
	 * loop's check phase and signed on worker threads: run until all are
	 * done, reading answers. */
	sky_frame_decoder_init(&answers, SKY_FRAME_MAX_BULK);
	/* A request with raw_tail gets its chunk in the tail form: assembled
	 * here into a plain ChunkData, so the byte-for-byte check holds. */
	sky_frame_decoder_accept_tail(&answers, NULL);
	for (int i = 0; i < 10000; i++) {
		uv_run(&fz.loop, UV_RUN_NOWAIT);
		fz_read_answers(fds[1], &answers, &seen);
		if (fz.al->chunk_reading == 0 && !fz.al->enroll_head && fz.al->enroll_signing == 0 &&
		    (fz_closed || sky_tls_queued(t) == 0))
			break;
		if (fz.al->chunk_reading || fz.al->enroll_signing)
			uv_run(&fz.loop, UV_RUN_ONCE);
	}
	if (fz.al->chunk_reading || fz.al->chunk_head || fz.al->enroll_signing)
		abort();
	early = fz_closed;
	if (!fz_closed)
		sky_tls_abort(t, 0);
	for (int i = 0; i < 100 && !fz_closed; i++)
		uv_run(&fz.loop, UV_RUN_NOWAIT);
	if (!fz_closed)
		abort();
	fz_read_answers(fds[1], &answers, &seen);
	sky_frame_decoder_free(&answers);
	close(fds[1]);

	/* Everything was answered; a session the controller closed (a
	 * malformed frame, a refused enrollment) answers only what came
	 * before. */
	if (seen.n_hb > want.n_hb || seen.n_destroy > want.n_strangers ||
	    (!early && (seen.n_hb != want.n_hb || seen.n_bad < want.n_bad || seen.n_destroy != want.n_strangers)))
		abort();
	/* The guest's console ends with what the board sent last. */
	if (want.console_seen && !early) {
		static char ring[GUEST_CONSOLE_RING];
		size_t n = 0;
		if (consoles_read(fz.ctl.consoles, FZ_GUEST_ID, ring, sizeof(ring), &n) != 0 || n < want.console_len || memcmp(ring + n - want.console_len, want.console, want.console_len) != 0)
			abort();
	}
	/* Every chunk job is over, and the budget is whole again (jobs of a
	 * session that closed early end without it). */
	if (s->jobs || s->charged != 0 || (!early && s->chunk_inflight != 0) || fz.al->chunk_bytes != 0)
		abort();
	/* ... and every chunk buffer is back in the pool, which never passed its bound. */
	struct agentlink_pool_stats ps;
	al_pool_stats(fz.al->pool, &ps);
	if (ps.in_use_bytes != 0 || ps.peak_bytes > ps.limit_bytes)
		abort();
	if (s->images)
		skyroot__image_status__free_unpacked(s->images, NULL);
	sky_frame_decoder_free(&s->dec);
	free(s);

	if (boots_get(fz.ctl.boots, FZ_BOARD, &bs) != 0 || bs.request_id != FZ_BOOT_REQ ||
	    strnlen(bs.error, sizeof(bs.error)) > BOOTS_ERROR_MAX || (!want.boot_answered && bs.state != BOOT_STATE_SENT))
		abort();
	if (guests_get(fz.ctl.guests, fz.guest.id, &g) != 0)
		abort();
	if (strcmp(g.state, "pending") && strcmp(g.state, "fetching") && strcmp(g.state, "running") &&
	    strcmp(g.state, "stopped") && strcmp(g.state, "failed"))
		abort();
	return 0;
}
