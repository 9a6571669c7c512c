/*
 * The exporter's own metrics: process, build, scrape and segment figures,
 * described as families and rendered by libshmetrics after the segment's
 * (shmet_render_families_*), which leaves out any family the segment
 * already has, so the exposition never holds one name twice.
 *
 * Ordering guarantees: the counters are statistics.  Every update and
 * read is relaxed: no other memory is published through them, and a
 * scrape that misses an increment still in flight shows it next time.
 * start_time_s and layout_text are written by own_init() before any other
 * thread starts (pthread_create orders them).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmetrics/layout.h>

#include "exporter.h"

#define MAX_FAMILIES 32
#define MAX_SAMPLES 96
#define MAX_LABELS 128

static _Atomic uint64_t renders_total[FMT_COUNT];
static _Atomic uint64_t gzip_total;
static _Atomic uint64_t requests_total[FMT_COUNT][6];  /* status class */
static _Atomic uint64_t last_render_ns[FMT_COUNT];
static _Atomic uint64_t last_render_bytes[FMT_COUNT];
static double start_time_s;
static char layout_text[16];

static const char *const code_names[6] = { "other", "1xx", "2xx", "3xx",
					   "4xx", "5xx" };

void
own_init(void)
{
	start_time_s = (double)clock_ns(CLOCK_REALTIME) / 1e9;
	snprintf(layout_text, sizeof layout_text, "%u", SHMET_LAYOUT_VERSION);
}

void
own_count_request(enum fmt fmt, int status)
{
	int cls = status / 100;

	if (cls < 1 || cls > 5)
		cls = 0;
	/* Relaxed: a statistic (see the top of the file). */
	atomic_fetch_add_explicit(&requests_total[fmt][cls], 1,
				  memory_order_relaxed);
}

void
own_count_render(enum fmt fmt, uint64_t ns, size_t bytes)
{
	/* Relaxed: statistics; concurrent renders of one format cannot
	 * happen (single flight), and a torn pair only mixes two renders'
	 * figures for one scrape. */
	atomic_fetch_add_explicit(&renders_total[fmt], 1, memory_order_relaxed);
	atomic_store_explicit(&last_render_ns[fmt], ns, memory_order_relaxed);
	atomic_store_explicit(&last_render_bytes[fmt], bytes,
			      memory_order_relaxed);
}

void
own_count_gzip(void)
{
	/* Relaxed: a statistic. */
	atomic_fetch_add_explicit(&gzip_total, 1, memory_order_relaxed);
}

size_t
own_last_render_bytes(enum fmt fmt)
{
	/* Relaxed: a size hint for the next buffer, nothing more. */
	return (size_t)atomic_load_explicit(&last_render_bytes[fmt],
					    memory_order_relaxed);
}

