/* libFuzzer target: everything the controller sends a board, through the
 * real agent (agent/client.c): agent_link_feed hands the bytes to the frame
 * decoder and each Envelope to the agent's own dispatch, which takes
 * enrollment answers, renewals, heartbeat echoes and errors itself and gives
 * image fetches, chunks, guest commands and bare-metal boot orders to the
 * image cache and the guest manager (agent/images.c, agent/guests.c).
 *
 * Input: the first byte picks the link and how the stream is cut; the rest
 * is the byte stream from the controller (length-prefixed Envelopes).
 *   bit 0   0: a session (the agent holds a certificate, restored from an
 *              identity directory as --identity-dir does);
 *           1: an enrollment link (no certificate yet)
 *   bits 1+ each read is (byte >> 1) + 1 bytes, as TCP may deliver it
 * A fresh agent per input, with no socket: what it sends fails as without a
 * session, so no chunk is asked for, nothing is started (qemu is a path that
 * does not exist) or kexec'd (no --allow-kexec).  A session holds the
 * image-signing public key of FUZZ_SIGNING_SEED, as after enrollment: the
 * seeds' manifests are signed with it (tests/fuzz/seeds_agent.py), so guest
 * commands and boot orders reach the cache's manifest checks.
 *
 * Beyond no crash, leak or sanitizer report, what must hold:
 *  - no enrollment and no renewal is ever taken: the agent made no key that
 *    an answer could match (a controller cannot push a certificate);
 *  - the board id is the kept one, or empty after a refusal that forgets it;
 *  - no chunk request is outstanding (nothing could be sent);
 *  - the last error is a bounded string. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/identity.h"
#include "agent/images.h"
#include "common/log.h"
#include "common/x509.h"

#define FUZZ_BOARD_ID "board-fuzz-0001"

/* The Ed25519 public key of the private key whose 32-byte seed is 01 02 ..
 * 20 (hex), the one tests/fuzz/seeds_agent.py signs manifests with. */
