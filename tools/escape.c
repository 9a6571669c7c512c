/*
 * Segment text on a terminal (escape.h): control characters, DEL, C1 and
 * invalid UTF-8 escaped, everything else as it is.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <shmetrics/format.h>

#include "escape.h"

static void
put(struct shmet_buf *b, const void *s, size_t n)
{
	if (n == 0 || shmet_buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* The escape of control character c (C0, DEL or a C1 code point). */
static void
control(unsigned c, unsigned flags, char out[16])
{
	if (c == '\t' || c == '\r' || c == '\n')
		snprintf(out, 16, "\\%c",
			 c == '\t' ? 't' : c == '\r' ? 'r' : 'n');
	else if (flags & TOOL_ESCAPE_JSON)
		snprintf(out, 16, "\\u%04x", c);
	else if (c >= 0x80)             /* C1: both of its UTF-8 bytes */
		snprintf(out, 16, "\\xc2\\x%02x", c);
	else
		snprintf(out, 16, "\\x%02x", c);
}

/*
 * The character at p (*n bytes: its UTF-8 length, or 1 for a byte that
 * starts none) into out, escaped; 0 if it is shown as it is.
 */
static int
escape_one(const unsigned char *p, size_t left, unsigned flags, size_t *n,
	   char out[16])
{
	*n = shmet_seg_utf8_len(p, left);
	if (*n == 0) {
		*n = 1;
		snprintf(out, 16, flags & TOOL_ESCAPE_JSON ? "\\ufffd"
							    : "\\x%02x", p[0]);
		return 1;
	}
	if (*n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {  /* U+0080-U+009F */
		control(p[1], flags, out);
		return 1;
	}
	if (*n > 1 || (p[0] >= 0x20 && p[0] != 0x7f) ||
	    (p[0] == '\n' && (flags & TOOL_ESCAPE_LINES)))
		return 0;
	control(p[0], flags, out);
	return 1;
}

void
tool_escape(struct shmet_buf *b, const char *s, size_t len, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;          /* run: bytes kept, not yet put */

	while (i < len) {
		char esc[16];
		size_t n;

		if (!escape_one(p + i, len - i, flags, &n, esc)) {
			run += n;
			i += n;
			continue;
		}
		put(b, p + i - run, run);
		put(b, esc, strlen(esc));
		run = 0;
		i += n;
	}
	put(b, p + i - run, run);
}
