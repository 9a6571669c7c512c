/*
 * bench-writer's table of rows: each row's runs sorted into median, min
 * and max, looked up by name for the ratios, printed at the end.  The
 * measuring files (bench-writer.c, writer-scale.c) record here and call
 * nothing in each other.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-writer.h"

struct row {
	const char *name;
	double median, min, max;
};

static struct row rows[48];
static int nrows;
static int runs = 1;

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void
bench_set_runs(int n)
{
	runs = n;
}

void
bench_report(const char *name, double *ns)
{
	struct row *r;

	if (nrows == (int)(sizeof rows / sizeof rows[0])) {
		fprintf(stderr, "bench: more than %d rows\n", nrows);
		exit(1);
	}
	r = &rows[nrows++];
	qsort(ns, (size_t)runs, sizeof *ns, cmp_double);
	r->name = name;
	r->median = ns[runs / 2];
	r->min = ns[0];
	r->max = ns[runs - 1];
}

double
bench_median(const char *name)
{
	for (int i = 0; i < nrows; i++)
		if (strcmp(rows[i].name, name) == 0)
			return rows[i].median;
	return 0;
}

void
bench_print_rows(void)
{
	printf("%-52s %9s %9s %9s %7s\n", "operation", "median", "min", "max",
	       "x atomic");
	for (int i = 0; i < nrows; i++)
		printf("%-52s %7.2fns %7.2fns %7.2fns %6.2fx\n", rows[i].name,
		       rows[i].median, rows[i].min, rows[i].max,
		       rows[i].median / rows[0].median);
}
