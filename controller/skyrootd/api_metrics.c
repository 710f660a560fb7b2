/* What monitoring reads: GET /metrics in the Prometheus text format
 * (0.0.4), with the reader or the admin token, and GET /readyz.
 *
 * The counters live in metrics.c; the gauges are read here at scrape
 * time: boards by state (the store and the agent link's sessions), guests
 * by state, the store's size on disk and its images. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/chunk_cache.h"
#include "controller/skyrootd/fleet.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/metrics.h"
#include "controller/skyrootd/store.h"

/* A scrape's text: far above what 48 routes and a few gauges make. */
#define API_METRICS_MAX (1u << 20)
#define API_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* As api_json_board names them ("state" of a board). */
enum { BOARD_ONLINE, BOARD_OFFLINE, BOARD_BAREMETAL, BOARD_STATES };
static const char *const board_states[BOARD_STATES] = { "online", "offline", "baremetal" };
/* As guests.h names them. */
static const char *const guest_states[] = { "pending", "fetching", "running", "stopped", "failed" };

struct api_metrics_counts {
	struct controller *ctl;
	uint64_t boards[BOARD_STATES];
	uint64_t guests[SKY_ARRAY_SIZE(guest_states)];
	uint64_t images;
};

static int api_metrics__board(void *ctx, const struct db_board *b)
{
	struct api_metrics_counts *n = ctx;
	bool online = fleet_board_online(n->ctl->fleet, b->id, NULL);

	n->boards[online ? BOARD_ONLINE : b->baremetal ? BOARD_BAREMETAL : BOARD_OFFLINE]++;
	return 0;
}

static int api_metrics__guest(void *ctx, const struct guest *g)
{
	struct api_metrics_counts *n = ctx;

	for (size_t i = 0; i < SKY_ARRAY_SIZE(guest_states); i++)
		if (strcmp(g->state, guest_states[i]) == 0)
			n->guests[i]++;
	return 0;
}

static int api_metrics__image(void *ctx, const struct store_image *img)
{
	struct api_metrics_counts *n = ctx;

	(void)img;
	n->images++;
	return 0;
}

/* The store's files on disk: the database and its write-ahead log.  A
 * store that is no file here (a PostgreSQL server's) has no such figure:
 * false, and /metrics leaves the gauge out. */
