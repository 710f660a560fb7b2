/* A Redfish service for the fleet at /redfish/v1 on the API port
 * (docs/api.md, "Redfish"): the service root, sessions and HTTP Basic, one
 * ComputerSystem per board, its boot override and its Reset action.  It
 * speaks Redfish's own errors ({"error": {"code", "message",
 * "@Message.ExtendedInfo"}}) and verbs (PATCH); what clients send is
 * parsed in api_redfish_parse.c.
 *
 * Credentials: a Skyroot API credential's name as the user and its token
 * as the password (api_auth_basic; "admin" for init's); a session (POST
 * .../Sessions) gives an X-Auth-Token, kept here as a SHA-256 only with
 * the credential's name and role, forgotten after RF_SESSION_IDLE_S
 * without use, on DELETE, on restart, and when its credential is revoked
 * or expires.  The roles (creds.h): a reader may only GET (and end its own
 * session); an operator may also Reset and PATCH a system (and end its own
 * session); an admin may do everything, also end others' sessions. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/fleet.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/api_redfish.h"

#define RF_SESSIONS_MAX 64
#define RF_SESSION_IDLE_S (30 * 60)
#define RF_SESSION_ID_LEN 16     /* hex digits */
#define RF_TOKEN_BYTES 32
#define RF_ROOT "/redfish/v1"
#define RF_SYSTEMS RF_ROOT "/Systems"
#define RF_SESSIONS RF_ROOT "/SessionService/Sessions"
#define RF_RESET_SUFFIX "/Actions/ComputerSystem.Reset"
#define RF_PROCS_SUFFIX "/Processors"
#define RF_CPUS_ID "CPUs"
#define RF_MSG "Base.1.8."

struct rf_session {
	bool used;
	char id[RF_SESSION_ID_LEN + 1];
	uint8_t hash[32];            /* SHA-256 of the X-Auth-Token */
	enum creds_role role;          /* the credential's, when the session began */
	char user[RF_USER_MAX];        /* the credential's name */
	int64_t last_used;
};

/* A board's boot override (PATCH Boot): its next boot is a network boot. */
struct rf_override {
	char board[DB_ID_MAX];
	char enabled[RF_ENUM_MAX];   /* "Once" or "Continuous" */
	char mode[RF_ENUM_MAX];      /* "UEFI", "Legacy" or "" */
};

struct api_redfish {
	struct rf_session sessions[RF_SESSIONS_MAX];
	struct rf_override *ov;
	size_t nov, cap;
};

static const char *const rf_reset_types[] = { "ForceRestart", "GracefulRestart", NULL };

/* ---- answers ---- */

/* A Redfish error: status, a Base message id, and what to do. */
static void rf_error(struct api_reply *rep, int status, const char *msg_id, const char *resolution, const char *fmt,
		     ...) __attribute__((format(printf, 5, 6)));
static void rf_error(struct api_reply *rep, int status, const char *msg_id, const char *resolution, const char *fmt,
		     ...)
{
	char msg[512], id[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(id, sizeof(id), RF_MSG "%s", msg_id);
	api_reply_ok(rep, status,
		     json_pack("{s:{s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:s}]}}", "error", "code", id, "message", msg,
			       "@Message.ExtendedInfo", "@odata.type", "#Message.v1_1_1.Message", "MessageId", id,
			       "Message", msg, "Severity", status >= 500 ? "Critical" : "Warning", "Resolution",
			       resolution));
}

static void rf_ok(struct api_reply *rep, int status, json_t *body)
{
	api_reply_ok(rep, status, body);
	rep->headers = "OData-Version: 4.0\r\nCache-Control: no-cache\r\n";
}

static void rf_not_allowed(struct api_reply *rep, const char *method, const char *allow)
{
	rf_error(rep, 405, "OperationNotAllowed", "use one of the methods in the Allow header",
		 "%s is not allowed on this resource; it allows %s", method, allow);
	snprintf(rep->headers_buf, sizeof(rep->headers_buf), "Allow: %s\r\nOData-Version: 4.0\r\n", allow);
	rep->headers = rep->headers_buf;
}

static void rf_internal(struct api_reply *rep, int err, const char *what)
{
	log_error("redfish: cannot %s: %s", what, strerror(-err));
	rf_error(rep, 500, "InternalError", "see the controller's log", "the controller could not %s", what);
}

static struct api_redfish *rf_state(struct api *api)
{
	if (!api->redfish)
		api->redfish = calloc(1, sizeof(*api->redfish));
	return api->redfish;
}

void api_redfish_stop(struct api *api)
{
	if (!api->redfish)
		return;
	free(api->redfish->ov);
	OPENSSL_cleanse(api->redfish, sizeof(*api->redfish));
	free(api->redfish);
	api->redfish = NULL;
}

/* ---- the path ---- */

/* p (len n) is prefix + one segment (no '/') + suffix: the segment. */
static bool rf_segment(const char *p, size_t n, const char *prefix, const char *suffix, const char **seg,
		       size_t *seg_len)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);

	if (n <= pl + sl || memcmp(p, prefix, pl) != 0 || memcmp(p + n - sl, suffix, sl) != 0)
		return false;
	if (memchr(p + pl, '/', n - pl - sl))
		return false;
	*seg = p + pl;
	*seg_len = n - pl - sl;
	return true;
}