static uint64_t
load(_Atomic uint64_t *p)
{
	/* Relaxed: a statistic (see the top of the file). */
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Describing the families                                             */

struct own {
	struct shmet_extra_family fams[MAX_FAMILIES];
	struct shmet_extra_sample samples[MAX_SAMPLES];
	struct shmet_extra_label labels[MAX_LABELS];
	uint32_t nfams, nsamples, nlabels;
};

static void
die_full(const char *what)
{
	fprintf(stderr, "%s:%d: internal error: own metrics: too many %s\n",
		__FILE__, __LINE__, what);
	abort();
}

static void
family(struct own *o, const char *name, uint32_t type, const char *help)
{
	struct shmet_extra_family *f;

	if (o->nfams == MAX_FAMILIES)
		die_full("families");
	f = &o->fams[o->nfams++];
	f->name = name;
	f->help = help;
	f->type = type;
	f->samples = &o->samples[o->nsamples];
	f->sample_count = 0;
}

/* A sample of the latest family with up to two labels (NULL names end). */
static void
sample(struct own *o, double value, const char *n1, const char *v1,
       const char *n2, const char *v2)
{
	struct shmet_extra_sample *s;
	const char *names[2] = { n1, n2 }, *values[2] = { v1, v2 };

	if (o->nsamples == MAX_SAMPLES)
		die_full("samples");
	s = &o->samples[o->nsamples++];
	s->labels = &o->labels[o->nlabels];
	s->label_count = 0;
	s->value = value;
	for (int i = 0; i < 2 && names[i]; i++) {
		if (o->nlabels == MAX_LABELS)
			die_full("labels");
		o->labels[o->nlabels].name = names[i];
		o->labels[o->nlabels].value = values[i];
		o->nlabels++;
		s->label_count++;
	}
	o->fams[o->nfams - 1].sample_count++;
}

static void
gauge(struct own *o, const char *name, const char *help, double value)
{
	family(o, name, SHMET_TYPE_GAUGE, help);
	sample(o, value, NULL, NULL, NULL, NULL);
}

static void
counter(struct own *o, const char *name, const char *help, double value)
{
	family(o, name, SHMET_TYPE_COUNTER, help);
	sample(o, value, NULL, NULL, NULL, NULL);
}

/* /proc figures of this process. */
static void
own_process(struct own *o)
{
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long utime = 0, stime = 0, rss_pages = 0;
	char buf[1024];
	FILE *f;
	DIR *d;
	int fds = 0;

	f = fopen("/proc/self/stat", "r");
	if (f) {
		if (fgets(buf, sizeof buf, f)) {
			char *p = strrchr(buf, ')');

			if (p)
				sscanf(p + 2,
				       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
				       "%*u %lu %lu",
				       &utime, &stime);
		}
		fclose(f);
	}
	f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%*u %lu", &rss_pages) != 1)
			rss_pages = 0;
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d) {
		while (readdir(d))
			fds++;
		closedir(d);
		fds -= 3;               /* ".", ".." and the DIR itself */
	}
	family(o, "process_cpu_seconds_total", SHMET_TYPE_COUNTER,
	       "Total user and system CPU time spent in seconds.");
	sample(o, (double)(utime + stime) / (double)tick, NULL, NULL, NULL,
	       NULL);
	gauge(o, "process_resident_memory_bytes",
	      "Resident memory size in bytes.",
	      (double)rss_pages * (double)page);
	gauge(o, "process_open_fds", "Number of open file descriptors.", fds);
	gauge(o, "process_start_time_seconds",
	      "Start time of the process since unix epoch in seconds.",
	      start_time_s);
}

static void
own_scrapes(struct own *o)
{
	family(o, "shmetrics_build_info", SHMET_TYPE_GAUGE,
	       "shmetrics build: version and segment layout.");
	sample(o, 1, "version", SHMETRICS_VERSION, "layout", layout_text);
	family(o, "shmetrics_renders_total", SHMET_TYPE_COUNTER,
	       "Renders of the segment, by format.");
	for (int f = 0; f < FMT_COUNT; f++)
		sample(o, (double)load(&renders_total[f]), "format",
		       fmt_name(f), NULL, NULL);
	family(o, "shmetrics_http_requests_total", SHMET_TYPE_COUNTER,
	       "Answered requests by format and status class.");
	for (int f = 0; f < FMT_COUNT; f++)
		for (int c = 1; c <= 5; c++)
			sample(o, (double)load(&requests_total[f][c]),
			       "format", fmt_name(f), "code", code_names[c]);
	family(o, "shmetrics_gzip_total", SHMET_TYPE_COUNTER,
	       "Responses compressed (gzip), shared by scrapes.");
	sample(o, (double)load(&gzip_total), NULL, NULL, NULL, NULL);
	family(o, "shmetrics_render_duration_seconds", SHMET_TYPE_GAUGE,
	       "Duration of the latest render, by format.");
	for (int f = 0; f < FMT_COUNT; f++)
		sample(o, (double)load(&last_render_ns[f]) / 1e9, "format",
		       fmt_name(f), NULL, NULL);
	family(o, "shmetrics_render_bytes", SHMET_TYPE_GAUGE,
	       "Bytes of the latest render, by format.");
	for (int f = 0; f < FMT_COUNT; f++)
		sample(o, (double)load(&last_render_bytes[f]), "format",
		       fmt_name(f), NULL, NULL);
}

