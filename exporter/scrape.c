/*
 * Single-flight rendering: concurrent scrapes of one format share one
 * render.  A scrape takes the newest render that finished after it
 * arrived; if none, it either renders (the first to ask) or waits for the
 * render in progress, at most until its deadline.  So N simultaneous
 * scrapes cost one render, and memory stays at one render per format
 * however many scrapers pile up (Python's exporter renders per request and
 * falls over exactly there).
 *
 * The exporter's own metrics (process, build, scrape and segment figures)
 * are rendered with each /metrics body; a family the segment already has
 * is left out, so the exposition never holds one name twice.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libdeflate.h>
#include <shmetrics/format.h>
#include <urcu/urcu-memb.h>

#include "exporter.h"

struct flight {
	pthread_mutex_t lock;
	pthread_cond_t done;
	int busy;
	struct rendered *latest;
};

static struct flight flights[FMT_COUNT];

/* Own counters, updated with relaxed atomics (statistics only). */
static uint64_t renders_total[FMT_COUNT];
static uint64_t compress_total;
static uint64_t requests_total[FMT_COUNT][6];   /* by status class */
static uint64_t last_render_ns[FMT_COUNT];
static uint64_t last_render_bytes[FMT_COUNT];
static double start_time_s;

static __thread struct libdeflate_compressor *compressor;

static const char *const fmt_names[FMT_COUNT] = { "text", "openmetrics",
						  "json", "health" };

int
scrape_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (int i = 0; i < FMT_COUNT; i++) {
		pthread_mutex_init(&flights[i].lock, NULL);
		pthread_cond_init(&flights[i].done, &ca);
	}
	pthread_condattr_destroy(&ca);
	start_time_s = (double)exporter_clock_ns(CLOCK_REALTIME) / 1e9;
	return 0;
}

void
rendered_put(struct rendered *r)
{
	if (r && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		shmet_buf_free(&r->body);
		shmet_buf_free(&r->gz);
		free(r);
	}
}

void
scrape_fini(void)
{
	for (int i = 0; i < FMT_COUNT; i++) {
		rendered_put(flights[i].latest);
		flights[i].latest = NULL;
	}
}

void
exporter_thread_init(void)
{
	urcu_memb_register_thread();
}

void
exporter_thread_exit(void)
{
	libdeflate_free_compressor(compressor);
	compressor = NULL;
	urcu_memb_unregister_thread();
}