static bool rf_is(const char *p, size_t n, const char *path)
{
	return n == strlen(path) && memcmp(p, path, n) == 0;
}

/* ---- sessions and credentials ---- */

static struct rf_session *rf_session_find_token(struct api_redfish *rf, const char *tok, size_t n, int64_t now)
{
	uint8_t hash[32];
	struct rf_session *found = NULL;

	sky_sha256(tok, n, hash);
	for (size_t i = 0; i < RF_SESSIONS_MAX; i++) {
		struct rf_session *s = &rf->sessions[i];
		if (s->used && now - s->last_used > RF_SESSION_IDLE_S)
			OPENSSL_cleanse(s, sizeof(*s));
		if (s->used && sky_memeq_ct(hash, s->hash, sizeof(hash)) == 1)
			found = s;
	}
	OPENSSL_cleanse(hash, sizeof(hash));
	return found;
}

/* The audit log names the credential of a Redfish request (api.c). */
static void rf_audit_who(struct api_call *call, const char *name)
{
	struct api_conn_state *st = call->conn ? http_conn_user(call->conn) : NULL;

	if (st)
		snprintf(st->credential, sizeof(st->credential), "%s", name);
}

/* Whether the credential of session s is no longer active (revoked,
 * expired, gone): then the session ends here. */
static bool rf_session_credential_gone(struct api_call *call, struct rf_session *s)
{
	struct creds_row cr;
	int r = call->ctl->db ? creds_get(call->ctl->db, s->user, &cr) : -ENOENT;

	if (r == 0 && creds_state(&cr, sky_unix_now()) == CREDS_ACTIVE)
		return false;
	if (r < 0 && r != -ENOENT) {
		log_warn("redfish: cannot look up the credential '%s': %s", s->user, strerror(-r));
		return true; /* refuse now; the session stays for a later try */
	}
	log_info("redfish: session %s of '%s' ended: its credential is no longer active", s->id, s->user);
	OPENSSL_cleanse(s, sizeof(*s));
	return true;
}

/* Who is asking: 0 with *role (and *session for X-Auth-Token), -EACCES
 * for wrong or missing credentials (msg says which). */
static int rf_authenticate(struct api_call *call, enum creds_role *role, struct rf_session **session,
			   const char **msg)
{
	const struct http_request *req = call->req;
	struct api_redfish *rf = rf_state(call->api);
	char user[RF_USER_MAX], secret[RF_SECRET_MAX];
	int r;

	*session = NULL;
	if (!rf)
		return -ENOMEM;
	if (req->x_auth_token_count > 0) {
		struct rf_session *s = NULL;
		if (req->x_auth_token_count == 1 && req->x_auth_token_len > 0)
			s = rf_session_find_token(rf, req->x_auth_token, req->x_auth_token_len, sky_unix_now());
		if (!s) {
			*msg = "the X-Auth-Token is not a session of this service (it may have expired or been deleted); "
			       "create a new session with POST " RF_SESSIONS;
			return -EACCES;
		}
		/* The session lives only as long as its credential does. */
		if (rf_session_credential_gone(call, s)) {
			*msg = "the credential of this session was revoked or has expired; create a new session "
			       "with POST " RF_SESSIONS;
			return -EACCES;
		}
		s->last_used = sky_unix_now();
		*role = s->role;
		*session = s;
		rf_audit_who(call, s->user);
		return 0;
	}
	if (req->authorization_count != 1 || !req->authorization) {
		*msg = "this resource needs HTTP Basic credentials (a Skyroot API credential's name and token, "
		       "'admin' for the token from 'skyrootd init') or an X-Auth-Token from POST " RF_SESSIONS;
		return -EACCES;
	}
	r = rf_parse_basic(req->authorization, req->authorization_len, user, secret);
	if (r == 0)
		r = api_auth_basic(call->ctl, user, secret, role);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (r < 0) {
		*msg = "wrong user name or password: the password is a Skyroot API token and the user the name of "
		       "its credential, 'admin' for the token from 'skyrootd init', 'reader' for the reader token";
		return -EACCES;
	}
	rf_audit_who(call, user);
	return 0;
}

static json_t *rf_session_json(const struct rf_session *s)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "@odata.id", "", "@odata.type", "#Session.v1_3_0.Session",
			 "Id", s->id, "Name", "User Session", "UserName", s->user);
}

