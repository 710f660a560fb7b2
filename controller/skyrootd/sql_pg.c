/* The PostgreSQL engine (sql.h) over libpq: several controllers on one
 * database.  Statements are server-side prepared once per connection (a
 * unique name each) and run with binary results; '?' and '?N' parameters
 * become $N.  Integers go as text, blobs as binary, text as text.
 *
 * Transactions are READ COMMITTED.  That suffices for the store's
 * check-and-take updates (single-use tokens: UPDATE ... WHERE id = ? AND
 * uses_left > 0): a second UPDATE of a row another open transaction changed
 * waits for that one to end, then evaluates its WHERE again on the row as
 * committed, so of two racing takes of the last use exactly one changes a
 * row.  Code that reads a row and then writes from what it read, without
 * the condition in the UPDATE's WHERE, is not protected and must put it
 * there.
 *
 * Schema migrations of several controllers starting at once on one database
 * are serialized by a session advisory lock: schema_version() takes it
 * (waiting while another controller migrates) before it reads the version,
 * and the connection keeps it through the migration's transactions
 * (begin, exec, set_schema_version, COMMIT); the first statement that is
 * not part of a migration (prepare, step, blob I/O, check) outside a
 * transaction lets it go, and so does closing.  The next controller then
 * reads the version the first one committed.
 *
 * A lost connection (the server stopped, restarted, or cut off) is found
 * by the statement that fails on it (-ENOTCONN) and logged once.  Every
 * later call tries PQreset, at most once a second, and answers -ENOTCONN
 * while the server stays away; the recovery is logged once too.  The
 * connection's session is new after a reset: its settings are set again
 * and each statement, which remembers the generation of the connection it
 * was prepared on, is prepared again by its next step.  A transaction open
 * when the connection went is lost with it: the connection stays "lost"
 * for everything but ROLLBACK (and a COMMIT, which fails) until the
 * caller ends the transaction, so no later statement of it runs outside
 * it on a new session. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "controller/skyrootd/sql.h"

/* pg_type OIDs (catalog/pg_type_d.h is not a client header). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_NAME 19
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_FLOAT8 701
#define OID_BPCHAR 1042
#define OID_VARCHAR 1043
#define OID_NUMERIC 1700

/* The advisory lock key of schema migrations: "skyroot" in ASCII. */
#define PG_SCHEMA_LOCK "32487791676845940"

#define PG_NUM 24 /* an int64 as text, with its NUL */
#define PG_RETRY_MS 1000 /* PQreset at most this often while the server is away */

struct pg {
	struct sql base;
	PGconn *h;
	int64_t changes;
	unsigned long next_name;
	bool readonly;
	bool schema_locked;
	bool durable;     /* synchronous_commit, set again on a new session */
	unsigned gen;     /* bumped by each reset: statements prepared before are gone */
	bool lost;        /* the connection went; logged, not yet back */
	bool tx_lost;     /* ... while a transaction was open: ended by ROLLBACK/COMMIT */
	bool tx_open;     /* a transaction was open after the last command */
	int64_t lost_at;  /* monotonic ms of the loss */
	int64_t tried_at; /* of the last PQreset */
	char *password; /* scrubbed from messages */
	char err[256];
	char sqlstate[6]; /* of the last error */
};

struct pg_stmt {
	struct sql_stmt base;
	char name[24];
	char *text;   /* the statement with $N, to prepare again on a new session */
	unsigned gen; /* of the connection it is prepared on */
	int nparams;
	const char **vals;
	int *lens;
	int *fmts;
	char (*nums)[PG_NUM]; /* bound integers as text */
	char **copies;        /* bound text of a given length, NUL-terminated */
	PGresult *res;
	int row, nrows;
	bool ran, done;
	int bind_err; /* a bind that could not be kept: the next step fails */
	char (*coltext)[PG_NUM]; /* integer columns read as text */
	int ncoltext;
};

static struct pg *P(struct sql *c)
{
	return (struct pg *)c;
}

static struct pg_stmt *PS(struct sql_stmt *s)
{
	return (struct pg_stmt *)s;
}

