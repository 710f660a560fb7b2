/* Guests: see guests.h. */
#include "controller/skyrootd/guests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/fwgate.h"
#include "controller/skyrootd/sql.h"
#include "controller/skyrootd/store.h"

enum guest_stmt {
	G_INSERT,
	G_BY_ID,
	G_BY_NAME,
	G_LIST,
	G_BY_BOARD,
	G_SET_DESIRED,
	G_SET_STATE,
	G_DELETE,
	G_NAME_TAKEN,
	G_IMAGE_USED,
	G_BOARD_LOAD,
	G_CONSOLE_FORGET,
	G_COUNT
};

#define GUEST_COLS "id, name, board_id, kernel, initrd, disk, cmdline, vcpus, memory, devices, backend, desired, state, error, created_at"
#define GUEST_NCOLS 15
#define GUEST_SELECT                                                                                             \
	"SELECT guests.id, guests.name, guests.board_id, guests.kernel, guests.initrd, guests.disk, guests.cmdline, " \
	"guests.vcpus, guests.memory, guests.devices, guests.backend, guests.desired, guests.state, guests.error, "    \
	"guests.created_at, " NETWORKS_NIC_COLS " FROM guests " NETWORKS_NIC_JOIN

static const char *const guest_sql[G_COUNT] = {
	[G_INSERT] = "INSERT INTO guests(" GUEST_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	/* each guest with its NICs: one row per NIC (networks.h) */
	[G_BY_ID] = GUEST_SELECT " WHERE guests.id = ? ORDER BY gn.idx",
	[G_BY_NAME] = GUEST_SELECT " WHERE guests.name = ? ORDER BY gn.idx",
	[G_LIST] = GUEST_SELECT " ORDER BY guests.name, guests.id, gn.idx",
	[G_BY_BOARD] = GUEST_SELECT " WHERE guests.board_id = ? ORDER BY guests.id, gn.idx",
	[G_SET_DESIRED] = "UPDATE guests SET desired = ?1, state = CASE WHEN ?1 = 'running' AND state IN ('stopped','failed') THEN 'pending' ELSE state END, error = CASE WHEN ?1 = 'running' THEN '' ELSE error END WHERE id = ?2",
	[G_SET_STATE] = "UPDATE guests SET state = ?, error = ? WHERE id = ? AND board_id = ? AND (state != ? OR error != ?)",
	[G_DELETE] = "DELETE FROM guests WHERE id = ?",
	[G_NAME_TAKEN] = "SELECT 1 FROM guests WHERE name = ?",
	[G_IMAGE_USED] = "SELECT 1 FROM guests WHERE kernel = ?1 OR initrd = ?1 OR disk = ?1 LIMIT 1",
	/* SUM of a BIGINT is NUMERIC on PostgreSQL: cast back. */
	[G_BOARD_LOAD] = "SELECT CAST(COALESCE(SUM(memory), 0) AS BIGINT), CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) FROM guests WHERE board_id = ? AND desired = 'running'",
	/* its console's rows (consoles.c writes them on a shared store) */
	[G_CONSOLE_FORGET] = "DELETE FROM guest_console WHERE guest_id = ?",
};

struct guests {
	struct db *db;
	struct store *store;
	struct guests_ops ops;
	void *ops_ctx;
	struct sql_stmt *q[G_COUNT];
	struct events *events;
	uint8_t mac_prefix[3];        /* NETWORK_MAC_PREFIX_DEFAULT */
};

static struct sql_stmt *q(struct guests *g, enum guest_stmt id)
{
	struct sql_stmt *s = g->q[id];
	sql_reset(s);
	return s;
}

static int step_done(struct sql_stmt *s)
{
	int rc = sql_step(s);
	sql_reset(s);
	return rc == SQL_DONE ? 0 : rc < 0 ? rc : -EIO;
}

/* A change and its event (events.h) go in one transaction: durable
 * together, with one fsync.  guests__end commits when r is 0, else rolls
 * back; it returns r or the commit's error. */
static int guests__begin(struct guests *g)
{
	return db_begin(g->db);
}

