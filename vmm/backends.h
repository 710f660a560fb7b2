/* The backends built into this library: one file per variant
 * (backends_all.c: qemu + libvirt + skyvmm; backends_qemu.c: qemu + skyvmm). */
#ifndef SKY_VMM_BACKENDS_H
#define SKY_VMM_BACKENDS_H

#include "vmm/vmm.h"

extern const struct vmm_ops *const vmm_backends[];     /* NULL-terminated */
extern const char *const vmm_backend_name_list[];      /* NULL-terminated */

#endif
