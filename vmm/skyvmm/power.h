/* skyvmm: how the guest is stopped and how it stops.
 *
 *   clean stop   the ACPI fixed-feature power button: sv_power_button() sets
 *                PWRBTN_STS in PM1 status and raises the SCI (GSI 9) while
 *                the guest has PWRBTN_EN set.  Linux turns it into a
 *                KEY_POWER event on its "Power Button" input device
 *                (LNXPWRBN), which acpid or systemd-logind act on.
 *   power-off    the guest writes SLP_EN with SLP_TYP 5 (\_S5 in the DSDT)
 *                to PM1 control: SV_OUT_POWEROFF.
 *   reset        a write of 0xFE to port 0x64 (the i8042's reset pulse, and
 *                the FADT's reset register): SV_OUT_RESET.  A triple fault
 *                (kvm.c) is a reset too, as on a PC.
 * Also the PM timer (3.579545 MHz, 24 bits) the FADT declares. */
#ifndef SKY_SKYVMM_POWER_H
#define SKY_SKYVMM_POWER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/skyvmm/sv.h"

enum sv_outcome {
	SV_OUT_NONE = 0,
	SV_OUT_POWEROFF, /* exit status 0, "guest-shutdown" */
	SV_OUT_RESET,    /* exit status 3, "guest-reset" */
	SV_OUT_CRASH,    /* exit status 4, "guest-crashed: ..." */
	SV_OUT_ERROR,    /* exit status 1, "error: ..." */
};

#define SV_PM1_PWRBTN  0x0100 /* PWRBTN_STS / PWRBTN_EN */
#define SV_PM1_TMR     0x0001 /* TMR_STS / TMR_EN */
#define SV_PM1_WAK     0x8000
/* the enable bits that stick: timer, global lock (ACPICA checks that it
 * reads back; skyvmm never raises it), power button, sleep button, RTC */
#define SV_PM1_EN_MASK 0x0721
#define SV_PM1_SCI_EN  0x0001
#define SV_PM1_SLP_EN  0x2000

struct sv_power {
	pthread_mutex_t lock;
	uint16_t sts, en, cnt;
	bool sci;                    /* the level given to the SCI */
	const struct sv_irq_ops *irq;
	void (*done)(void *ctx, enum sv_outcome o); /* the guest powered off or reset */
	void *ctx;
};

int sv_power_init(struct sv_power *p, const struct sv_irq_ops *irq, void (*done)(void *, enum sv_outcome),
		  void *ctx);
void sv_power_fini(struct sv_power *p);
/* Registers its ports on the bus. */
int sv_power_attach(struct sv_power *p, struct sv_bus *bus);
/* Presses the power button (the clean stop). */
void sv_power_button(struct sv_power *p);

/* the bus handlers, exposed for the unit tests */
void sv_power_io_evt(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
void sv_power_io_cnt(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
void sv_power_io_tmr(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
void sv_power_io_reset(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

#endif
