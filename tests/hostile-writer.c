/*
 * A writer whose help text and label values hold what a terminal acts on,
 * as request data can: for the tests of how shmetrics-ctl dump and
 * shmetrics-top show segment text (tests/e2e/escapes.py, top.py).
 *
 *   hostile-writer SEGMENT
 * hostile_total{v=VALUES[i]} = i + 1 (VALUES below, in tests/e2e/escapes.py
 * too), help HELP; exits at once (the segment stays).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <shmetrics.h>

/* "\xc2\x9b" "31m": C1 CSI, apart so that 3 is not read as a hex digit */
static const char help[] =
	"help \x1b]0;pwned-title\x07 and \x1b[2J and \xc2\x9b" "31m "
	"and \\ end";

static const char *const values[] = {
	"title\x1b]0;pwned-title\x07",          /* OSC 0: the pane title */
	"clear\x1b[2J",                         /* CSI 2J: clear */
	"clip\x1b]52;c;cHduZWQ=\x07",           /* OSC 52: the clipboard */
	"AAAA\rBB",                             /* overwrites its row */
	("csi\xc2\x9b" "31m"),                    /* C1 CSI: red */
	"tab\tdel\x7f",
	"lit\\x1b",                             /* text, not an escape */
	"nl\nx",
};

int
main(int argc, char **argv)
{
	static const char *const label[] = { "v" };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: hostile-writer SEGMENT\n");
		return 2;
	}
	memset(&o, 0, sizeof o);
	o.name = argv[1];
	o.max_series = 64;
	o.max_writers = 4;
	o.cells_per_block = 1024;
	if (shmet_open(&seg, &o) < 0) {
		fprintf(stderr, "hostile-writer: %s\n", shmet_last_error(&seg));
		return 1;
	}
	rc = shmet_counter_family(&seg, &f, "hostile_total", help, 1, label);
	for (size_t i = 0; rc == 0 && i < sizeof values / sizeof *values; i++) {
		const char *v[] = { values[i] };

		rc = shmet_counter_labels(&f, &c, 1, v);
		shmet_counter_add(&c, i + 1);
	}
	if (rc) {
		fprintf(stderr, "hostile-writer: %s\n", shmet_last_error(&seg));
		return 1;
	}
	shmet_close(&seg);
	return 0;
}
