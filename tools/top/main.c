/*
 * shmetrics-top: a live view of a shmetrics segment in the terminal, as
 * varnishstat or htop: read-only, through the public reader API.
 *
 *   main.c    arguments, the refresh loop, keys
 *   model.c   sampling, rates, quantiles, folding, filter and order
 *   plain.c   --once and --json output
 *   view.c    the ncurses view
 */
#include "config.h"

#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics/layout.h>

#include "model.h"
#include "plain.h"
#include "view.h"
#include "tools/cli.h"

static const char usage[] =
	"usage: shmetrics-top [--segment NAME] [-d SECONDS] [--once | --json]\n"
	"                     [--sort name|rate|value] [--filter REGEX] "
	"[--fold]\n"
	"\n"
	"A live table of a shmetrics segment, refreshed every -d seconds:\n"
	"counters with their rate per second over the last interval and since\n"
	"start, gauges under their family's mode, histograms with count, rate,\n"
	"mean and p50/p95/p99.  Read-only.  Keys: n r v sort, / filter, f fold,\n"
	"p pause, ? help, q quit.\n"
	"\n"
	"Options:\n"
	"  --segment NAME    segment (default $SHMETRICS_SEGMENT or /shmetrics)\n"
	"  -d, --delay S     seconds between refreshes (default 1; 0.05-3600)\n"
	"  --once            print the table once, after one interval, as text\n"
	"  --json            the same as JSON\n"
	"  --sort KEY        name (default), rate or value\n"
	"  --filter REGEX    extended regular expression on name{labels}\n"
	"  --fold            one row per family, with its aggregate\n"
	"  -h, --help        this text\n"
	"  -V, --version     print the version\n"
	"Exit status: 0 done, 1 failed (segment, terminal), 2 wrong command "
	"line.\n";

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	quit = sig;
}

/* One line on stderr and the exit status (tools/cli.h): a failure of
 * the work, or a wrong command line. */
