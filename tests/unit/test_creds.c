/* API credentials (controller/skyrootd/creds.c) and the audit log's bound
 * (audit.c): the roles' rules, a credential's state at a time (expiry,
 * revocation), lookup by the token's hash, rotation with and without a
 * grace, the state folder's tokens imported once; the bodies and the
 * query of /v1/credentials and /v1/audit (api_creds_json.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "controller/skyrootd/api_creds_json.h"
#include "controller/skyrootd/api_json.h"
#include "controller/skyrootd/audit.h"
#include "controller/skyrootd/creds.h"
#include "controller/skyrootd/db.h"

struct fx {
	char dir[64];
	char path[128];
	struct db *db;
};

static void hash_of(const char *token, uint8_t h[32])
{
	sky_sha256(token, strlen(token), h);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	snprintf(x->dir, sizeof(x->dir), "/tmp/sky-creds-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->path, sizeof(x->path), "%s/db", x->dir);
	assert_int_equal(db_open(x->path, &x->db), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char p[160];

	db_close(x->db);
	for (const char *const *s = (const char *const[]){ "", "-wal", "-shm", NULL }; *s; s++) {
		snprintf(p, sizeof(p), "%s%s", x->path, *s);
		unlink(p);
	}
	rmdir(x->dir);
	free(x);
	return 0;
}

static void test_roles(void **state)
{
	enum creds_role r;

	(void)state;
	/* Reads need a reader, changes an operator, the admin routes an admin. */
	assert_int_equal(creds_route_need(true, false), CREDS_READER);
	assert_int_equal(creds_route_need(false, false), CREDS_OPERATOR);
	assert_int_equal(creds_route_need(true, true), CREDS_ADMIN);
	assert_int_equal(creds_route_need(false, true), CREDS_ADMIN);
	assert_true(creds_role_allows(CREDS_READER, CREDS_READER));
	assert_false(creds_role_allows(CREDS_READER, CREDS_OPERATOR));
	assert_true(creds_role_allows(CREDS_OPERATOR, CREDS_OPERATOR));
	assert_false(creds_role_allows(CREDS_OPERATOR, CREDS_ADMIN));
	assert_true(creds_role_allows(CREDS_ADMIN, CREDS_ADMIN));
	assert_true(creds_role_allows(CREDS_ADMIN, CREDS_READER));
	assert_false(creds_role_allows(CREDS_NONE, CREDS_READER));
	assert_false(creds_role_allows(CREDS_ADMIN, CREDS_NONE));
	assert_int_equal(creds_role_parse("operator", &r), 0);
	assert_int_equal(r, CREDS_OPERATOR);
	assert_int_equal(creds_role_parse("none", &r), -EINVAL);
	assert_int_equal(creds_role_parse("Admin", &r), -EINVAL);
	assert_int_equal(creds_role_parse(NULL, &r), -EINVAL);
	assert_true(creds_name_ok("ci-bot_1.x"));
	assert_false(creds_name_ok(""));
	assert_false(creds_name_ok("-x"));
	assert_false(creds_name_ok("a b"));
	assert_false(creds_name_ok("a/b"));
}

static void test_state(void **state)
{
	struct creds_row c = { .expires_at = 100 };

	(void)state;
	assert_int_equal(creds_state(&c, 99), CREDS_ACTIVE);
	assert_int_equal(creds_state(&c, 100), CREDS_EXPIRED);
	c.expires_at = 0;
	assert_int_equal(creds_state(&c, INT64_MAX), CREDS_ACTIVE);
	c.revoked_at = 5;
	c.expires_at = 100;
	assert_int_equal(creds_state(&c, 99), CREDS_REVOKED);
}