static int guests__end(struct guests *g, int r)
{
	if (r == 0)
		r = db_commit(g->db);
	if (r < 0)
		db_rollback(g->db);
	return r;
}

void guests_set_events(struct guests *g, struct events *ev)
{
	if (g)
		g->events = ev;
}

int guests_open(struct db *db, struct store *store, struct guests **out)
{
	struct guests *g = calloc(1, sizeof(*g));
	int r = 0;
	if (!g)
		return -ENOMEM;
	g->db = db;
	g->store = store;
	(void)sky_parse_mac_n(NETWORK_MAC_PREFIX_DEFAULT, g->mac_prefix, 3);
	for (int i = 0; i < G_COUNT && r == 0; i++)
		r = sql_prepare(db_sql(db), guest_sql[i], &g->q[i]);
	if (r < 0) {
		guests_close(g);
		return r;
	}
	*out = g;
	return 0;
}

void guests_set_ops(struct guests *g, const struct guests_ops *ops, void *ctx)
{
	memset(&g->ops, 0, sizeof(g->ops));
	if (ops)
		g->ops = *ops;
	g->ops_ctx = ctx;
}

static bool guests__online(struct guests *g, const char *board_id)
{
	return g->ops.online && g->ops.online(g->ops_ctx, board_id);
}

void guests_close(struct guests *g)
{
	if (!g)
		return;
	for (int i = 0; i < G_COUNT; i++)
		sql_finalize(g->q[i]);
	free(g);
}

static void guest_row(struct sql_stmt *s, struct guest *gs)
{
	char devs[GUEST_MAX_DEVICES * 17 + 1];
	memset(gs, 0, sizeof(*gs));
	sql_copy_text(gs->id, sizeof(gs->id), s, 0);
	sql_copy_text(gs->name, sizeof(gs->name), s, 1);
	sql_copy_text(gs->board_id, sizeof(gs->board_id), s, 2);
	sql_copy_text(gs->kernel, sizeof(gs->kernel), s, 3);
	sql_copy_text(gs->initrd, sizeof(gs->initrd), s, 4);
	sql_copy_text(gs->disk, sizeof(gs->disk), s, 5);
	sql_copy_text(gs->cmdline, sizeof(gs->cmdline), s, 6);
	gs->vcpus = (uint32_t)sql_col_int64(s, 7);
	gs->memory = (uint64_t)sql_col_int64(s, 8);
	sql_copy_text(devs, sizeof(devs), s, 9);
	for (char *save = NULL, *tok = strtok_r(devs, " ", &save); tok && gs->n_devices < GUEST_MAX_DEVICES;
	     tok = strtok_r(NULL, " ", &save))
		snprintf(gs->devices[gs->n_devices++], sizeof(gs->devices[0]), "%s", tok);
	sql_copy_text(gs->backend, sizeof(gs->backend), s, 10);
	sql_copy_text(gs->desired, sizeof(gs->desired), s, 11);
	sql_copy_text(gs->state, sizeof(gs->state), s, 12);
	sql_copy_text(gs->error, sizeof(gs->error), s, 13);
	gs->created = sql_col_int64(s, 14);
}

static int guest_one(struct guests *g, enum guest_stmt id, const char *key, struct guest *out)
{
	struct sql_stmt *s = q(g, id);
	int rc, r = -ENOENT;
	sql_bind_text(s, 1, key);
	while ((rc = sql_step(s)) == SQL_ROW) { /* a row per NIC */
		if (r == -ENOENT)
			guest_row(s, out);
		r = 0;
		networks_nic_row(s, GUEST_NCOLS, out->nics, SKY_GUEST_NICS_MAX, &out->n_nics);
	}
	if (rc != SQL_DONE)
		r = rc < 0 ? rc : -EIO;
	sql_reset(s);
	return r;
}

int guests_board_of(struct guests *g, const char *id, char board_id[DB_ID_MAX])
{
	struct sql_stmt *s = q(g, G_BY_ID);
	int rc;

	sql_bind_text(s, 1, id);
	rc = sql_step(s);
	if (rc == SQL_ROW)
		sql_copy_text(board_id, DB_ID_MAX, s, 2);
	sql_reset(s);
	return rc == SQL_ROW ? 0 : rc == SQL_DONE ? -ENOENT : rc < 0 ? rc : -EIO;
}