static json_t *rf_session_render(const struct rf_session *s)
{
	json_t *o = rf_session_json(s);
	char path[128];

	snprintf(path, sizeof(path), RF_SESSIONS "/%s", s->id);
	if (o && json_object_set_new(o, "@odata.id", json_string(path)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void rf_session_create(struct api_call *call, struct api_reply *rep)
{
	struct api_redfish *rf = rf_state(call->api);
	char user[RF_USER_MAX], secret[RF_SECRET_MAX], err[RF_ERR_MAX], tok_hex[RF_TOKEN_BYTES * 2 + 1];
	uint8_t tok[RF_TOKEN_BYTES], idb[RF_SESSION_ID_LEN / 2];
	struct rf_session *slot = NULL, *oldest = NULL;
	enum creds_role role;
	int64_t now = sky_unix_now();
	int r;

	if (!rf) {
		rf_internal(rep, -ENOMEM, "make a session");
		return;
	}
	if (rf_parse_session(call->req->body, call->req->body_len, user, secret, err, sizeof(err)) < 0) {
		OPENSSL_cleanse(secret, sizeof(secret));
		rf_error(rep, 400, "MalformedJSON", "send {\"UserName\": ..., \"Password\": ...}", "%s", err);
		return;
	}
	r = api_auth_basic(call->ctl, user, secret, &role);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (r < 0) {
		rf_error(rep, 401, "InsufficientPrivilege",
			 "use a credential's name as the user and its token as the password ('admin' for the token "
			 "from 'skyrootd init')",
			 "wrong user name or password: the password is a Skyroot API token and the user the name of its "
			 "credential");
		rep->headers = "WWW-Authenticate: Basic realm=\"skyrootd\"\r\n";
		return;
	}
	/* A free slot, else the least recently used session makes room. */
	for (size_t i = 0; i < RF_SESSIONS_MAX; i++) {
		struct rf_session *s = &rf->sessions[i];
		if (s->used && now - s->last_used > RF_SESSION_IDLE_S)
			OPENSSL_cleanse(s, sizeof(*s));
		if (!s->used && !slot)
			slot = s;
		if (s->used && (!oldest || s->last_used < oldest->last_used))
			oldest = s;
	}
	if (!slot) {
		log_info("redfish: session %s of '%s' ended to make room for a new one", oldest->id, oldest->user);
		slot = oldest;
	}
	if (sky_random(tok, sizeof(tok)) < 0 || sky_random(idb, sizeof(idb)) < 0) {
		rf_internal(rep, -EIO, "make a session token");
		return;
	}
	memset(slot, 0, sizeof(*slot));
	sky_format_hex(tok, sizeof(tok), tok_hex);
	sky_format_hex(idb, sizeof(idb), slot->id);
	sky_sha256(tok_hex, strlen(tok_hex), slot->hash);
	slot->used = true;
	slot->role = role;
	slot->last_used = now;
	snprintf(slot->user, sizeof(slot->user), "%s", user);
	rf_audit_who(call, user);
	snprintf(rep->headers_buf, sizeof(rep->headers_buf),
		 "X-Auth-Token: %s\r\nLocation: " RF_SESSIONS "/%s\r\nOData-Version: 4.0\r\n", tok_hex, slot->id);
	OPENSSL_cleanse(tok, sizeof(tok));
	OPENSSL_cleanse(tok_hex, sizeof(tok_hex));
	log_info("redfish: session %s opened for '%s' from %s", slot->id, slot->user, call->req->peer);
	api_reply_ok(rep, 201, rf_session_render(slot));
	rep->headers = rep->headers_buf;
}

static void rf_sessions_list(struct api_call *call, struct api_reply *rep)
{
	struct api_redfish *rf = rf_state(call->api);
	json_t *members = json_array();
	size_t n = 0;

	for (size_t i = 0; rf && members && i < RF_SESSIONS_MAX; i++) {
		char path[128];
		if (!rf->sessions[i].used)
			continue;
		snprintf(path, sizeof(path), RF_SESSIONS "/%s", rf->sessions[i].id);
		json_array_append_new(members, json_pack("{s:s}", "@odata.id", path));
		n++;
	}
	rf_ok(rep, 200,
	      json_pack("{s:s, s:s, s:s, s:o, s:I}", "@odata.id", RF_SESSIONS, "@odata.type",
			"#SessionCollection.SessionCollection", "Name", "Session Collection", "Members",
			members ? members : json_array(), "Members@odata.count", (json_int_t)n));
}

static struct rf_session *rf_session_by_id(struct api_redfish *rf, const char *id, size_t n)
{
	for (size_t i = 0; rf && i < RF_SESSIONS_MAX; i++) {
		struct rf_session *s = &rf->sessions[i];
		if (s->used && strlen(s->id) == n && memcmp(s->id, id, n) == 0)
			return s;
	}
	return NULL;
}

static void rf_session_one(struct api_call *call, struct api_reply *rep, const char *id, size_t n, enum creds_role role,
			   struct rf_session *mine)
{
	struct rf_session *s = rf_session_by_id(call->api->redfish, id, n);

	if (!s) {
		rf_error(rep, 404, "ResourceMissingAtURI", "list the sessions at " RF_SESSIONS,
			 "no session with this id (it may have ended)");
		return;
	}
	if (call->req->verb == HTTP_VERB_GET) {
		rf_ok(rep, 200, rf_session_render(s));
		return;
	}
	if (call->req->verb != HTTP_VERB_DELETE) {
		rf_not_allowed(rep, call->req->method, "GET, DELETE");
		return;
	}
	if (role != CREDS_ADMIN && s != mine) {
		rf_error(rep, 403, "InsufficientPrivilege", "use a credential with the role 'admin'",
			 "only an admin may end another's session; the role '%s' may end only its own",
			 creds_role_name(role));
		return;
	}
	log_info("redfish: session %s of '%s' ended by request", s->id, s->user);
	OPENSSL_cleanse(s, sizeof(*s));
	rf_ok(rep, 200, json_pack("{s:[{s:s, s:s, s:s}]}", "@Message.ExtendedInfo", "MessageId", RF_MSG "Success",
				  "Message", "the session ended", "Severity", "OK"));
}

/* ---- the service root ---- */

static void rf_root(struct api_reply *rep)
{
	rf_ok(rep, 200,
	      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s}, s:{s:{s:s}}}", "@odata.id", RF_ROOT "/",
			"@odata.type", "#ServiceRoot.v1_5_0.ServiceRoot", "Id", "RootService", "Name",
			"Skyroot Redfish service", "RedfishVersion", "1.8.0", "UUID",
			"00000000-0000-0000-0000-000000000000", "Systems", "@odata.id", RF_SYSTEMS, "SessionService",
			"@odata.id", RF_ROOT "/SessionService", "Links", "Sessions", "@odata.id", RF_SESSIONS));
}

