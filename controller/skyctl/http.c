/* skyctl's HTTP client over libcurl; see http.h.  It speaks skyrootd's
 * REST API (docs/api.md) over HTTPS, checking the controller's certificate
 * against the configured CA file only, and reads answers with jansson. */
#include "controller/skyctl/http.h"

#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SKY_VERSION
#error "SKY_VERSION must be defined by the build (meson does it)"
#endif

#define HTTP_MAX_RESPONSE ((size_t)64 * 1024 * 1024) /* bytes of one API answer */
#define HTTP_MAX_URL 8192            /* bytes of a request's URL */
#define HTTP_CONNECT_TIMEOUT 10L     /* seconds */
#define HTTP_STALL_TIMEOUT 30L       /* seconds without a byte before giving up */
#define HTTP_UPLOAD_LOW_SPEED 1024L  /* an upload slower than this (bytes/s)... */
#define HTTP_UPLOAD_LOW_TIME 60L     /* ...for this many seconds is given up */
#define HTTP_UPLOAD_BUFFER (512L * 1024) /* bytes curl reads from the file at a time */
#define HTTP_KEEPALIVE_IDLE 30L      /* seconds before a quiet followed stream is probed */
#define HTTP_KEEPALIVE_INTVL 15L

struct skyctl_http {
	CURL *curl;
	skyctl_http_answer_fn answer; /* NULL: the network */
	void *answer_ud;
};

/* An answer held whole, up to HTTP_MAX_RESPONSE. */
struct http_body {
	char *data;
	size_t len, cap;
	int too_large;
	int no_memory;
};

/* A raw answer's way to its sink; error answers go to the body. */
struct http_sink {
	struct skyctl_sink *k;
	CURL *curl;
	struct http_body *errors;
};

/* One call, from prepare to report. */
struct http_call {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char *url;
	char *payload;
	struct curl_slist *headers;
	struct http_body body;
	struct http_sink sink;
	CURLcode cc;
	long status;
};

int skyctl_http_open(struct skyctl *ctl)
{
	struct skyctl_http *h;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		skyctl_err("cannot initialise libcurl");
		return -ENOMEM;
	}
	h = calloc(1, sizeof(*h));
	if (h != NULL)
		h->curl = curl_easy_init();
	if (h == NULL || h->curl == NULL) {
		skyctl_err("cannot initialise libcurl: out of memory");
		free(h);
		curl_global_cleanup();
		return -ENOMEM;
	}
	ctl->http = h;
	return 0;
}

void skyctl_http_close(struct skyctl *ctl)
{
	if (ctl == NULL || ctl->http == NULL)
		return;
	curl_easy_cleanup(ctl->http->curl);
	free(ctl->http);
	ctl->http = NULL;
	curl_global_cleanup();
}

/* ---- receiving ----------------------------------------------------------- */

static size_t http__body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_body *b = userdata;
	size_t n = size * nmemb; /* curl: size is always 1 */

	if (n > HTTP_MAX_RESPONSE - b->len) {
		b->too_large = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > HTTP_MAX_RESPONSE + 1)
			cap = HTTP_MAX_RESPONSE + 1;
		char *d = realloc(b->data, cap);
		if (d == NULL) {
			b->no_memory = 1;
			return 0;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static size_t http__sink_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_sink *s = userdata;
	struct skyctl_sink *k = s->k;
	size_t n = size * nmemb, done = 0;
	long status = 0;

	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299)
		return http__body_write(ptr, size, nmemb, s->errors);
	if (k->take != NULL) {
		int r = k->take(k->ud, ptr, n);
		if (r < 0)
			k->write_errno = -r;
		else if (r > 0)
			k->stopped = 1;
		else
			k->written += n;
		return r == 0 ? n : 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	while (done < n) {
		ssize_t w = write(k->fd, ptr + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			k->write_errno = errno;
			return 0; /* curl stops with CURLE_WRITE_ERROR */
		}
		done += (size_t)w;
		k->written += (uint64_t)w;
	}
	return n;
}

/* ---- uploading ----------------------------------------------------------- */

static size_t http__upload_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct skyctl_upload *u = userdata;
	size_t want = size * nitems;
	ssize_t n;

	if (u->size >= 0) {
		/* A file that grows while it is sent is cut at the size announced. */
		if (u->sent >= (uint64_t)u->size)
			return 0;
		if (want > (uint64_t)u->size - u->sent)
			want = (size_t)((uint64_t)u->size - u->sent);
	}
	do
		n = read(u->fd, buf, want);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		u->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	if (n == 0 && u->size >= 0) {
		u->shrunk = 1;
		return CURL_READFUNC_ABORT;
	}
	u->sent += (uint64_t)n;
	return (size_t)n;
}