int guests_get(struct guests *g, const char *id_or_name, struct guest *out)
{
	int r = guest_one(g, G_BY_ID, id_or_name, out);
	if (r == -ENOENT)
		r = guest_one(g, G_BY_NAME, id_or_name, out);
	return r;
}

/* Guests with their NICs from one query: a guest's rows (one per NIC) are
 * consecutive, and it goes to cb once the next guest's row shows. */
static int guest_query(struct guests *g, struct sql_stmt *s, guest_cb cb, void *ctx)
{
	struct guest gs;
	bool have = false;
	int rc, r = 0;
	(void)g;
	while ((rc = sql_step(s)) == SQL_ROW) {
		const char *id = sql_col_text(s, 0);
		if (have && strcmp(id ? id : "", gs.id) != 0) {
			have = false;
			r = cb(ctx, &gs);
			if (r)
				break;
		}
		if (!have)
			guest_row(s, &gs);
		have = true;
		networks_nic_row(s, GUEST_NCOLS, gs.nics, SKY_GUEST_NICS_MAX, &gs.n_nics);
	}
	if (r == 0 && rc != SQL_DONE)
		r = rc < 0 ? rc : -EIO;
	sql_reset(s);
	if (r == 0 && have)
		r = cb(ctx, &gs);
	return r;
}

int guests_list(struct guests *g, guest_cb cb, void *ctx)
{
	return guest_query(g, q(g, G_LIST), cb, ctx);
}

int guests_image_in_use(struct guests *g, const char *image_id)
{
	struct sql_stmt *s = q(g, G_IMAGE_USED);
	int rc;
	sql_bind_text(s, 1, image_id);
	rc = sql_step(s);
	sql_reset(s);
	if (rc == SQL_ROW)
		return 1;
	return rc == SQL_DONE ? 0 : rc < 0 ? rc : -EIO;
}

/* ---- placing ---- */

struct board_fit {
	struct guests *g;
	char id[DB_ID_MAX];
	char name[DB_NAME_MAX];
	bool found;
	bool online;
	bool kvm;
	bool inventory;               /* the board has told its inventory */
	bool bridge;                  /* ... with a bridge for guests' NICs */
	bool quarantined;             /* the measured-boot gate holds it (fwgate.h) */
	char why[FWGATE_WHY_MAX];
	uint64_t memory;
	uint32_t cpus;
	bool need_bridge;             /* auto: the guest has NICs */
	/* auto: the best so far */
	uint64_t need_mem;
	uint32_t need_cpus;
	uint64_t best_free;
};

static int board_load(struct guests *g, const char *board_id, uint64_t *mem, uint32_t *cpus)
{
	struct sql_stmt *s = q(g, G_BOARD_LOAD);
	int rc;
	sql_bind_text(s, 1, board_id);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		*mem = (uint64_t)sql_col_int64(s, 0);
		*cpus = (uint32_t)sql_col_int64(s, 1);
	}
	sql_reset(s);
	return rc == SQL_ROW ? 0 : rc < 0 ? rc : -EIO;
}

static void board_facts(struct board_fit *f, const struct db_board *b)
{
	Skyroot__Hello *h = b->inventory ? skyroot__hello__unpack(NULL, b->inventory_len, b->inventory) : NULL;
	snprintf(f->id, sizeof(f->id), "%s", b->id);
	snprintf(f->name, sizeof(f->name), "%s", b->name);
	f->online = guests__online(f->g, b->id);
	f->kvm = h && h->kvm;
	f->inventory = h != NULL;
	f->bridge = h && h->bridge && h->bridge->name && h->bridge->name[0];
	f->memory = h ? h->memory_bytes : 0;
	f->cpus = h ? h->cpus : 0;
	/* An error reads as quarantined: no guest on a board not judged. */
	f->quarantined = fwgate_judge(f->g->db, b->tpm_ek, b->tpm_pcr11, b->tpm_quote_fail, NULL, f->why) != 0;
	if (h)
		skyroot__hello__free_unpacked(h, NULL);
}