/* The first line of msg into c->err, the URI's password cut out. */
static void pg_set_err(struct pg *c, const char *msg)
{
	size_t n = strcspn(msg ? msg : "", "\n");
	char *p;

	if (n >= sizeof(c->err))
		n = sizeof(c->err) - 1;
	memcpy(c->err, msg ? msg : "", n);
	c->err[n] = 0;
	if (c->password && c->password[0])
		while ((p = strstr(c->err, c->password)) != NULL)
			memset(p, '*', strlen(c->password));
}

static bool pg_state_in(const char *st, const char *lo, const char *hi)
{
	return strcmp(st, lo) >= 0 && strcmp(st, hi) <= 0;
}

static int64_t pg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The connection is gone: said once, whatever fails on it meanwhile. */
static void pg_lost(struct pg *c)
{
	if (c->tx_open)
		c->tx_lost = true;
	c->tx_open = false;
	if (c->lost)
		return;
	c->lost = true;
	c->lost_at = c->tried_at = pg_now_ms();
	log_error("store: lost the connection to PostgreSQL (%s); calls that need the store fail until it is "
		  "back (a reconnection at most once a second)",
		  c->err[0] ? c->err : "no answer");
}

/* Keep tx_open as the server says after a command on a good connection. */
static void pg_track_tx(struct pg *c)
{
	PGTransactionStatusType t = PQtransactionStatus(c->h);

	if (PQstatus(c->h) == CONNECTION_OK)
		c->tx_open = t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* A failed result (or none) as -errno, its message kept. */
static int pg_fail(struct pg *c, const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	pg_set_err(c, res ? PQresultErrorMessage(res) : PQerrorMessage(c->h));
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st ? st : "");
	if (PQstatus(c->h) != CONNECTION_OK) {
		pg_lost(c);
		return -ENOTCONN;
	}
	if (!st)
		return res ? -EIO : -ENOMEM;
	if (strncmp(st, "23", 2) == 0)
		return -EEXIST;
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
		return -EBUSY;
	if (strcmp(st, "57014") == 0)
		return -ETIMEDOUT;
	if (strncmp(st, "08", 2) == 0 || pg_state_in(st, "57P01", "57P03")) {
		pg_lost(c);
		return -ENOTCONN;
	}
	if (strcmp(st, "53100") == 0)
		return -ENOSPC;
	return -EIO;
}

/* 0 when res is a success (it is cleared unless keep), else -errno. */
static int pg_result(struct pg *c, PGresult *res, bool keep)
{
	ExecStatusType t = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int r = 0;

	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK && t != PGRES_EMPTY_QUERY)
		r = pg_fail(c, res);
	pg_track_tx(c);
	if (!keep || r < 0)
		PQclear(res);
	return r;
}

/* The session's settings, on a new connection or after a reset. */
static int pg_session(struct pg *c)
{
	int r = pg_result(c, PQexec(c->h, c->durable ? "SET synchronous_commit = on" : "SET synchronous_commit = off"),
			  false);

	if (r == 0 && c->readonly)
		r = pg_result(c, PQexec(c->h, "SET default_transaction_read_only = on"), false);
	return r;
}

/* 0 when the connection can take a statement; after a loss, a reset (at
 * most once a second) that brings it back, else -ENOTCONN.  A transaction
 * lost with the connection keeps it lost until the caller ends it. */
static int pg_ready(struct pg *c)
{
	int64_t now;

	if (!c->lost && PQstatus(c->h) == CONNECTION_OK)
		return 0;
	if (!c->lost) { /* found bad before any statement failed on it */
		pg_set_err(c, PQerrorMessage(c->h));
		pg_lost(c);
		return -ENOTCONN;
	}
	if (c->tx_lost)
		return -ENOTCONN;
	now = pg_now_ms();
	if (now - c->tried_at < PG_RETRY_MS)
		return -ENOTCONN;
	c->tried_at = now;
	PQreset(c->h);
	if (PQstatus(c->h) != CONNECTION_OK) {
		pg_set_err(c, PQerrorMessage(c->h));
		return -ENOTCONN;
	}
	c->gen++; /* the old session's prepared statements and locks are gone */
	c->schema_locked = false;
	c->tx_open = false;
	c->lost = false;
	if (pg_session(c) < 0) { /* lost again at once, or refused */
		if (!c->lost)
			pg_lost(c);
		return -ENOTCONN;
	}
	log_info("store: the connection to PostgreSQL is back after %.1f s", (double)(now - c->lost_at) / 1000.0);
	return 0;
}

