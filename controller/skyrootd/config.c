/* skyrootd's settings (config.h): one table of keys that makes the flags,
 * the config file's keys, the usage, and the report of a reload. */
#include "controller/skyrootd/config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509.h>

#include "common/args.h"
#include "common/conf.h"
#include "common/log.h"
#include "common/parse.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/audit.h"
#include "controller/skyrootd/chunk_cache.h"
#include "controller/skyrootd/pending.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/http.h"
#include "controller/skyrootd/networks.h"
#include "controller/skyrootd/scrub.h"
#include "controller/skyrootd/sql.h"
#include "controller/skyrootd/store.h"

int ctl_config_check_listen(void *ctx, const char *value, char *err, size_t errlen)
{
	struct sockaddr_storage ss;

	if (sky_parse_listen(value, &ss) < 0) {
		snprintf(err, errlen, "'%s' is not ADDR:PORT with a numeric address (e.g. 127.0.0.1:7444, [::1]:7444)",
			 value);
		return -EINVAL;
	}
	*(const char **)ctx = value;
	return 0;
}

static int config__log_level(void *ctx, const char *value, char *err, size_t errlen)
{
	int lvl = sky_log_parse_level(value);

	if (lvl < 0) {
		snprintf(err, errlen, "'%s' is not a log level: use error, warn, info or debug", value);
		return -EINVAL;
	}
	*(int *)ctx = lvl;
	return 0;
}

static int config__mac_prefix(void *ctx, const char *value, char *err, size_t errlen)
{
	uint8_t p[3];

	if (sky_parse_mac_n(value, p, 3) < 0 || !network_mac_prefix_ok(p)) {
		snprintf(err, errlen,
			 "mac-prefix '%s' is not a locally administered unicast MAC prefix of three bytes like %s (the first "
			 "byte's bit 1 set, bit 0 clear: x2, x6, xa or xe)", value, NETWORK_MAC_PREFIX_DEFAULT);
		return -EINVAL;
	}
	*(const char **)ctx = value;
	return 0;
}

/* A key: its option (dest or ctx is the field at off of a config), whether
 * SIGHUP applies it, whether a file may set it. */
struct config_key {
	struct sky_opt opt;
	size_t off;
	bool live, flag_only;
};

#define F(field) offsetof(struct ctl_config, field)
#define LISTEN(n, field, h) \
	{ .opt = { .name = n, .kind = SKY_ARG_CALLBACK, .cb = ctl_config_check_listen, .metavar = "ADDR:PORT", .help = h }, \
	  .off = F(field) }
#define COUNT(n, field, hi, h) \
	{ .opt = { .name = n, .kind = SKY_ARG_UINT, .metavar = "N", .help = h, .min = 1, .max = hi }, \
	  .off = F(field), .live = true }
#define DURATION(n, field, hi, h) \
	{ .opt = { .name = n, .kind = SKY_ARG_DURATION, .metavar = "DURATION", .help = h, .min = 1, .max = hi }, \
	  .off = F(field), .live = true }

