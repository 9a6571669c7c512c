/*
 * shmetrics-top: the ncurses view.  One header line with the segment's
 * fill (reversed red DEGRADED, or a bold marker without colours, when the
 * segment is degraded), one with the refresh state, column headings, the
 * rows, and a bottom line for keys, prompts and messages.
 */
#include "config.h"

#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics/layout.h>

#include "plain.h"
#include "view.h"

#define NUM_W 9                         /* a figure column, with its gap */
#define NAME_MIN 20
#define NAME_WANT 50                    /* names wider than this are cut */
#define PAIR_ALERT 1

static const char *const columns[] = { "VALUE", "RATE/S", "RATE0/S", "MEAN",
				       "P50",   "P95",    "P99" };
#define NCOLUMNS (int)(sizeof columns / sizeof columns[0])

static const char *const help_text[] = {
	"shmetrics-top keys",
	"",
	"  n r v     sort by name / rate / value",
	"  s         next sort order",
	"  /         filter: regular expression on",
	"            name{labels} (empty: none)",
	"  f         fold / unfold families",
	"  p space   pause / resume refreshing",
	"  arrows    scroll (PgUp PgDn Home End)",
	"  ?         this help",
	"  q         quit",
	"",
	"RATE/S: last interval, RATE0/S: since",
	"start; MEAN and P50-P99 over the last",
	"interval's observations, else all.",
};
#define HELP_LINES (int)(sizeof help_text / sizeof help_text[0])

int
top_view_open(struct top_view *v, char *err, size_t errlen)
{
	SCREEN *s;

	memset(v, 0, sizeof *v);
	s = newterm(NULL, stdout, stdin);
	if (!s) {
		snprintf(err, errlen, "cannot use the terminal (TERM=%s)",
			 getenv("TERM") ? getenv("TERM") : "");
		return -1;
	}
	v->screen = s;
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	if (has_colors() && start_color() == OK) {
		use_default_colors();
		init_pair(PAIR_ALERT, COLOR_WHITE, COLOR_RED);
		v->colour = 1;
	}
	return 0;
}

void
top_view_close(struct top_view *v)
{
	if (!v->screen)
		return;
	curs_set(1);
	endwin();
	delscreen(v->screen);
	v->screen = NULL;
}

/* Text at y, x, cut at the right edge. */
static void
put(int y, int x, const char *s)
{
	if (x < COLS)
		mvaddnstr(y, x, s, COLS - x);
}

static int
body_lines(void)
{
	return LINES - 4;
}

static void
draw_header(const struct top_view *v, const struct top_model *m)
{
	char line[1024], fill[320];
	int degraded = m->r && shmet_health_degraded(&m->info);

	top_summary(m, fill, sizeof fill);
	snprintf(line, sizeof line, "shmetrics-top %s  %s", m->segment_name,
		 fill);
	attron(A_BOLD);
	put(0, 0, line);
	attroff(A_BOLD);
	if (degraded) {
		int x = (int)strlen(line) + 2;
		int attr = v->colour ? COLOR_PAIR(PAIR_ALERT) | A_BOLD
				     : A_REVERSE | A_BOLD;

		if (x + 10 > COLS)
			x = COLS > 10 ? COLS - 10 : 0;
		attron(attr);
		put(0, x, " DEGRADED ");
		attroff(attr);
	}
	snprintf(line, sizeof line,
		 "interval %.2fs  up %.1fs  sort %s  fold %s  filter %s  "
		 "rows %zu%s",
		 top_model_interval(m), top_model_elapsed(m),
		 top_sort_name(m->sort), m->fold ? "on" : "off",
		 m->have_re ? m->filter : "-", m->nrows,
		 v->paused ? "  [PAUSED]" : "");
	put(1, 0, line);
}

/* As many figures as fit beside the names on screen (up to NAME_WANT
 * wide), and never fewer than fit beside NAME_MIN. */
static int
figure_columns(const struct top_view *v, const struct top_model *m)
{
	char title[1024];
	int want = NAME_MIN, n, least;

	for (size_t i = (size_t)v->first;
	     i < m->nrows && i < (size_t)v->first + (size_t)body_lines();
	     i++) {
		const struct top_row *row = &m->rows[m->order[i]];
		int len;

		top_row_title(m, row, title, sizeof title);
		len = (int)strlen(title) +
		      (row->series == TOP_FAMILY_ROW ? 6 : 0);
		if (len > want)
			want = len;
	}
	if (want > NAME_WANT)
		want = NAME_WANT;
	least = (COLS - NAME_MIN - 2) / NUM_W;
	n = (COLS - want - 2) / NUM_W;
	if (n < 3)
		n = least < 3 ? least : 3;
	return n < 0 ? 0 : n > NCOLUMNS ? NCOLUMNS : n;
}