static void test_find(void **state)
{
	struct fx *x = *state;
	struct creds_row c;
	uint8_t h[32], h2[32], h3[32];

	hash_of("skc-one", h);
	assert_int_equal(creds_create(x->db, "one", CREDS_OPERATOR, 1000, 2000, h), 0);
	assert_int_equal(creds_create(x->db, "one", CREDS_READER, 1000, 0, h), -EEXIST);
	assert_int_equal(creds_create(x->db, "bad name", CREDS_READER, 1000, 0, h), -EINVAL);
	assert_int_equal(creds_find(x->db, h, 1500, &c), 0);
	assert_string_equal(c.name, "one");
	assert_int_equal(c.role, CREDS_OPERATOR);
	assert_int_equal(creds_find(x->db, h, 2000, &c), -EKEYEXPIRED);
	/* Same first bytes, another hash: unknown. */
	memcpy(h2, h, sizeof(h2));
	h2[31] ^= 1;
	assert_int_equal(creds_find(x->db, h2, 1500, &c), -ENOENT);
	/* Rotation without grace: the old secret at once invalid. */
	hash_of("skc-two", h2);
	assert_int_equal(creds_rotate(x->db, "one", h2, 1500, 0), 0);
	assert_int_equal(creds_find(x->db, h, 1500, &c), -ENOENT);
	assert_int_equal(creds_find(x->db, h2, 1500, &c), 0);
	/* With a grace: the old one until it ends. */
	hash_of("skc-three", h3);
	assert_int_equal(creds_rotate(x->db, "one", h3, 1500, 60), 0);
	assert_int_equal(creds_find(x->db, h2, 1559, &c), 0);
	assert_int_equal(creds_find(x->db, h2, 1560, &c), -EKEYEXPIRED);
	assert_int_equal(creds_find(x->db, h3, 1560, &c), 0);
	assert_int_equal(creds_rotate(x->db, "one", h3, 1500, CREDS_GRACE_MAX + 1), -EINVAL);
	assert_int_equal(creds_rotate(x->db, "nope", h3, 1500, 0), -ENOENT);
	/* Revoked: both secrets refused, it cannot be rotated. */
	assert_int_equal(creds_rotate(x->db, "one", h2, 1600, 600), 0);
	assert_int_equal(creds_revoke(x->db, "one", 1601), 0);
	assert_int_equal(creds_find(x->db, h3, 1602, &c), -ENOENT); /* the grace ended with it */
	assert_int_equal(creds_find(x->db, h2, 1602, &c), -EKEYREVOKED);
	assert_string_equal(c.name, "one");
	assert_int_equal(creds_rotate(x->db, "one", h, 1602, 0), -EKEYREVOKED);
	assert_int_equal(creds_revoke(x->db, "one", 1700), 0);
	assert_int_equal(creds_get(x->db, "one", &c), 0);
	assert_int_equal(c.revoked_at, 1601);
	assert_int_equal(creds_revoke(x->db, "nope", 1700), -ENOENT);
}

static void test_import(void **state)
{
	struct fx *x = *state;
	struct creds_row c;
	uint8_t a[32], b[32], n[32];

	hash_of("init-admin", a);
	hash_of("rotated", b);
	hash_of("new-reader", n);
	assert_int_equal(creds_import(x->db, "admin", CREDS_ADMIN, a, false, 10), 0);
	assert_int_equal(creds_find(x->db, a, 11, &c), 0);
	assert_int_equal(c.role, CREDS_ADMIN);
	/* Once rotated, the state folder's hash does not come back. */
	assert_int_equal(creds_rotate(x->db, "admin", b, 12, 0), 0);
	assert_int_equal(creds_import(x->db, "admin", CREDS_ADMIN, a, false, 13), 0);
	assert_int_equal(creds_find(x->db, a, 14, &c), -ENOENT);
	/* A revoked one neither, unless replaced (a new reader-token). */
	assert_int_equal(creds_import(x->db, "reader", CREDS_READER, a, false, 10), 0);
	assert_int_equal(creds_revoke(x->db, "reader", 11), 0);
	assert_int_equal(creds_import(x->db, "reader", CREDS_READER, a, false, 12), 0);
	assert_int_equal(creds_find(x->db, a, 13, &c), -EKEYREVOKED);
	assert_int_equal(creds_import(x->db, "reader", CREDS_READER, n, true, 14), 0);
	assert_int_equal(creds_find(x->db, n, 15, &c), 0);
	assert_string_equal(c.name, "reader");
	assert_int_equal(c.role, CREDS_READER);
	/* Replacing an expiring one: the new role, no expiry, no grace left. */
	hash_of("ci-1", a);
	hash_of("ci-2", b);
	hash_of("ci-3", n);
	assert_int_equal(creds_create(x->db, "ci", CREDS_OPERATOR, 10, 100, a), 0);
	assert_int_equal(creds_rotate(x->db, "ci", b, 20, 60), 0);
	assert_int_equal(creds_import(x->db, "ci", CREDS_READER, n, true, 30), 0);
	assert_int_equal(creds_get(x->db, "ci", &c), 0);
	assert_int_equal(c.role, CREDS_READER);
	assert_int_equal(c.expires_at, 0);
	assert_int_equal(c.rotated_at, 30);
	assert_int_equal(c.old_until, 0);
	assert_int_equal(creds_find(x->db, a, 31, &c), -ENOENT);
	assert_int_equal(creds_find(x->db, b, 31, &c), -ENOENT);
	assert_int_equal(creds_find(x->db, n, 500, &c), 0);
	assert_int_equal(creds_import(x->db, "ci", CREDS_NONE, n, true, 40), -EINVAL);
}

