/* Admission for every listening port: see listener.h. */
#include "controller/skyrootd/listener.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"

#define LISTENER_BACKLOG 4096
#define LISTENER_BUCKETS 1024
#define LISTENER_PEER_MAX 64
/* Refusals are logged at most this often per listener, with a count. */
#define LISTENER_LOG_EVERY_MS 10000

const struct listener_limits listener_agent_defaults = {
	.conns_max = 20000,
	.per_addr_max = 64,
	.per_addr_until_admitted = true,
	.fd_reserve = 128,
	.handshake_ms = 10000,
	.admit_ms = 30000,
};

const struct listener_limits listener_api_defaults = {
	.conns_max = 512,
	.per_addr_max = 32,
	.fd_reserve = 32,
	.handshake_ms = 10000,
	.admit_ms = 10000,
};

const struct listener_limits listener_boot_defaults = {
	.conns_max = 256,
	.per_addr_max = 16,
	.fd_reserve = 96,
	.admit_ms = 10000,
};

/* Connections from one address, while it has any. */
struct listener_addr {
	struct listener_addr *next;
	unsigned n;
	char key[LISTENER_PEER_MAX];
};

struct listener_slot {
	struct listener *l;
	struct sky_tls *t;
	struct listener_addr *addr;   /* counted against it; NULL once not */
	bool admitted;
	char peer[LISTENER_PEER_MAX];
};

struct listener {
	uv_tcp_t tcp;
	char name[32];
	SSL_CTX *ssl_ctx;
	const struct sky_tls_cbs *cbs;
	struct listener_limits lim;
	listener_attach_fn attach;
	listener_handoff_fn handoff;  /* instead of attach: the descriptor goes */
	void *ctx;
	struct listener_addr *buckets[LISTENER_BUCKETS];
	unsigned nconns;
	bool stopping, closed;
	uint64_t refused;             /* since the last log line */
	uint64_t logged_at;
};

/* Every listener's connections together (one loop), and what the process
 * had open before any: an estimate of descriptors in use that costs no
 * system call per connection. */
static unsigned listener_open_total;
static unsigned listener_base_fds;
static uint64_t listener_fd_limit;

static unsigned listener__count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 32;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static unsigned listener__bucket(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return h % LISTENER_BUCKETS;
}

static struct listener_addr *listener__addr(struct listener *l, const char *key, bool create)
{
	unsigned b = listener__bucket(key);
	struct listener_addr *a;

	for (a = l->buckets[b]; a; a = a->next)
		if (strcmp(a->key, key) == 0)
			return a;
	if (!create)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	snprintf(a->key, sizeof(a->key), "%s", key);
	a->next = l->buckets[b];
	l->buckets[b] = a;
	return a;
}

static void listener__addr_put(struct listener *l, struct listener_addr *a)
{
	struct listener_addr **pp;

	if (--a->n > 0)
		return;
	for (pp = &l->buckets[listener__bucket(a->key)]; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	free(a);
}

static void listener__maybe_free(struct listener *l)
{
	if (!l->stopping || !l->closed || l->nconns > 0)
		return;
	SSL_CTX_free(l->ssl_ctx);
	free(l);
}

/* Fewer descriptors than the reserve would remain with fd open. */
static bool listener__fds_short(const struct listener *l, int fd)
{
	uint64_t used = listener_base_fds + listener_open_total;

	if (fd >= 0 && (uint64_t)fd + 1 > used)
		used = (uint64_t)fd + 1;
	return used + l->lim.fd_reserve > listener_fd_limit;
}

static void listener__refused(struct listener *l, const char *peer, const char *why)
{
	uint64_t now = uv_now(l->tcp.loop);

	l->refused++;
	if (l->logged_at && now - l->logged_at < LISTENER_LOG_EVERY_MS)
		return;
	log_warn("%s: refused a connection from %s: %s (%llu refused in the last %llu s)", l->name, peer, why,
		 (unsigned long long)l->refused,
		 (unsigned long long)(l->logged_at ? (now - l->logged_at) / 1000 : 0));
	l->refused = 0;
	l->logged_at = now;
}

static void listener__peer(uv_tcp_t *tcp, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	snprintf(out, outlen, "?");
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)&ss, out, outlen);
	else if (ss.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&ss, out, outlen);
}