static int board_fit_one(void *ctx, const struct db_board *b)
{
	struct board_fit *f = ctx;
	board_facts(f, b);
	f->found = true;
	return 0;
}

static int board_fit_auto(void *ctx, const struct db_board *b)
{
	struct board_fit *f = ctx, cand = {.g = f->g};
	uint64_t used = 0, free_mem;
	uint32_t used_cpus = 0;
	board_facts(&cand, b);
	if (!cand.online || !cand.kvm || cand.quarantined || (f->need_bridge && !cand.bridge) ||
	    board_load(f->g, b->id, &used, &used_cpus) < 0)
		return 0;
	if (cand.memory < used + GUEST_BOARD_RESERVE + f->need_mem)
		return 0;
	free_mem = cand.memory - used - GUEST_BOARD_RESERVE;
	/* vCPUs may be overcommitted twice over. */
	if ((uint64_t)used_cpus + f->need_cpus > 2ull * cand.cpus)
		return 0;
	if (!f->found || free_mem > f->best_free) {
		snprintf(f->id, sizeof(f->id), "%s", cand.id);
		snprintf(f->name, sizeof(f->name), "%s", cand.name);
		f->best_free = free_mem;
		f->found = true;
	}
	return 0;
}

/* ---- commands to boards ---- */

static int add_manifest(struct guests *g, const char *board_id, const char *image_id,
			Skyroot__SignedManifest **out, size_t *n)
{
	uint8_t *man = NULL, *sig = NULL;
	size_t ml = 0, sl = 0;
	Skyroot__SignedManifest *sm;
	int r;
	if (!image_id[0])
		return 0;
	r = store_image_manifest(g->store, board_id, image_id, &man, &ml, &sig, &sl);
	if (r < 0)
		return r;
	sm = calloc(1, sizeof(*sm));
	if (!sm) {
		free(man);
		free(sig);
		return -ENOMEM;
	}
	skyroot__signed_manifest__init(sm);
	sm->manifest.data = man;
	sm->manifest.len = ml;
	sm->signature.data = sig;
	sm->signature.len = sl;
	out[(*n)++] = sm;
	return 0;
}

static void send_command(struct guests *g, const struct guest *gs, Skyroot__GuestAction action)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__GuestCommand cmd = SKYROOT__GUEST_COMMAND__INIT;
	Skyroot__GuestSpec spec = SKYROOT__GUEST_SPEC__INIT;
	Skyroot__SignedManifest *mans[3] = {0};
	Skyroot__GuestNic nics[SKY_GUEST_NICS_MAX], *nicp[SKY_GUEST_NICS_MAX];
	char *devs[GUEST_MAX_DEVICES];
	size_t nm = 0;
	int r = 0;

	if (!guests__online(g, gs->board_id))
		return; /* it gets this when it is back: guests_board_up */
	spec.id = (char *)gs->id;
	spec.name = (char *)gs->name;
	spec.kernel_image = (char *)gs->kernel;
	spec.initrd_image = (char *)gs->initrd;
	spec.disk_image = (char *)gs->disk;
	spec.cmdline = (char *)gs->cmdline;
	spec.vcpus = gs->vcpus;
	spec.memory_bytes = gs->memory;
	for (unsigned i = 0; i < gs->n_devices; i++)
		devs[i] = (char *)gs->devices[i];
	spec.n_devices = gs->n_devices;
	spec.devices = devs;
	spec.backend = (char *)gs->backend;
	for (unsigned i = 0; i < gs->n_nics && i < SKY_GUEST_NICS_MAX; i++) {
		skyroot__guest_nic__init(&nics[i]);
		nics[i].mac = (char *)gs->nics[i].mac;
		nics[i].vlan = gs->nics[i].vlan;
		nics[i].network = (char *)gs->nics[i].network;
		nicp[i] = &nics[i];
	}
	spec.n_nics = gs->n_nics;
	spec.nics = nicp;
	if (action == SKYROOT__GUEST_ACTION__GUEST_ENSURE_RUNNING) {
		r = add_manifest(g, gs->board_id, gs->kernel, mans, &nm);
		if (r == 0)
			r = add_manifest(g, gs->board_id, gs->initrd, mans, &nm);
		if (r == 0)
			r = add_manifest(g, gs->board_id, gs->disk, mans, &nm);
	}
	spec.n_manifests = nm;
	spec.manifests = mans;
	cmd.spec = &spec;
	cmd.action = action;
	env.body_case = SKYROOT__ENVELOPE__BODY_GUEST_COMMAND;
	env.guest_command = &cmd;
	if (r == 0)
		r = g->ops.send ? g->ops.send(g->ops_ctx, gs->board_id, &env) : -ENOTCONN;
	if (r == -EPERM) /* store_image_manifest: the measured-boot gate holds the board */
		log_warn("guest %s: not sent to board %s: the board is quarantined (see 'skyctl board show %s')", gs->id,
			 gs->board_id, gs->board_id);
	else if (r < 0)
		log_warn("guest %s: cannot send the command to board %s: %s", gs->id, gs->board_id, strerror(-r));
	for (size_t i = 0; i < nm; i++) {
		free(mans[i]->manifest.data);
		free(mans[i]->signature.data);
		free(mans[i]);
	}
}

