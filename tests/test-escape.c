/*
 * tools/escape.c: how shmetrics-ctl dump and shmetrics-top show segment
 * text on a terminal.  Exact outputs, byte by byte: what is escaped, how
 * it is spelled (text and JSON), and what is left alone.  Invalid UTF-8
 * is checked here because the reader repairs it before any tool sees it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "test-common.h"

/* tool_escape of s (len bytes) with flags, as a malloc'd string. */
static char *
escaped(const char *s, size_t len, unsigned flags)
{
	struct shmet_buf b = { 0 };
	char *out;

	tool_escape(&b, s, len, flags);
	ck_assert(!b.failed);
	out = strdup(b.data ? b.data : "");
	shmet_buf_free(&b);
	return out;
}

#define ck_escaped(in, flags, want)                                           \
	do {                                                                  \
		char *got_ = escaped(in, sizeof(in) - 1, flags);             \
		ck_assert_str_eq(got_, want);                                 \
		free(got_);                                                   \
	} while (0)

START_TEST(test_escape_terminal_sequences)
{
	/* OSC 0 (title), CSI 2J (clear), OSC 52 (clipboard), BEL */
	ck_escaped("a\x1b]0;t\x07" "b", 0, "a\\x1b]0;t\\x07b");
	ck_escaped("\x1b[2J", 0, "\\x1b[2J");
	ck_escaped("\x1b]52;c;cHduZWQ=\x07", 0, "\\x1b]52;c;cHduZWQ=\\x07");
	/* C1 CSI U+009B, and the first and last C1 */
	ck_escaped("x\xc2\x9b" "31m", 0, "x\\xc2\\x9b31m");
	ck_escaped("\xc2\x80\xc2\x9f", 0, "\\xc2\\x80\\xc2\\x9f");
}
END_TEST

START_TEST(test_escape_controls)
{
	ck_escaped("AAAA\rBB", 0, "AAAA\\rBB");
	ck_escaped("a\tb\nc", 0, "a\\tb\\nc");
	ck_escaped("\x01\x1f\x7f", 0, "\\x01\\x1f\\x7f");
	/* NUL is a byte like any other: len, not strlen */
	ck_escaped("a\0b", 0, "a\\x00b");
	/* a page: newlines end lines, the rest is still escaped */
	ck_escaped("a\nb\r\n", TOOL_ESCAPE_LINES, "a\nb\\r\n");
}
END_TEST

START_TEST(test_escape_invalid_utf8)
{
	/* a stray continuation byte, a cut sequence, an overlong '/', a
	 * surrogate: each byte escaped on its own */
	ck_escaped("a\x80z", 0, "a\\x80z");
	ck_escaped("\xe2\x82", 0, "\\xe2\\x82");
	ck_escaped("\xc0\xaf", 0, "\\xc0\\xaf");
	ck_escaped("\xed\xa0\x80", 0, "\\xed\\xa0\\x80");
	/* overlong C1 is not C1, it is invalid */
	ck_escaped("\xe0\x82\x9b", 0, "\\xe0\\x82\\x9b");
}
END_TEST

START_TEST(test_escape_keeps_text)
{
	/* printable ASCII, backslashes (the formats' own escapes), valid
	 * UTF-8 from U+00A0 up, U+FFFD: unchanged */
	ck_escaped("v=\"a\\\\b\\n\"", 0, "v=\"a\\\\b\\n\"");
	ck_escaped("\xc2\xa0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd",
		   0, "\xc2\xa0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd");
	ck_escaped("", 0, "");
}
END_TEST

START_TEST(test_escape_json_spelling)
{
	/* inside JSON strings: the same characters, as JSON escapes */
	ck_escaped("\"a\x7f\xc2\x9b\x1b\"\n", TOOL_ESCAPE_JSON | TOOL_ESCAPE_LINES,
		   "\"a\\u007f\\u009b\\u001b\"\n");
	ck_escaped("\r\t", TOOL_ESCAPE_JSON, "\\r\\t");
	ck_escaped("a\xff", TOOL_ESCAPE_JSON, "a\\ufffd");
}
END_TEST

TEST_SUITE(escape)
{
	Suite *s = suite_create("escape");
	TCase *tc = tcase_create("Segment text on a terminal");

	tcase_add_test(tc, test_escape_terminal_sequences);
	tcase_add_test(tc, test_escape_controls);
	tcase_add_test(tc, test_escape_invalid_utf8);
	tcase_add_test(tc, test_escape_keeps_text);
	tcase_add_test(tc, test_escape_json_spelling);
	suite_add_tcase(s, tc);
	return s;
}