/* ROLLBACK (not TO a savepoint), COMMIT or END: the end of a transaction. */
static bool pg_ends_tx(const char *q)
{
	while (*q == ' ')
		q++;
	if (strncasecmp(q, "ROLLBACK", 8) == 0)
		return strncasecmp(q, "ROLLBACK TO", 11) != 0;
	return strncasecmp(q, "COMMIT", 6) == 0 || strncasecmp(q, "END", 3) == 0;
}

static int pg_exec(struct sql *cc, const char *q)
{
	struct pg *c = P(cc);
	int r;

	if (c->tx_lost) {
		/* the transaction went with the connection: a ROLLBACK of it
		 * succeeds, a COMMIT fails (nothing of it is kept), and either
		 * lets the next statement reconnect */
		if (!pg_ends_tx(q))
			return -ENOTCONN;
		c->tx_lost = false;
		return strncasecmp(q + strspn(q, " "), "ROLLBACK", 8) == 0 ? 0 : -ENOTCONN;
	}
	r = pg_ready(c);
	if (r < 0)
		return r;
	r = pg_result(c, PQexec(c->h, q), false);
	if (r == -ENOTCONN && pg_ends_tx(q))
		c->tx_lost = false; /* lost at its end: over, not kept */
	return r;
}

static void pg_unlock_schema(struct pg *c)
{
	if (!c->schema_locked || c->lost || PQtransactionStatus(c->h) != PQTRANS_IDLE)
		return;
	c->schema_locked = false;
	pg_exec(&c->base, "SELECT pg_advisory_unlock(" PG_SCHEMA_LOCK ")");
}

static void pg_close(struct sql *c)
{
	PQfinish(P(c)->h); /* the session's locks and statements go with it */
	if (P(c)->password)
		explicit_bzero(P(c)->password, strlen(P(c)->password));
	free(P(c)->password);
	free(c);
}

static char *pg_password(const char *target)
{
	PQconninfoOption *o = PQconninfoParse(target, NULL), *i;
	char *pw = NULL;

	for (i = o; i && i->keyword; i++)
		if (strcmp(i->keyword, "password") == 0 && i->val)
			pw = strdup(i->val);
	PQconninfoFree(o);
	return pw;
}

static void pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int pg_open(const char *target, unsigned flags, struct sql **out)
{
	/* Later keywords override earlier ones: the URI's own settings win
	 * over these defaults, the application name is always ours.  The
	 * deadlines: 5 s to connect; a server that stops answering (unsent
	 * data unacknowledged for 30 s, or an idle link without keepalive
	 * answers for 10 + 3 * 5 s) is a lost connection, not a hang. */
	const char *const keys[] = {"connect_timeout", "tcp_user_timeout", "keepalives_idle", "keepalives_interval",
				    "keepalives_count", "dbname", "application_name", NULL};
	const char *const vals[] = {"5", "30000", "10", "5", "3", target, "skyrootd", NULL};
	struct pg *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->base.ops = &sql_pg_ops;
	c->readonly = flags & SQL_OPEN_READONLY;
	c->durable = true;
	c->password = pg_password(target);
	c->h = PQconnectdbParams(keys, vals, 1);
	if (!c->h) {
		r = -ENOMEM;
		goto fail;
	}
	if (PQstatus(c->h) != CONNECTION_OK) {
		pg_set_err(c, PQerrorMessage(c->h));
		r = -ENOTCONN;
		goto fail;
	}
	/* The server's NOTICEs ("relation ... already exists, skipping")
	 * are not the operator's business: libpq would print them on
	 * stderr.  Kept on the connection across PQreset. */
	PQsetNoticeProcessor(c->h, pg_notice, NULL);
	r = pg_session(c);
	if (r < 0)
		goto fail;
	*out = &c->base;
	return 0;
fail:
	pg_close(&c->base);
	return r;
}