static const struct config_key config_keys[] = {
	{ .opt = { .name = "config", .kind = SKY_ARG_STR, .metavar = "FILE",
		   .help = "the config file, same keys as these flags, which win over it\n(default "
			   CTL_CONFIG_DEFAULT ", skipped when missing)" },
	  .off = F(config), .flag_only = true },
	{ .opt = { .name = "state", .kind = SKY_ARG_STR, .metavar = "DIR",
		   .help = "the state folder 'skyrootd init' made (required)" }, .off = F(state) },
	{ .opt = { .name = "db", .kind = SKY_ARG_STR, .metavar = "URI",
		   .help = "the store in PostgreSQL, shared by the fleet's controllers\n(postgresql://USER@HOST[:PORT]/DB; default: the URI in\nDIR/" CTL_DB_URL ", else SQLite in DIR/" CTL_DB_FILE ")" },
	  .off = F(db) },
	LISTEN("agent-listen", agent_listen, "where boards connect, mutual TLS 1.3 (default " CTL_DEFAULT_AGENT_LISTEN ")"),
	LISTEN("api-listen", api_listen, "the REST API, HTTPS (default " CTL_DEFAULT_API_LISTEN ")"),
	{ .opt = { .name = "advertise", .kind = SKY_ARG_HOSTPORT, .metavar = "HOST:PORT",
		   .help = "the address boards dial, put in token command lines\n(default: the agent listen address)" },
	  .off = F(advertise) },
	{ .opt = { .name = "cert-ttl", .kind = SKY_ARG_DURATION, .metavar = "DURATION",
		   .help = "client certificate lifetime, e.g. 24h (default), 90m, 3600", .min = 10, .max = 3650ull * 86400 },
	  .off = F(cert_ttl), .live = true },
	{ .opt = { .name = "image-max", .kind = SKY_ARG_SIZE, .metavar = "SIZE",
		   .help = "largest image accepted, e.g. 64G (default), 512M", .min = 1, .max = INT64_MAX },
	  .off = F(image_max) },
	{ .opt = { .name = "scrub-rate", .kind = SKY_ARG_SIZE, .metavar = "SIZE",
		   .help = "bytes a second the background scrub re-reads and re-hashes\n"
			   "the image store at, e.g. 16M (default), 0 = off",
		   .min = 0, .max = 1ull << 40 },
	  .off = F(scrub_rate), .live = true },
	{ .opt = { .name = "chunk-cache", .kind = SKY_ARG_SIZE, .metavar = "SIZE",
		   .help = "bytes of image chunks kept in RAM once verified, for boards\n"
			   "streaming them again, e.g. 1G; 0 = off (default 256M on\n"
			   "PostgreSQL, where each chunk read is a round trip to the\n"
			   "server; off on SQLite, a local file the kernel caches)",
		   .min = 0, .max = CHUNK_CACHE_MAX },
	  .off = F(chunk_cache), .live = true },
	{ .opt = { .name = "firmware", .kind = SKY_ARG_STR, .metavar = "DIR",
		   .help = "the firmware (vmlinuz, initrd.img) network-booting boards load\n(fwimage/build.sh --out)" },
	  .off = F(firmware) },
	LISTEN("boot-listen", boot_listen, "plain-HTTP network boot (/boot/ipxe?token=T, /boot/vmlinuz,\n/boot/initrd.img); off by default"),
	COUNT("agent-conns-max", agent_conns, 1000000, "connections open at once on the agent port (default 20000)"),
	COUNT("agent-conns-per-addr", agent_per_addr, 1000000,
	      "connections without a client certificate from one address\n(default 64; board sessions do not count)"),
	DURATION("enroll-timeout", enroll_timeout, 3600,
		 "a connection without a client certificate is closed this long\nafter it opened, bytes or not (default 30s)"),
	COUNT("api-conns-max", api_conns, 1000000, "connections open at once on the API port (default 512)"),
	COUNT("api-conns-per-addr", api_per_addr, 1000000, "API connections from one address (default 32)"),
	COUNT("boot-conns-max", boot_conns, 1000000, "connections open at once on the boot port (default 256)"),
	COUNT("boot-conns-per-addr", boot_per_addr, 1000000, "boot-port connections from one address (default 16)"),
	COUNT("boot-downloads-max", boot_downloads, 100000, "firmware files sent at once, both ports (default 32; then 503)"),
	DURATION("tls-handshake-timeout", handshake_timeout, 3600, "a TLS handshake must end this long after accept (default 10s)"),
	DURATION("request-timeout", request_timeout, 3600,
		 "an HTTP request's headers must be in this long after its\nfirst byte (the first: after accept; default 10s)"),
	DURATION("keepalive-timeout", keepalive_timeout, 86400, "an HTTP connection idle this long is closed (default 30s)"),
	{ .opt = { .name = "threads", .kind = SKY_ARG_UINT, .metavar = "N",
		   .help = "event loops: board sessions are spread over N - 1 loops on\ntheir own threads, the main loop keeps the store, API and\nguests; 1: one loop for all (default: one per online CPU)",
		   .min = 1, .max = 256 },
	  .off = F(threads) },
	COUNT("audit-keep", audit_keep, 100000000, "rows of the API audit log kept, the newest (default 10000)"),
	COUNT("pending-max", pending_max, 1000000,
	      "boards enrolled with no token kept at once, pending, accepted\nor rejected (default 1024; beyond it new ones are refused)"),
	DURATION("pending-ttl", pending_ttl, 365ull * 86400,
		 "a pending board is forgotten this long after its last ask, a\nrejected or accepted one after the decision (default 24h)"),
	{ .opt = { .name = "tpm-quote-interval", .kind = SKY_ARG_DURATION, .metavar = "DURATION",
		   .help = "ask each online board with a bound TPM for a fresh quote this\noften, and judge it by the measured-boot gate "
			   "(default 5m;\n0: never)",
		   .min = 0, .max = 86400 },
	  .off = F(tpm_quote_interval), .live = true },
	COUNT("events-keep", events_keep, 100000000, "events kept, the newest (default 10000); a watch from an\nolder resource version is 410 Gone"),
	COUNT("events-watchers", events_watchers, 100000, "watchers of GET /v1/events at once (default 128; then 503)"),
	{ .opt = { .name = "events-watch-buffer", .kind = SKY_ARG_SIZE, .metavar = "SIZE",
		   .help = "bytes a watcher of the events may leave untaken before it\nis cut with a line saying where to resume (default 1MiB, at\nmost 4MiB)",
		   .min = 1024, .max = HTTP_STREAM_QUEUE_MAX },
	  .off = F(events_watch_buffer), .live = true },
	{ .opt = { .name = "mac-prefix", .kind = SKY_ARG_CALLBACK, .cb = config__mac_prefix, .metavar = "XX:XX:XX",
		   .help = "the first three bytes of the MACs the controller gives guests'\nNICs: locally administered "
			   "(default " NETWORK_MAC_PREFIX_DEFAULT ")" },
	  .off = F(mac_prefix) },
	{ .opt = { .name = "log-level", .kind = SKY_ARG_CALLBACK, .cb = config__log_level, .metavar = "LEVEL",
		   .help = "error, warn, info (default) or debug" },
	  .off = F(log_level), .live = true },
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static void config__defaults(struct ctl_config *c)
{
	*c = (struct ctl_config){
		.agent_listen = CTL_DEFAULT_AGENT_LISTEN,
		.api_listen = CTL_DEFAULT_API_LISTEN,
		.cert_ttl = CTL_DEFAULT_CERT_TTL,
		.image_max = STORE_DEFAULT_IMAGE_MAX,
		.scrub_rate = SCRUB_DEFAULT_RATE,
		.chunk_cache = CHUNK_CACHE_AUTO,
		.log_level = SKY_LOG_INFO,
		.agent_conns = 20000, .agent_per_addr = 64, .api_conns = 512, .api_per_addr = 32,
		.boot_conns = 256, .boot_per_addr = 16, .boot_downloads = 32,
		.enroll_timeout = 30, .handshake_timeout = 10, .request_timeout = 10, .keepalive_timeout = 30,
		.audit_keep = AUDIT_KEEP_DEFAULT,
		.pending_max = PENDING_MAX_DEFAULT, .pending_ttl = PENDING_TTL_DEFAULT,
		.tpm_quote_interval = 300,
		.events_keep = EVENTS_KEEP_DEFAULT, .events_watchers = EVENTS_WATCHERS_DEFAULT,
		.events_watch_buffer = EVENTS_BUFFER_DEFAULT,
		.mac_prefix = NETWORK_MAC_PREFIX_DEFAULT,
	};
}

/* The option table over c's fields (t: CONFIG_NKEYS + 1 entries); the
 * file's table leaves out the flags only. */
static void config__table(struct ctl_config *c, struct sky_opt *t, bool file)
{
	size_t n = 0;

	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (file && config_keys[i].flag_only)
			continue;
		t[n] = config_keys[i].opt;
		if (t[n].kind == SKY_ARG_CALLBACK)
			t[n].ctx = (char *)c + config_keys[i].off;
		else
			t[n].dest = (char *)c + config_keys[i].off;
		n++;
	}
	t[n] = (struct sky_opt){ 0 };
}

