/* The REST API's pure parts: rendering store rows as the JSON of docs/api.md,
 * validating request bodies, decoding path segments.  No I/O, no loop, no
 * logging, so each piece can be unit-tested (tests/unit/test_api_json.c).
 *
 * Functions returning json_t * return a new reference, or NULL when out of
 * memory.  Functions returning int return 0 or a negative errno. */
#ifndef SKY_CONTROLLER_API_JSON_H
#define SKY_CONTROLLER_API_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "common/parse.h"
#include "controller/skyrootd/boots.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/store.h"
#include "controller/skyrootd/guests.h"
#include "skyroot.pb-c.h"

/* POST /v1/tokens defaults (docs/api.md); the bounds are SKY_TOKEN_* of
 * common/limits.h, which skyctl checks too. */
#define API_TOKEN_TTL_DEFAULT 3600
#define API_TOKEN_USES_DEFAULT 1

/* Room for an error message written by a validator. */
#define API_JSON_ERR_MAX 256

/* A JSON string of at most max bytes of s (SIZE_MAX: all of it); bytes
 * that are not UTF-8 (an agent's DMI strings, a board's reasons: whatever
 * it sent) become '?', and a character cut at max is left out.  NULL s is
 * JSON null. */
json_t *api_json_strn(const char *s, size_t max);

