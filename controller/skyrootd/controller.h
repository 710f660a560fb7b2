/* skyrootd's shared state: one loop, one store, one CA. */
#ifndef SKY_CONTROLLER_H
#define SKY_CONTROLLER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "controller/skyrootd/db.h"
#include "controller/skyrootd/listener.h"

#define CTL_DEFAULT_AGENT_LISTEN "127.0.0.1:7443"
#define CTL_DEFAULT_API_LISTEN "127.0.0.1:7444"
#define CTL_DEFAULT_CERT_TTL (24 * 3600)

struct ctl_options {
	const char *state_dir;
	const char *db;               /* the store's postgresql:// URI; NULL: DIR/store.url, else SQLite */
	const char *agent_listen;     /* ADDR:PORT */
	const char *api_listen;
	const char *advertise;        /* HOST:PORT boards dial; NULL = derive */
	int64_t cert_ttl;             /* seconds */
	uint64_t image_max;           /* bytes */
	const char *firmware_dir;     /* vmlinuz, initrd.img (and cmdline) for network boot */
	const char *boot_listen;      /* plain-HTTP network boot; NULL = off */
	/* Admission on each port: caps, deadlines (listener.h). */
	struct listener_limits agent_lim, api_lim, boot_lim;
	uint64_t keepalive_ms;        /* HTTP: idle between requests */
	unsigned boot_downloads_max;  /* firmware files sent at once */
	unsigned threads;             /* event loops (loops.c); 0: one per online CPU */
	uint64_t scrub_rate;          /* bytes a second the scrub re-verifies; 0 = off */
	uint64_t audit_keep;          /* rows of the API audit log kept (audit.h) */
	uint64_t pending_max;         /* pending boards kept at once (pending.h) */
	int64_t pending_ttl;          /* seconds a pending board is kept after its last ask */
	uint64_t tpm_quote_interval;  /* seconds between fresh TPM quotes of a board (al_quote.c); 0 = off */
	uint64_t events_keep;         /* rows of the event log kept (events.h); 0: the default */
	uint64_t events_watch_buffer; /* bytes a watcher may leave queued (api_events.c); 0: the default */
	unsigned events_watchers;     /* watchers at once; 0: the default */
	uint8_t mac_prefix[3];        /* of the MACs given to guests' NICs (networks.h) */
	uint64_t chunk_cache;         /* bytes of chunks kept in RAM (chunk_cache.h); CHUNK_CACHE_AUTO: the default */
};

struct agentlink;
struct loops;
struct api;
struct ctl_config;
struct store;
struct guests;
struct consoles;
struct boots;
struct scrub;
struct pending_rate;
struct events;
struct tpmv_cas;
struct chunk_cache;

struct controller {
	uv_loop_t *loop;              /* the main loop (loops.c: who owns what) */
	struct loops *loops;          /* the main loop and the session loops */
	struct ctl_options opt;
	struct db *db;
	X509 *ca_cert;
	EVP_PKEY *ca_key;
	X509 *server_cert;
	EVP_PKEY *server_key;
	EVP_PKEY *signing_key;        /* Ed25519 image-signing key */
	uint8_t signing_pub[32];
	uint8_t ca_pin[32];
	char ca_pin_str[80];          /* "sha256:<hex>" */
	uint8_t admin_hash[32];       /* SHA-256 of the admin API token */
	uint8_t reader_hash[32];      /* SHA-256 of the read-only token (GET /metrics) */
	bool has_reader;              /* a reader token was made (older states: none) */
	char advertise[300];          /* what token cmdlines carry */
	struct store *store;
	struct guests *guests;
	struct consoles *consoles;    /* guests' consoles (consoles.h) */
	struct boots *boots;          /* boards' last bare-metal boot orders (boots.h) */
	struct scrub *scrub;          /* the background scrub (scrub.h) */
	struct events *events;        /* the event log (events.h) */
	struct fleet *fleet;          /* the other controllers on the store (fleet.h) */
	char db_path[4096];
	struct agentlink *agents;
	struct chunk_cache *chunk_cache; /* verified chunks in RAM (chunk_cache.h), for streaming */
	struct tpmv_cas *tpm_cas;     /* TPM manufacturer CAs (tpm_ca.h); NULL: boards' TPMs not used */
	size_t tpm_ca_files;
	struct api *api;
	struct api *boot;
	unsigned boot_downloads;      /* firmware files being sent (api_boot.c) */
	uv_signal_t sigterm, sigint, sighup;
	struct ctl_config *config;    /* the settings in use (config.h), for SIGHUP */
	struct ctl_notify *notify;    /* readiness and status for systemd (notify.h) */
	struct pending_rate *pending_rate; /* token-less enrollments per address (pending.h) */
};

/* Paths inside the state folder. */
#define CTL_DB_FILE "skyroot.db"
/* The store on PostgreSQL instead (sql.h): its URI, one line, 0600 (it may
 * carry a password).  Written by init --db; a copy of the folder carries it
 * to another controller of the same fleet. */
#define CTL_DB_URL "store.url"
#define CTL_CA_CERT "ca.crt"
#define CTL_CA_KEY "ca.key"
#define CTL_SERVER_CERT "server.crt"
#define CTL_SERVER_KEY "server.key"
#define CTL_SIGNING_KEY "signing.key"
#define CTL_ADMIN_HASH "admin.token.sha256"
#define CTL_SKYCTL_CONF "skyctl.conf"
#define CTL_READER_HASH "reader.token.sha256"

/* state.c: `skyrootd init` and loading the state folder on `run`. */
/* db_url: a postgresql:// URI for the store, which must be an empty
 * database (-EADDRINUSE: it holds a store already); NULL: SQLite in DIR. */
int ctl_state_init(const char *dir, const char *const *sans, const char *api_listen, const char *db_url,
		   char *admin_token_out, size_t outlen);
int ctl_state_load(struct controller *ctl);
void ctl_state_unload(struct controller *ctl);
/* SIGHUP: re-read what can change while running (the admin and reader
 * token hashes).  Keeps the old values on failure. */
int ctl_state_reload(struct controller *ctl);
/* SIGHUP: read the server certificate and key again; they must fit
 * together and the certificate must be signed by the CA.  0, or a negative
 * errno with "FILE: what is wrong" in err; nothing written on failure. */
int ctl_state_read_server(const struct controller *ctl, X509 **cert, EVP_PKEY **key, char *err, size_t errlen);
/* A new read-only token for GET /metrics (replacing any earlier one): its
 * hash goes to DIR/reader.token.sha256 (0600), the token to token_out
 * (shown once).  A running controller takes it on SIGHUP. */
int ctl_state_reader_token(const char *dir, char *token_out, size_t outlen);

/* api.c: the HTTPS API port. */
int api_start(struct controller *ctl, const struct sockaddr *addr);
/* The plain-HTTP listener that serves only /boot/ (network boot). */
int api_start_boot(struct controller *ctl, const struct sockaddr *addr);
void api_stop(struct api *api);
/* New connections use ssl (the API port; NULL on the boot port: plain
 * HTTP), the limits lim and the keep-alive timeout.  Accepts NULL. */
void api_set_tls(struct api *api, SSL_CTX *ssl, const struct listener_limits *lim, uint64_t keepalive_ms);

#endif
