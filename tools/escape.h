/*
 * Segment text on a terminal: the one rule shmetrics-ctl dump and
 * shmetrics-top (plain output and the ncurses view) show it by.
 *
 * Help texts and label values are any UTF-8 a writer chose, often from
 * request data.  Printed raw, ESC ] 0 ; ... BEL sets the terminal's title,
 * ESC [2J clears it, OSC 52 writes the clipboard, a C1 CSI (U+009B) does
 * what ESC [ does, and a carriage return overwrites the row it is in.
 * So every byte a terminal acts on is shown escaped:
 *
 *   C0 controls (0x00-0x1f)   \t \r \n, others \xHH       (\u00HH in JSON)
 *   DEL (0x7f)                \x7f                        (\u007f)
 *   C1 (U+0080-U+009F)        \xc2\xHH, as in the bytes   (\u00HH)
 *   bytes not valid UTF-8     \xHH, each                  (\ufffd)
 *
 * A backslash is never escaped here: the text given must be in a format
 * that already writes each of its own backslashes as \\ (the exposition's
 * label and help escaping, JSON strings), so a backslash in the result
 * always starts an escape and "\x1b" cannot be mistaken for a value's
 * own text (that shows as \\x1b).
 */
#ifndef SHMETRICS_TOOLS_ESCAPE_H
#define SHMETRICS_TOOLS_ESCAPE_H

#include <stddef.h>

#include "shmetrics-reader.h"

enum {
	/* spell escapes as JSON does (the text is inside JSON strings):
	 * the result stays valid JSON meaning the same strings */
	TOOL_ESCAPE_JSON = 1,
	/* keep \n: a page whose format escapes newlines inside its fields,
	 * so that a newline there ends a line */
	TOOL_ESCAPE_LINES = 2,
};

/* Append s[0..len) to b, escaped as above (flags: TOOL_ESCAPE_*).
 * Memory running out sets b->failed, as every shmet_buf append does. */
void tool_escape(struct shmet_buf *b, const char *s, size_t len,
		 unsigned flags);

#endif /* SHMETRICS_TOOLS_ESCAPE_H */
