/* Each board's last bare-metal boot order and the board's answer, in a
 * hash table by board id (boots.h).  Runs on the loop thread. */
#include "controller/skyrootd/boots.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define BOOTS_BUCKETS 1024u

struct boot_entry {
	struct boot_entry *next;
	char board_id[DB_ID_MAX];
	struct boot_status st;
};

struct boots {
	struct boot_entry *buckets[BOOTS_BUCKETS];
	uint64_t next_req;
};

static unsigned boots__bucket(const char *board_id)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)board_id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % BOOTS_BUCKETS;
}

static struct boot_entry **boots__slot(const struct boots *b, const char *board_id)
{
	struct boot_entry *const *e = &b->buckets[boots__bucket(board_id)];

	while (*e && strcmp((*e)->board_id, board_id) != 0)
		e = &(*e)->next;
	return (struct boot_entry **)e;
}

int boots_new(struct boots **out)
{
	struct boots *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	/* Unlike a counter from 1, this does not repeat the ids of a
	 * controller that ran before, whose orders a board may still answer. */
	b->next_req = (uint64_t)sky_unix_now() << 20;
	*out = b;
	return 0;
}

void boots_free(struct boots *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < BOOTS_BUCKETS; i++)
		for (struct boot_entry *e = b->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(b);
}

uint64_t boots_next_request(struct boots *b)
{
	if (++b->next_req == 0)
		b->next_req = 1;
	return b->next_req;
}

int boots_sent(struct boots *b, const char *board_id, uint64_t req, const char *kernel, int64_t now)
{
	struct boot_entry **slot, *e;

	if (strlen(board_id) >= DB_ID_MAX)
		return -EINVAL;
	slot = boots__slot(b, board_id);
	e = *slot;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		snprintf(e->board_id, sizeof(e->board_id), "%s", board_id);
		*slot = e;
	}
	memset(&e->st, 0, sizeof(e->st));
	e->st.state = BOOT_STATE_SENT;
	e->st.request_id = req;
	e->st.at = now;
	snprintf(e->st.kernel, sizeof(e->st.kernel), "%s", kernel);
	return 0;
}

int boots_answer(struct boots *b, const char *board_id, uint64_t req, Skyroot__BootOutcome outcome,
		 const char *error, int64_t now)
{
	struct boot_entry *e = *boots__slot(b, board_id);
	enum boot_state to;

	if (!e)
		return -ENOENT;
	if (e->st.request_id != req)
		return -ESTALE;
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
	/* sent -> any answer; accepted -> failed; nothing after that. */
	if (e->st.state != BOOT_STATE_SENT && !(e->st.state == BOOT_STATE_ACCEPTED && to == BOOT_STATE_FAILED))
		return -EALREADY;
	e->st.state = to;
	e->st.at = now;
	e->st.error[0] = '\0';
	if (to != BOOT_STATE_ACCEPTED)
		snprintf(e->st.error, sizeof(e->st.error), "%s",
			 error && error[0] ? error : "the board gave no reason; see its log");
	return 0;
}

const struct boot_status *boots_get(const struct boots *b, const char *board_id)
{
	struct boot_entry *e = b ? *boots__slot(b, board_id) : NULL;

	return e ? &e->st : NULL;
}

void boots_forget(struct boots *b, const char *board_id)
{
	struct boot_entry **slot = b ? boots__slot(b, board_id) : NULL, *e;

	if (!slot || !*slot)
		return;
	e = *slot;
	*slot = e->next;
	free(e);
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