static Skyroot__GuestAction action_for(const struct guest *gs)
{
	return strcmp(gs->desired, "running") == 0 ? SKYROOT__GUEST_ACTION__GUEST_ENSURE_RUNNING :
						     SKYROOT__GUEST_ACTION__GUEST_ENSURE_STOPPED;
}

static int board_up_cb(void *ctx, const struct guest *gs)
{
	send_command(ctx, gs, action_for(gs));
	return 0;
}

void guests_board_up(struct guests *g, const char *board_id)
{
	struct sql_stmt *s = q(g, G_BY_BOARD);
	sql_bind_text(s, 1, board_id);
	guest_query(g, s, board_up_cb, g);
}

/* ---- create, change, delete ---- */

static bool pci_ok(const char *a)
{
	char canon[SKY_PCI_ADDR_LEN];

	/* The one PCI syntax (common/parse.h), in its canonical form. */
	return sky_parse_pci(a, canon, sizeof(canon)) == 0 && strcmp(canon, a) == 0;
}

static int resolve_image(struct guests *g, const char *ref, const char *what, char *id_out, char *err, size_t errlen)
{
	struct store_image img;
	int r;
	id_out[0] = '\0';
	if (!ref || !ref[0])
		return 0;
	r = store_image_get(g->store, ref, &img);
	if (r == -ENOENT)
		snprintf(err, errlen, "no image named '%s' for the %s; see 'skyctl image list'", ref, what);
	if (r < 0)
		return r;
	snprintf(id_out, DB_ID_MAX, "%s", img.id);
	return 0;
}