static void
own_segment(struct own *o, const struct shmet_reader_info *in)
{
	gauge(o, "shmetrics_segment_up",
	      "1 if the exporter is serving a valid segment.", in ? 1 : 0);
	if (!in)
		return;
	gauge(o, "shmetrics_segment_bytes",
	      "Size of the shared-memory segment in bytes.",
	      (double)in->total_size);
	gauge(o, "shmetrics_segment_bytes_used",
	      "Segment bytes holding data: strings and the used cells "
	      "of every writer block ever claimed.",
	      (double)shmet_reader_bytes_used(in));
	gauge(o, "shmetrics_segment_string_bytes_used",
	      "String pool bytes in use.", in->strings_used);
	gauge(o, "shmetrics_segment_string_bytes_capacity",
	      "String pool capacity in bytes.", in->string_bytes);
	gauge(o, "shmetrics_segment_series_used",
	      "Series registered in the segment.", in->series_used);
	gauge(o, "shmetrics_segment_series_capacity",
	      "Series the segment can hold.", in->max_series);
	gauge(o, "shmetrics_segment_cells_used",
	      "Value cells in use in each writer block.", in->cells_used);
	gauge(o, "shmetrics_segment_cells_capacity",
	      "Value cells in each writer block.", in->cells_per_block);
	family(o, "shmetrics_segment_writers", SHMET_TYPE_GAUGE,
	       "Writer slots by state.");
	sample(o, in->writers_live, "state", "live", NULL, NULL);
	sample(o, in->writers_dead, "state", "dead", NULL, NULL);
	sample(o, in->writers_unused, "state", "unused", NULL, NULL);
	gauge(o, "shmetrics_segment_series_ttl_seconds",
	      "Idle time after which a series expires; 0: never.",
	      in->series_ttl_s);
	counter(o, "shmetrics_series_expired_total",
		"Series that expired, idle for the segment's TTL.",
		(double)in->series_expired);
	counter(o, "shmetrics_stale_writes_total",
		"Writes through handles of removed or expired series, "
		"dropped.", (double)in->stale_writes);
	family(o, "shmetrics_registration_failures_total", SHMET_TYPE_COUNTER,
	       "Failed registrations in the segment, by reason.");
	for (uint32_t i = 0; i < SHMET_FAIL_COUNT; i++)
		sample(o, (double)in->failures[i], "reason",
		       shmet_failure_name(i), NULL, NULL);
}

/* Names registered with several shapes across releases (lib/index.c). */
static void
own_versions(struct own *o, const struct shmet_index *idx)
{
	struct shmet_index_versions ver;

	shmet_index_versions(idx, &ver);
	gauge(o, "shmetrics_family_type_conflicts",
	      "Family records left off the pages: a newer release registered "
	      "their name with another type.", ver.type_conflicts);
	gauge(o, "shmetrics_series_shadowed",
	      "Gauge series left off the pages: a newer release of their "
	      "family (another gauge mode) has the same label set.",
	      ver.shadowed_series);
	gauge(o, "shmetrics_series_merged",
	      "Histogram series shown merged over the buckets that the "
	      "releases counting them all have.", ver.merged_series);
}

int
own_render(struct shmet_buf *b, enum fmt fmt, const struct shmet_view *view,
	   struct shmet_values *vals)
{
	struct own *o = calloc(1, sizeof *o);
	struct shmet_reader_info in;
	int rc;

	if (!o)
		return -ENOMEM;
	if (view)
		shmet_reader_info(shmet_view_reader(view), &in);
	own_process(o);
	own_scrapes(o);
	own_segment(o, view ? &in : NULL);
	if (view)
		own_versions(o, shmet_view_index(view));
	rc = shmet_render_page(view, (enum shmet_format)fmt, o->fams,
			       o->nfams, vals, b);
	free(o);
	return rc;
}
