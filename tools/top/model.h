/*
 * shmetrics-top: the model.  Samples a segment through the public reader
 * API (never writing to it), keeps the previous sample and the first one,
 * and turns them into rows: counters with their rate per second over the
 * last interval and since start, gauges under their family's mode,
 * histograms with count, rate, mean and interpolated quantiles.
 *
 * Thread safety: one thread per model.
 */
#ifndef SHMETRICS_TOP_MODEL_H
#define SHMETRICS_TOP_MODEL_H

#include <regex.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmetrics-reader.h"

#define TOP_NQ 3                        /* p50, p95, p99 */
#define TOP_FAMILY_ROW UINT32_MAX       /* row.series of a folded family */
#define TOP_STATUS_LEN 320

enum top_sort {
	TOP_SORT_NAME,
	TOP_SORT_RATE,
	TOP_SORT_VALUE,
};

struct top_row {
	uint32_t family;                /* position in the index's families */
	uint32_t series;                /* index series, or TOP_FAMILY_ROW */
	int64_t pid;                    /* per-writer gauge sample, else -1 */
	uint32_t nseries;               /* series folded into this row */
	double value;                   /* counter, gauge, histogram count */
	uint64_t ivalue;                /* value, exactly, when integral */
	int integral;                   /* no float part: print ivalue */
	double rate;                    /* per second, last interval; NaN: none */
	double rate_start;              /* per second since start; NaN: none */
	double sum;                     /* histograms: sum of observations */
	double mean;                    /* histograms; NaN without any */
	double q[TOP_NQ];               /* histograms; NaN without any */
};

/* Cells of one sample kept for rates (the first sample, "since start"). */
struct top_snap {
	uint64_t *u;
	double *d;
	uint32_t ncells;
	size_t cap;
};

struct top_model {
	const char *segment;            /* NULL: $SHMETRICS_SEGMENT or default */
	char segment_name[256];         /* the name resolved, for messages */
	struct shmet_follow *follow;    /* lib/follow.c; NULL until sampled */
	const struct shmet_reader *r;   /* the follower's view, or NULL */
	const struct shmet_index *idx;
	char **names;                   /* per family: its sample name */
	uint32_t nnames;                /* the index may be gone: their count */
	uint8_t *match;                 /* per series: the filter matches */
	struct shmet_values *cur, *prev;        /* swapped each sample */
	int have_prev;
	struct top_snap start;
	uint64_t t_cur, t_prev, t_start;        /* CLOCK_MONOTONIC ns */
	uint64_t samples;               /* since the segment was opened */
	struct shmet_reader_info info;

	/* what is shown */
	int fold;
	enum top_sort sort;
	regex_t re;
	int have_re;
	char filter[256];

	struct top_row *rows;           /* index order */
	size_t nrows, cap_rows;
	uint32_t *order;                /* rows, sorted */
	uint64_t *hist_scratch;         /* folded bucket sums */
	size_t cap_scratch;

	char status[TOP_STATUS_LEN];    /* why there is nothing to show */
};

extern const double top_quantiles[TOP_NQ];

void top_model_init(struct top_model *m, const char *segment);
void top_model_fini(struct top_model *m);

/*
 * One refresh: follow the segment (open it, notice it destroyed or
 * replaced, rebuild the index when its generation moves), collect its
 * values and recompute the rows.
 *
 * @return 0, or a negative errno with m->status saying why there is no
 * segment to show (-ENOENT: it does not exist; other: it is unusable).
 */
int top_model_sample(struct top_model *m);

/* Recompute rows and their order from the last sample (after a change of
 * fold, sort or filter). */
int top_model_arrange(struct top_model *m);

/*
 * Filter by an extended regular expression on "name{labels}" (empty or
 * NULL: none).
 *
 * @return 0, or -EINVAL with the regex error in err (the filter is then
 * unchanged).
 */
int top_model_set_filter(struct top_model *m, const char *re, char *err,
			 size_t errlen);

/* Seconds of the last interval and since start; 0 before two samples. */
double top_model_interval(const struct top_model *m);
double top_model_elapsed(const struct top_model *m);

/* "name{labels}" of a row into out (truncated to len, NUL-terminated). */
void top_row_title(const struct top_model *m, const struct top_row *row,
		   char *out, size_t len);
const char *top_type_name(uint32_t type);
const char *top_sort_name(enum top_sort s);

/* Total registration failures. */
uint64_t top_failures(const struct shmet_reader_info *in);

/*
 * The q-quantile of a histogram whose non-cumulative bucket counts are
 * counts[0..nbounds] (the last is +Inf), as Prometheus' histogram_quantile
 * interpolates: linearly inside the bucket, 0 as the first bucket's lower
 * end, the highest finite bound for the +Inf bucket.  NaN when empty.
 */
double top_histogram_quantile(double q, const double *bounds,
			      uint32_t nbounds, const uint64_t *counts);

#endif /* SHMETRICS_TOP_MODEL_H */
