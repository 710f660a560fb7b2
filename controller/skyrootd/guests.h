/* Guests: desired state in the store, reconciled with what boards report
 * (their consoles: consoles.h). */
#ifndef SKY_CONTROLLER_GUESTS_H
#define SKY_CONTROLLER_GUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/networks.h"
#include "skyroot.pb-c.h"

/* Bytes with the NUL, from the shared limits (common/limits.h). */
#define GUEST_NAME_MAX (SKY_NAME_MAX + 1)
#define GUEST_CMDLINE_MAX (SKY_GUEST_CMDLINE_MAX + 1)
#define GUEST_MAX_DEVICES SKY_GUEST_DEVICES_MAX
#define GUEST_ERROR_MAX 512
/* Memory the firmware keeps for itself when placing guests. */
#define GUEST_BOARD_RESERVE (512ull << 20)

struct guests;
struct store;

/* How guests reach boards, set up by main.c (the agent link there); tests
 * give their own.  Both may be NULL: every board is offline. */
struct guests_ops {
	/* Is the board in a live session now? */
	bool (*online)(void *ctx, const char *board_id);
	/* Send a command to the board: 0, or -ENOTCONN when it has no session. */
	int (*send)(void *ctx, const char *board_id, Skyroot__Envelope *env);
	/* A guest is gone (its delete committed, its console's rows with it):
	 * what else holds it lets go (consoles_forget).  May be NULL. */
	void (*deleted)(void *ctx, const char *guest_id);
};

struct guest {
	char id[DB_ID_MAX];
	char name[GUEST_NAME_MAX];
	char board_id[DB_ID_MAX];
	char kernel[DB_ID_MAX];
	char initrd[DB_ID_MAX];
	char disk[DB_ID_MAX];
	char cmdline[GUEST_CMDLINE_MAX];
	uint32_t vcpus;
	uint64_t memory;
	char devices[GUEST_MAX_DEVICES][16];
	unsigned n_devices;
	char backend[16];
	char desired[16];             /* running | stopped */
	char state[16];               /* pending | fetching | running | stopped | failed */
	char error[GUEST_ERROR_MAX];
	int64_t created;
	struct guest_nic nics[SKY_GUEST_NICS_MAX];
	unsigned n_nics;
};

/* What POST /v1/guests asks for: names resolved by the caller or not. */
struct guest_request {
	const char *name;
	const char *board;            /* id, name or "auto" */
	const char *kernel, *initrd, *disk; /* image ids or names; NULL = none */
	const char *cmdline;
	uint32_t vcpus;
	uint64_t memory;
	const char *devices[GUEST_MAX_DEVICES];
	unsigned n_devices;
	const char *backend;
	struct nic_request nics[SKY_GUEST_NICS_MAX];
	unsigned n_nics;
	const uint8_t *mac_prefix;    /* 3 bytes; NULL: NETWORK_MAC_PREFIX_DEFAULT */
};

int guests_open(struct db *db, struct store *store, struct guests **out);
void guests_set_ops(struct guests *g, const struct guests_ops *ops, void *ctx);
/* Where guests' changes are told (events.h); NULL: nowhere. */
struct events;
void guests_set_events(struct guests *g, struct events *ev);
void guests_close(struct guests *g);

/* Create and start.  On failure err says why, for the client; the return
 * says how: -EINVAL (400), -ENOENT (404), -EEXIST / -EBUSY / -ENOSPC (409). */
int guests_create(struct guests *g, const struct guest_request *req, struct guest *out, char *err, size_t errlen);
int guests_get(struct guests *g, const char *id_or_name, struct guest *out);
/* The board a guest is placed on, by the guest's id only (not its name):
 * 0, -ENOENT, or the store's error. */
int guests_board_of(struct guests *g, const char *id, char board_id[DB_ID_MAX]);
typedef int (*guest_cb)(void *ctx, const struct guest *gs);
int guests_list(struct guests *g, guest_cb cb, void *ctx);
/* desired = "running" or "stopped". */
int guests_set_desired(struct guests *g, const char *id, const char *desired, struct guest *out);
int guests_delete(struct guests *g, const char *id);
/* 1 when a guest uses the image, 0 when none, or a negative errno. */
int guests_image_in_use(struct guests *g, const char *image_id);

/* What boards report (main.c routes the agent link's ops here). */
void guests_board_up(struct guests *g, const char *board_id);
void guests_on_report(struct guests *g, const char *board_id, const Skyroot__GuestReport *r);

#endif
