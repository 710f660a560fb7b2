/* The board's guests: driven to the state the controller asks for, on the
 * VMM backends of libskyvmm, with images from the RAM cache. */
#ifndef SKY_AGENT_GUESTS_H
#define SKY_AGENT_GUESTS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent/images.h"
#include "skyroot.pb-c.h"

struct guestmgr;

struct guestmgr_ops {
	/* Send to the controller (fails without a session; that is fine). */
	int (*send)(void *ctx, Skyroot__Envelope *env);
};

struct guestmgr_config {
	const char *sysfs_root;       /* for VFIO */
	const char *devfs_root;
	const char *qemu_path;        /* NULL: qemu-system-x86_64 from PATH */
	const char *skyvmm_path;      /* NULL: libskyvmm's default */
	const char *bridge;           /* guests' NICs' bridge; NULL: br0 */
	bool allow_kexec;             /* bare-metal boot may replace this OS */
};

int guestmgr_new(uv_loop_t *loop, const struct guestmgr_config *cfg, struct imgcache *cache,
		 const struct guestmgr_ops *ops, void *ctx, struct guestmgr **out);
/* Stops every guest (they die with the agent) and frees when done. */
void guestmgr_free(struct guestmgr *m);

void guestmgr_on_command(struct guestmgr *m, const Skyroot__GuestCommand *cmd);
/* A bare-metal boot order; req is echoed in the BareMetalBootResult
 * answers (accepted or refused at once, failed later). */
void guestmgr_on_baremetal(struct guestmgr *m, uint64_t req, const Skyroot__BareMetalBoot *bm);
void guestmgr_session_up(struct guestmgr *m);
void guestmgr_tick(struct guestmgr *m);
/* Something waits for images: keep ticking. */
bool guestmgr_active(const struct guestmgr *m);

#endif