#define fail(...) cli_fail("shmetrics-top", __VA_ARGS__)
#define usage_error(...) cli_usage_error("shmetrics-top", __VA_ARGS__)

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
parse_sort(const char *s, enum top_sort *out)
{
	if (!strcmp(s, "name"))
		*out = TOP_SORT_NAME;
	else if (!strcmp(s, "rate"))
		*out = TOP_SORT_RATE;
	else if (!strcmp(s, "value"))
		*out = TOP_SORT_VALUE;
	else
		return -1;
	return 0;
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u),
			       (long)(ns % 1000000000u) };

	while (!quit && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --once, --json: two samples one interval apart, printed. */
static int
run_once(struct top_model *m, double delay, int json)
{
	int rc = top_model_sample(m);

	if (rc < 0)
		return fail("%s", m->status);
	sleep_ns((uint64_t)(delay * 1e9));
	if (quit)
		return 1;
	rc = top_model_sample(m);
	if (rc < 0)
		return fail("%s", m->status);
	rc = json ? top_print_json(m, stdout) : top_print_text(m, stdout);
	if (rc < 0)
		return fail("writing the table: %s", strerror(-rc));
	return 0;
}

static void
key_filter(struct top_view *v, struct top_model *m)
{
	char buf[256], err[256];

	snprintf(buf, sizeof buf, "%s", m->have_re ? m->filter : "");
	if (top_view_prompt(v, "filter (regex, empty: none): ", buf,
			    sizeof buf) < 0)
		return;
	if (top_model_set_filter(m, buf, err, sizeof err) < 0)
		snprintf(v->msg, sizeof v->msg, "invalid regex '%.100s': %.100s",
			 buf, err);
	v->first = 0;
}

/* One key; 1 to quit. */
static int
key(struct top_view *v, struct top_model *m, int k)
{
	v->msg[0] = '\0';
	if (v->help && k != KEY_RESIZE) {
		v->help = 0;
		return k == 'q';
	}
	if (top_view_scroll(v, m, k))
		return 0;
	switch (k) {
	case 'q': case 'Q':
		return 1;
	case '?': case 'h':
		v->help = 1;
		break;
	case 'n': m->sort = TOP_SORT_NAME; break;
	case 'r': m->sort = TOP_SORT_RATE; break;
	case 'v': m->sort = TOP_SORT_VALUE; break;
	case 's': m->sort = (m->sort + 1) % 3; break;
	case 'f':
		m->fold = !m->fold;
		v->first = 0;
		break;
	case 'p': case ' ':
		v->paused = !v->paused;
		break;
	case '/':
		key_filter(v, m);
		break;
	case KEY_RESIZE:
		break;
	default:
		return 0;
	}
	if (top_model_arrange(m) < 0)
		snprintf(v->msg, sizeof v->msg, "out of memory");
	return 0;
}

static int
run_view(struct top_model *m, double delay)
{
	struct top_view v;
	char err[256];
	uint64_t period = (uint64_t)(delay * 1e9), next = now_ns();
	int rc = 0;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return fail("not a terminal (use --once or --json)");
	if (top_view_open(&v, err, sizeof err) < 0)
		return fail("%s", err);
	while (!quit) {
		uint64_t now = now_ns();
		int k, wait_ms;

		if (!v.paused && now >= next) {
			top_model_sample(m);
			next += period;
			if (next <= now)
				next = now + period;
		}
		top_view_draw(&v, m);
		now = now_ns();
		wait_ms = v.paused ? 1000 :
			  next > now ? (int)((next - now) / 1000000u) + 1 : 0;
		k = top_view_key(&v, wait_ms);
		if (k >= 0 && key(&v, m, k))
			break;
	}
	top_view_close(&v);
	if (quit && quit != SIGINT)
		rc = 1;
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, 'S' },
		{ "delay", required_argument, NULL, 'd' },
		{ "once", no_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "sort", required_argument, NULL, 's' },
		{ "filter", required_argument, NULL, 'F' },
		{ "fold", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa;
	struct top_model m;
	const char *segment = NULL, *filter = NULL;
	enum top_sort sort = TOP_SORT_NAME;
	double delay = 1;
	int once = 0, json = 0, fold = 0, o, rc;
	char err[256], *end;
	const char *why;

	opterr = 0;     /* our own one-line messages */
	while ((o = getopt_long(argc, argv, "d:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'S':
			if ((why = cli_segment_why(optarg)))
				return usage_error("invalid value '%s' for "
						   "--segment: %s", optarg, why);
			segment = optarg;
			break;
		case 'd':
			errno = 0;
			delay = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(delay >= 0.05) ||
			    delay > 3600)
				return usage_error("invalid value '%s' for -d: "
						   "not seconds in 0.05..3600",
						   optarg);
			break;
		case 'o': once = 1; break;
		case 'j': json = 1; break;
		case 's':
			if (parse_sort(optarg, &sort) < 0)
				return usage_error("invalid value '%s' for "
						   "--sort: not name, rate or "
						   "value", optarg);
			break;
		case 'F': filter = optarg; break;
		case 'f': fold = 1; break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			return cli_version("shmetrics-top");
		default:
			return cli_unknown_option("shmetrics-top",
						  argv[optind - 1]);
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (once && json)
		return usage_error("--once and --json exclude each other");

	top_model_init(&m, segment);
	m.sort = sort;
	m.fold = fold;
	if (filter && top_model_set_filter(&m, filter, err, sizeof err) < 0) {
		top_model_fini(&m);
		return usage_error("invalid value '%s' for --filter: not a "
				   "regex: %s", filter, err);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;     /* no SA_RESTART: getch returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	if (once || json)
		rc = run_once(&m, delay, json);
	else
		rc = run_view(&m, delay);
	top_model_fini(&m);
	return rc;
}