static void
draw_rows(const struct top_view *v, const struct top_model *m)
{
	int ncol = figure_columns(v, m);
	int namew = COLS - 2 - ncol * NUM_W;
	char line[1024], title[1024], num[64];
	int y = 3;

	if (namew < 1)
		namew = 1;
	memset(line, ' ', sizeof line);
	snprintf(line, (size_t)namew + 1, "%-*s", namew, "NAME");
	line[namew] = ' ';
	line[namew + 1] = 'T';
	for (int c = 0; c < ncol; c++)
		snprintf(line + namew + 2 + c * NUM_W, NUM_W + 1, "%*s",
			 NUM_W, columns[c]);
	line[COLS < (int)sizeof line ? COLS : (int)sizeof line - 1] = '\0';
	attron(A_REVERSE);
	mvhline(2, 0, ' ', COLS);
	put(2, 0, line);
	attroff(A_REVERSE);

	for (size_t i = (size_t)v->first;
	     i < m->nrows && y < 3 + body_lines(); i++, y++) {
		const struct top_row *row = &m->rows[m->order[i]];
		const struct shmet_index_family *f =
			shmet_index_family(m->idx, row->family);
		double fig[NCOLUMNS] = { row->value, row->rate,
					 row->rate_start, row->mean,
					 row->q[0], row->q[1], row->q[2] };
		int tl;

		top_row_title(m, row, title, sizeof title);
		if (row->series == TOP_FAMILY_ROW) {
			tl = (int)strlen(title);
			snprintf(title + tl, sizeof title - (size_t)tl,
				 " (%u)", row->nseries);
		}
		tl = (int)strlen(title);
		if (tl > namew && namew > 2) {
			/* keep the start (the family) and the end (the
			 * labels that tell series apart) */
			int head = namew / 2;

			memmove(title + head + 1, title + tl - (namew - head - 1),
				(size_t)(namew - head - 1) + 1);
			title[head] = '~';
		}
		snprintf(line, sizeof line, "%-*.*s %c", namew, namew, title,
			 top_type_name(f->type)[0]);
		for (int c = 0; c < ncol; c++) {
			top_format_number(fig[c], NUM_W - 1, num, sizeof num);
			snprintf(line + strlen(line),
				 sizeof line - strlen(line), "%*s", NUM_W,
				 num);
		}
		put(y, 0, line);
	}
}

static void
draw_help(void)
{
	int w = 44, h = HELP_LINES + 2;
	int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;

	if (y0 < 0)
		y0 = 0;
	if (x0 < 0)
		x0 = 0;
	for (int i = 0; i < h && y0 + i < LINES; i++) {
		attron(A_REVERSE);
		mvhline(y0 + i, x0, ' ', w < COLS ? w : COLS);
		if (i > 0 && i <= HELP_LINES)
			put(y0 + i, x0 + 2, help_text[i - 1]);
		attroff(A_REVERSE);
	}
}

void
top_view_draw(struct top_view *v, const struct top_model *m)
{
	char line[1024];

	erase();
	if (COLS < TOP_MIN_COLS || LINES < TOP_MIN_LINES) {
		snprintf(line, sizeof line, "%dx%d, need %dx%d", COLS,
			 LINES, TOP_MIN_COLS, TOP_MIN_LINES);
		put(0, 0, "terminal too small:");
		if (LINES > 1)
			put(1, 0, line);
		if (LINES > 2)
			put(2, 0, "q quits");
		refresh();
		return;
	}
	draw_header(v, m);
	if (!m->r) {
		snprintf(line, sizeof line, "waiting for segment %s: %s",
			 m->segment_name, m->status);
		put(3, 0, line);
	} else {
		if ((size_t)v->first >= m->nrows && m->nrows)
			v->first = (int)m->nrows - 1;
		draw_rows(v, m);
	}
	if (v->msg[0])
		put(LINES - 1, 0, v->msg);
	else
		put(LINES - 1, 0,
		    "q quit  ? help  / filter  f fold  n/r/v sort  p pause");
	if (v->help)
		draw_help();
	refresh();
}

int
top_view_key(struct top_view *v, int timeout_ms)
{
	int k;

	timeout(timeout_ms);
	k = getch();
	return k == ERR ? -1 : k;
}

int
top_view_prompt(struct top_view *v, const char *prompt, char *buf,
		size_t len)
{
	size_t n = strlen(buf);
	int k;

	curs_set(1);
	timeout(-1);
	for (;;) {
		move(LINES - 1, 0);
		clrtoeol();
		put(LINES - 1, 0, prompt);
		put(LINES - 1, (int)strlen(prompt), buf);
		refresh();
		k = getch();
		if (k == 27) {
			curs_set(0);
			return -1;
		}
		if (k == '\n' || k == '\r' || k == KEY_ENTER)
			break;
		if (k == KEY_BACKSPACE || k == 127 || k == 8) {
			if (n)
				buf[--n] = '\0';
		} else if (k == 21) {           /* ^U */
			n = 0;
			buf[0] = '\0';
		} else if (k >= 32 && k < 256 && n + 1 < len) {
			buf[n++] = (char)k;
			buf[n] = '\0';
		}
	}
	curs_set(0);
	return 0;
}

int
top_view_scroll(struct top_view *v, const struct top_model *m, int key)
{
	int page = body_lines() > 1 ? body_lines() - 1 : 1;
	int last = m->nrows > (size_t)body_lines() ?
			   (int)m->nrows - body_lines() : 0;

	switch (key) {
	case KEY_UP: case 'k': v->first--; break;
	case KEY_DOWN: case 'j': v->first++; break;
	case KEY_PPAGE: v->first -= page; break;
	case KEY_NPAGE: v->first += page; break;
	case KEY_HOME: case 'g': v->first = 0; break;
	case KEY_END: case 'G': v->first = last; break;
	default: return 0;
	}
	if (v->first > last)
		v->first = last;
	if (v->first < 0)
		v->first = 0;
	return 1;
}