/* q with '?' and '?N' as $N outside quoted strings, identifiers and line
 * comments; *n the number of parameters (the highest index).  The store's
 * SQL has no dollar quoting, E'' escapes or block comments: a '?' in one of
 * those would be taken for a parameter. */
static char *pg_rewrite(const char *q, int *n)
{
	/* a '?' becomes at most "$32766": six bytes for one */
	size_t len = strlen(q);
	char *out = len < SIZE_MAX / 8 ? malloc(len * 6 + 1) : NULL, *o = out;
	int max = 0;

	if (!out)
		return NULL;
	for (const char *p = q; *p;) {
		if (*p == '\'' || *p == '"') {
			/* to the closing quote; a doubled quote ('' or "") is
			 * two strings back to back, the same to copy */
			char quote = *p;
			*o++ = *p++;
			while (*p && *p != quote)
				*o++ = *p++;
			if (*p)
				*o++ = *p++;
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				*o++ = *p++;
		} else if (*p == '?') {
			int idx;
			p++;
			if (isdigit((unsigned char)*p)) {
				char *end;
				long v = strtol(p, &end, 10);
				idx = v < 1 || v > 32766 ? 0 : (int)v;
				p = end;
			} else {
				idx = max + 1;
			}
			if (idx < 1 || idx > 32766) { /* PostgreSQL takes 65535 */
				free(out);
				return NULL;
			}
			if (idx > max)
				max = idx;
			o += sprintf(o, "$%d", idx);
		} else {
			*o++ = *p++;
		}
	}
	*o = 0;
	*n = max;
	return out;
}

static void pg_clear_result(struct pg_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	free(s->coltext);
	s->coltext = NULL;
	s->ncoltext = 0;
	s->row = -1;
	s->nrows = 0;
	s->ran = s->done = false;
}

static void pg_finalize(struct sql_stmt *st)
{
	struct pg_stmt *s = PS(st);
	struct pg *c = P(st->c);
	char q[48];

	pg_clear_result(s);
	/* In an aborted transaction DEALLOCATE would fail: the statement
	 * then stays until the session ends (its name is never reused). */
	if (s->name[0] && s->gen == c->gen && !c->lost && PQstatus(c->h) == CONNECTION_OK &&
	    (PQtransactionStatus(c->h) == PQTRANS_IDLE || PQtransactionStatus(c->h) == PQTRANS_INTRANS)) {
		snprintf(q, sizeof(q), "DEALLOCATE %s", s->name);
		pg_exec(st->c, q);
	}
	for (int i = 0; s->copies && i < s->nparams; i++)
		free(s->copies[i]);
	free(s->copies);
	free(s->text);
	free(s->vals);
	free(s->lens);
	free(s->fmts);
	free(s->nums);
	free(s);
}

