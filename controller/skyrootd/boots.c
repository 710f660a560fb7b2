/* Each board's last bare-metal boot order and the board's answer, a row per
 * board in the store's board_boots (boots.h).  Runs on the loop thread. */
#include "controller/skyrootd/boots.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "controller/skyrootd/sql.h"

enum boots_stmt {
	B_SENT,
	B_GET,
	B_ANSWER,
	B_FORGET,
	B_ALL,
	B_COUNT
};

#define BOOTS_COLS "request_id, state, kernel, error, at"

static const char *const boots_sql[B_COUNT] = {
	[B_SENT] = "INSERT INTO board_boots(board_id, request_id, state, kernel, error, at) "
		   "VALUES(?1, ?2, 'sent', ?3, '', ?4) ON CONFLICT (board_id) DO UPDATE SET "
		   "request_id = excluded.request_id, state = 'sent', kernel = excluded.kernel, error = '', "
		   "at = excluded.at",
	[B_GET] = "SELECT " BOOTS_COLS " FROM board_boots WHERE board_id = ?",
	/* sent -> any answer; accepted -> failed; nothing after that.  One
	 * statement: two answers at once settle the order once. */
	[B_ANSWER] = "UPDATE board_boots SET state = ?3, error = ?4, at = ?5 WHERE board_id = ?1 AND request_id = ?2 "
		     "AND (state = 'sent' OR (state = 'accepted' AND ?3 = 'failed')) RETURNING " BOOTS_COLS,
	[B_FORGET] = "DELETE FROM board_boots WHERE board_id = ?",
	[B_ALL] = "SELECT " BOOTS_COLS ", board_id FROM board_boots",
};

struct boots {
	struct sql_stmt *q[B_COUNT];
};

static struct sql_stmt *bq(struct boots *b, enum boots_stmt id)
{
	sql_reset(b->q[id]);
	return b->q[id];
}

int boots_open(struct db *db, struct boots **out)
{
	struct boots *b = calloc(1, sizeof(*b));
	int r = 0;

	if (!b)
		return -ENOMEM;
	for (int i = 0; i < B_COUNT && r == 0; i++)
		r = sql_prepare(db_sql(db), boots_sql[i], &b->q[i]);
	if (r < 0) {
		boots_free(b);
		return r;
	}
	*out = b;
	return 0;
}

void boots_free(struct boots *b)
{
	if (!b)
		return;
	for (int i = 0; i < B_COUNT; i++)
		sql_finalize(b->q[i]);
	free(b);
}

int boots_next_request(struct boots *b, uint64_t *req)
{
	uint64_t v = 0;
	int r;

	(void)b;
	do {
		r = sky_random(&v, sizeof(v));
		if (r < 0)
			return r;
		v &= ((uint64_t)1 << BOOTS_REQUEST_BITS) - 1;
	} while (v == 0);
	*req = v;
	return 0;
}