static void rf_session_service(struct api_reply *rep)
{
	rf_ok(rep, 200,
	      json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:{s:s}, s:{s:s}}", "@odata.id", RF_ROOT "/SessionService",
			"@odata.type", "#SessionService.v1_1_8.SessionService", "Id", "SessionService", "Name",
			"Session Service", "ServiceEnabled", 1, "SessionTimeout", (json_int_t)RF_SESSION_IDLE_S,
			"Sessions", "@odata.id", RF_SESSIONS, "Status", "State", "Enabled"));
}

/* ---- systems: one per board ---- */

static struct rf_override *rf_override_find(struct api_redfish *rf, const char *board)
{
	for (size_t i = 0; rf && i < rf->nov; i++)
		if (strcmp(rf->ov[i].board, board) == 0)
			return &rf->ov[i];
	return NULL;
}

static void rf_override_clear(struct api_redfish *rf, const char *board)
{
	struct rf_override *o = rf_override_find(rf, board);

	if (o)
		*o = rf->ov[--rf->nov];
}

static int rf_override_set(struct api_redfish *rf, const char *board, const char *enabled, const char *mode)
{
	struct rf_override *o = rf_override_find(rf, board);

	if (!o) {
		if (rf->nov == rf->cap) {
			size_t cap = rf->cap ? rf->cap * 2 : 16;
			struct rf_override *n = realloc(rf->ov, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			rf->ov = n;
			rf->cap = cap;
		}
		o = &rf->ov[rf->nov++];
		memset(o, 0, sizeof(*o));
		snprintf(o->board, sizeof(o->board), "%s", board);
	}
	snprintf(o->enabled, sizeof(o->enabled), "%s", enabled);
	if (mode[0])
		snprintf(o->mode, sizeof(o->mode), "%s", mode);
	return 0;
}

static json_t *rf_str(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

/* The ComputerSystem of board b. */
static json_t *rf_system_render(struct api_call *call, const struct db_board *b)
{
	struct controller *ctl = call->ctl;
	const struct rf_override *ov = rf_override_find(call->api->redfish, b->id);
	Skyroot__Hello *h = NULL;
	const Skyroot__Dmi *d;
	bool online = fleet_board_online(ctl->fleet, b->id, NULL);
	char path[128], reset[160], procs[160], id[DB_ID_MAX], name[DB_NAME_MAX];
	const char *mode = NULL;
	json_t *o;

	if (b->inventory && b->inventory_len > 0)
		h = skyroot__hello__unpack(NULL, b->inventory_len, b->inventory);
	d = h ? h->dmi : NULL;
	snprintf(id, sizeof(id), "%.*s", (int)strnlen(b->id, sizeof(b->id)), b->id);
	snprintf(name, sizeof(name), "%.*s", (int)strnlen(b->name, sizeof(b->name)), b->name);
	snprintf(path, sizeof(path), RF_SYSTEMS "/%s", id);
	snprintf(reset, sizeof(reset), "%s" RF_RESET_SUFFIX, path);
	snprintf(procs, sizeof(procs), "%s" RF_PROCS_SUFFIX, path);
	if (h && h->firmware == SKYROOT__FIRMWARE__FIRMWARE_UEFI)
		mode = "UEFI";
	else if (h && h->firmware == SKYROOT__FIRMWARE__FIRMWARE_BIOS)
		mode = "Legacy";
	if (ov && ov->mode[0])
		mode = ov->mode;
	/* PowerState: On while the agent is connected, or after it kexec'd an
	 * OS (bare metal); otherwise unknown (null): an offline board may be
	 * off or only cut off from the controller. */
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o},"
		      " s:{s:o}, s:o, s:{s:s, s:s?},"
		      " s:{s:s, s:s, s:o, s:[ss], s:[sss], s:[ss]},"
		      " s:{s:{s:s, s:[ss]}}, s:{s:s}}",
		      "@odata.id", path, "@odata.type", "#ComputerSystem.v1_13_0.ComputerSystem", "Id", id, "Name", name,
		      "SystemType", "Physical",
		      "UUID", rf_str(b->uuid[0] ? b->uuid : NULL),
		      "SerialNumber", rf_str(d ? d->serial : NULL),
		      "Model", rf_str(d ? d->product : NULL),
		      "Manufacturer", rf_str(d ? d->vendor : NULL),
		      "HostName", rf_str(h ? h->hostname : NULL),
		      "ProcessorSummary", "Count", h ? json_integer(h->cpus) : json_null(),
		      "LogicalProcessorCount", h ? json_integer(h->cpus) : json_null(),
		      "Model", rf_str(h ? h->cpu_model : NULL),
		      "MemorySummary", "TotalSystemMemoryGiB",
		      h ? json_real((double)h->memory_bytes / (1024.0 * 1024.0 * 1024.0)) : json_null(),
		      "PowerState", online || b->baremetal ? json_string("On") : json_null(),
		      "Status", "State", online ? "Enabled" : b->baremetal ? "StandbyOffline" : "UnavailableOffline",
		      "Health", online || b->baremetal ? "OK" : NULL,
		      "Boot", "BootSourceOverrideTarget", ov ? "Pxe" : "None",
		      "BootSourceOverrideEnabled", ov ? ov->enabled : "Disabled",
		      "BootSourceOverrideMode", rf_str(mode),
		      "BootSourceOverrideTarget@Redfish.AllowableValues", "None", "Pxe",
		      "BootSourceOverrideEnabled@Redfish.AllowableValues", "Disabled", "Once", "Continuous",
		      "BootSourceOverrideMode@Redfish.AllowableValues", "UEFI", "Legacy",
		      "Actions", "#ComputerSystem.Reset", "target", reset, "ResetType@Redfish.AllowableValues",
		      rf_reset_types[0], rf_reset_types[1], "Processors", "@odata.id", procs);
	if (h)
		skyroot__hello__free_unpacked(h, NULL);
	return o;
}