/* Why the connection may not stay, or NULL. */
static const char *listener__check(struct listener *l, uv_tcp_t *tcp, const char *peer,
				   struct listener_addr **addr)
{
	uv_os_fd_t fd = -1;
	struct listener_addr *a;

	if (l->stopping)
		return "shutting down";
	if (l->nconns >= l->lim.conns_max)
		return "the port's connection cap is reached";
	uv_fileno((uv_handle_t *)tcp, &fd);
	if (listener__fds_short(l, fd))
		return "too few file descriptors left (the process's RLIMIT_NOFILE)";
	*addr = NULL;
	if (!l->lim.per_addr_max)
		return NULL;
	a = listener__addr(l, peer, false);
	if (a && a->n >= l->lim.per_addr_max)
		return "the address has its share of connections";
	a = a ? a : listener__addr(l, peer, true);
	if (!a)
		return "out of memory";
	*addr = a;
	return NULL;
}

static void listener__tcp_free(uv_handle_t *h)
{
	free(h);
}

/* The slot of an admitted connection, counted; NULL (refused, logged). */
static struct listener_slot *listener__slot(struct listener *l, uv_tcp_t *tcp)
{
	struct listener_addr *addr = NULL;
	struct listener_slot *slot;
	char peer[LISTENER_PEER_MAX];
	const char *why;

	listener__peer(tcp, peer, sizeof(peer));
	why = listener__check(l, tcp, peer, &addr);
	slot = why ? NULL : calloc(1, sizeof(*slot));
	if (!slot) {
		listener__refused(l, peer, why ? why : "out of memory");
		return NULL;
	}
	slot->l = l;
	slot->addr = addr;
	if (addr)
		addr->n++;
	snprintf(slot->peer, sizeof(slot->peer), "%s", peer);
	l->nconns++;
	listener_open_total++;
	return slot;
}

/* Accept and admit here; the connection's descriptor goes to the owner. */
static void listener__handoff(struct listener *l, uv_stream_t *server)
{
	struct listener_slot *slot = NULL;
	uv_tcp_t *tcp = malloc(sizeof(*tcp));
	uv_os_fd_t fd = -1;
	int dupfd = -1;

	if (!tcp || uv_tcp_init(server->loop, tcp) < 0) {
		free(tcp);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)tcp) == 0)
		slot = listener__slot(l, tcp);
	/* The handle is this loop's: the descriptor goes on as a copy. */
	if (slot && (uv_fileno((uv_handle_t *)tcp, &fd) < 0 || (dupfd = dup(fd)) < 0)) {
		listener__refused(l, slot->peer, "cannot pass the connection on");
		listener_release(slot);
		slot = NULL;
	}
	uv_close((uv_handle_t *)tcp, listener__tcp_free);
	if (slot && l->handoff(l->ctx, dupfd, slot, &l->lim) < 0) {
		listener__refused(l, slot->peer, "out of memory");
		close(dupfd);
		listener_release(slot);
	}
}

