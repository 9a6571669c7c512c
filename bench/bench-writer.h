/* What bench-writer's files share (bench-writer.c, writer-scale.c,
 * bench-rows.c, rseq-floor.c). */
#ifndef SHMETRICS_BENCH_WRITER_H
#define SHMETRICS_BENCH_WRITER_H

#include <shmetrics.h>

#define MAX_RUNS 64

/* The table of rows (bench-rows.c): how many runs a row has; record a
 * row (ns[0..runs) sorted, median, min and max kept); the median of a
 * recorded row, 0 if none; print them all, ratios to the first. */
void bench_set_runs(int runs);
void bench_report(const char *name, double *ns);
double bench_median(const char *name);
void bench_print_rows(void);

/* The floor of any rseq add (rseq-floor.c): ready, then n adds. */
int bench_rseq_floor_ready(void);
void op_rseq_floor(long n);

/* The scaling rows (writer-scale.c): 1-8 threads and processes. */
void bench_scaling(const struct shmet_counter *c, int runs, long ops);
void bench_scaling_ratios(void);

#endif