int guests_create(struct guests *g, const struct guest_request *req, struct guest *out, char *err, size_t errlen)
{
	struct guest gs = {0};
	struct board_fit fit = {.g = g};
	char devs[GUEST_MAX_DEVICES * 17 + 1] = "";
	struct sql_stmt *s;
	int r;

	if (!sky_name_ok(req->name, "gst-")) {
		snprintf(err, errlen,
			 "a guest name is 1-%u of A-Z a-z 0-9 . _ - and does not start with '-', '.' or 'gst-'",
			 SKY_NAME_MAX);
		return -EINVAL;
	}
	if (!req->kernel || !req->kernel[0]) {
		snprintf(err, errlen, "a guest needs a kernel image (\"kernel\": \"<image id or name>\")");
		return -EINVAL;
	}
	if (req->vcpus < 1 || req->vcpus > SKY_GUEST_VCPUS_MAX) {
		snprintf(err, errlen, "vcpus must be from 1 to %u", SKY_GUEST_VCPUS_MAX);
		return -EINVAL;
	}
	if (req->memory < SKY_GUEST_MEMORY_MIN || req->memory > SKY_GUEST_MEMORY_MAX) {
		snprintf(err, errlen, "memory_bytes must be between %llu MiB and %llu GiB",
			 (unsigned long long)(SKY_GUEST_MEMORY_MIN >> 20), (unsigned long long)(SKY_GUEST_MEMORY_MAX >> 30));
		return -EINVAL;
	}
	if (req->cmdline && strlen(req->cmdline) >= GUEST_CMDLINE_MAX) {
		snprintf(err, errlen, "the command line is over %d bytes", GUEST_CMDLINE_MAX - 1);
		return -EINVAL;
	}
	if (req->backend[0] && strcmp(req->backend, "qemu") != 0 && strcmp(req->backend, "libvirt") != 0 &&
	    strcmp(req->backend, "skyvmm") != 0) {
		snprintf(err, errlen, "backend must be qemu, libvirt or skyvmm (or empty: the board's default)");
		return -EINVAL;
	}
	for (unsigned i = 0; i < req->n_devices; i++) {
		if (!pci_ok(req->devices[i])) {
			snprintf(err, errlen, "'%s' is not a PCI address like 0000:00:03.0", req->devices[i]);
			return -EINVAL;
		}
		if (strlen(devs) + 14 < sizeof(devs)) {
			strcat(devs, i ? " " : "");
			strcat(devs, req->devices[i]);
		}
		snprintf(gs.devices[i], sizeof(gs.devices[i]), "%s", req->devices[i]);
	}
	gs.n_devices = req->n_devices;
	s = q(g, G_NAME_TAKEN);
	sql_bind_text(s, 1, req->name);
	r = sql_step(s);
	sql_reset(s);
	if (r == SQL_ROW) {
		snprintf(err, errlen, "a guest named '%s' exists; pick another name or delete it", req->name);
		return -EEXIST;
	}
	if ((r = resolve_image(g, req->kernel, "kernel", gs.kernel, err, errlen)) < 0 ||
	    (r = resolve_image(g, req->initrd, "initrd", gs.initrd, err, errlen)) < 0 ||
	    (r = resolve_image(g, req->disk, "disk", gs.disk, err, errlen)) < 0)
		return r;
	if (req->n_nics && strcmp(req->backend, "libvirt") == 0) {
		snprintf(err, errlen, "the libvirt backend does not take NICs (the agent's taps cannot be handed to "
				      "libvirtd): use backend qemu for a guest with NICs");
		return -EINVAL;
	}
	r = networks_nics_resolve(g->db, req->nics, req->n_nics, gs.nics, err, errlen);
	if (r < 0)
		return r;
	gs.n_nics = req->n_nics;

	/* Where it runs. */
	if (!req->board || strcmp(req->board, "auto") == 0) {
		fit.need_mem = req->memory;
		fit.need_cpus = req->vcpus;
		fit.need_bridge = req->n_nics > 0;
		r = db_board_list(g->db, board_fit_auto, &fit);
		if (r < 0)
			return r;
		if (!fit.found) {
			snprintf(err, errlen, "no online board with KVM%s has %llu MiB and %u vCPUs free; see 'skyctl board list'",
				 fit.need_bridge ? " and a bridge for NICs" : "", (unsigned long long)(req->memory >> 20),
				 req->vcpus);
			return -ENOSPC;
		}
	} else {
		uint64_t used = 0;
		uint32_t used_cpus = 0;
		r = db_board_get(g->db, req->board, board_fit_one, &fit);
		if (r == -ENOENT)
			snprintf(err, errlen, "no board named '%s'; see 'skyctl board list'", req->board);
		if (r < 0)
			return r;
		if (fit.quarantined) {
			snprintf(err, errlen, "board %s is quarantined: %s; it gets no guests until its firmware is "
				 "allowed ('skyctl firmware allow')", fit.name, fit.why[0] ? fit.why : "its gate cannot be read");
			return -EBUSY;
		}
		if (req->n_nics && fit.inventory && !fit.bridge) {
			snprintf(err, errlen,
				 "board %s reports no bridge for guests' NICs (the firmware's init makes br0 over its "
				 "uplink; see 'skyctl board show %s')", fit.name, fit.name);
			return -EBUSY;
		}
		if (fit.memory) {
			r = board_load(g, fit.id, &used, &used_cpus);
			if (r < 0)
				return r;
			if (fit.memory < used + GUEST_BOARD_RESERVE + req->memory) {
				snprintf(err, errlen,
					 "board %s has %llu MiB of memory, %llu MiB promised to guests and %llu MiB kept "
					 "for the firmware: %llu MiB more do not fit",
					 fit.name, (unsigned long long)(fit.memory >> 20), (unsigned long long)(used >> 20),
					 (unsigned long long)(GUEST_BOARD_RESERVE >> 20),
					 (unsigned long long)(req->memory >> 20));
				return -ENOSPC;
			}
		}
	}
	r = db_new_id("gst-", 6, gs.id, sizeof(gs.id));
	if (r < 0)
		return r;
	snprintf(gs.name, sizeof(gs.name), "%s", req->name);
	snprintf(gs.board_id, sizeof(gs.board_id), "%s", fit.id);
	snprintf(gs.cmdline, sizeof(gs.cmdline), "%s", req->cmdline ? req->cmdline : "console=ttyS0");
	gs.vcpus = req->vcpus;
	gs.memory = req->memory;
	snprintf(gs.backend, sizeof(gs.backend), "%s", req->backend);
	snprintf(gs.desired, sizeof(gs.desired), "running");
	snprintf(gs.state, sizeof(gs.state), "pending");
	gs.created = sky_unix_now();

	s = q(g, G_INSERT);
	sql_bind_text(s, 1, gs.id);
	sql_bind_text(s, 2, gs.name);
	sql_bind_text(s, 3, gs.board_id);
	sql_bind_text(s, 4, gs.kernel);
	sql_bind_text(s, 5, gs.initrd);
	sql_bind_text(s, 6, gs.disk);
	sql_bind_text(s, 7, gs.cmdline);
	sql_bind_int64(s, 8, gs.vcpus);
	sql_bind_int64(s, 9, (int64_t)gs.memory);
	sql_bind_text(s, 10, devs);
	sql_bind_text(s, 11, gs.backend);
	sql_bind_text(s, 12, gs.desired);
	sql_bind_text(s, 13, gs.state);
	sql_bind_text(s, 14, "");
	sql_bind_int64(s, 15, gs.created);
	/* The guest, its NICs and its event in one transaction
	 * (synchronous=FULL): durable before we answer. */
	r = guests__begin(g);
	if (r == 0)
		r = step_done(s);
	if (r == 0)
		r = networks_nics_store(g->db, gs.id, req->mac_prefix ? req->mac_prefix : g->mac_prefix, gs.nics,
					gs.n_nics);
	if (r == 0)
		events_add_kv(g->events, "guest.created", "guest", gs.id, "name", gs.name, "board", gs.board_id, "state",
			      gs.state, NULL);
	r = guests__end(g, r);
	if (r == -EEXIST) {
		snprintf(err, errlen, "a guest named '%s' exists, or a NIC's MAC was taken meanwhile", req->name);
		return r;
	}
	if (r == -ENOSPC) {
		snprintf(err, errlen, "no free MAC was found under the controller's --mac-prefix; free some or widen it");
		return r;
	}
	if (r < 0)
		return r;
	log_info("guest %s '%s' created on board %s", gs.id, gs.name, fit.name);
	send_command(g, &gs, SKYROOT__GUEST_ACTION__GUEST_ENSURE_RUNNING);
	*out = gs;
	return 0;
}

