/* The Redfish service's pure parts (api_redfish_parse.c): what a Redfish
 * client sends, checked and bounded before use.  No I/O, no logging, so a
 * fuzzer (tests/fuzz/fuzz_redfish.c) and unit tests drive them directly.
 * Each returns 0 or a negative errno (-EINVAL with a message in err). */
#ifndef SKY_CONTROLLER_API_REDFISH_H
#define SKY_CONTROLLER_API_REDFISH_H

#include <stdbool.h>
#include <stddef.h>

#define RF_USER_MAX 64           /* a user name, incl. NUL */
#define RF_SECRET_MAX 256        /* a password (a Skyroot API token), incl. NUL */
#define RF_ENUM_MAX 32           /* a Redfish enum value, incl. NUL */
#define RF_ERR_MAX 256

/* An Authorization header "Basic base64(user:password)".  -ENOENT when
 * its scheme is not Basic, -EINVAL when it is malformed. */
int rf_parse_basic(const char *v, size_t n, char user[RF_USER_MAX], char secret[RF_SECRET_MAX]);

/* POST /redfish/v1/SessionService/Sessions: {"UserName", "Password"}. */
int rf_parse_session(const void *body, size_t len, char user[RF_USER_MAX], char secret[RF_SECRET_MAX],
		     char *err, size_t errlen);

/* POST .../Actions/ComputerSystem.Reset: {"ResetType"} (a name of at
 * most RF_ENUM_MAX - 1 printable bytes; whether it is allowed is the
 * caller's question). */
int rf_parse_reset(const void *body, size_t len, char type[RF_ENUM_MAX], char *err, size_t errlen);

/* PATCH /redfish/v1/Systems/{id}: {"Boot": {"BootSourceOverrideTarget",
 * "BootSourceOverrideEnabled", "BootSourceOverrideMode"}}, each optional
 * ("" when absent); values are checked against what Skyroot supports:
 * target None|Pxe, enabled Disabled|Once|Continuous, mode UEFI|Legacy.
 * Any other property is refused (-EINVAL naming it). */
struct rf_boot_patch {
	char target[RF_ENUM_MAX];
	char enabled[RF_ENUM_MAX];
	char mode[RF_ENUM_MAX];
};
int rf_parse_boot_patch(const void *body, size_t len, struct rf_boot_patch *out, char *err, size_t errlen);

#endif