static void listener__on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct listener_slot *slot;
	struct sky_tls *t;
	int r;

	if (status < 0) {
		listener__refused(l, "?", uv_strerror(status));
		return;
	}
	if (l->handoff) {
		listener__handoff(l, server);
		return;
	}
	/* A connection that cannot be admitted is accepted and closed at
	 * once: the backlog never fills with them. */
	r = sky_tls_new(server->loop, l->ssl_ctx, SKY_TLS_SERVER, l->cbs, NULL, &t);
	if (r < 0)
		return;
	r = uv_accept(server, sky_tls_stream(t));
	if (r < 0) {
		sky_tls_abort(t, r);
		return;
	}
	slot = listener__slot(l, sky_tls_tcp(t));
	if (!slot) {
		sky_tls_abort(t, -ECONNREFUSED);
		return;
	}
	slot->t = t;
	if (l->ssl_ctx)
		sky_tls_set_handshake_deadline(t, l->lim.handshake_ms);
	sky_tls_set_deadline(t, l->lim.admit_ms);
	r = l->attach(l->ctx, t, slot);
	if (r < 0) {
		listener_release(slot);
		sky_tls_abort(t, r);
		return;
	}
	uv_tcp_nodelay(sky_tls_tcp(t), 1);
	r = sky_tls_start(t);
	if (r < 0)
		sky_tls_abort(t, r); /* the owner's on_close releases the slot */
}

int listener_start(uv_loop_t *loop, const char *name, const struct sockaddr *addr, SSL_CTX *ssl_ctx,
		   const struct sky_tls_cbs *cbs, const struct listener_limits *lim, listener_attach_fn attach,
		   void *ctx, struct listener **out)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct rlimit rl;
	int r;

	if (!l)
		return -ENOMEM;
	if (ssl_ctx && SSL_CTX_up_ref(ssl_ctx) != 1) {
		free(l);
		return -ENOMEM;
	}
	if (!listener_fd_limit) {
		listener_base_fds = listener__count_fds();
		listener_fd_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ?
					    (uint64_t)rl.rlim_cur : 1u << 20;
	}
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->ssl_ctx = ssl_ctx;
	l->cbs = cbs;
	l->lim = *lim;
	l->attach = attach;
	l->ctx = ctx;
	r = uv_tcp_init(loop, &l->tcp);
	if (r < 0) {
		SSL_CTX_free(ssl_ctx);
		free(l);
		return r;
	}
	l->tcp.data = l;
	r = uv_tcp_bind(&l->tcp, addr, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->tcp, LISTENER_BACKLOG, listener__on_connection);
	if (r < 0) {
		listener_stop(l);
		return r;
	}
	*out = l;
	return 0;
}

int listener_start_handoff(uv_loop_t *loop, const char *name, const struct sockaddr *addr,
			   const struct listener_limits *lim, listener_handoff_fn handoff, void *ctx,
			   struct listener **out)
{
	static const struct sky_tls_cbs none;
	int r = listener_start(loop, name, addr, NULL, &none, lim, NULL, ctx, out);

	if (r == 0)
		(*out)->handoff = handoff;
	return r;
}

static void listener__closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	l->closed = true;
	listener__maybe_free(l);
}

void listener_stop(struct listener *l)
{
	if (!l || l->stopping)
		return;
	l->stopping = true;
	uv_close((uv_handle_t *)&l->tcp, listener__closed);
}

void listener_set(struct listener *l, SSL_CTX *ssl_ctx, const struct listener_limits *lim)
{
	if (!l)
		return;
	if (l->ssl_ctx && ssl_ctx && SSL_CTX_up_ref(ssl_ctx) == 1) {
		SSL_CTX_free(l->ssl_ctx);
		l->ssl_ctx = ssl_ctx;
	}
	l->lim = *lim;
}

void listener_admit(struct listener_slot *slot)
{
	if (!slot || slot->admitted)
		return;
	slot->admitted = true;
	if (slot->t) /* a handed-off connection: its owner does it */
		sky_tls_set_deadline(slot->t, 0);
	if (slot->addr && slot->l->lim.per_addr_until_admitted) {
		listener__addr_put(slot->l, slot->addr);
		slot->addr = NULL;
	}
}

const char *listener_peer(const struct listener_slot *slot)
{
	return slot ? slot->peer : "-";
}

void listener_release(struct listener_slot *slot)
{
	struct listener *l;

	if (!slot)
		return;
	l = slot->l;
	if (slot->addr)
		listener__addr_put(l, slot->addr);
	l->nconns--;
	listener_open_total--;
	free(slot);
	listener__maybe_free(l);
}