int guests_set_desired(struct guests *g, const char *id, const char *desired, struct guest *out)
{
	struct sql_stmt *s = q(g, G_SET_DESIRED);
	struct guest gs, was;
	int r;
	sql_bind_text(s, 1, desired);
	sql_bind_text(s, 2, id);
	r = guests__begin(g);
	if (r == 0 && guest_one(g, G_BY_ID, id, &was) < 0)
		was.state[0] = '\0';
	if (r == 0)
		r = step_done(s);
	if (r == 0)
		r = guest_one(g, G_BY_ID, id, &gs);
	if (r == 0 && was.state[0] && strcmp(was.state, gs.state) != 0)
		events_add_kv(g->events, "guest.state", "guest", gs.id, "name", gs.name, "board", gs.board_id, "old",
			      was.state, "new", gs.state, "reason", "started by an API call", NULL);
	r = guests__end(g, r);
	if (r < 0)
		return r;
	send_command(g, &gs, action_for(&gs));
	*out = gs;
	return 0;
}

int guests_delete(struct guests *g, const char *id)
{
	struct guest gs;
	struct sql_stmt *s;
	int r = guest_one(g, G_BY_ID, id, &gs);
	if (r < 0)
		return r;
	s = q(g, G_DELETE);
	sql_bind_text(s, 1, id);
	r = guests__begin(g);
	if (r == 0)
		r = step_done(s);
	if (r == 0) {
		s = q(g, G_CONSOLE_FORGET);
		sql_bind_text(s, 1, id);
		r = step_done(s);
	}
	if (r == 0)
		r = networks_nics_forget(g->db, id); /* its MACs are free again */
	if (r == 0)
		events_add_kv(g->events, "guest.deleted", "guest", gs.id, "name", gs.name, "board", gs.board_id, "state",
			      gs.state, NULL);
	r = guests__end(g, r);
	if (r < 0)
		return r;
	send_command(g, &gs, SKYROOT__GUEST_ACTION__GUEST_DESTROY);
	if (g->ops.deleted) /* its console goes with it */
		g->ops.deleted(g->ops_ctx, id);
	return 0;
}