void ctl_config_usage(FILE *f)
{
	struct sky_opt t[CONFIG_NKEYS + 1];
	struct ctl_config c;

	config__defaults(&c);
	config__table(&c, t, false);
	sky_args_usage(f, t);
}

static int config__flags(struct ctl_config *c, int argc, char **argv, char *err, size_t errlen)
{
	struct sky_opt t[CONFIG_NKEYS + 1];
	int first, r;

	config__table(c, t, false);
	r = sky_args_parse(t, argc, argv, &first, err, errlen);
	if (r != 0)
		return r;
	if (first != argc) {
		snprintf(err, errlen, "unexpected argument '%s'; see 'skyrootd --help'", argv[first]);
		return -EINVAL;
	}
	return 0;
}

int ctl_config_load(struct ctl_config *out, int argc, char **argv, char *err, size_t errlen)
{
	struct sky_opt t[CONFIG_NKEYS + 1];
	struct ctl_config c;
	const char *path;
	bool named;
	int r;

	/* The flags first: they are checked, and they may name the file. */
	config__defaults(&c);
	r = config__flags(&c, argc, argv, err, errlen);
	if (r != 0)
		return r;
	named = c.config != NULL;
	path = named ? c.config : CTL_CONFIG_DEFAULT;
	config__defaults(&c);
	config__table(&c, t, true);
	r = sky_conf_load(t, path, &c.store, err, errlen);
	if (r == -ENOENT && !named) {
		config__defaults(&c); /* no file: the defaults */
	} else if (r < 0) {
		return r;
	} else {
		c.file = path;
	}
	/* Then the flags again, over the file. */
	r = config__flags(&c, argc, argv, err, errlen);
	if (r == 0 && !c.state) {
		snprintf(err, errlen, "--state DIR is required (or 'state = DIR' in %s)", path);
		r = -EINVAL;
	}
	if (r != 0) {
		free(c.store);
		return r < 0 ? r : -EINVAL;
	}
	c.argc = argc;
	c.argv = argv;
	*out = c;
	return 0;
}

