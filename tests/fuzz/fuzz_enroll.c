/* libFuzzer target: what a connection without a client certificate can
 * make the controller do.  The input is the byte stream such a connection
 * sends; every frame it decodes to goes through al_enroll_request() (only
 * an enrollment passes, bounded and with a verified CSR) and, when that
 * accepts it, al_enroll_decide() against a real store (and al_enroll_sign()
 * of what it decided): a temporary SQLite
 * database holding a general token ("skt-fuzz"), a token made for the one
 * known board ("skt-board", machine "uuid-known") and that board.  Each
 * decision runs in a transaction that is rolled back, so every input meets
 * the same store.  Invariants: a refusal comes with a message; an
 * accepted decision leaves the store's integrity intact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/util.h"
#include "common/x509.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/db_pending.h"
#include "tests/fuzz/fuzz_ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct controller fuzz_ctl;
static char fuzz_dir[] = "/tmp/fuzz-enroll-XXXXXX";

static void fuzz__cleanup(void)
{
	db_close(fuzz_ctl.db);
	fuzz_ctl.db = NULL;
	fz_ctl_rm_tree(fuzz_dir);
}

static void fuzz__token(struct db *db, const char *id, const char *secret, const char *board)
{
	struct db_token t = { .created_at = 1, .expires_at = INT64_MAX / 2, .uses = 1u << 30,
			      .uses_left = 1u << 30 };
	uint8_t hash[32];

	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.board_id, sizeof(t.board_id), "%s", board);
	sky_sha256(secret, strlen(secret), hash);
	if (db_token_insert(db, &t, hash) != 0)
		abort();
}

static void fuzz__setup(void)
{
	char path[64];
	struct db_board b = { .id = "brd-000001", .name = "known", .uuid = "uuid-known", .enrolled_at = 1 };
	struct sky_cert_spec spec = { .kind = SKY_CERT_CA, .cn = "fuzz CA", .serial = 1, .not_before = 0,
				      .not_after = 4102444800 };

	if (!mkdtemp(fuzz_dir))
		abort();
	snprintf(path, sizeof(path), "%s/skyroot.db", fuzz_dir);
	if (db_open(path, &fuzz_ctl.db) != 0)
		abort();
	atexit(fuzz__cleanup); /* the folder goes with the process */
	if (sky_key_new_p256(&fuzz_ctl.ca_key) != 0 ||
	    sky_cert_issue(&spec, fuzz_ctl.ca_key, NULL, fuzz_ctl.ca_key, &fuzz_ctl.ca_cert) != 0)
		abort();
	fuzz_ctl.opt.cert_ttl = 3600;
	/* Enrollment with no token: a small table and one expectation, so the
	 * bound, a match and a plain wait are all within reach. */
	fuzz_ctl.opt.pending_max = 4;
	fuzz_ctl.opt.pending_ttl = 3600;
	struct db_expectation e = { .id = "exp-000001", .serial = "SN-EXPECTED", .created_at = 1 };
	if (db_expect_insert(fuzz_ctl.db, &e) != 0)
		abort();
	if (db_board_insert(fuzz_ctl.db, &b) != 0)
		abort();
	fuzz__token(fuzz_ctl.db, "tok-fuzz", "skt-fuzz", "");
	fuzz__token(fuzz_ctl.db, "tok-board", "skt-board", "brd-000001");
	/* Nothing here needs to survive a power cut. */
	db_set_durable(fuzz_ctl.db, false);
}

static int fuzz__frame(void *ctx, Skyroot__Envelope *env)
{
	struct enroll_item *it = NULL;
	Skyroot__ErrorCode code = SKYROOT__ERROR_CODE__ERROR_UNKNOWN;
	char msg[256] = "";
	int r;

	(void)ctx;
	r = al_enroll_request(env, &it, &code, msg, sizeof(msg));
	if (r < 0) {
		if (it || !msg[0] || code == SKYROOT__ERROR_CODE__ERROR_UNKNOWN)
			abort(); /* a refusal says why, and hands nothing out */
	} else {
		if (!it)
			abort();
		if (db_begin(fuzz_ctl.db) != 0)
			abort();
		/* Decided in the store, signed as the thread pool does after the commit. */
		if (al_enroll_decide(&fuzz_ctl, it) == 0)
			al_enroll_sign(&fuzz_ctl, it);
		db_rollback(fuzz_ctl.db);
		al_enroll_item_free(it);
	}
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sky_frame_decoder d;

	if (!fuzz_ctl.db)
		fuzz__setup();
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	sky_frame_feed(&d, data, size, fuzz__frame, NULL);
	sky_frame_decoder_free(&d);
	return 0;
}