/* {"error": {"code": code, "message": <printf>}} */
json_t *api_json_error(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* BOARD.  online and last_seen are the caller's view of the board's session
 * (last_seen 0 = never seen: null).  A missing or unreadable inventory
 * renders its fields as null. */
json_t *api_json_board(const struct db_board *b, bool online, int64_t last_seen);

/* "revoked" > "used" (no uses left) > "expired" (now >= expires_at) > "active". */
const char *api_json_token_state(const struct db_token *t, int64_t now);

/* TOKEN as listed: id, state, uses, uses_left, created_at, expires_at. */
json_t *api_json_token(const struct db_token *t, int64_t now);

/* The answer to POST /v1/tokens, the only place the secret is shown. */
json_t *api_json_token_created(const struct db_token *t, const char *secret,
			       const char *ca_pin, const char *controller);

struct api_token_request {
	int64_t ttl_seconds;
	uint32_t uses;
	char board[DB_NAME_MAX];    /* "" = any machine; else a board id or name it re-enrolls */
};

/* Validate a POST /v1/tokens body (empty = all defaults).  0 and *out set,
 * or -EINVAL with a message for the client in err (API_JSON_ERR_MAX bytes);
 * *out is not written on failure. */
int api_json_parse_token_request(const void *body, size_t len, struct api_token_request *out,
				 char *err, size_t errlen);

/* The request bodies.  Each parser is pure: 0 and *out set, or -EINVAL
 * with a message for the client in err (API_JSON_ERR_MAX bytes) that says
 * what is wrong and what to send; *out is not written on failure.  A
 * field the body does not know is refused ("unknown field 'foo' in guest;
 * known: name, board, ..."); null is the same as leaving a field out. */

/* The pieces of those parsers, for the bodies of other files
 * (api_creds_json.c).  Blank: nothing but spaces, tabs and line ends.
 * load_object: the body as a JSON object into *out, or -EINVAL with a
 * message naming what and showing example (an empty body is refused).
 * known_keys: every key of o is one of known (NULL-terminated), else
 * -EINVAL naming it and the known ones.  get_uint: the whole number o[key]
 * in [lo, hi] (unit follows hi in the message): 0 absent or null, 1 set. */
bool api_json_blank(const void *body, size_t len);
int api_json_load_object(const void *body, size_t len, const char *what, const char *example, json_t **out,
			 char *err, size_t errlen);
int api_json_known_keys(json_t *o, const char *what, const char *const *known, char *err, size_t errlen);
int api_json_get_uint(json_t *o, const char *key, const char *what, uint64_t lo, uint64_t hi, const char *unit,
		      uint64_t *out, char *err, size_t errlen);
/* RFC 3339 UTC, or null for 0 ("never"). */
json_t *api_json_time(int64_t t);

/* A guest's NIC as POST /v1/guests gives it: {"network": N, "mac": M}. */
struct api_nic_body {
	char network[DB_NAME_MAX];
	char mac[SKY_MAC_LEN];            /* canonical; "" = the controller picks */
};
/* api_json_nics.c: guest.nics of a POST /v1/guests body into out (0, or
 * -EINVAL with err); a GUEST's "nics" array. */
int api_json_parse_nics(json_t *guest, struct api_nic_body *out, unsigned *n, char *err, size_t errlen);
json_t *api_json_nics(const struct guest *g);

/* POST /v1/guests (docs/api.md); limits of common/limits.h. */
#define API_GUEST_VCPUS_DEFAULT 1u
#define API_GUEST_MEMORY_DEFAULT (256ull << 20)
struct api_guest_body {
	char name[SKY_NAME_MAX + 1];
	char board[DB_NAME_MAX];          /* "" = auto */
	char kernel[STORE_NAME_MAX];
	char initrd[STORE_NAME_MAX];      /* "" = none */
	char disk[STORE_NAME_MAX];        /* "" = none */
	char cmdline[SKY_GUEST_CMDLINE_MAX + 1];
	bool has_cmdline;
	char backend[16];                 /* default "": the board's (qemu, or
					     skyvmm on a firmware without QEMU) */
	uint32_t vcpus;
	uint64_t memory_bytes;
	char devices[SKY_GUEST_DEVICES_MAX][SKY_PCI_ADDR_LEN];
	unsigned n_devices;
	struct api_nic_body nics[SKY_GUEST_NICS_MAX]; /* api_json_nics.c */
	unsigned n_nics;
};
int api_json_parse_guest_request(const void *body, size_t len, struct api_guest_body *out, char *err,
				 size_t errlen);

/* POST /v1/boards/{id|name}/fetch: {"image": "<image id or name>"}. */
struct api_fetch_body {
	char image[STORE_NAME_MAX];
};
int api_json_parse_fetch_request(const void *body, size_t len, struct api_fetch_body *out, char *err,
				 size_t errlen);

/* POST /v1/boards/{id|name}/boot: {"kernel", "initrd", "cmdline"}. */
struct api_boot_body {
	char kernel[STORE_NAME_MAX];
	char initrd[STORE_NAME_MAX];      /* "" = none */
	char cmdline[SKY_GUEST_CMDLINE_MAX + 1]; /* "" = the default */
};
int api_json_parse_boot_request(const void *body, size_t len, struct api_boot_body *out, char *err,
				size_t errlen);

/* The value of key in a query string ("a=1&b=2"), percent-decoded into
 * out: 0, -ENOENT (not there), -EINVAL (bad escape, too long). */
int api_json_query_get(const char *query, size_t len, const char *key, char *out, size_t outlen);

/* IMAGE (docs/api.md). */
json_t *api_json_image(const struct store_image *img);
/* Add "images", "fetching" and "image_errors" to a BOARD from the board's
 * last image report (NULL: empty arrays). */
int api_json_board_images(json_t *board, const Skyroot__ImageStatus *st);
/* Add "boot" to a BOARD: the board's last bare-metal boot order and its
 * answer (NULL: null, no order since the controller started). */
int api_json_board_boot(json_t *board, const struct boot_status *st);

/* GUEST (docs/api.md). */
json_t *api_json_guest(const struct guest *g);

/* Sort an array of objects by their "name" (then "id") strings, in place. */
int api_json_sort_by_name(json_t *array);

/* Percent-decode one path segment into out (outlen bytes incl. the NUL).
 * -EINVAL for a bad escape, a NUL, a control character or a '/';
 * -ENAMETOOLONG when it does not fit.  out is not written on failure. */
int api_json_decode_segment(const char *in, size_t len, char *out, size_t outlen);

#endif