struct rf_list_ctx {
	json_t *members;
};

static int rf_systems_cb(void *ctx, const struct db_board *b)
{
	struct rf_list_ctx *x = ctx;
	char path[128];

	snprintf(path, sizeof(path), RF_SYSTEMS "/%.*s", (int)strnlen(b->id, sizeof(b->id)), b->id);
	return json_array_append_new(x->members, json_pack("{s:s}", "@odata.id", path)) < 0 ? -ENOMEM : 0;
}

static void rf_systems(struct api_call *call, struct api_reply *rep)
{
	struct rf_list_ctx x = { .members = json_array() };
	int r = x.members ? db_board_list(call->ctl->db, rf_systems_cb, &x) : -ENOMEM;

	if (r < 0) {
		json_decref(x.members);
		rf_internal(rep, r, "list the boards");
		return;
	}
	rf_ok(rep, 200,
	      json_pack("{s:s, s:s, s:s, s:I, s:o}", "@odata.id", RF_SYSTEMS, "@odata.type",
			"#ComputerSystemCollection.ComputerSystemCollection", "Name", "Computer System Collection",
			"Members@odata.count", (json_int_t)json_array_size(x.members), "Members", x.members));
}

struct rf_system_ctx {
	struct api_call *call;
	json_t *json;
	char id[DB_ID_MAX];
	char name[DB_NAME_MAX];
	bool baremetal;
	bool reboot_allowed;
};

static int rf_system_cb(void *ctx, const struct db_board *b)
{
	struct rf_system_ctx *x = ctx;

	snprintf(x->id, sizeof(x->id), "%.*s", (int)strnlen(b->id, sizeof(b->id)), b->id);
	snprintf(x->name, sizeof(x->name), "%.*s", (int)strnlen(b->name, sizeof(b->name)), b->name);
	x->baremetal = b->baremetal;
	x->json = rf_system_render(x->call, b);
	return x->json ? 0 : -ENOMEM;
}

/* The board named by seg (an id): 0, or answered with an error. */
static int rf_system_get(struct api_call *call, struct api_reply *rep, const char *seg, size_t n,
			 struct rf_system_ctx *x)
{
	char key[DB_NAME_MAX];
	int r;