static int count_cb(void *ctx, const struct audit_entry *e)
{
	int64_t *last = ctx;

	/* Newest first. */
	assert_true(last[0] == 0 || e->seq < last[0]);
	last[0] = e->seq;
	last[1]++;
	return 0;
}

static void test_audit_bound(void **state)
{
	struct fx *x = *state;
	struct audit_entry e = { .at = 1, .credential = "admin", .peer = "127.0.0.1", .method = "POST",
				 .path = "/v1/tokens", .status = 201, .request_id = "req-1" };
	int64_t seen[2] = { 0, 0 };

	for (int i = 0; i < 10; i++)
		assert_int_equal(audit_add(x->db, &e, 4), 0);
	assert_int_equal(audit_list(x->db, 100, count_cb, seen), 0);
	assert_int_equal(seen[1], 4);
	assert_int_equal(seen[0], 7); /* rows 7..10 kept */
	seen[0] = seen[1] = 0;
	assert_int_equal(audit_list(x->db, 2, count_cb, seen), 0);
	assert_int_equal(seen[1], 2);
}

/* A refused create body and the words the client reads. */
static void create_refused(const char *body, const char *says)
{
	struct api_cred_request req = { .name = "untouched" };
	char err[API_JSON_ERR_MAX] = "";

	assert_int_equal(api_creds_parse_create(body, strlen(body), &req, err, sizeof(err)), -EINVAL);
	if (!strstr(err, says))
		fail_msg("%s: '%s' does not say '%s'", body, err, says);
	assert_string_equal(req.name, "untouched");
}

static void test_create_body(void **state)
{
	struct api_cred_request req;
	char err[API_JSON_ERR_MAX];
	const char *ok = "{\"name\": \"ci-1\", \"role\": \"operator\", \"ttl_seconds\": 3600}";
	const char *never = " {\"name\": \"r\", \"role\": \"reader\", \"ttl_seconds\": null}\n";

	(void)state;
	assert_int_equal(api_creds_parse_create(ok, strlen(ok), &req, err, sizeof(err)), 0);
	assert_string_equal(req.name, "ci-1");
	assert_int_equal(req.role, CREDS_OPERATOR);
	assert_int_equal(req.ttl_seconds, 3600);
	assert_int_equal(api_creds_parse_create(never, strlen(never), &req, err, sizeof(err)), 0);
	assert_string_equal(req.name, "r");
	assert_int_equal(req.role, CREDS_READER);
	assert_int_equal(req.ttl_seconds, 0);

	create_refused("", "the credential body is empty; send an object like");
	create_refused(" \r\n", "body is empty");
	create_refused("{", "not valid JSON");
	create_refused("[]", "must be a JSON object");
	create_refused("{\"name\": \"a\", \"name\": \"b\", \"role\": \"admin\"}", "not valid JSON");
	create_refused("{\"name\": \"a\", \"role\": \"admin\", \"ttl\": 60}",
		       "unknown field 'ttl' in credential; known: name, role, ttl_seconds");
	create_refused("{\"role\": \"admin\"}", "must have a name and a role");
	create_refused("{\"name\": \"a\"}", "must have a name and a role");
	create_refused("{\"name\": \".a\", \"role\": \"admin\"}",
		       "name must be 1 to 63 letters, digits, '.', '_' or '-', not starting with '.' or '-'");
	create_refused("{\"name\": 7, \"role\": \"admin\"}", "name must be 1 to 63");
	create_refused("{\"name\": \"a\", \"role\": \"root\"}", "role must be reader, operator or admin");
	create_refused("{\"name\": \"a\", \"role\": null}", "role must be reader, operator or admin");
	create_refused("{\"name\": \"a\", \"role\": \"admin\", \"ttl_seconds\": 59}",
		       "credential.ttl_seconds must be a whole number from 60 to 316224000 seconds");
	create_refused("{\"name\": \"a\", \"role\": \"admin\", \"ttl_seconds\": 316224001}", "from 60 to");
	create_refused("{\"name\": \"a\", \"role\": \"admin\", \"ttl_seconds\": \"1h\"}", "whole number");
	create_refused("{\"name\": \"a\", \"role\": \"admin\", \"ttl_seconds\": -5}", "whole number");
}