void ctl_config_free(struct ctl_config *c)
{
	if (!c)
		return;
	free(c->store);
	c->store = NULL;
}

void ctl_config_options(const struct ctl_config *c, struct ctl_options *o)
{
	o->state_dir = c->state;
	o->db = c->db;
	o->agent_listen = c->agent_listen;
	o->api_listen = c->api_listen;
	o->advertise = c->advertise;
	o->cert_ttl = (int64_t)c->cert_ttl;
	o->image_max = c->image_max;
	o->firmware_dir = c->firmware;
	o->boot_listen = c->boot_listen;
	o->agent_lim = listener_agent_defaults;
	o->agent_lim.conns_max = (unsigned)c->agent_conns;
	o->agent_lim.per_addr_max = (unsigned)c->agent_per_addr;
	o->agent_lim.handshake_ms = c->handshake_timeout * 1000;
	o->agent_lim.admit_ms = c->enroll_timeout * 1000;
	o->api_lim = listener_api_defaults;
	o->api_lim.conns_max = (unsigned)c->api_conns;
	o->api_lim.per_addr_max = (unsigned)c->api_per_addr;
	o->api_lim.handshake_ms = c->handshake_timeout * 1000;
	o->api_lim.admit_ms = c->request_timeout * 1000;
	o->boot_lim = listener_boot_defaults;
	o->boot_lim.conns_max = (unsigned)c->boot_conns;
	o->boot_lim.per_addr_max = (unsigned)c->boot_per_addr;
	o->boot_lim.admit_ms = c->request_timeout * 1000;
	o->keepalive_ms = c->keepalive_timeout * 1000;
	o->boot_downloads_max = (unsigned)c->boot_downloads;
	o->threads = (unsigned)c->threads;
	o->scrub_rate = c->scrub_rate;
	o->chunk_cache = c->chunk_cache;
	o->audit_keep = c->audit_keep;
	o->pending_max = c->pending_max;
	o->pending_ttl = (int64_t)c->pending_ttl;
	o->tpm_quote_interval = c->tpm_quote_interval;
	o->events_keep = c->events_keep;
	o->events_watchers = (unsigned)c->events_watchers;
	o->events_watch_buffer = c->events_watch_buffer;
	if (sky_parse_mac_n(c->mac_prefix, o->mac_prefix, 3) < 0)
		(void)sky_parse_mac_n(NETWORK_MAC_PREFIX_DEFAULT, o->mac_prefix, 3);
}