	memset(x, 0, sizeof(*x));
	x->call = call;
	if (api_json_decode_segment(seg, n, key, sizeof(key)) < 0) {
		rf_error(rep, 404, "ResourceMissingAtURI", "list the systems at " RF_SYSTEMS,
			 "no system with this id");
		return -ENOENT;
	}
	r = db_board_get(call->ctl->db, key, rf_system_cb, x);
	if (r == -ENOENT) {
		rf_error(rep, 404, "ResourceMissingAtURI", "list the systems at " RF_SYSTEMS,
			 "no system '%s': no board has this id or name", key);
		return r;
	}
	if (r < 0) {
		json_decref(x->json);
		x->json = NULL;
		rf_internal(rep, r, "read the board");
		return r;
	}
	return 0;
}

static void rf_system_patch(struct api_call *call, struct api_reply *rep, struct rf_system_ctx *x)
{
	struct api_redfish *rf = rf_state(call->api);
	const struct rf_override *ov;
	struct rf_boot_patch p;
	char err[RF_ERR_MAX], enabled[RF_ENUM_MAX], id[DB_ID_MAX];

	/* The answer is the system as it reads after the change. */
	json_decref(x->json);
	x->json = NULL;
	if (rf_parse_boot_patch(call->req->body, call->req->body_len, &p, err, sizeof(err)) < 0) {
		rf_error(rep, 400, "PropertyValueNotInList",
			 "only Boot.BootSourceOverrideTarget (None, Pxe), BootSourceOverrideEnabled (Disabled, Once, "
			 "Continuous) and BootSourceOverrideMode (UEFI, Legacy) can be changed",
			 "%s", err);
		return;
	}
	if (!rf) {
		rf_internal(rep, -ENOMEM, "record the boot override");
		return;
	}
	ov = rf_override_find(rf, x->id);
	/* The target decides; a change of Enabled alone keeps the target. */
	snprintf(enabled, sizeof(enabled), "%s", p.enabled[0] ? p.enabled : ov ? ov->enabled : "Once");
	if (strcmp(p.target, "None") == 0 || strcmp(enabled, "Disabled") == 0 || (!p.target[0] && !ov)) {
		if (ov)
			log_info("redfish: board %s: boot override cleared", x->id);
		rf_override_clear(rf, x->id);
	} else if (rf_override_set(rf, x->id, enabled, p.mode) < 0) {
		rf_internal(rep, -ENOMEM, "record the boot override");
		return;
	} else {
		log_info("redfish: board %s: next boot from the network (Pxe, %s)", x->id, enabled);
	}
	/* Read back what the board now shows. */
	snprintf(id, sizeof(id), "%s", x->id);
	if (rf_system_get(call, rep, id, strlen(id), x) == 0)
		rf_ok(rep, 200, x->json);
}

/* ---- ComputerSystem.Reset ---- */

/* What the board said in its last Hello: it carries out reboot orders. */
static int rf_reboot_allowed_cb(void *ctx, const struct db_board *b)
{
	bool *allowed = ctx;
	Skyroot__Hello *h = NULL;

	if (b->inventory && b->inventory_len > 0)
		h = skyroot__hello__unpack(NULL, b->inventory_len, b->inventory);
	*allowed = h && h->allow_reboot;
	if (h)
		skyroot__hello__free_unpacked(h, NULL);
	return 0;
}

static void rf_reset_not_allowed(struct api_reply *rep, const char *type)
{
	rf_error(rep, 400, "ActionParameterValueNotInList",
		 "use ResetType ForceRestart or GracefulRestart (the action's ResetType@Redfish.AllowableValues)",
		 "ResetType '%s' is not supported: a Skyroot board can only be rebooted into its firmware by its "
		 "agent (ForceRestart, GracefulRestart); it has no out-of-band power control for On, ForceOff, "
		 "PowerCycle and the others", type);
}

