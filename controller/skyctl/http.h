/* skyctl's one HTTP client: the only file that talks libcurl.  A call is
 * prepared (URL, headers, body, limits), performed (interruptibly when an
 * answer is followed) and its outcome reported: every failure is said on
 * stderr with what to do, and comes back as a negative errno. */
#ifndef SKY_SKYCTL_HTTP_H
#define SKY_SKYCTL_HTTP_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"

/* curl's global state and one handle, kept in ctl->http; prints what is
 * wrong.  skyctl_http_close(NULL) is fine. */
int skyctl_http_open(struct skyctl *ctl);
void skyctl_http_close(struct skyctl *ctl);

/* A request body read from a file descriptor as curl sends it: never more
 * than curl's upload buffer in memory. */
struct skyctl_upload {
	const char *what;    /* the file's name for messages ("stdin" for '-') */
	int fd;
	off_t start;         /* where the body starts in fd; -1 when fd cannot seek */
	int64_t size;        /* bytes to send; -1 when unknown (chunked encoding) */
	uint64_t sent;       /* out: bytes read from fd and handed to curl */
	int read_errno;      /* out: read() failed with this */
	int shrunk;          /* out: the file ended before size bytes */
	struct skyctl_meter meter;
};

/* Where the body of a raw answer goes (a guest's console): its bytes are
 * written to fd as they come, nothing is held.  An error answer's JSON body
 * is read as usual.  With follow, the answer may last for ever: no stall
 * timeout, and SIGINT ends it (the call then succeeds). */
struct skyctl_sink {
	int fd;
	int follow;
	const char *what;          /* for messages: "the console" */
	uint64_t written;          /* out: bytes written to fd */
	int write_errno;           /* out: writing to fd failed with this */
	int interrupted;           /* out: SIGINT ended it */
	/* Instead of fd, when set: each piece as it comes; 0 goes on, > 0
	 * ends the answer there (the call succeeds, stopped is set), < 0 is
	 * a failure (-errno) that the taker has said. */
	int (*take)(void *ud, const char *data, size_t len);
	void *ud;
	int stopped;               /* out: take ended it */
	long status;               /* out: the answer's HTTP status; 0 when none came */
};

/* key=value of a query string; the value is escaped here. */
struct skyctl_query {
	const char *key;           /* NULL ends a list */
	const char *value;
};

struct skyctl_req {
	const char *method;
	const char *path;          /* "/v1/images" */
	const char *id;            /* escaped into one more path segment; NULL for none */
	const char *tail;          /* after the id, as is: "/verify"; NULL for none */
	const struct skyctl_query *query; /* NULL for none */
	json_t *body;              /* a JSON body, or NULL */
	struct skyctl_upload *upload; /* a streamed application/octet-stream body, or NULL */
	struct skyctl_sink *sink;  /* a 2xx answer's body goes here as it is; or NULL */
	const char *if_match;      /* an If-Match header's value (an etag), or NULL */
};

/* METHOD controller+path[/id][tail][?query].  On a 2xx answer with a JSON
 * body, *out gets it (the caller owns it; out may be NULL with a sink). */
int skyctl_call(struct skyctl *ctl, const struct skyctl_req *req, json_t **out);
/* Answers from somewhere other than the network, for a harness that runs
 * skyctl's commands on made-up answers (tests/fuzz/fuzz_skyctl_answers.c):
 * with fn set, skyctl_call prepares each request as usual, then takes the
 * HTTP status and body fn gives instead of performing it, and reads them as
 * it reads the controller's (the same size limit, judgment and messages).
 * fn returning < 0 is a controller that cannot be reached.  A call with an
 * upload or a sink fails as a transfer error.  fn NULL: the network again.
 * ctl->http must be open. */
typedef int (*skyctl_http_answer_fn)(void *ud, const struct skyctl_req *req, long *status, const char **body,
				     size_t *len);
void skyctl_http_answer_from(struct skyctl *ctl, skyctl_http_answer_fn fn, void *ud);

/* The common case: METHOD path[/id] with an optional JSON body. */
int skyctl_request(struct skyctl *ctl, const char *method, const char *path, const char *id,
		   json_t *body, json_t **out);

#endif