static bool api_metrics__store_bytes(const struct controller *ctl, uint64_t *total)
{
	char wal[sizeof(ctl->db_path) + 8];
	struct stat sb;

	*total = 0;
	if (stat(ctl->db_path, &sb) < 0 || !S_ISREG(sb.st_mode))
		return false;
	*total += (uint64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", ctl->db_path);
	if (stat(wal, &sb) == 0)
		*total += (uint64_t)sb.st_size;
	return true;
}

static void api_metrics__gauges(struct metrics_text *t, const struct api_metrics_counts *n, bool have_bytes,
				uint64_t store_bytes)
{
	metrics_text_family(t, "skyroot_build_info", "gauge", "the skyrootd version serving");
	metrics_text_u64(t, "skyroot_build_info", (const char *const[]){ "version", SKY_VERSION, NULL }, 1);
	metrics_text_family(t, "skyroot_boards", "gauge", "enrolled boards by state (as GET /v1/boards shows it)");
	for (size_t i = 0; i < BOARD_STATES; i++)
		metrics_text_u64(t, "skyroot_boards", (const char *const[]){ "state", board_states[i], NULL },
				 n->boards[i]);
	metrics_text_family(t, "skyroot_guests", "gauge", "guests by state");
	for (size_t i = 0; i < SKY_ARRAY_SIZE(guest_states); i++)
		metrics_text_u64(t, "skyroot_guests", (const char *const[]){ "state", guest_states[i], NULL },
				 n->guests[i]);
	if (have_bytes) {
		metrics_text_family(t, "skyroot_store_bytes", "gauge", "bytes of the store on disk (database and WAL)");
		metrics_text_u64(t, "skyroot_store_bytes", NULL, store_bytes);
	}
	metrics_text_family(t, "skyroot_images", "gauge", "images in the store");
	metrics_text_u64(t, "skyroot_images", NULL, n->images);
}

/* The chunk buffer pool of streaming (agentlink_priv.h has its bound). */
static void api_metrics__pool(struct metrics_text *t, const struct agentlink_pool_stats *p)
{
	static const struct { const char *name, *help; } fam[] = {
		{ "skyroot_chunk_pool_in_use_bytes", "bytes of chunk buffers holding chunks on their way to boards" },
		{ "skyroot_chunk_pool_allocated_bytes", "bytes of chunk buffers allocated (in use or kept for reuse)" },
		{ "skyroot_chunk_pool_peak_bytes", "the most bytes of chunk buffers ever allocated at once" },
		{ "skyroot_chunk_pool_limit_bytes", "the bytes of chunk buffers the pool never allocates past" },
	};
	const uint64_t v[] = { p->in_use_bytes, p->allocated_bytes, p->peak_bytes, p->limit_bytes };

	for (size_t i = 0; i < SKY_ARRAY_SIZE(fam); i++) {
		metrics_text_family(t, fam[i].name, "gauge", fam[i].help);
		metrics_text_u64(t, fam[i].name, NULL, v[i]);
	}
}

/* The cache of verified chunks (chunk_cache.h): all zero when it is off. */
static void api_metrics__cache(struct metrics_text *t, const struct chunk_cache_stats *c)
{
	static const struct { const char *name, *type, *help; } fam[] = {
		{ "skyroot_chunk_cache_hits_total", "counter", "chunks sent to boards from the chunk cache" },
		{ "skyroot_chunk_cache_misses_total", "counter",
		  "chunks the chunk cache did not hold (read from the store, then kept)" },
		{ "skyroot_chunk_cache_evictions_total", "counter",
		  "chunks the chunk cache let go, least recently used first, to stay in its bound" },
		{ "skyroot_chunk_cache_rejected_total", "counter",
		  "chunks read from the store that did not hash to their digest: never cached" },
		{ "skyroot_chunk_cache_bytes", "gauge", "bytes of chunks the chunk cache holds" },
		{ "skyroot_chunk_cache_entries", "gauge", "chunks the chunk cache holds" },
		{ "skyroot_chunk_cache_limit_bytes", "gauge", "the chunk cache's bound in bytes (0: off)" },
	};
	const uint64_t v[] = { c->hits, c->misses, c->evictions, c->rejected, c->bytes, c->entries, c->limit };

	for (size_t i = 0; i < SKY_ARRAY_SIZE(fam); i++) {
		metrics_text_family(t, fam[i].name, fam[i].type, fam[i].help);
		metrics_text_u64(t, fam[i].name, NULL, v[i]);
	}
}

static void api__metrics(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct api_metrics_counts n = { .ctl = ctl };
	struct agentlink_pool_stats pool;
	struct chunk_cache_stats cache;
	struct metrics_text t;
	uint64_t store_bytes;
	bool have_bytes;
	int r;

	r = db_board_list(ctl->db, api_metrics__board, &n);
	if (r == 0)
		r = guests_list(ctl->guests, api_metrics__guest, &n);
	if (r == 0)
		r = store_image_list(ctl->store, api_metrics__image, &n);
	if (r < 0) {
		api_reply_internal(rep, r, "read the fleet for /metrics");
		return;
	}
	metrics_text_init(&t, API_METRICS_MAX);
	have_bytes = api_metrics__store_bytes(ctl, &store_bytes);
	api_metrics__gauges(&t, &n, have_bytes, store_bytes);
	agentlink_pool_stats(ctl->agents, &pool);
	api_metrics__pool(&t, &pool);
	chunk_cache_stats(ctl->chunk_cache, &cache);
	api_metrics__cache(&t, &cache);
	metrics_text_counters(&t, ctl->agents ? agentlink_online_count(ctl->agents) : 0);
	if (t.err) {
		metrics_text_free(&t);
		api_reply_internal(rep, t.err, "write /metrics");
		return;
	}
	http_respond_raw(call->conn, 200, API_METRICS_TYPE, (const char *)t.buf.data, t.buf.len);
	metrics_text_free(&t);
	rep->status = 0; /* answered */
}

/* Ready: the store is open and both ports listen (not while starting or
 * stopping). */
static void api__readyz(struct api_call *call, struct api_reply *rep)
{
	const struct controller *ctl = call->ctl;
	bool store = ctl->db && ctl->store, agents = ctl->agents != NULL, api = ctl->api == call->api;
	bool ready = store && agents && api;

	api_reply_ok(rep, ready ? 200 : 503,
		     json_pack("{s:s, s:s, s:b, s:b, s:b}", "status", ready ? "ok" : "unavailable", "version",
			       SKY_VERSION, "store", store, "agent_port", agents, "api_port", api));
	if (!ready)
		rep->headers = "Retry-After: 1\r\n";
}

const struct api_route api_metrics_routes[] = {
	{ .path = "/metrics", API_ALLOW("GET"), .reader = true, .get = api__metrics,
	  .get_s = { .media = "text/plain" },
	  .summary = "Prometheus metrics (text)" },
	{ .path = "/readyz", API_ALLOW("GET"), .get = api__readyz, .get_s = { .request = NULL, .answer = API_MSG(ready) },
	  .summary = "Readiness (no token)" },
	{ .path = NULL },
};