static void rf_system_reset(struct api_call *call, struct api_reply *rep, struct rf_system_ctx *x)
{
	struct controller *ctl = call->ctl;
	struct api_redfish *rf = rf_state(call->api);
	const struct rf_override *ov = rf_override_find(rf, x->id);
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__Reboot rb = SKYROOT__REBOOT__INIT;
	char type[RF_ENUM_MAX], err[RF_ERR_MAX];
	bool allowed = false, known = false;
	int r;

	if (rf_parse_reset(call->req->body, call->req->body_len, type, err, sizeof(err)) < 0) {
		rf_error(rep, 400, "ActionParameterMissing", "send {\"ResetType\": \"ForceRestart\"}", "%s", err);
		return;
	}
	for (size_t i = 0; rf_reset_types[i]; i++)
		known |= strcmp(type, rf_reset_types[i]) == 0;
	if (!known) {
		rf_reset_not_allowed(rep, type);
		return;
	}
	if (!fleet_board_online(ctl->fleet, x->id, NULL)) {
		rf_error(rep, 409, "ResourceInStandby", "reset the board once its agent is back online",
			 "board '%s' is offline: only its agent can reboot it, and it is not connected", x->name);
		return;
	}
	r = db_board_get(ctl->db, x->id, rf_reboot_allowed_cb, &allowed);
	if (r < 0) {
		rf_internal(rep, r, "read the board");
		return;
	}
	if (!allowed) {
		rf_error(rep, 409, "ActionNotSupported",
			 "the firmware's init starts the agent with --allow-reboot; on any other host a reboot is refused",
			 "board '%s' refuses to reboot: its agent runs without --allow-reboot", x->name);
		return;
	}
	rb.graceful = strcmp(type, "GracefulRestart") == 0;
	rb.network = ov != NULL;
	env.body_case = SKYROOT__ENVELOPE__BODY_REBOOT;
	env.reboot = &rb;
	r = fleet_board_send(ctl->fleet, x->id, &env);
	if (r == -ENOTCONN) {
		rf_error(rep, 409, "ResourceInStandby", "reset the board once its agent is back online",
			 "board '%s' went offline", x->name);
		return;
	}
	if (r < 0) {
		rf_internal(rep, r, "send the reboot order");
		return;
	}
	log_info("redfish: board %s told to reboot (%s%s) by a Redfish client from %s", x->id, type,
		 rb.network ? ", next boot from the network" : "", call->req->peer);
	/* A "Once" override is used up by this boot. */
	if (ov && strcmp(ov->enabled, "Once") == 0)
		rf_override_clear(rf, x->id);
	rf_ok(rep, 200, json_pack("{s:[{s:s, s:s, s:s}]}", "@Message.ExtendedInfo", "MessageId", RF_MSG "Success",
				  "Message", "the board was told to reboot; it reconnects once its firmware is up",
				  "Severity", "OK"));
}

/* ---- processors: the board's CPUs as one Processor ---- */

/* The agent counts logical CPUs, not sockets: one Processor "CPUs" holds
 * them all (TotalThreads), so Ironic's summary (the sum of TotalThreads)
 * is the board's CPU count. */
static int rf_cpus_cb(void *ctx, const struct db_board *b)
{
	struct rf_system_ctx *x = ctx;
	Skyroot__Hello *h = NULL;
	char path[160], id[DB_ID_MAX];

	snprintf(id, sizeof(id), "%.*s", (int)strnlen(b->id, sizeof(b->id)), b->id);
	snprintf(path, sizeof(path), RF_SYSTEMS "/%s" RF_PROCS_SUFFIX "/" RF_CPUS_ID, id);
	if (b->inventory && b->inventory_len > 0)
		h = skyroot__hello__unpack(NULL, b->inventory_len, b->inventory);
	x->json = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:{s:s}}", "@odata.id", path, "@odata.type",
			    "#Processor.v1_7_0.Processor", "Id", RF_CPUS_ID, "Name", "The board's CPUs",
			    "ProcessorType", "CPU", "ProcessorArchitecture", "x86", "Model",
			    rf_str(h ? h->cpu_model : NULL), "TotalThreads", h ? json_integer(h->cpus) : json_null(),
			    "Status", "State", h ? "Enabled" : "Absent");
	if (h)
		skyroot__hello__free_unpacked(h, NULL);
	return x->json ? 0 : -ENOMEM;
}

static void rf_processors(struct api_call *call, struct api_reply *rep, const char *seg, size_t sl, bool one)
{
	struct rf_system_ctx x;
	char path[160];
	int r;

	if (rf_system_get(call, rep, seg, sl, &x) < 0)
		return;
	json_decref(x.json);
	x.json = NULL;
	snprintf(path, sizeof(path), RF_SYSTEMS "/%s" RF_PROCS_SUFFIX, x.id);
	if (!one) {
		char member[192];
		snprintf(member, sizeof(member), "%s/" RF_CPUS_ID, path);
		rf_ok(rep, 200,
		      json_pack("{s:s, s:s, s:s, s:I, s:[{s:s}]}", "@odata.id", path, "@odata.type",
				"#ProcessorCollection.ProcessorCollection", "Name", "Processors Collection",
				"Members@odata.count", (json_int_t)1, "Members", "@odata.id", member));
		return;
	}
	r = db_board_get(call->ctl->db, x.id, rf_cpus_cb, &x);
	if (r < 0) {
		json_decref(x.json);
		rf_internal(rep, r, "read the board");
		return;
	}
	rf_ok(rep, 200, x.json);
}

/* ---- dispatch ---- */

static void rf_systems_route(struct api_call *call, struct api_reply *rep, const char *p, size_t n,
			     enum creds_role role)
{
	const struct http_request *req = call->req;
	struct rf_system_ctx x;
	const char *seg;
	size_t sl;

