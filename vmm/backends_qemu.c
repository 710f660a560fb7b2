/* Variant without libvirt (a smaller agent for the firmware image):
 * qemu and skyvmm. */
#include "vmm/backends.h"
#include "vmm/vmm_priv.h"

const struct vmm_ops *const vmm_backends[] = { &vmm_qemu_ops, &vmm_skyvmm_ops, NULL };
const char *const vmm_backend_name_list[] = { "qemu", "skyvmm", NULL };