/* ---- reload ---------------------------------------------------------------- */

/* The value of key k in c as a person reads it (and the file takes it). */
static const char *config__show(const struct config_key *k, const struct ctl_config *c, char *buf, size_t len)
{
	const void *p = (const char *)c + k->off;
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	int lvl;

	switch (k->opt.kind) {
	case SKY_ARG_UINT:
		snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)p);
		return buf;
	case SKY_ARG_SIZE:
		if (*(const uint64_t *)p == CHUNK_CACHE_AUTO)
			return "default"; /* chunk-cache not given (no size reaches it) */
		sky_format_size_exact(*(const uint64_t *)p, buf, len);
		return buf;
	case SKY_ARG_DURATION:
		sky_format_duration(*(const uint64_t *)p, buf, len);
		return buf;
	default:
		if (k->opt.cb == config__log_level) {
			lvl = *(const int *)p;
			return lvl >= 0 && lvl < 4 ? levels[lvl] : "none";
		}
		/* A string: an address, a path. */
		return *(const char *const *)p ? *(const char *const *)p : "(none)";
	}
}

/* Append "what" to out (", " between items), cut at its size. */
static void config__add(char *out, size_t size, const char *what)
{
	size_t n = strlen(out);

	if (n + 1 < size)
		snprintf(out + n, size - n, "%s%s", n ? ", " : "", what);
}

/* What differs between old and new: live keys into changed ("cert-ttl 1d
 * -> 12h"), the others' names into restart. */
static void config__diff(const struct ctl_config *old, const struct ctl_config *new, char *changed, size_t clen,
			 char *restart, size_t rlen)
{
	char a[64], b[64], item[700];

	changed[0] = restart[0] = '\0';
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *va, *vb;

		if (k->flag_only)
			continue;
		va = config__show(k, old, a, sizeof(a));
		vb = config__show(k, new, b, sizeof(b));
		if (strcmp(va, vb) == 0)
			continue;
		if (!k->live) {
			config__add(restart, rlen, k->opt.name);
			continue;
		}
		snprintf(item, sizeof(item), "%s %.300s -> %.300s", k->opt.name, va, vb);
		config__add(changed, clen, item);
	}
}

/* The live keys of new into c (all numbers: nothing points into new). */
static void config__take_live(struct ctl_config *c, const struct ctl_config *new)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		size_t size = k->opt.kind == SKY_ARG_CALLBACK ? sizeof(int) : sizeof(uint64_t);

		if (k->live)
			memcpy((char *)c + k->off, (const char *)new + k->off, size);
	}
}

