/*
 * shmetrics-top's refresh cost: CPU time (getrusage, user + system) of
 * one refresh of its model on a live segment, as the interactive view
 * does it every interval: follow the segment, collect every cell over the
 * writer blocks, compute rates and quantiles, order the rows, and format
 * a screenful.
 *
 *   bench-top SEGMENT [RUNS]
 *
 * The segment comes from `bench-render SERIES WRITERS hold` (see
 * bench/run-top.sh).  Prints one line per view: median, min and max CPU
 * ms per refresh, and rows.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model.h"
#include "plain.h"

#define MAX_RUNS 101
#define SCREEN_ROWS 50

static double
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* What drawing costs besides curses: titles and figures of a screen. */
static size_t
format_screen(const struct top_model *m)
{
	char title[1024], num[64];
	size_t bytes = 0;

	for (size_t i = 0; i < m->nrows && i < SCREEN_ROWS; i++) {
		const struct top_row *row = &m->rows[m->order[i]];

		top_row_title(m, row, title, sizeof title);
		bytes += strlen(title);
		top_format_number(row->value, 9, num, sizeof num);
		bytes += strlen(num);
		top_format_number(row->rate, 9, num, sizeof num);
		bytes += strlen(num);
	}
	return bytes;
}

static int
measure(struct top_model *m, const char *what, int runs)
{
	double cpu[MAX_RUNS], wall[MAX_RUNS];

	for (int i = -1; i < runs; i++) {      /* one warm-up */
		double c0 = cpu_ms(), w0 = wall_ms();

		if (top_model_sample(m) < 0) {
			fprintf(stderr, "bench-top: %s\n", m->status);
			return -1;
		}
		format_screen(m);
		if (i >= 0) {
			cpu[i] = cpu_ms() - c0;
			wall[i] = wall_ms() - w0;
		}
	}
	qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
	qsort(wall, (size_t)runs, sizeof *wall, cmp_double);
	printf("series %6u  writers %3u  %-22s cpu median %7.2f ms  "
	       "min %7.2f  max %7.2f  (wall median %7.2f)  rows %zu\n",
	       m->info.series_used, m->info.writers_live, what,
	       cpu[runs / 2], cpu[0], cpu[runs - 1], wall[runs / 2],
	       m->nrows);
	return 0;
}

int
main(int argc, char **argv)
{
	struct top_model m;
	char err[256];
	int runs = argc > 2 ? atoi(argv[2]) : 15;
	double c0;
	int rc = 0;

	if (argc < 2 || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: bench-top SEGMENT [RUNS 1-101]\n");
		return 2;
	}
	top_model_init(&m, argv[1]);
	c0 = cpu_ms();
	if (top_model_sample(&m) < 0) {
		fprintf(stderr, "bench-top: %s\n", m.status);
		return 1;
	}
	printf("first sample (index build): cpu %.1f ms\n", cpu_ms() - c0);
	m.sort = TOP_SORT_NAME;
	rc |= measure(&m, "sort name", runs);
	m.sort = TOP_SORT_RATE;
	rc |= measure(&m, "sort rate", runs);
	m.sort = TOP_SORT_VALUE;
	rc |= measure(&m, "sort value", runs);
	m.fold = 1;
	m.sort = TOP_SORT_RATE;
	rc |= measure(&m, "folded, sort rate", runs);
	m.fold = 0;
	if (top_model_set_filter(&m, "campaign-0000[0-4]", err,
				 sizeof err) < 0) {
		fprintf(stderr, "bench-top: %s\n", err);
		return 1;
	}
	rc |= measure(&m, "filtered, sort rate", runs);
	top_model_fini(&m);
	return rc ? 1 : 0;
}