/* curl rewinds the body when it has to send it again (e.g. after a 417). */
static int http__upload_seek(void *userdata, curl_off_t offset, int origin)
{
	struct skyctl_upload *u = userdata;

	if (origin != SEEK_SET || u->start < 0 || offset < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (lseek(u->fd, u->start + (off_t)offset, SEEK_SET) < 0)
		return CURL_SEEKFUNC_FAIL;
	u->sent = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static void http__upload_draw(struct skyctl_upload *u, uint64_t ulnow, int force)
{
	struct skyctl_progress p = {
		/* With chunked encoding curl's count may include the chunk framing. */
		.done = u->size >= 0 ? ulnow : u->sent,
		.total = u->size > 0 ? (uint64_t)u->size : 0,
	};

	skyctl_meter_draw(&u->meter, &p, force);
}

static int http__upload_xferinfo(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
				 curl_off_t ulnow)
{
	http__upload_draw(clientp, ulnow > 0 ? (uint64_t)ulnow : 0, 0);
	return 0;
}

static int http__setup_upload(CURL *c, struct skyctl_upload *u)
{
	/* POST with a read callback; curl sends "Expect: 100-continue" for a
	 * body over 1 MiB and waits for the controller's "100 Continue", so a
	 * refused upload (name taken, too large, no space) costs no bytes. */
	if (curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_READFUNCTION, http__upload_read) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_READDATA, u) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, http__upload_seek) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SEEKDATA, u) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)u->size) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_BUFFER) != CURLE_OK ||
	    /* No overall timeout, for large images; but not a stalled one. */
	    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, HTTP_UPLOAD_LOW_SPEED) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, HTTP_UPLOAD_LOW_TIME) != CURLE_OK)
		return -ENOTSUP;
	if (u->meter.on &&
	    (curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http__upload_xferinfo) != CURLE_OK ||
	     curl_easy_setopt(c, CURLOPT_XFERINFODATA, u) != CURLE_OK ||
	     curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK))
		return -ENOTSUP;
	return 0;
}

/* ---- prepare ------------------------------------------------------------- */

static int http__add_header(struct curl_slist **headers, const char *h)
{
	struct curl_slist *l = curl_slist_append(*headers, h);

	if (l == NULL)
		return -ENOMEM;
	*headers = l;
	return 0;
}

/* Append s (escaped when escape) to buf of len bytes holding *n. */
static int http__url_add(CURL *c, char *buf, size_t len, size_t *n, const char *s, int escape)
{
	char *e = escape ? curl_easy_escape(c, s, 0) : NULL;
	const char *src = escape ? e : s;
	size_t sl;

	if (src == NULL)
		return -ENOMEM;
	sl = strlen(src);
	if (sl >= len - *n) {
		curl_free(e);
		return -ENAMETOOLONG;
	}
	memcpy(buf + *n, src, sl + 1);
	*n += sl;
	curl_free(e);
	return 0;
}

/* controller + path[/id][tail][?key=value&...] */
static int http__url(struct skyctl *ctl, const struct skyctl_req *req, CURL *c, char **out)
{
	char *url = malloc(HTTP_MAX_URL);
	size_t n = 0;
	int r;

	if (url == NULL)
		return -ENOMEM;
	url[0] = '\0';
	r = http__url_add(c, url, HTTP_MAX_URL, &n, ctl->conf.controller, 0);
	if (r == 0)
		r = http__url_add(c, url, HTTP_MAX_URL, &n, req->path, 0);
	if (r == 0 && req->id != NULL) {
		r = http__url_add(c, url, HTTP_MAX_URL, &n, "/", 0);
		if (r == 0)
			r = http__url_add(c, url, HTTP_MAX_URL, &n, req->id, 1);
	}
	if (r == 0 && req->tail != NULL)
		r = http__url_add(c, url, HTTP_MAX_URL, &n, req->tail, 0);
	for (const struct skyctl_query *q = req->query; r == 0 && q != NULL && q->key != NULL; q++) {
		r = http__url_add(c, url, HTTP_MAX_URL, &n, q == req->query ? "?" : "&", 0);
		if (r == 0)
			r = http__url_add(c, url, HTTP_MAX_URL, &n, q->key, 0);
		if (r == 0)
			r = http__url_add(c, url, HTTP_MAX_URL, &n, "=", 0);
		if (r == 0)
			r = http__url_add(c, url, HTTP_MAX_URL, &n, q->value, 1);
	}
	if (r < 0) {
		free(url);
		return r;
	}
	*out = url;
	return 0;
}