/* The serial of a certificate in hex, for the log. */
static void config__serial(X509 *cert, char *out, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out, len, "%s", hex ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

int ctl_config_reload(struct controller *ctl)
{
	struct ctl_config *c = ctl->config, new;
	struct ctl_options o;
	SSL_CTX *agent_tls = NULL, *api_tls = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	char err[600], changed[2048], restart[512], was[80], now[80];
	int r;

	r = ctl_config_load(&new, c->argc, c->argv, err, sizeof(err));
	if (r != 0) {
		log_error("SIGHUP: %s; nothing changed", err);
		return r < 0 ? r : -EINVAL;
	}
	r = ctl_state_read_server(ctl, &cert, &key, err, sizeof(err));
	if (r < 0) {
		log_error("SIGHUP: %s; nothing changed", err);
		goto fail_new;
	}
	/* Everything that can fail before anything changes. */
	agent_tls = agentlink_tls_ctx(cert, key, ctl->ca_cert);
	api_tls = http_tls_ctx_new(cert, key, ctl->ca_cert);
	if (!agent_tls || !api_tls) {
		log_error("SIGHUP: cannot make TLS contexts with the re-read server certificate; nothing changed");
		r = -ENOMEM;
		goto fail_tls;
	}

	config__diff(c, &new, changed, sizeof(changed), restart, sizeof(restart));
	config__take_live(c, &new);
	ctl_config_options(c, &o);
	sky_log_set_level((enum sky_log_level)c->log_level);
	ctl->opt.cert_ttl = o.cert_ttl;
	ctl->opt.agent_lim = o.agent_lim;
	ctl->opt.api_lim = o.api_lim;
	ctl->opt.boot_lim = o.boot_lim;
	ctl->opt.keepalive_ms = o.keepalive_ms;
	ctl->opt.boot_downloads_max = o.boot_downloads_max;
	ctl->opt.scrub_rate = o.scrub_rate;
	ctl->opt.chunk_cache = o.chunk_cache;
	ctl->opt.audit_keep = o.audit_keep;
	ctl->opt.pending_max = o.pending_max;
	ctl->opt.pending_ttl = o.pending_ttl;
	ctl->opt.tpm_quote_interval = o.tpm_quote_interval;
	ctl->opt.events_keep = o.events_keep;
	ctl->opt.events_watchers = o.events_watchers;
	ctl->opt.events_watch_buffer = o.events_watch_buffer;
	events_set_keep(ctl->events, o.events_keep);
	scrub_set_rate(ctl->scrub, o.scrub_rate);
	chunk_cache_set_limit(ctl->chunk_cache, chunk_cache_bound(o.chunk_cache, sql_target_is_pg(ctl->db_path)));
	agentlink_set_tls(ctl->agents, agent_tls, &o.agent_lim);
	api_set_tls(ctl->api, api_tls, &o.api_lim, o.keepalive_ms);
	api_set_tls(ctl->boot, NULL, &o.boot_lim, o.keepalive_ms);
	if (X509_cmp(cert, ctl->server_cert) != 0) {
		config__serial(ctl->server_cert, was, sizeof(was));
		config__serial(cert, now, sizeof(now));
		snprintf(err, sizeof(err), "server certificate serial %s -> %s (new connections)", was, now);
		config__add(changed, sizeof(changed), err);
	}
	X509_free(ctl->server_cert);
	EVP_PKEY_free(ctl->server_key);
	ctl->server_cert = cert;
	ctl->server_key = key;
	SSL_CTX_free(agent_tls);
	SSL_CTX_free(api_tls);
	log_info("SIGHUP: %s%s%s", new.file ? new.file : "no config file", changed[0] ? ": " : ": nothing changed",
		 changed);
	if (restart[0])
		log_warn("SIGHUP: %s changed: needs a restart (kept as it was)", restart);
	ctl_config_free(&new);
	return 0;

fail_tls:
	SSL_CTX_free(agent_tls);
	SSL_CTX_free(api_tls);
	X509_free(cert);
	EVP_PKEY_free(key);
fail_new:
	ctl_config_free(&new);
	return r;
}
