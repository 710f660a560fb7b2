/* Limits shared by every program: the API, skyctl, the agent and the VMM
 * check a value against the same constant, so that what one accepts no
 * other refuses.  docs/syntax.md lists them for users. */
#ifndef SKY_COMMON_LIMITS_H
#define SKY_COMMON_LIMITS_H

/* Guests. */
#define SKY_GUEST_VCPUS_MAX 64u
#define SKY_GUEST_MEMORY_MIN (16ull << 20)   /* 16 MiB */
#define SKY_GUEST_MEMORY_MAX (1ull << 40)    /* 1 TiB */
#define SKY_GUEST_DEVICES_MAX 8u
#define SKY_GUEST_CMDLINE_MAX 1023u          /* bytes, without the NUL */
#define SKY_GUEST_NICS_MAX 8u                /* network interfaces of one guest */

/* Networks: a VLAN id is 1-4094 (0 and 4095 are reserved by 802.1Q). */
#define SKY_VLAN_MIN 1u
#define SKY_VLAN_MAX 4094u

/* Names people give to boards, images, guests and credentials: at most
 * SKY_NAME_MAX bytes; the whole rule is sky_name_ok (common/parse.h). */
#define SKY_NAME_MAX 63u

/* Enrollment tokens (POST /v1/tokens, skyctl token create --ttl --uses):
 * a lifetime of 60 s to 30 days, 1 to 10000 enrollments. */
#define SKY_TOKEN_TTL_MIN 60
#define SKY_TOKEN_TTL_MAX (30 * 24 * 3600)
#define SKY_TOKEN_USES_MIN 1
#define SKY_TOKEN_USES_MAX 10000

#endif