static int http__headers(struct skyctl *ctl, const struct skyctl_req *req, struct http_call *call)
{
	char auth[SKYCTL_CONF_TOKEN_MAX + 32];
	struct curl_slist **h = &call->headers;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctl->conf.token);
	if (http__add_header(h, auth) < 0 ||
	    http__add_header(h, req->sink != NULL ? "Accept: text/plain, application/json"
						  : "Accept: application/json") < 0)
		return -ENOMEM;
	if (req->body != NULL) {
		call->payload = json_dumps(req->body, JSON_COMPACT);
		if (call->payload == NULL || http__add_header(h, "Content-Type: application/json") < 0)
			return -ENOMEM;
	}
	if (req->if_match != NULL) {
		char im[160];
		/* An etag is printable ASCII; anything else would split the header. */
		for (const char *p = req->if_match; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				return -EINVAL;
		if (snprintf(im, sizeof(im), "If-Match: %s", req->if_match) >= (int)sizeof(im) ||
		    http__add_header(h, im) < 0)
			return -EINVAL;
	}
	if (req->upload != NULL && (http__add_header(h, "Content-Type: application/octet-stream") < 0 ||
				    (req->upload->size < 0 && http__add_header(h, "Transfer-Encoding: chunked") < 0)))
		return -ENOMEM;
	return 0;
}

/* How the answer is taken: held whole (bounded, and never slow), or passed
 * on to a sink as it comes (not held, so no size limit; a followed one may
 * be quiet for hours: no stall timeout, but TCP keepalive notices a dead
 * controller). */
static int http__answer_opts(CURL *c, const struct skyctl_req *req, struct http_call *call)
{
	struct skyctl_sink *k = req->sink;

	if (k == NULL)
		return curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
		       curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, HTTP_STALL_TIMEOUT) != CURLE_OK ||
		       curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_RESPONSE) != CURLE_OK ||
		       curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http__body_write) != CURLE_OK ||
		       curl_easy_setopt(c, CURLOPT_WRITEDATA, &call->body) != CURLE_OK ? -ENOTSUP : 0;
	call->sink = (struct http_sink){ .k = k, .curl = c, .errors = &call->body };
	if (curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http__sink_write) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &call->sink) != CURLE_OK)
		return -ENOTSUP;
	if (!k->follow)
		return curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
		       curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, HTTP_STALL_TIMEOUT) != CURLE_OK ? -ENOTSUP : 0;
	return curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
	       curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, HTTP_KEEPALIVE_IDLE) != CURLE_OK ||
	       curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, HTTP_KEEPALIVE_INTVL) != CURLE_OK ? -ENOTSUP : 0;
}

/* Everything curl needs for req; prints what is wrong. */
static int http__prepare(struct skyctl *ctl, const struct skyctl_req *req, struct http_call *call)
{
	CURL *c = ctl->http->curl;
	int r;

	curl_easy_reset(c);
	call->curl = c;
	r = http__url(ctl, req, c, &call->url);
	if (r == -ENAMETOOLONG) {
		skyctl_err("the request's URL would be longer than %d bytes; use shorter names", HTTP_MAX_URL);
		return r;
	}
	if (r == 0)
		r = http__headers(ctl, req, call);
	if (r < 0) {
		skyctl_err("out of memory");
		return r;
	}
	if (curl_easy_setopt(c, CURLOPT_URL, call->url) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
#else
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS) != CURLE_OK ||
#endif
	    /* Only the configured CA: no system CA directory as well. */
	    curl_easy_setopt(c, CURLOPT_CAINFO, ctl->conf.ca) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CAPATH, (char *)NULL) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, HTTP_CONNECT_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, call->errbuf) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, call->headers) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, "skyctl/" SKY_VERSION) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method) != CURLE_OK) {
		skyctl_err("cannot set up the HTTPS request: %s; is libcurl built with HTTPS support?",
			   call->errbuf[0] ? call->errbuf : "an option was refused");
		return -ENOTSUP;
	}
	if (http__answer_opts(c, req, call) < 0) {
		skyctl_err("cannot set up the HTTPS request: this libcurl refused an option");
		return -ENOTSUP;
	}
	if (call->payload != NULL &&
	    (curl_easy_setopt(c, CURLOPT_POSTFIELDS, call->payload) != CURLE_OK ||
	     curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(call->payload)) != CURLE_OK)) {
		skyctl_err("cannot set up the HTTPS request body");
		return -ENOTSUP;
	}
	if (req->upload != NULL && http__setup_upload(c, req->upload) < 0) {
		skyctl_err("cannot set up the upload: this libcurl refused an option; skyctl needs libcurl 7.62 "
			   "or later");
		return -ENOTSUP;
	}
	return 0;
}