void
scrape_count_request(enum fmt fmt, int status)
{
	int cls = status / 100;

	if (cls < 1 || cls > 5)
		cls = 0;
	__atomic_add_fetch(&requests_total[fmt][cls], 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Own metrics                                                         */

struct own {
	struct shmet_buf *b;
	const struct shmet_index *idx;  /* NULL without a segment */
	int om;
};

static int
own_family(struct own *o, const char *name, const char *type,
	   const char *help)
{
	char family[128];
	size_t n = strlen(name);

	if (o->idx && shmet_index_find(o->idx, name))
		return 0;               /* the segment has it: leave ours out */
	snprintf(family, sizeof family, "%s", name);
	if (o->om && !strcmp(type, "counter") && n > 6 &&
	    !strcmp(name + n - 6, "_total"))
		family[n - 6] = '\0';
	if (o->om) {
		shmet_buf_printf(o->b, "# TYPE %s %s\n# HELP %s %s\n", family, type,
			   family, help);
	} else {
		shmet_buf_printf(o->b, "# HELP %s %s\n# TYPE %s %s\n", family, help,
			   family, type);
	}
	return 1;
}

static void
own_value(struct own *o, const char *name, const char *labels, double v)
{
	char num[48];

	shmet_format_double(num, v);
	shmet_buf_printf(o->b, "%s%s %s\n", name, labels, num);
}

static void
own_gauge(struct own *o, const char *name, const char *help, double v)
{
	if (own_family(o, name, "gauge", help))
		own_value(o, name, "", v);
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
	if (own_family(o, "process_cpu_seconds_total", "counter",
		       "Total user and system CPU time spent in seconds."))
		own_value(o, "process_cpu_seconds_total", "",
			  (double)(utime + stime) / (double)tick);
	own_gauge(o, "process_resident_memory_bytes",
		  "Resident memory size in bytes.",
		  (double)rss_pages * (double)page);
	own_gauge(o, "process_open_fds", "Number of open file descriptors.",
		  fds);
	own_gauge(o, "process_start_time_seconds",
		  "Start time of the process since unix epoch in seconds.",
		  start_time_s);
}

static void
own_segment(struct own *o, const struct shmet_reader_info *in)
{
	char labels[64];

	own_gauge(o, "shmetrics_segment_up",
		  "1 if the exporter is serving a valid segment.", in ? 1 : 0);
	if (!in)
		return;
	own_gauge(o, "shmetrics_segment_bytes",
		  "Size of the shared-memory segment in bytes.",
		  (double)in->total_size);
	own_gauge(o, "shmetrics_segment_bytes_used",
		  "Segment bytes holding data: strings and the used cells "
		  "of every writer block ever claimed.",
		  (double)shmet_reader_bytes_used(in));
	own_gauge(o, "shmetrics_segment_string_bytes_used",
		  "String pool bytes in use.", in->strings_used);
	own_gauge(o, "shmetrics_segment_string_bytes_capacity",
		  "String pool capacity in bytes.", in->string_bytes);
	own_gauge(o, "shmetrics_segment_series_used",
		  "Series registered in the segment.", in->series_used);
	own_gauge(o, "shmetrics_segment_series_capacity",
		  "Series the segment can hold.", in->max_series);
	own_gauge(o, "shmetrics_segment_cells_used",
		  "Value cells in use in each writer block.", in->cells_used);
	own_gauge(o, "shmetrics_segment_cells_capacity",
		  "Value cells in each writer block.", in->cells_per_block);
	if (own_family(o, "shmetrics_segment_writers", "gauge",
		       "Writer slots by state.")) {
		own_value(o, "shmetrics_segment_writers", "{state=\"live\"}",
			  in->writers_live);
		own_value(o, "shmetrics_segment_writers", "{state=\"dead\"}",
			  in->writers_dead);
		own_value(o, "shmetrics_segment_writers", "{state=\"unused\"}",
			  in->writers_unused);
	}
	if (own_family(o, "shmetrics_registration_failures_total", "counter",
		       "Failed registrations in the segment, by reason.")) {
		for (uint32_t i = 0; i < SHMET_FAIL_COUNT; i++) {
			snprintf(labels, sizeof labels, "{reason=\"%s\"}",
				 shmet_failure_name(i));
			own_value(o, "shmetrics_registration_failures_total",
				  labels, (double)in->failures[i]);
		}
	}
}

static void
own_scrapes(struct own *o)
{
	char labels[96];

	if (own_family(o, "shmetrics_build_info", "gauge",
		       "shmetrics build: version and segment layout.")) {
		snprintf(labels, sizeof labels,
			 "{version=\"%s\",layout=\"%u\"}", SHMETRICS_VERSION,
			 SHMET_LAYOUT_VERSION);
		own_value(o, "shmetrics_build_info", labels, 1);
	}
	if (own_family(o, "shmetrics_renders_total", "counter",
		       "Renders of the segment, by format.")) {
		for (int f = 0; f < FMT_COUNT; f++) {
			snprintf(labels, sizeof labels, "{format=\"%s\"}",
				 fmt_names[f]);
			own_value(o, "shmetrics_renders_total", labels,
				  (double)__atomic_load_n(&renders_total[f],
							  __ATOMIC_RELAXED));
		}
	}
	if (own_family(o, "shmetrics_http_requests_total", "counter",
		       "Answered requests by format and status class.")) {
		for (int f = 0; f < FMT_COUNT; f++)
			for (int c = 1; c <= 5; c++) {
				snprintf(labels, sizeof labels,
					 "{format=\"%s\",code=\"%dxx\"}",
					 fmt_names[f], c);
				own_value(o, "shmetrics_http_requests_total",
					  labels,
					  (double)__atomic_load_n(
						  &requests_total[f][c],
						  __ATOMIC_RELAXED));
			}
	}
	if (own_family(o, "shmetrics_gzip_total", "counter",
		       "Responses compressed (gzip), shared by scrapes."))
		own_value(o, "shmetrics_gzip_total", "",
			  (double)__atomic_load_n(&compress_total,
						  __ATOMIC_RELAXED));
	if (own_family(o, "shmetrics_render_duration_seconds", "gauge",
		       "Duration of the latest render, by format.")) {
		for (int f = 0; f < FMT_COUNT; f++) {
			snprintf(labels, sizeof labels, "{format=\"%s\"}",
				 fmt_names[f]);
			own_value(o, "shmetrics_render_duration_seconds",
				  labels,
				  (double)__atomic_load_n(&last_render_ns[f],
							  __ATOMIC_RELAXED) /
					  1e9);
		}
	}
	if (own_family(o, "shmetrics_render_bytes", "gauge",
		       "Bytes of the latest render, by format.")) {
		for (int f = 0; f < FMT_COUNT; f++) {
			snprintf(labels, sizeof labels, "{format=\"%s\"}",
				 fmt_names[f]);
			own_value(o, "shmetrics_render_bytes", labels,
				  (double)__atomic_load_n(&last_render_bytes[f],
							  __ATOMIC_RELAXED));
		}
	}
}

/* ------------------------------------------------------------------ */
/* Rendering                                                           */

static int
render_metrics(struct rendered *r, struct view *v, enum fmt fmt,
	       struct shmet_values *vals)
{
	struct shmet_reader_info in;
	struct own o = { &r->body, v ? v->index : NULL, fmt == FMT_OPENMETRICS };
	int rc = 0;

	if (v)
		shmet_reader_info(v->map->reader, &in);
	own_process(&o);
	own_scrapes(&o);
	own_segment(&o, v ? &in : NULL);
	if (!v) {
		if (fmt == FMT_OPENMETRICS)
			shmet_buf_printf(&r->body, "# EOF\n");
		return 0;
	}
	rc = shmet_values_collect(v->map->reader, v->index, vals);
	if (rc == 0)
		rc = fmt == FMT_TEXT ? shmet_render_text(v->index, vals, &r->body)
				     : shmet_render_openmetrics(v->index, vals,
								&r->body);
	return rc;
}

static int
render_health(struct rendered *r, struct view *v)
{
	struct shmet_reader_info in;
	char reason[320];

	if (!v) {
		source_status(reason, sizeof reason);
		r->status = 503;
		shmet_buf_printf(&r->body,
			   "{\n  \"status\": \"unhealthy\",\n  \"registry\": "
			   "\"application\",\n  \"reason\": \"");
		shmet_buf_put_json_escaped(&r->body, reason);
		shmet_buf_printf(&r->body, "\"\n}\n");
		return 0;
	}
	shmet_reader_info(v->map->reader, &in);
	return shmet_render_health(v->index, &in, &r->body);
}

static struct rendered *
render(enum fmt fmt)
{
	struct rendered *r = calloc(1, sizeof *r);
	struct shmet_values vals;
	uint64_t t0 = exporter_clock_ns(CLOCK_MONOTONIC);
	struct view *v;
	int rc;

	if (!r)
		return NULL;
	memset(&vals, 0, sizeof vals);
	r->refs = 1;
	r->status = 200;
	/* One allocation of about the right size instead of a doubling
	 * chain: the last render of this format tells its size. */
	shmet_buf_reserve(&r->body, __atomic_load_n(&last_render_bytes[fmt],
						    __ATOMIC_RELAXED) + 65536);
	source_read_lock();
	v = source_view();
	switch (fmt) {
	case FMT_TEXT:
	case FMT_OPENMETRICS:
		rc = render_metrics(r, v, fmt, &vals);
		break;
	case FMT_JSON:
		if (!v) {
			r->status = 503;
			rc = 0;
			shmet_buf_printf(&r->body, "{\"error\": \"no segment\"}\n");
			break;
		}
		rc = shmet_values_collect(v->map->reader, v->index, &vals);
		if (rc == 0)
			rc = shmet_render_json(
				v->index, &vals,
				exporter_clock_ns(CLOCK_REALTIME), &r->body);
		break;
	default:
		rc = render_health(r, v);
		break;
	}
	source_read_unlock();
	shmet_values_free(&vals);
	if (rc < 0 || r->body.failed) {
		rendered_put(r);
		exporter_log("render %s failed: out of memory", fmt_names[fmt]);
		return NULL;
	}
	__atomic_add_fetch(&renders_total[fmt], 1, __ATOMIC_RELAXED);
	__atomic_store_n(&last_render_ns[fmt], exporter_clock_ns(CLOCK_MONOTONIC) - t0,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&last_render_bytes[fmt], r->body.len,
			 __ATOMIC_RELAXED);
	return r;
}

/* gzip r->body into r->gz (libdeflate, level 1: speed over ratio). */
static void
compress(struct rendered *r)
{
	size_t bound, n;

	if (!compressor)
		compressor = libdeflate_alloc_compressor(1);
	if (!compressor)
		return;
	bound = libdeflate_gzip_compress_bound(compressor, r->body.len);
	if (shmet_buf_reserve(&r->gz, bound) < 0)
		return;
	n = libdeflate_gzip_compress(compressor, r->body.data, r->body.len,
				     r->gz.data, bound);
	if (n == 0)
		return;
	r->gz.len = n;
	r->gz_done = 1;
	__atomic_add_fetch(&compress_total, 1, __ATOMIC_RELAXED);
}

static void
timespec_at(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

struct rendered *
scrape_get(enum fmt fmt, uint64_t arrival_ns, uint64_t deadline_ns,
	   int want_gzip)
{
	struct flight *fl = &flights[fmt];
	struct rendered *r = NULL;

	pthread_mutex_lock(&fl->lock);
	for (;;) {
		if (fl->latest && fl->latest->done_ns >= arrival_ns) {
			r = fl->latest;
			__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
			break;
		}
		if (!fl->busy) {
			struct rendered *fresh;

			fl->busy = 1;
			pthread_mutex_unlock(&fl->lock);
			fresh = render(fmt);
			if (fresh && want_gzip)
				compress(fresh);
			/* Done when published: a scrape that arrived while we
			 * compressed still gets this render. */
			if (fresh)
				fresh->done_ns = exporter_clock_ns(CLOCK_MONOTONIC);
			pthread_mutex_lock(&fl->lock);
			fl->busy = 0;
			pthread_cond_broadcast(&fl->done);
			if (!fresh)
				break;
			rendered_put(fl->latest);
			fl->latest = fresh;
			__atomic_add_fetch(&fresh->refs, 1, __ATOMIC_RELAXED);
			r = fresh;
			break;
		} else {
			struct timespec ts;

			timespec_at(&ts, deadline_ns);
			if (pthread_cond_timedwait(&fl->done, &fl->lock, &ts) ==
			    ETIMEDOUT)
				break;
		}
	}
	/* A follower that wants gzip of a plain render compresses it once,
	 * under the lock, so that others reuse it. */
	if (r && want_gzip && !r->gz_done)
		compress(r);
	pthread_mutex_unlock(&fl->lock);
	return r;
}
