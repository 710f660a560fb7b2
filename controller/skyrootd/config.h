/* skyrootd's settings: the `run` flags and the config file (default
 * /etc/skyroot/skyrootd.conf) with the same keys, read through one option
 * table (common/conf.h: docs/config.md); flags win over the file.  SIGHUP
 * reads them again and applies what can change while running. */
#ifndef SKY_CONTROLLER_CONFIG_H
#define SKY_CONTROLLER_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define CTL_CONFIG_DEFAULT "/etc/skyroot/skyrootd.conf"

struct controller;
struct ctl_options;

struct ctl_config {
	const char *config;            /* --config FILE (NULL: CTL_CONFIG_DEFAULT when it exists) */
	const char *state, *db, *agent_listen, *api_listen, *advertise, *firmware, *boot_listen;
	uint64_t cert_ttl, image_max;  /* seconds, bytes */
	uint64_t scrub_rate;           /* bytes a second; 0 = off */
	uint64_t chunk_cache;          /* bytes; 0 = off; CHUNK_CACHE_AUTO: the engine's default */
	int log_level;                 /* enum sky_log_level */
	uint64_t agent_conns, agent_per_addr, api_conns, api_per_addr, boot_conns, boot_per_addr,
		boot_downloads, threads;
	uint64_t enroll_timeout, handshake_timeout, request_timeout, keepalive_timeout; /* seconds */
	uint64_t audit_keep;           /* rows of the audit log kept */
	uint64_t pending_max, pending_ttl; /* pending boards kept at once; seconds each */
	uint64_t tpm_quote_interval;   /* seconds between fresh quotes (al_quote.c); 0 = off */
	uint64_t events_keep, events_watchers, events_watch_buffer; /* the event log (events.h) */
	const char *mac_prefix;        /* "02:53:4b": guests' NICs' MACs (networks.h) */
	/* Where it came from: the file read (NULL: none), the block its
	 * string values point into, and the flags (read again on reload). */
	const char *file;
	char *store;
	int argc;
	char **argv;
};

/* Defaults, then the config file, then the flags of `skyrootd run` (argv[0]
 * is "run"; argv must live as long as c).  0; 1 for --help; -EINVAL with
 * the message in err (a usage error, or "FILE:LINE: ..."), or the error
 * reading a file given with --config.  c is written only on success. */
int ctl_config_load(struct ctl_config *c, int argc, char **argv, char *err, size_t errlen);
void ctl_config_free(struct ctl_config *c);
/* The options part of `skyrootd run`'s usage. */
void ctl_config_usage(FILE *f);
/* The daemon's options from c (strings point into c). */
void ctl_config_options(const struct ctl_config *c, struct ctl_options *o);

/* The check of an ADDR:PORT flag (a sky_opt callback; ctx is a const
 * char **), for other commands' tables too. */
int ctl_config_check_listen(void *ctx, const char *value, char *err, size_t errlen);

/* SIGHUP: read the file and the flags again; on success apply the log
 * level, the certificate lifetime, the ports' limits and deadlines (new
 * connections), the boot download cap, the chunk cache's bound and a
 * re-read server certificate and key (new connections), and log what
 * changed and what needs a restart.
 * A bad file or certificate changes nothing and is logged.  the scrub's rate; ctl->config is
 * the config in use.  0 or a negative errno (logged already). */
int ctl_config_reload(struct controller *ctl);

#endif