static int boots_state_parse(const char *s, enum boot_state *out)
{
	static const enum boot_state all[] = { BOOT_STATE_SENT, BOOT_STATE_ACCEPTED, BOOT_STATE_REFUSED,
					       BOOT_STATE_FAILED };

	for (size_t i = 0; s && i < SKY_ARRAY_SIZE(all); i++)
		if (strcmp(s, boots_state_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -EIO; /* not a state of ours: the row is not one we wrote */
}

/* The row s is on (BOOTS_COLS). */
static int boots_read_row(struct sql_stmt *s, struct boot_status *out)
{
	memset(out, 0, sizeof(*out));
	out->request_id = (uint64_t)sql_col_int64(s, 0);
	sql_copy_text(out->kernel, sizeof(out->kernel), s, 2);
	sql_copy_text(out->error, sizeof(out->error), s, 3);
	out->at = sql_col_int64(s, 4);
	return boots_state_parse(sql_col_text(s, 1), &out->state);
}

int boots_sent(struct boots *b, const char *board_id, uint64_t req, const char *kernel, int64_t now)
{
	struct sql_stmt *s;

	if (strlen(board_id) >= DB_ID_MAX || strlen(kernel) >= DB_ID_MAX || req == 0 || req > INT64_MAX)
		return -EINVAL;
	s = bq(b, B_SENT);
	sql_bind_text(s, 1, board_id);
	sql_bind_int64(s, 2, (int64_t)req);
	sql_bind_text(s, 3, kernel);
	sql_bind_int64(s, 4, now);
	return sql_run(s);
}

/* The board's words as kept: at most BOOTS_ERROR_MAX bytes, cut between
 * characters, and what is not well-formed UTF-8 as '?' (a text column of
 * PostgreSQL takes nothing else). */
static void boots_reason(char *dst, const char *src)
{
	const unsigned char *u = (const unsigned char *)src;
	size_t n = strnlen(src, BOOTS_ERROR_MAX), i = 0;

	while (i < n) {
		size_t k = sky_utf8_seq(u + i, n - i);

		if (k == 0) {
			/* a character cut at the limit is left out whole */
			if (n == BOOTS_ERROR_MAX && u[i] >= 0xc0 && sky_utf8_seq(u + i, strnlen(src + i, 4)) > 0)
				break;
			dst[i++] = '?';
			continue;
		}
		memcpy(dst + i, src + i, k);
		i += k;
	}
	dst[i] = '\0';
}

int boots_answer(struct boots *b, const char *board_id, uint64_t req, Skyroot__BootOutcome outcome,
		 const char *error, int64_t now, struct boot_status *out)
{
	char reason[BOOTS_ERROR_MAX + 1] = "";
	struct boot_status cur, *st = out ? out : &cur;
	enum boot_state to;
	struct sql_stmt *s;
	int r;

	switch (outcome) {
	case SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED:
		to = BOOT_STATE_ACCEPTED;
		break;
	case SKYROOT__BOOT_OUTCOME__BOOT_REFUSED:
		to = BOOT_STATE_REFUSED;
		break;
	default:
		to = BOOT_STATE_FAILED;
		break;
	}
	if (to != BOOT_STATE_ACCEPTED)
		boots_reason(reason, error && error[0] ? error : "the board gave no reason; see its log");
	if (strlen(board_id) >= DB_ID_MAX || req == 0 || req > INT64_MAX)
		return -ENOENT; /* never an order of ours */
	s = bq(b, B_ANSWER);
	sql_bind_text(s, 1, board_id);
	sql_bind_int64(s, 2, (int64_t)req);
	sql_bind_text(s, 3, boots_state_name(to));
	sql_bind_text(s, 4, reason);
	sql_bind_int64(s, 5, now);
	r = sql_step(s);
	if (r == SQL_ROW)
		r = boots_read_row(s, st);
	else if (r == SQL_DONE)
		r = 1; /* not changed: why, below */
	sql_reset(s);
	if (r <= 0)
		return r;
	r = boots_get(b, board_id, &cur);
	if (r < 0)
		return r;
	return cur.request_id != req ? -ESTALE : -EALREADY;
}

int boots_get(struct boots *b, const char *board_id, struct boot_status *out)
{
	struct sql_stmt *s;
	int r;

	if (strlen(board_id) >= DB_ID_MAX)
		return -ENOENT;
	s = bq(b, B_GET);
	sql_bind_text(s, 1, board_id);
	r = sql_step(s);
	if (r == SQL_ROW)
		r = boots_read_row(s, out);
	else if (r == SQL_DONE)
		r = -ENOENT;
	sql_reset(s);
	return r;
}

struct boots_all_row {
	char board_id[DB_ID_MAX];
	struct boot_status st;
};

struct boots_all {
	struct boots_all_row *rows;   /* sorted by board_id (strcmp) */
	size_t n;
};

static int boots_all_cmp(const void *a, const void *b)
{
	return strcmp(((const struct boots_all_row *)a)->board_id, ((const struct boots_all_row *)b)->board_id);
}

int boots_all(struct boots *b, struct boots_all **out)
{
	struct boots_all *all = calloc(1, sizeof(*all));
	struct sql_stmt *s = bq(b, B_ALL);
	size_t cap = 0;
	int r;

	if (!all)
		return -ENOMEM;
	while ((r = sql_step(s)) == SQL_ROW) {
		if (all->n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct boots_all_row *nrows = realloc(all->rows, ncap * sizeof(*nrows));

			if (!nrows) {
				r = -ENOMEM;
				break;
			}
			all->rows = nrows;
			cap = ncap;
		}
		sql_copy_text(all->rows[all->n].board_id, DB_ID_MAX, s, 5);
		r = boots_read_row(s, &all->rows[all->n].st);
		if (r < 0)
			break;
		all->n++;
	}
	sql_reset(s);
	if (r < 0) {
		boots_all_free(all);
		return r;
	}
	if (all->n)
		qsort(all->rows, all->n, sizeof(all->rows[0]), boots_all_cmp);
	*out = all;
	return 0;
}

const struct boot_status *boots_all_find(const struct boots_all *all, const char *board_id)
{
	struct boots_all_row key;
	const struct boots_all_row *row;

	if (!all || !all->n || strlen(board_id) >= DB_ID_MAX)
		return NULL;
	snprintf(key.board_id, sizeof(key.board_id), "%s", board_id);
	row = bsearch(&key, all->rows, all->n, sizeof(all->rows[0]), boots_all_cmp);
	return row ? &row->st : NULL;
}

void boots_all_free(struct boots_all *all)
{
	if (!all)
		return;
	free(all->rows);
	free(all);
}

int boots_forget(struct boots *b, const char *board_id)
{
	struct sql_stmt *s;

	if (!b)
		return 0;
	s = bq(b, B_FORGET);
	sql_bind_text(s, 1, board_id);
	return sql_run(s);
}

const char *boots_state_name(enum boot_state s)
{
	switch (s) {
	case BOOT_STATE_SENT:
		return "sent";
	case BOOT_STATE_ACCEPTED:
		return "accepted";
	case BOOT_STATE_REFUSED:
		return "refused";
	case BOOT_STATE_FAILED:
		return "failed";
	}
	return "unknown";
}
