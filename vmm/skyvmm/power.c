/* skyvmm: ACPI PM1 registers, the power button, power-off and reset
 * (see power.h). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "vmm/skyvmm/le.h"
#include "vmm/skyvmm/power.h"
#include "vmm/skyvmm/tables.h"

int sv_power_init(struct sv_power *p, const struct sv_irq_ops *irq, void (*done)(void *, enum sv_outcome),
		  void *ctx)
{
	memset(p, 0, sizeof(*p));
	if (pthread_mutex_init(&p->lock, NULL) != 0)
		return -ENOMEM;
	p->irq = irq;
	p->done = done;
	p->ctx = ctx;
	p->cnt = SV_PM1_SCI_EN;
	return 0;
}

void sv_power_fini(struct sv_power *p)
{
	pthread_mutex_destroy(&p->lock);
}

/* lock held */
static void update_sci(struct sv_power *p)
{
	bool level = (p->sts & p->en & (SV_PM1_PWRBTN | SV_PM1_TMR)) != 0;
	if (level != p->sci && p->irq && p->irq->set_level)
		p->irq->set_level(p->irq->ctx, SV_SCI_IRQ, level);
	p->sci = level;
}

void sv_power_button(struct sv_power *p)
{
	pthread_mutex_lock(&p->lock);
	p->sts |= SV_PM1_PWRBTN;
	update_sci(p);
	pthread_mutex_unlock(&p->lock);
}

/* PM1 event block: status (write 1 to clear) at 0-1, enable at 2-3.  Byte
 * accesses are handled one byte at a time over the 4-byte block. */
void sv_power_io_evt(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct sv_power *p = opaque;
	uint8_t regs[4];
	uint64_t v = is_write ? sv_le_get(data, len) : 0;

	pthread_mutex_lock(&p->lock);
	sv_le_put(regs, p->sts, 2);
	sv_le_put(regs + 2, p->en, 2);
	for (uint32_t i = 0; i < len && off + i < 4; i++) {
		unsigned r = (unsigned)(off + i);
		uint8_t b = (uint8_t)(v >> (8 * i));
		if (!is_write)
			data[i] = regs[r];
		else if (r < 2)
			regs[r] &= (uint8_t)~b;
		else
			regs[r] = b;
	}
	if (is_write) {
		p->sts = (uint16_t)sv_le_get(regs, 2);
		p->en = (uint16_t)sv_le_get(regs + 2, 2) & SV_PM1_EN_MASK;
		update_sci(p);
	}
	pthread_mutex_unlock(&p->lock);
}

/* PM1 control: SCI_EN always reads 1 (no SMI_CMD: ACPI mode from the
 * start); SLP_EN with SLP_TYP = S5 powers off. */
void sv_power_io_cnt(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct sv_power *p = opaque;
	enum sv_outcome o = SV_OUT_NONE;

	pthread_mutex_lock(&p->lock);
	if (!is_write) {
		uint8_t regs[2];
		sv_le_put(regs, p->cnt, 2);
		for (uint32_t i = 0; i < len; i++)
			data[i] = off + i < 2 ? regs[off + i] : 0xff;
	} else {
		uint16_t v = p->cnt;
		for (uint32_t i = 0; i < len && off + i < 2; i++) {
			unsigned sh = 8 * (unsigned)(off + i);
			v = (uint16_t)((v & ~(0xffU << sh)) | (unsigned)data[i] << sh);
		}
		if ((v & SV_PM1_SLP_EN) && ((v >> 10) & 7) == SV_SLP_TYP_S5)
			o = SV_OUT_POWEROFF;
		p->cnt = (uint16_t)((v & ~SV_PM1_SLP_EN) | SV_PM1_SCI_EN);
	}
	pthread_mutex_unlock(&p->lock);
	if (o != SV_OUT_NONE && p->done)
		p->done(p->ctx, o);
}

/* The PM timer: 3.579545 MHz from CLOCK_MONOTONIC, 24 bits (the FADT does
 * not claim TMR_VAL_EXT).  Its overflow status is not raised. */
void sv_power_io_tmr(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct timespec t;
	uint64_t ticks;

	(void)opaque;
	if (is_write)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	ticks = (uint64_t)t.tv_sec * 3579545ULL + (uint64_t)t.tv_nsec * 3579545ULL / 1000000000ULL;
	ticks &= 0xffffff;
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < 4 ? (uint8_t)(ticks >> (8 * (off + i))) : 0xff;
}

/* Port 0x64: reads as an i8042 with nothing to say (status 0: the reboot
 * code's wait for an empty input buffer ends at once); 0xFE resets. */
void sv_power_io_reset(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct sv_power *p = opaque;

	(void)off;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (data[0] == SV_RESET_VALUE && p->done)
		p->done(p->ctx, SV_OUT_RESET);
}

int sv_power_attach(struct sv_power *p, struct sv_bus *bus)
{
	int r;
	if ((r = sv_bus_add(bus, SV_PIO, SV_PM1_EVT_PORT, 4, sv_power_io_evt, p)) < 0 ||
	    (r = sv_bus_add(bus, SV_PIO, SV_PM1_CNT_PORT, 2, sv_power_io_cnt, p)) < 0 ||
	    (r = sv_bus_add(bus, SV_PIO, SV_PM_TMR_PORT, 4, sv_power_io_tmr, p)) < 0 ||
	    (r = sv_bus_add(bus, SV_PIO, SV_RESET_PORT, 1, sv_power_io_reset, p)) < 0)
		return r;
	return 0;
}
