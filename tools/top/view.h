/*
 * shmetrics-top: the interactive view (ncurses).  Draws a model; reads
 * keys; never samples by itself.
 */
#ifndef SHMETRICS_TOP_VIEW_H
#define SHMETRICS_TOP_VIEW_H

#include <stddef.h>

#include "model.h"

#define TOP_MIN_COLS 40
#define TOP_MIN_LINES 6

struct top_view {
	void *screen;                   /* SCREEN * */
	int first;                      /* first row on screen */
	int help;                       /* the help box is shown */
	int paused;
	int colour;
	char msg[256];                  /* bottom line, until the next key */
};

/* Take over the terminal; 0, or -1 with a message in err. */
int top_view_open(struct top_view *v, char *err, size_t errlen);
/* Give the terminal back as it was. */
void top_view_close(struct top_view *v);
void top_view_draw(struct top_view *v, const struct top_model *m);
/* A key, or -1 after timeout_ms (negative: wait for one). */
int top_view_key(struct top_view *v, int timeout_ms);
/* Read a line at the bottom; 0, or -1 when cancelled (Escape). */
int top_view_prompt(struct top_view *v, const char *prompt, char *buf,
		    size_t len);
/* Handle a navigation key (arrows, pages); 1 if it was one. */
int top_view_scroll(struct top_view *v, const struct top_model *m, int key);

#endif /* SHMETRICS_TOP_VIEW_H */