static void test_rotate_body(void **state)
{
	char err[API_JSON_ERR_MAX];
	int64_t g = -1;

	(void)state;
	assert_int_equal(api_creds_parse_rotate(NULL, 0, &g, err, sizeof(err)), 0);
	assert_int_equal(g, 0);
	g = -1;
	assert_int_equal(api_creds_parse_rotate(" \n", 2, &g, err, sizeof(err)), 0);
	assert_int_equal(g, 0);
	assert_int_equal(api_creds_parse_rotate("{\"grace_seconds\": 600}", 22, &g, err, sizeof(err)), 0);
	assert_int_equal(g, 600);
	assert_int_equal(api_creds_parse_rotate("{\"grace_seconds\": null}", 23, &g, err, sizeof(err)), 0);
	assert_int_equal(g, 0);
	g = 7;
	assert_int_equal(api_creds_parse_rotate("{\"grace_seconds\": 604801}", 25, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rotate.grace_seconds must be a whole number from 0 to 604800 seconds"));
	assert_int_equal(g, 7);
	assert_int_equal(api_creds_parse_rotate("{\"grace\": 1}", 12, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown field 'grace' in rotate; known: grace_seconds"));
	assert_int_equal(api_creds_parse_rotate("[300]", 5, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "must be a JSON object like {\"grace_seconds\": 300}"));
	assert_int_equal(g, 7);
}

static void test_audit_limit(void **state)
{
	char err[API_JSON_ERR_MAX];
	uint64_t n = 0;

	(void)state;
	assert_int_equal(api_creds_parse_limit(NULL, 0, 10000, &n, err, sizeof(err)), 0);
	assert_int_equal(n, AUDIT_LIMIT_DEFAULT);
	assert_int_equal(api_creds_parse_limit("", 0, 50, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 50); /* the default, within max */
	assert_int_equal(api_creds_parse_limit("limit=2&", 8, 10000, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(api_creds_parse_limit("limit=1%30", 10, 10000, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 10);
	assert_int_equal(api_creds_parse_limit("limit=10000", 11, 10000, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 10000);
	/* Only len bytes are read. */
	assert_int_equal(api_creds_parse_limit("limit=2&limit=0", 7, 10000, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	for (const char *const *q = (const char *const[]){ "limit=0", "limit=10001", "limit=", "limit=-1", "limit=1x",
							    "limit=%zz", "limit=99999999999999999999999999", NULL };
	     *q; q++) {
		err[0] = '\0';
		assert_int_equal(api_creds_parse_limit(*q, strlen(*q), 10000, &n, err, sizeof(err)), -EINVAL);
		if (!strstr(err, "limit must be a whole number from 1 to 10000"))
			fail_msg("%s: '%s'", *q, err);
	}
	/* Nothing but limit, once: a misspelling is not silently the default. */
	assert_int_equal(api_creds_parse_limit("limt=5", 6, 10000, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown query parameter 'limt'; the audit log takes only limit (1 to 10000)"));
	assert_int_equal(api_creds_parse_limit("a=b&limit=2", 11, 10000, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown query parameter 'a'"));
	assert_int_equal(api_creds_parse_limit("page_token", 10, 10000, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown query parameter 'page_token'"));
	assert_int_equal(api_creds_parse_limit("limit=1&limit=2", 15, 10000, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "given twice"));
	assert_int_equal(api_creds_parse_limit("limit", 5, 10000, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "limit must be a whole number"));
}

/* The hash of pieces (common/util.c) the idempotency seal, the page key and
 * the etags are made with: the hash of the pieces' concatenation. */
static void test_sha256_pieces(void **state)
{
	static const uint8_t abc[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
					 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
					 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
	const struct sky_piece three[] = { { "a", 1 }, { NULL, 0 }, { "bc", 2 } };
	const struct sky_piece other[] = { { "ab", 2 }, { "c", 1 } };
	const struct sky_piece sep[] = { { "ab", 3 }, { "c", 1 } };
	uint8_t a[32], b[32], whole[32];

	(void)state;
	assert_int_equal(sky_sha256_pieces(three, 3, a), 0);
	assert_memory_equal(a, abc, 32);
	assert_int_equal(sky_sha256_pieces(other, 2, b), 0);
	assert_memory_equal(a, b, 32);
	sky_sha256("ab\0c", 4, whole);
	assert_int_equal(sky_sha256_pieces(sep, 2, b), 0);
	assert_memory_equal(b, whole, 32);
	assert_memory_not_equal(b, abc, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_state),
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_bound, setup, teardown),
		cmocka_unit_test(test_create_body),
		cmocka_unit_test(test_rotate_body),
		cmocka_unit_test(test_audit_limit),
		cmocka_unit_test(test_sha256_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