static const uint8_t fuzz_signing_pub[32] = {
	0x79, 0xb5, 0x56, 0x2e, 0x8f, 0xe6, 0x54, 0xf9, 0x40, 0x78, 0xb1, 0x12, 0xe8, 0xa9, 0x8b, 0xa7,
	0x90, 0x1f, 0x85, 0x3a, 0xe6, 0x95, 0xbe, 0xd7, 0xe0, 0xe3, 0x91, 0x0b, 0xad, 0x04, 0x96, 0x64,
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct agent_config cfg_session, cfg_enroll;
static struct inventory inv; /* the Hello is never read from the host */
static EVP_PKEY *board_key;
static X509 *board_cert;
static uint8_t signing_pub[32];
static char tmp_root[64];
static bool identity_kept;

struct events {
	unsigned n[AGENT_EV_RENEWED + 1];
};

static void on_event(struct agent *a, enum agent_event ev, void *ud)
{
	struct events *e = ud;
	(void)a;
	if ((unsigned)ev > AGENT_EV_RENEWED)
		abort();
	e->n[ev]++;
}

static void cleanup(void)
{
	char path[128];
	if (!tmp_root[0])
		return;
	agent_identity_forget(cfg_session.identity_dir);
	snprintf(path, sizeof(path), "%s/identity/signing.pub", tmp_root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/identity", tmp_root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/sys", tmp_root);
	rmdir(path);
	rmdir(tmp_root);
}

static void fill_cfg(struct agent_config *c)
{
	snprintf(c->controller_host, sizeof(c->controller_host), "127.0.0.1");
	c->controller_port = 7443;
	snprintf(c->token, sizeof(c->token), "tok-fuzz");
	c->have_ca_pin = 1;
	snprintf(c->sysfs_root, sizeof(c->sysfs_root), "%s/sys", tmp_root);
	snprintf(c->procfs_root, sizeof(c->procfs_root), "%s/sys", tmp_root);
	snprintf(c->devfs_root, sizeof(c->devfs_root), "%s/sys", tmp_root);
	snprintf(c->qemu_path, sizeof(c->qemu_path), "/nonexistent/qemu-system-x86_64");
	c->heartbeat_ms = 10000;
	c->cache_max = 64u << 20;
	c->allow_kexec = 0;
	c->allow_reboot = 0; /* a Reboot order is refused: never the host's reboot(2) */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL;
	uint8_t pin[32];
	char path[128];
	(void)argc;
	(void)argv;

	sky_log_set_level(getenv("FUZZ_VERBOSE") ? SKY_LOG_DEBUG : SKY_LOG_NONE);
	/* tmpfs when there is one: the identity is written with fsync. */
	snprintf(tmp_root, sizeof(tmp_root), "%s/fuzz_agent_link.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(tmp_root) || uv_loop_init(&loop) != 0)
		abort();
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/sys", tmp_root);
	if (mkdir(path, 0700) != 0)
		abort();
	fill_cfg(&cfg_session);
	fill_cfg(&cfg_enroll);
	snprintf(cfg_session.identity_dir, sizeof(cfg_session.identity_dir), "%s/identity", tmp_root);
	if (mkdir(cfg_session.identity_dir, 0700) != 0)
		abort();

	/* A CA and the board's certificate from it, as enrollment leaves them. */
	int64_t now = (int64_t)time(NULL);
	struct sky_cert_spec ca_spec = {SKY_CERT_CA, "skyroot fuzz CA", 1, now - 300, now + 30 * 86400, NULL};
	struct sky_cert_spec board_spec = {SKY_CERT_CLIENT, FUZZ_BOARD_ID, 2, now - 300, now + 30 * 86400, NULL};
	if (sky_key_new_p256(&ca_key) < 0 || sky_cert_issue(&ca_spec, ca_key, NULL, ca_key, &ca) < 0 ||
	    sky_key_new_p256(&board_key) < 0 ||
	    sky_cert_issue(&board_spec, board_key, ca, ca_key, &board_cert) < 0 || sky_cert_pin(ca, pin) < 0)
		abort();
	memcpy(cfg_session.ca_pin, pin, 32);
	memcpy(cfg_enroll.ca_pin, pin, 32);
	memcpy(signing_pub, fuzz_signing_pub, sizeof(signing_pub));
	X509_free(ca);
	EVP_PKEY_free(ca_key);

	snprintf(inv.cpu_model, sizeof(inv.cpu_model), "fuzz CPU");
	inv.cpus = 2;
	inv.numa_nodes = 1;
	snprintf(inv.dmi_uuid, sizeof(inv.dmi_uuid), "5b0f4c0e-9a31-4d0b-8e2a-0a0000000a01");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_hooks hooks = {.on_event = on_event};
	struct events ev = {0};
	const struct agent_config *cfg;
	struct agent *a;
	bool enroll, session;
	size_t cut, off;
	int r = 0;

	if (size < 1)
		return 0;
	enroll = data[0] & 1;
	cut = (size_t)(data[0] >> 1) + 1;
	data++;
	size--;
	cfg = enroll ? &cfg_enroll : &cfg_session;
	if (!enroll && !identity_kept) {
		/* At first, and after a refusal (ERROR_REVOKED...) forgot it. */
		const char *failed;
		if (agent_identity_save(cfg->identity_dir, board_key, board_cert, signing_pub, &failed) < 0)
			abort();
		identity_kept = true;
	}
	if (agent_new(&loop, cfg, &inv, &hooks, &ev, &a) < 0)
		abort();
	session = agent_link_begin(a);
	if (session == enroll || strcmp(agent_board_id(a), enroll ? "" : FUZZ_BOARD_ID) != 0)
		abort(); /* the identity did not come back as kept */
	if (session) {
		/* What agent_on_ready does for the image cache: the key, and a
		 * session, so a fetch asks for chunks (the asking fails here). */
		imgcache_set_signing_key(agent_images(a), signing_pub);
		imgcache_session_up(agent_images(a));
	}

	for (off = 0; off < size && r >= 0; off += cut) {
		size_t n = size - off < cut ? size - off : cut;
		r = agent_link_feed(a, data + off, n);
		if (r < 0 && r != -EBADMSG && r != -EMSGSIZE && r != -ENOMEM && r != -ENOBUFS)
			abort(); /* feed reports a malformed stream, nothing else */
	}

	if (ev.n[AGENT_EV_ENROLLED] || ev.n[AGENT_EV_RENEWED] || ev.n[AGENT_EV_SESSION_UP])
		abort();
	if (enroll ? agent_board_id(a)[0] != '\0'
		   : agent_board_id(a)[0] && strcmp(agent_board_id(a), FUZZ_BOARD_ID) != 0)
		abort();
	if (!enroll && agent_board_id(a)[0] == '\0')
		identity_kept = false; /* agent_forget_identity removed the files */
	if (imgcache_outstanding(agent_images(a)) != 0)
		abort();
	if (strnlen(agent_last_error(a), 512) >= 512)
		abort();

	agent_link_end(a);
	agent_stop(a);
	if (uv_run(&loop, UV_RUN_DEFAULT) != 0)
		abort(); /* something the agent started outlived it */
	return 0;
}