	if (rf_is(p, n, RF_SYSTEMS)) {
		if (req->verb != HTTP_VERB_GET)
			rf_not_allowed(rep, req->method, "GET");
		else
			rf_systems(call, rep);
		return;
	}
	if (rf_segment(p, n, RF_SYSTEMS "/", RF_RESET_SUFFIX, &seg, &sl)) {
		if (req->verb != HTTP_VERB_POST) {
			rf_not_allowed(rep, req->method, "POST");
			return;
		}
		if (!creds_role_allows(role, CREDS_OPERATOR)) {
			rf_error(rep, 403, "InsufficientPrivilege", "use a credential with the role 'operator' or 'admin'",
				 "a reset needs the role 'operator'; this credential has the role '%s'",
				 creds_role_name(role));
			return;
		}
		if (rf_system_get(call, rep, seg, sl, &x) == 0) {
			json_decref(x.json);
			rf_system_reset(call, rep, &x);
		}
		return;
	}
	if (rf_segment(p, n, RF_SYSTEMS "/", RF_PROCS_SUFFIX, &seg, &sl) ||
	    rf_segment(p, n, RF_SYSTEMS "/", RF_PROCS_SUFFIX "/" RF_CPUS_ID, &seg, &sl)) {
		if (req->verb != HTTP_VERB_GET)
			rf_not_allowed(rep, req->method, "GET");
		else
			rf_processors(call, rep, seg, sl, n > 3 && memcmp(p + n - 4, RF_CPUS_ID, 4) == 0);
		return;
	}
	if (rf_segment(p, n, RF_SYSTEMS "/", "", &seg, &sl)) {
		bool patch = req->verb == HTTP_VERB_PATCH;
		if (req->verb != HTTP_VERB_GET && !patch) {
			rf_not_allowed(rep, req->method, "GET, PATCH");
			return;
		}
		if (patch && !creds_role_allows(role, CREDS_OPERATOR)) {
			rf_error(rep, 403, "InsufficientPrivilege", "use a credential with the role 'operator' or 'admin'",
				 "a PATCH needs the role 'operator'; this credential has the role '%s'",
				 creds_role_name(role));
			return;
		}
		if (rf_system_get(call, rep, seg, sl, &x) < 0)
			return;
		if (patch)
			rf_system_patch(call, rep, &x);
		else
			rf_ok(rep, 200, x.json);
		return;
	}
	rf_error(rep, 404, "ResourceMissingAtURI", "see " RF_ROOT "/ for what this service offers",
		 "no such resource: %.*s", (int)(n > 128 ? 128 : n), p);
}

void api_redfish_dispatch(struct api_call *call, struct api_reply *rep)
{
	const struct http_request *req = call->req;
	const char *p = req->path, *msg = "";
	size_t n = req->path_len;
	struct rf_session *mine;
	enum creds_role role = CREDS_NONE;
	const char *seg;
	size_t sl;

	/* Clients write collections with or without a trailing '/'. */
	if (n > 1 && p[n - 1] == '/')
		n--;
	/* Public: the version document, the service root, and logging in. */
	if (rf_is(p, n, "/redfish")) {
		if (req->verb != HTTP_VERB_GET)
			rf_not_allowed(rep, req->method, "GET");
		else
			rf_ok(rep, 200, json_pack("{s:s}", "v1", RF_ROOT "/"));
		return;
	}
	if (rf_is(p, n, RF_ROOT)) {
		if (req->verb != HTTP_VERB_GET)
			rf_not_allowed(rep, req->method, "GET");
		else
			rf_root(rep);
		return;
	}
	if (rf_is(p, n, RF_SESSIONS) && req->verb == HTTP_VERB_POST) {
		rf_session_create(call, rep);
		return;
	}
	/* Authenticate before telling anything about the rest, even what exists. */
	if (rf_authenticate(call, &role, &mine, &msg) < 0) {
		rf_error(rep, 401, "NoValidSession", "log in with HTTP Basic or create a session", "%s", msg);
		rep->headers = "WWW-Authenticate: Basic realm=\"skyrootd\"\r\n";
		return;
	}
	if (!creds_role_allows(role, CREDS_READER) ||
	    (!creds_role_allows(role, CREDS_OPERATOR) && req->verb != HTTP_VERB_GET &&
	     !(req->verb == HTTP_VERB_DELETE && rf_segment(p, n, RF_SESSIONS "/", "", &seg, &sl)))) {
		rf_error(rep, 403, "InsufficientPrivilege", "use a credential with the role 'operator' or 'admin'",
			 "the role '%s' may only read (GET); %s needs the role 'operator'", creds_role_name(role),
			 req->method);
		return;
	}
	if (rf_is(p, n, RF_ROOT "/SessionService")) {
		if (req->verb != HTTP_VERB_GET)
			rf_not_allowed(rep, req->method, "GET");
		else
			rf_session_service(rep);
		return;
	}
	if (rf_is(p, n, RF_SESSIONS)) {
		if (req->verb != HTTP_VERB_GET)
			rf_not_allowed(rep, req->method, "GET, POST");
		else
			rf_sessions_list(call, rep);
		return;
	}
	if (rf_segment(p, n, RF_SESSIONS "/", "", &seg, &sl)) {
		rf_session_one(call, rep, seg, sl, role, mine);
		return;
	}
	rf_systems_route(call, rep, p, n, role);
}
