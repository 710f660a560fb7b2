/* The logger: whatever a message holds, it is one line of text on stderr
 * (control characters, invalid UTF-8 and backslashes escaped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/log.h"

/* What one call writes to stderr, caught in a temporary file. */
struct capture {
	FILE *file;
	int saved;
	char text[16384];
};

static void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->file = tmpfile();
	assert_non_null(c->file);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(fileno(c->file), STDERR_FILENO), STDERR_FILENO);
}

static const char *capture_end(struct capture *c)
{
	size_t n;
	fflush(stderr);
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	rewind(c->file);
	n = fread(c->text, 1, sizeof(c->text) - 1, c->file);
	c->text[n] = '\0';
	fclose(c->file);
	return c->text;
}

/* The message of the one line written: what follows "IDENT LEVEL: ",
 * without the final newline. */
static const char *message_of(const char *out, const char *prefix, char *msg, size_t size)
{
	const char *p = strstr(out, prefix), *nl;
	assert_non_null(p);
	p += strlen(prefix);
	nl = strchr(p, '\n');
	assert_non_null(nl);
	assert_string_equal(nl, "\n"); /* one line, nothing after it */
	assert_true((size_t)(nl - p) < size);
	memcpy(msg, p, (size_t)(nl - p));
	msg[nl - p] = '\0';
	return msg;
}

static const char *logged(struct capture *c, const char *value, char *msg, size_t size)
{
	capture_begin(c);
	log_warn("machine %s refused", value);
	return message_of(capture_end(c), " test warn: ", msg, size);
}

static void test_control_characters_escaped(void **state)
{
	struct capture c;
	char msg[1024];
	(void)state;
	const char *m = logged(&c, "u\nFAKE LINE\r\x1b[31mred\xff\t\x7f", msg, sizeof(msg));
	assert_string_equal(m, "machine u\\x0aFAKE LINE\\x0d\\x1b[31mred\\xff\\x09\\x7f refused");
	/* The whole output: no control byte but the one final newline. */
	for (const char *p = c.text; *p; p++)
		assert_true(((unsigned char)*p >= 0x20 && *p != 0x7f) || (*p == '\n' && p[1] == '\0'));
	assert_true(c.text[0] >= '0' && c.text[0] <= '9'); /* the time first */
}

static void test_backslash_doubled(void **state)
{
	struct capture c;
	char msg[1024];
	(void)state;
	/* A literal "\x0a" in the input cannot pass for an escaped newline. */
	assert_string_equal(logged(&c, "a\\x0a\\", msg, sizeof(msg)), "machine a\\\\x0a\\\\ refused");
}

static void test_utf8(void **state)
{
	struct capture c;
	char msg[1024];
	(void)state;
	/* Well-formed text passes: é, ✓, an emoji. */
	assert_string_equal(logged(&c, "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", msg, sizeof(msg)),
			    "machine caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 refused");
	/* C1 CSI (U+009B), an overlong '/', a surrogate, a code point past
	 * U+10FFFF, a lone continuation byte, a sequence cut short. */
	assert_string_equal(logged(&c, "\xc2\x9b|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\x80|\xe2\x9c", msg, sizeof(msg)),
			    "machine \\xc2\\x9b|\\xc0\\xaf|\\xed\\xa0\\x80|\\xf4\\x90\\x80\\x80|\\x80|\\xe2\\x9c refused");
}

static void test_long_message_stays_one_line(void **state)
{
	struct capture c;
	char *big = malloc(4000);
	(void)state;
	assert_non_null(big);
	memset(big, '\n', 3999);
	big[3999] = '\0';
	capture_begin(&c);
	log_error("%s", big);
	capture_end(&c);
	free(big);
	/* Cut to 2047 bytes before escaping, each a \x0a: one line. */
	assert_non_null(strstr(c.text, " test error: \\x0a"));
	assert_ptr_equal(strchr(c.text, '\n'), c.text + strlen(c.text) - 1);
	assert_non_null(strstr(c.text, "\\x0a\\x0a\n"));
}

static void test_level_filters(void **state)
{
	struct capture c;
	(void)state;
	capture_begin(&c);
	log_debug("not at info");
	log_info("at info");
	capture_end(&c);
	assert_null(strstr(c.text, "not at info"));
	assert_non_null(strstr(c.text, " test info: at info\n"));
}

/* Under systemd: $JOURNAL_STREAM names stderr's device and inode; then the
 * lines are "<PRIORITY>MESSAGE", without a time or ident. */
static void test_journal_stream(void **state)
{
	struct capture c;
	struct stat sb;
	char env[64];
	(void)state;
	capture_begin(&c);
	assert_int_equal(fstat(STDERR_FILENO, &sb), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	bool match = sky_log_stderr_is_journal();
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino + 1);
	setenv("JOURNAL_STREAM", env, 1);
	bool other_inode = sky_log_stderr_is_journal();
	setenv("JOURNAL_STREAM", "garbage", 1);
	bool garbage = sky_log_stderr_is_journal();
	unsetenv("JOURNAL_STREAM");
	bool unset = sky_log_stderr_is_journal();

	sky_log_set_journal(match);
	sky_log_set_level(SKY_LOG_DEBUG);
	log_error("e %s", "one\ntwo");
	log_warn("w");
	log_info("i");
	log_debug("d");
	sky_log_set_journal(false);
	sky_log_set_level(SKY_LOG_INFO);
	log_info("plain again");
	capture_end(&c);
	assert_true(match);
	assert_false(other_inode);
	assert_false(garbage);
	assert_false(unset);
	/* The prefix first, no time, still escaped; then the usual format. */
	const char *plain = strstr(c.text, "Z test info: plain again\n");
	assert_non_null(plain);
	assert_memory_equal(c.text, "<3>e one\\x0atwo\n<4>w\n<6>i\n<7>d\n", 31);
	assert_true(c.text[31] >= '0' && c.text[31] <= '9');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_characters_escaped),
		cmocka_unit_test(test_backslash_doubled),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_long_message_stays_one_line),
		cmocka_unit_test(test_level_filters),
		cmocka_unit_test(test_journal_stream),
	};
	sky_log_init("test", SKY_LOG_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