/* ---- reports from boards ---- */

static const char *state_name(Skyroot__GuestStateCode c)
{
	switch (c) {
	case SKYROOT__GUEST_STATE_CODE__GUEST_FETCHING:
		return "fetching";
	case SKYROOT__GUEST_STATE_CODE__GUEST_RUNNING:
		return "running";
	case SKYROOT__GUEST_STATE_CODE__GUEST_STOPPED:
		return "stopped";
	case SKYROOT__GUEST_STATE_CODE__GUEST_FAILED:
		return "failed";
	default:
		return "pending";
	}
}

void guests_on_report(struct guests *g, const char *board_id, const Skyroot__GuestReport *rep)
{
	for (size_t i = 0; i < rep->n_guests; i++) {
		const Skyroot__GuestState *st = rep->guests[i];
		struct guest gs;
		char error[GUEST_ERROR_MAX];
		if (!st->id || strlen(st->id) >= DB_ID_MAX)
			continue;
		snprintf(error, sizeof(error), "%s", st->error ? st->error : "");
		if (guest_one(g, G_BY_ID, st->id, &gs) < 0 || strcmp(gs.board_id, board_id) != 0) {
			/* Deleted (or moved) while the board was away: it goes. */
			struct guest gone = {0};
			snprintf(gone.id, sizeof(gone.id), "%s", st->id);
			snprintf(gone.board_id, sizeof(gone.board_id), "%s", board_id);
			snprintf(gone.backend, sizeof(gone.backend), "qemu");
			log_info("board %s runs guest %s that is no longer its own: destroying it", board_id, st->id);
			send_command(g, &gone, SKYROOT__GUEST_ACTION__GUEST_DESTROY);
			continue;
		}
		const char *name = state_name(st->state);
		struct sql_stmt *s = q(g, G_SET_STATE);
		sql_bind_text(s, 1, name);
		sql_bind_text(s, 2, error);
		sql_bind_text(s, 3, st->id);
		sql_bind_text(s, 4, board_id);
		sql_bind_text(s, 5, name);
		sql_bind_text(s, 6, error);
		int r = guests__begin(g), changed = 0;
		if (r == 0)
			r = step_done(s);
		if (r == 0 && (changed = (int)sql_changes(db_sql(g->db))) > 0)
			/* The same state with a new error is an event too (a second failure). */
			events_add_kv(g->events, "guest.state", "guest", gs.id, "name", gs.name, "board", board_id, "old",
				      gs.state, "new", name, "reason", error, NULL);
		if (guests__end(g, r) == 0 && changed > 0) {
			if (st->state == SKYROOT__GUEST_STATE_CODE__GUEST_FAILED)
				log_warn("guest %s '%s' failed on board %s: %s", gs.id, gs.name, board_id, error);
			else
				log_info("guest %s '%s' is %s on board %s", gs.id, gs.name, name, board_id);
		}
	}
}
