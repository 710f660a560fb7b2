/* Variant with every backend: qemu, libvirt (links
 * libvirt) and skyvmm. */
#include "vmm/backends.h"
#include "vmm/vmm_priv.h"

const struct vmm_ops *const vmm_backends[] = { &vmm_qemu_ops, &vmm_libvirt_ops, &vmm_skyvmm_ops, NULL };
const char *const vmm_backend_name_list[] = { "qemu", "libvirt", "skyvmm", NULL };