/* ---- perform ------------------------------------------------------------- */

/* SIGINT while a followed answer is read: a byte in a pipe that the
 * transfer loop polls with curl's sockets. */
static int http_sigint_pipe[2] = { -1, -1 };

static void http__on_sigint(int sig)
{
	int saved = errno;
	ssize_t w;

	w = write(http_sigint_pipe[1], "", 1);
	(void)w; /* the pipe is full: a byte is already there */
	errno = saved;
}

/* curl_easy_perform(), but SIGINT ends the transfer at once and sets
 * *interrupted. */
static CURLcode http__perform_interruptible(CURL *c, int *interrupted)
{
	struct sigaction sa = { .sa_handler = http__on_sigint }, old;
	CURLcode result = CURLE_OK;
	CURLMcode mc;
	CURLM *multi;
	int running = 1;

	*interrupted = 0;
	multi = curl_multi_init();
	if (multi == NULL)
		return CURLE_OUT_OF_MEMORY;
	if (pipe2(http_sigint_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		curl_multi_cleanup(multi);
		return CURLE_OUT_OF_MEMORY;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	mc = curl_multi_add_handle(multi, c);
	while (mc == CURLM_OK) {
		struct curl_waitfd wfd = { .fd = http_sigint_pipe[0], .events = CURL_WAIT_POLLIN };
		CURLMsg *msg;
		int left;

		mc = curl_multi_perform(multi, &running);
		if (mc != CURLM_OK)
			break;
		if (running == 0) {
			while ((msg = curl_multi_info_read(multi, &left)) != NULL)
				if (msg->msg == CURLMSG_DONE)
					result = msg->data.result;
			break;
		}
		mc = curl_multi_poll(multi, &wfd, 1, 1000, NULL);
		if (mc == CURLM_OK && (wfd.revents & CURL_WAIT_POLLIN)) {
			*interrupted = 1;
			break;
		}
	}
	if (mc != CURLM_OK)
		result = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_RECV_ERROR;
	curl_multi_remove_handle(multi, c);
	curl_multi_cleanup(multi);
	sigaction(SIGINT, &old, NULL);
	close(http_sigint_pipe[0]);
	close(http_sigint_pipe[1]);
	http_sigint_pipe[0] = http_sigint_pipe[1] = -1;
	return result;
}

/* An answer from skyctl_http_answer_from's fn, read as curl hands over
 * the controller's: the body through the same write callback and limit. */
static void http__perform_given(struct skyctl_http *h, const struct skyctl_req *req, struct http_call *call)
{
	const char *body = NULL;
	size_t len = 0;

	call->status = 0;
	if (req->sink != NULL || req->upload != NULL) {
		call->cc = CURLE_UNSUPPORTED_PROTOCOL;
		return;
	}
	if (h->answer(h->answer_ud, req, &call->status, &body, &len) < 0) {
		call->status = 0;
		call->cc = CURLE_COULDNT_CONNECT;
		return;
	}
	call->cc = CURLE_OK;
	if (len > 0 && http__body_write((char *)body, 1, len, &call->body) != len)
		call->cc = CURLE_WRITE_ERROR;
}

static void http__perform(struct skyctl_http *h, const struct skyctl_req *req, struct http_call *call)
{
	struct skyctl_sink *k = req->sink;

	if (h->answer != NULL) {
		http__perform_given(h, req, call);
		return;
	}
	if (k != NULL && k->follow)
		call->cc = http__perform_interruptible(call->curl, &k->interrupted);
	else
		call->cc = curl_easy_perform(call->curl);
	curl_easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &call->status);
	if (req->upload != NULL) {
		if (call->cc == CURLE_OK && call->status >= 200 && call->status <= 299)
			http__upload_draw(req->upload, req->upload->sent, 1);
		skyctl_meter_end(&req->upload->meter);
	}
}

/* ---- report -------------------------------------------------------------- */

static void http__report_curl(struct skyctl *ctl, const struct http_call *call)
{
	const char *url = ctl->conf.controller;
	const char *why = call->errbuf[0] != '\0' ? call->errbuf : curl_easy_strerror(call->cc);

	if (call->body.too_large || call->cc == CURLE_FILESIZE_EXCEEDED) {
		skyctl_err("the controller's answer is larger than %zu MiB; skyctl does not read more",
			   HTTP_MAX_RESPONSE >> 20);
		return;
	}
	if (call->body.no_memory) {
		skyctl_err("out of memory reading the controller's answer");
		return;
	}
	switch (call->cc) {
	case CURLE_COULDNT_CONNECT:
		skyctl_err("cannot reach controller at %s: %s (is skyrootd running?)", url, why);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		skyctl_err("cannot resolve the host of %s: %s; check %s", url, why, ctl->src[SKYCTL_SRC_CONTROLLER]);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		skyctl_err("the controller at %s did not answer in time: %s (is skyrootd running, and %s "
			   "reachable?)", url, why, url);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		skyctl_err("cannot verify the controller at %s: %s; check that %s (%s) is this controller's CA "
			   "and that the URL's host is a name in its certificate (skyrootd init --san)",
			   url, why, ctl->conf.ca, ctl->src[SKYCTL_SRC_CA]);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		skyctl_err("cannot use %s as CA: %s; %s must name the PEM ca.crt that 'skyrootd init' made",
			   ctl->conf.ca, why, ctl->src[SKYCTL_SRC_CA]);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		skyctl_err("TLS with the controller at %s failed: %s; is it the controller's API port "
			   "(default 7444)?", url, why);
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
		skyctl_err("the controller at %s did not answer properly: %s; is it the controller's API port "
			   "(default 7444)?", url, why);
		break;
	default:
		skyctl_err("request to the controller at %s failed: %s", url, why);
		break;
	}
}

static void http__report_status(struct skyctl *ctl, long status, json_t *answer)
{
	json_t *e = json_object_get(answer, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *message = json_string_value(json_object_get(e, "message"));

	fputs("skyctl: ", stderr);
	if (status == 401) {
		fprintf(stderr, "the controller at %s refused the API token (HTTP 401", ctl->conf.controller);
		if (message != NULL) {
			fputs(": ", stderr);
			skyctl_put_clean(stderr, message);
		}
		fprintf(stderr, "); check %s: it must be the admin token that 'skyrootd init' wrote "
				"into skyctl.conf\n", ctl->src[SKYCTL_SRC_TOKEN]);
		return;
	}
	if (message == NULL) {
		fprintf(stderr, "the controller at %s answered HTTP %ld without an error message; "
				"is it the controller's API port? See the controller's log\n",
			ctl->conf.controller, status);
		return;
	}
	skyctl_put_clean(stderr, message);
	fprintf(stderr, " (HTTP %ld", status);
	if (code != NULL) {
		fputc(' ', stderr);
		skyctl_put_clean(stderr, code);
	}
	fputs(")\n", stderr);
}

/* Why an upload failed, when it was the file's fault or a stall; 0 when
 * it was something else. */
static int http__report_upload(struct skyctl *ctl, const struct http_call *call, const struct skyctl_upload *u)
{
	const char *url = ctl->conf.controller;
	curl_off_t up = 0;

	if (u->read_errno != 0) {
		skyctl_err("cannot read %s: %s (after %llu bytes); nothing was stored", u->what,
			   strerror(u->read_errno), (unsigned long long)u->sent);
		return -u->read_errno;
	}
	if (u->shrunk) {
		skyctl_err("%s ended after %llu of its %lld bytes: it changed while it was sent; nothing was "
			   "stored, push it again once nothing writes to it", u->what, (unsigned long long)u->sent,
			   (long long)u->size);
		return -EIO;
	}
	/* What curl sent, not what it read ahead from the file. */
	curl_easy_getinfo(call->curl, CURLINFO_SIZE_UPLOAD_T, &up);
	if (call->cc == CURLE_OPERATION_TIMEDOUT && u->size > 0 && up >= (curl_off_t)u->size) {
		skyctl_err("the controller at %s did not answer within %ld s of receiving the whole image; "
			   "see its log, and 'skyctl image list' for whether the image was stored",
			   url, HTTP_UPLOAD_LOW_TIME);
		return -ETIMEDOUT;
	}
	if ((call->cc == CURLE_SEND_ERROR || call->cc == CURLE_RECV_ERROR) && up > 0) {
		char of[48] = "";
		if (u->size >= 0)
			snprintf(of, sizeof(of), " of %lld", (long long)u->size);
		skyctl_err("the controller at %s closed the connection after %lld%s bytes of the upload, "
			   "without an answer; it may have refused the image (over its --image-max, or no space "
			   "left in its state folder): see its log; nothing was stored", url, (long long)up, of);
		return -ECONNRESET;
	}
	if (call->cc == CURLE_OPERATION_TIMEDOUT && up > 0) {
		skyctl_err("the upload to the controller at %s stalled (under %ld bytes/s for %ld s) after %lld "
			   "bytes; nothing was stored; check the network and the controller's log, then push again",
			   url, HTTP_UPLOAD_LOW_SPEED, HTTP_UPLOAD_LOW_TIME, (long long)up);
		return -ETIMEDOUT;
	}
	return 0;
}

/* What came of the call: the JSON answer into *out, or a message and a
 * negative errno. */
static int http__report(struct skyctl *ctl, const struct skyctl_req *req, struct http_call *call, json_t **out)
{
	struct skyctl_sink *k = req->sink;
	long status = call->status;
	json_t *answer = NULL;
	json_error_t jerr;
	int r;

	if (k != NULL)
		k->status = status;
	if (k != NULL && (k->interrupted || k->stopped))
		return 0; /* Ctrl-C, or the taker had what it wanted: not an error */
	if (k != NULL && k->write_errno != 0) {
		/* A taker said what failed itself (a line it could not read,
		 * its own output). */
		if (k->take == NULL)
			skyctl_err("cannot write %s to the output: %s", k->what, strerror(k->write_errno));
		return -k->write_errno;
	}
	if (k != NULL && call->cc != CURLE_OK && status >= 200 && status <= 299) {
		skyctl_err("the controller at %s broke off %s after %llu bytes: %s; is it still running? "
			   "Run the command again", ctl->conf.controller, k->what, (unsigned long long)k->written,
			   call->errbuf[0] != '\0' ? call->errbuf : curl_easy_strerror(call->cc));
		return -EIO;
	}
	if (call->body.len > 0 && !call->body.too_large)
		answer = json_loadb(call->body.data, call->body.len, 0, &jerr);
	if (call->cc != CURLE_OK) {
		if (req->upload != NULL && (r = http__report_upload(ctl, call, req->upload)) < 0)
			goto fail;
		/* A controller that refuses an upload answers before it has read
		 * the body and may then close: its answer beats curl's send error. */
		if (!(status >= 300 && json_is_object(json_object_get(answer, "error")))) {
			http__report_curl(ctl, call);
			r = -EIO;
			goto fail;
		}
	}
	if (status < 200 || status > 299) {
		http__report_status(ctl, status, answer);
		r = status == 401 ? -EACCES : status == 404 ? -ENOENT : -EIO;
		goto fail;
	}
	if (k != NULL) {
		json_decref(answer);
		return 0;
	}
	if (answer == NULL) {
		if (call->body.len == 0)
			skyctl_err("the controller at %s answered HTTP %ld with an empty body; "
				   "is it the controller's API port?", ctl->conf.controller, status);
		else
			skyctl_err("the controller at %s answered HTTP %ld with a body that is not JSON (%s); "
				   "is it the controller's API port?", ctl->conf.controller, status, jerr.text);
		return -EPROTO;
	}
	*out = answer;
	return 0;

fail:
	json_decref(answer);
	return r;
}

int skyctl_call(struct skyctl *ctl, const struct skyctl_req *req, json_t **out)
{
	struct http_call call = { 0 };
	int r;

	r = http__prepare(ctl, req, &call);
	if (r == 0) {
		http__perform(ctl->http, req, &call);
		r = http__report(ctl, req, &call, out);
	}
	free(call.body.data);
	free(call.payload);
	free(call.url);
	curl_slist_free_all(call.headers);
	return r;
}

void skyctl_http_answer_from(struct skyctl *ctl, skyctl_http_answer_fn fn, void *ud)
{
	ctl->http->answer = fn;
	ctl->http->answer_ud = ud;
}

int skyctl_request(struct skyctl *ctl, const char *method, const char *path, const char *id,
		   json_t *body, json_t **out)
{
	const struct skyctl_req req = { .method = method, .path = path, .id = id, .body = body };

	return skyctl_call(ctl, &req, out);
}