static int pg_prepare(struct sql *cc, const char *q, struct sql_stmt **out)
{
	struct pg *c = P(cc);
	struct pg_stmt *s;
	char *text;
	int n = 0, r;

	r = c->tx_lost ? -ENOTCONN : pg_ready(c);
	if (r < 0)
		return r;
	pg_unlock_schema(c);
	text = pg_rewrite(q, &n);
	if (!text)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		free(text);
		return -ENOMEM;
	}
	s->base.c = cc;
	s->row = -1;
	s->nparams = n;
	if (n) {
		s->vals = calloc((size_t)n, sizeof(*s->vals));
		s->lens = calloc((size_t)n, sizeof(*s->lens));
		s->fmts = calloc((size_t)n, sizeof(*s->fmts));
		s->nums = calloc((size_t)n, sizeof(*s->nums));
		s->copies = calloc((size_t)n, sizeof(*s->copies));
		if (!s->vals || !s->lens || !s->fmts || !s->nums || !s->copies) {
			free(text);
			pg_finalize(&s->base);
			return -ENOMEM;
		}
	}
	snprintf(s->name, sizeof(s->name), "sky_%lu", ++c->next_name);
	s->text = text;
	s->gen = c->gen;
	r = pg_result(c, PQprepare(c->h, s->name, text, n, NULL), false);
	if (r < 0) {
		s->name[0] = 0; /* nothing to deallocate */
		pg_finalize(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

static void pg_reset(struct sql_stmt *st)
{
	struct pg_stmt *s = PS(st);

	pg_clear_result(s);
	s->bind_err = 0;
	for (int i = 0; i < s->nparams; i++) {
		free(s->copies[i]);
		s->copies[i] = NULL;
		s->vals[i] = NULL;
		s->lens[i] = 0;
		s->fmts[i] = 0;
	}
}

/* The slot of parameter idx (1-based), or -1 outside the statement's. */
static int pg_slot(struct pg_stmt *s, int idx)
{
	if (idx < 1 || idx > s->nparams)
		return -1;
	free(s->copies[idx - 1]);
	s->copies[idx - 1] = NULL;
	return idx - 1;
}

static void pg_bind_int64(struct sql_stmt *st, int idx, int64_t v)
{
	struct pg_stmt *s = PS(st);
	int i = pg_slot(s, idx);

	if (i < 0)
		return;
	snprintf(s->nums[i], PG_NUM, "%" PRId64, v);
	s->vals[i] = s->nums[i];
	s->fmts[i] = 0;
}

static void pg_bind_text(struct sql_stmt *st, int idx, const char *v, int len)
{
	struct pg_stmt *s = PS(st);
	int i = pg_slot(s, idx);

	if (i < 0)
		return;
	s->fmts[i] = 0;
	s->vals[i] = v;
	/* Text parameters are NUL-terminated strings to libpq: a length
	 * that ends before the NUL takes a copy. */
	if (v && len >= 0) {
		s->copies[i] = strndup(v, (size_t)len);
		s->vals[i] = s->copies[i];
		if (!s->copies[i])
			s->bind_err = -ENOMEM;
	}
}

static void pg_bind_blob(struct sql_stmt *st, int idx, const void *v, size_t len)
{
	struct pg_stmt *s = PS(st);
	int i = pg_slot(s, idx);

	if (i < 0)
		return;
	/* zero bytes: an empty blob, not NULL */
	s->vals[i] = len ? v : "";
	s->lens[i] = len > INT32_MAX ? 0 : (int)len;
	if (len > INT32_MAX) /* more than libpq can send */
		s->bind_err = -EINVAL;
	s->fmts[i] = 1;
}

static void pg_bind_null(struct sql_stmt *st, int idx)
{
	struct pg_stmt *s = PS(st);
	int i = pg_slot(s, idx);

	if (i >= 0)
		s->vals[i] = NULL;
}

static bool pg_is_write(const char *tag)
{
	return strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 || strncmp(tag, "DELETE", 6) == 0 ||
	       strncmp(tag, "MERGE", 5) == 0;
}

static int pg_step(struct sql_stmt *st)
{
	struct pg_stmt *s = PS(st);
	struct pg *c = P(st->c);
	PGresult *res;
	int r;

	if (!s->ran) {
		s->ran = true;
		r = c->tx_lost ? -ENOTCONN : pg_ready(c);
		if (r == 0 && s->gen != c->gen) {
			/* prepared on a session that is gone: again, a new name */
			snprintf(s->name, sizeof(s->name), "sky_%lu", ++c->next_name);
			r = pg_result(c, PQprepare(c->h, s->name, s->text, s->nparams, NULL), false);
			if (r == 0)
				s->gen = c->gen;
		}
		if (r < 0) {
			s->done = true;
			return r;
		}
		pg_unlock_schema(c);
		if (s->bind_err) {
			s->done = true;
			return s->bind_err;
		}
		res = PQexecPrepared(c->h, s->name, s->nparams, s->vals, s->lens, s->fmts, 1);
		r = pg_result(c, res, true);
		if (r < 0) {
			s->done = true;
			return r;
		}
		s->res = res;
		s->nrows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
		if (pg_is_write(PQcmdStatus(res)))
			c->changes = strtoll(PQcmdTuples(res), NULL, 10);
		s->row = -1;
	}
	if (s->done || ++s->row >= s->nrows) {
		s->done = true;
		return SQL_DONE;
	}
	return SQL_ROW;
}

/* The value of column col of the current row, or NULL (no row, no such
 * column, SQL NULL). */
static const char *pg_val(struct pg_stmt *s, int col, Oid *type, int *len)
{
	if (!s->res || s->done || s->row < 0 || s->row >= s->nrows || col < 0 || col >= PQnfields(s->res) ||
	    PQgetisnull(s->res, s->row, col))
		return NULL;
	*type = PQftype(s->res, col);
	*len = PQgetlength(s->res, s->row, col);
	return PQgetvalue(s->res, s->row, col);
}

static bool pg_col_null(struct sql_stmt *st, int col)
{
	Oid t;
	int n;

	return pg_val(PS(st), col, &t, &n) == NULL;
}

static uint64_t pg_be(const char *v, int n)
{
	uint64_t x = 0;

	for (int i = 0; i < n; i++)
		x = x << 8 | (uint8_t)v[i];
	return x;
}

/* The integer part of a binary NUMERIC: ndigits, weight, sign, dscale
 * (16 bits each), then base-10000 digits; saturates at the int64 range. */
static int64_t pg_numeric(const char *v, int len)
{
	int nd, weight, sign;
	int64_t x = 0;

	if (len < 8)
		return 0;
	nd = (int16_t)pg_be(v, 2);
	weight = (int16_t)pg_be(v + 2, 2);
	sign = (int)pg_be(v + 4, 2);
	if (nd < 0 || len < 8 + 2 * nd || sign == 0xC000) /* NaN */
		return 0;
	for (int i = 0; i <= weight; i++) {
		int64_t d = i < nd ? (int64_t)pg_be(v + 8 + 2 * i, 2) : 0;
		if (x > (INT64_MAX - d) / 10000)
			return sign == 0x4000 ? INT64_MIN : INT64_MAX;
		x = x * 10000 + d;
	}
	return sign == 0x4000 ? -x : x;
}

static int64_t pg_col_int64(struct sql_stmt *st, int col)
{
	Oid t = 0;
	int n = 0;
	const char *v = pg_val(PS(st), col, &t, &n);
	double d;
	uint64_t u;

	if (!v)
		return 0;
	switch (t) {
	case OID_INT8:
		return n == 8 ? (int64_t)pg_be(v, 8) : 0;
	case OID_INT4:
		return n == 4 ? (int32_t)pg_be(v, 4) : 0;
	case OID_INT2:
		return n == 2 ? (int16_t)pg_be(v, 2) : 0;
	case OID_BOOL:
		return n == 1 && v[0] ? 1 : 0;
	case OID_NUMERIC:
		return pg_numeric(v, n);
	case OID_FLOAT8:
		if (n != 8)
			return 0;
		u = pg_be(v, 8);
		memcpy(&d, &u, sizeof(d));
		return d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
	case OID_TEXT:
	case OID_VARCHAR:
	case OID_BPCHAR:
	case OID_NAME:
		return strtoll(v, NULL, 10); /* like SQLite: a leading number */
	default:
		return 0;
	}
}

static bool pg_is_int(Oid t)
{
	return t == OID_INT8 || t == OID_INT4 || t == OID_INT2 || t == OID_BOOL || t == OID_NUMERIC ||
	       t == OID_FLOAT8;
}

/* Columns whose binary form is their bytes. */
static bool pg_is_bytes(Oid t)
{
	return t == OID_TEXT || t == OID_VARCHAR || t == OID_BPCHAR || t == OID_NAME || t == OID_BYTEA;
}

static const char *pg_col_text(struct sql_stmt *st, int col)
{
	struct pg_stmt *s = PS(st);
	Oid t = 0;
	int n = 0;
	const char *v = pg_val(s, col, &t, &n);

	if (!v || pg_is_bytes(t))
		return v; /* text, bytea: the bytes, NUL-terminated by libpq */
	if (!pg_is_int(t))
		return NULL; /* no type the store's SQL reads */
	if (!s->coltext) {
		s->ncoltext = PQnfields(s->res);
		s->coltext = calloc((size_t)s->ncoltext, sizeof(*s->coltext));
		if (!s->coltext)
			return NULL;
	}
	snprintf(s->coltext[col], PG_NUM, "%" PRId64, pg_col_int64(st, col));
	return s->coltext[col];
}

static const void *pg_col_blob(struct sql_stmt *st, int col)
{
	Oid t = 0;
	int n = 0;
	const char *v = pg_val(PS(st), col, &t, &n);

	return v && !pg_is_bytes(t) ? pg_col_text(st, col) : v;
}

static size_t pg_col_bytes(struct sql_stmt *st, int col)
{
	Oid t = 0;
	int n = 0;
	const char *v = pg_val(PS(st), col, &t, &n);

	if (!v || !(pg_is_bytes(t) || pg_is_int(t)))
		return 0;
	if (pg_is_int(t))
		return strlen(pg_col_text(st, col) ? pg_col_text(st, col) : "");
	return n < 0 ? 0 : (size_t)n;
}

static int64_t pg_changes(struct sql *c)
{
	return P(c)->changes;
}

static int pg_begin(struct sql *c)
{
	/* a new transaction: one lost with the connection is over whether or
	 * not its caller said ROLLBACK */
	P(c)->tx_lost = false;
	return pg_exec(c, "BEGIN ISOLATION LEVEL READ COMMITTED");
}

static bool pg_in_tx(struct sql *cc)
{
	struct pg *c = P(cc);

	if (c->tx_lost)
		return true; /* until the caller ends it */
	if (c->lost || PQstatus(c->h) != CONNECTION_OK)
		return false;
	return PQtransactionStatus(c->h) != PQTRANS_IDLE;
}

/* synchronous_commit off: a commit returns before its WAL reaches the
 * disk; a PostgreSQL crash may lose the last commits (never corrupts),
 * which is what SQLite's NORMAL allows too.  On: every commit waits. */
static int pg_set_durable(struct sql *c, bool durable)
{
	P(c)->durable = durable; /* kept for a new session */
	return pg_exec(c, durable ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
}

/* The first column of the first row of q as an int, def when no row. */
static int pg_int_query(struct pg *c, const char *q, int def)
{
	PGresult *res;
	int r = c->tx_lost ? -ENOTCONN : pg_ready(c);

	if (r < 0)
		return r;
	res = PQexecParams(c->h, q, 0, NULL, NULL, NULL, NULL, 0);
	r = pg_result(c, res, true);

	if (r < 0)
		return r;
	if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0)) {
		long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		r = v < 0 || v > INT32_MAX ? -EIO : (int)v;
	} else {
		r = def;
	}
	PQclear(res);
	return r;
}

static int pg_schema_version(struct sql *cc)
{
	struct pg *c = P(cc);
	int r;

	if (c->readonly) {
		/* a reader creates nothing: no table yet is version 0 */
		r = pg_int_query(c, "SELECT version FROM skyroot_schema", 0);
		return r == -EIO && strcmp(c->sqlstate, "42P01") == 0 ? 0 : r; /* undefined table */
	}
	if (!c->schema_locked) {
		r = pg_exec(cc, "SELECT pg_advisory_lock(" PG_SCHEMA_LOCK ")");
		if (r < 0)
			return r;
		c->schema_locked = true;
	}
	r = pg_exec(cc, "CREATE TABLE IF NOT EXISTS skyroot_schema (version BIGINT NOT NULL)");
	if (r < 0)
		return r;
	return pg_int_query(c, "SELECT version FROM skyroot_schema", 0);
}

static int pg_set_schema_version(struct sql *c, int v)
{
	char q[128];

	if (v < 0)
		return -EINVAL;
	snprintf(q, sizeof(q), "DELETE FROM skyroot_schema; INSERT INTO skyroot_schema (version) VALUES (%d)", v);
	return pg_exec(c, q);
}

/* PostgreSQL verifies its own pages as it reads them (a cluster made with
 * data checksums, initdb -k, as tests/pg/pgserver.py does; without them
 * only the page headers); a whole-database scan from a client would be
 * amcheck's work, an extension.  What is left to see is that it answers. */
static int pg_check(struct sql *cc)
{
	struct pg *c = P(cc);
	int r;

	pg_unlock_schema(c);
	r = pg_int_query(c, "SELECT 1", -EIO);
	return r == 1 ? 0 : r < 0 ? r : -EIO;
}

/* table and col come from the code, never from outside: [a-z_]+ only. */
static bool pg_ident(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
			return false;
	return true;
}

/* Read (buf NULL) or write column col of the row of table whose id is id
 * ($1, text; the bytes $2, binary).  table and col are the code's own
 * identifiers, checked all the same. */
static int pg_blob_exec(struct pg *c, const char *table, const char *col, int64_t id, const void *buf, size_t len,
			PGresult **res)
{
	char q[160], num[PG_NUM];
	const char *vals[2] = {num, len ? buf : ""};
	const int lens[2] = {0, (int)len};
	const int fmts[2] = {0, 1};
	int r;

	if (!pg_ident(table) || !pg_ident(col) || len > INT32_MAX)
		return -EINVAL;
	if ((size_t)(buf ? snprintf(q, sizeof(q), "UPDATE %s SET %s = $2 WHERE id = $1", table, col)
			 : snprintf(q, sizeof(q), "SELECT %s FROM %s WHERE id = $1", col, table)) >= sizeof(q))
		return -EINVAL;
	r = c->tx_lost ? -ENOTCONN : pg_ready(c);
	if (r < 0)
		return r;
	pg_unlock_schema(c);
	snprintf(num, sizeof(num), "%" PRId64, id);
	*res = PQexecParams(c->h, q, buf ? 2 : 1, NULL, vals, lens, fmts, 1);
	return pg_result(c, *res, true);
}

static int pg_blob_read(struct sql *cc, const char *table, const char *col, int64_t id, void *buf, size_t size)
{
	struct pg *c = P(cc);
	PGresult *res;
	int r = pg_blob_exec(c, table, col, id, NULL, 0, &res), n;

	if (r < 0)
		return r;
	if (PQntuples(res) < 1 || PQnfields(res) < 1) {
		r = -ENOENT;
	} else {
		n = PQgetisnull(res, 0, 0) ? 0 : PQgetlength(res, 0, 0);
		if (n < 0 || (size_t)n != size)
			r = -EBADMSG;
		else if (size)
			memcpy(buf, PQgetvalue(res, 0, 0), size);
	}
	PQclear(res);
	return r;
}

static int pg_blob_write(struct sql *cc, const char *table, const char *col, int64_t id, const void *buf,
			 size_t len)
{
	struct pg *c = P(cc);
	PGresult *res;
	int r = pg_blob_exec(c, table, col, id, buf ? buf : "", len, &res);

	if (r < 0)
		return r;
	c->changes = strtoll(PQcmdTuples(res), NULL, 10);
	if (c->changes != 1)
		r = -ENOENT;
	PQclear(res);
	return r;
}

static const char *pg_errmsg(struct sql *cc)
{
	struct pg *c = P(cc);

	if (!c->err[0])
		pg_set_err(c, PQerrorMessage(c->h));
	return c->err;
}

const struct sql_ops sql_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.reset = pg_reset,
	.bind_int64 = pg_bind_int64,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.col_null = pg_col_null,
	.col_int64 = pg_col_int64,
	.col_text = pg_col_text,
	.col_blob = pg_col_blob,
	.col_bytes = pg_col_bytes,
	.changes = pg_changes,
	.exec = pg_exec,
	.begin = pg_begin,
	.in_tx = pg_in_tx,
	.set_durable = pg_set_durable,
	.schema_version = pg_schema_version,
	.set_schema_version = pg_set_schema_version,
	.check = pg_check,
	.blob_read = pg_blob_read,
	.blob_write = pg_blob_write,
	.errmsg = pg_errmsg,
};
