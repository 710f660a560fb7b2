/* The encodings a request is answered in (controller/skyrootd/api_reply.c,
 * api_reply_negotiate): JSON or protobuf as the Accept header's q values
 * say, and 406 when it takes neither.  A q value is RFC 9110's ("0.5",
 * "1", at most three decimals counted); anything else counts as 0, never
 * read as a float (strtod took "nan", and (int) of it is undefined). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controller/skyrootd/api_priv.h"

/* The row of GET /v1/boards. */
static const struct api_route *boards_row(void)
{
	size_t n_tables;
	const struct api_route *const *tables = api_route_tables(&n_tables);

	for (size_t t = 0; t < n_tables; t++)
		for (const struct api_route *rt = tables[t]; rt->path; rt++)
			if (strcmp(rt->path, "/v1/boards") == 0 && !rt->segment && rt->get)
				return rt;
	fail_msg("no row for GET /v1/boards");
	return NULL;
}

/* GET /v1/boards with this Accept header: the status (0 or 406) and
 * whether the answer is protobuf. */
static int negotiate(const char *accept, bool *pb)
{
	struct http_request req = { .verb = HTTP_VERB_GET, .method = "GET", .path = "/v1/boards", .path_len = 10,
				    .accept = accept, .content_length = UINT64_MAX };
	struct api_conn_state st;
	char msg[256];
	int r;

	memset(&st, 0, sizeof(st));
	r = api_reply_negotiate(&req, boards_row(), &st, msg, sizeof(msg));
	*pb = st.pb_answer;
	if (r == 406)
		assert_non_null(strstr(msg, "Accept"));
	return r;
}

static void answers(const char *accept, bool want_pb)
{
	bool pb;
	int r = negotiate(accept, &pb);

	if (r != 0 || pb != want_pb)
		fail_msg("Accept '%s': %d, %s (want %s)", accept ? accept : "(none)", r, pb ? "protobuf" : "JSON",
			 want_pb ? "protobuf" : "JSON");
}

static void refused(const char *accept)
{
	bool pb;

	if (negotiate(accept, &pb) != 406)
		fail_msg("Accept '%s' is not refused (406)", accept);
}

static void test_q_values(void **state)
{
	(void)state;
	answers(NULL, false);
	answers("", false);
	answers("application/x-protobuf", true);
	answers("application/json;q=0.5, application/x-protobuf", true);
	answers("application/x-protobuf;q=0.2, application/json", false);
	answers("application/x-protobuf;q=0.125, application/json;q=0.12", true); /* thousandths */
	answers("application/json;q=0.1239, application/x-protobuf;q=0.123", true); /* a fourth digit is not counted */
	answers("application/x-protobuf; q=1.0 ;level=1, */*;q=0.9", true);
	answers("*/*;q=0.001", false);
	/* Not a q value: not accepted. */
	answers("application/json;q=0.5x, application/x-protobuf;q=0.1", true);
	answers("application/json;q=1e3, application/x-protobuf;q=0.1", true);
	refused("application/json;q=nan");
	refused("application/json;q=-1");
	refused("application/json;q=");
	refused("application/json; q=0");
	refused("text/html");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_q_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
