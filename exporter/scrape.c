/*
 * Single-flight rendering: concurrent scrapes of one format share one
 * render.  A scrape takes the newest render that finished after it
 * arrived; if none, it either renders (the first to ask) or waits for the
 * render in progress, at most until its deadline.  So N simultaneous
 * scrapes cost one render, and memory stays at one render per format
 * however many scrapers pile up (Python's exporter renders per request and
 * falls over exactly there).  A render is gzipped once, by the first
 * scrape that asks for gzip, and shared compressed too.
 *
 * A response holds its render until the client has read it, so clients
 * that ask and never read (or read slowly) would each keep one: 250 of
 * them held 3.8 GB of 50 MB pages.  When the renders alive pass
 * RENDER_BUDGET (or eight pages of this format, if more), a scrape takes
 * the latest render even though it finished before the scrape arrived:
 * a page a little old, rather than memory without bound.
 *
 * Ordering guarantees: fl->lock orders everything about a flight (busy,
 * latest, a render's gz fields); a render's body is written before it is
 * published under the lock and never written again.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <libdeflate.h>

#include "exporter.h"

struct flight {
	pthread_mutex_t lock;
	pthread_cond_t done;
	int busy;
	struct rendered *latest;
	/* One compressor for the leader (used only while it holds busy)
	 * and one for followers (used only under lock): memory for gzip
	 * stays bounded whatever the thread count. */
	struct libdeflate_compressor *lead_gz, *lock_gz;
};

static struct flight flights[FMT_COUNT];

#define RENDER_BUDGET ((size_t)256 << 20)

/* Over budget: new scrapes share the latest render (fl->lock held). */
static int
over_budget(const struct flight *fl)
{
	size_t budget = RENDER_BUDGET;

	if (fl->latest && 8 * fl->latest->body.len > budget)
		budget = 8 * fl->latest->body.len;
	return renders_bytes() > budget;
}

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
	return 0;
}

void
scrape_fini(void)
{
	for (int i = 0; i < FMT_COUNT; i++) {
		rendered_put(flights[i].latest);
		flights[i].latest = NULL;
		libdeflate_free_compressor(flights[i].lead_gz);
		libdeflate_free_compressor(flights[i].lock_gz);
		flights[i].lead_gz = flights[i].lock_gz = NULL;
	}
}

/* gzip r->body into r->gz (libdeflate, level 1: speed over ratio). */
static void
compress(struct rendered *r, struct libdeflate_compressor **cp)
{
	struct libdeflate_compressor *compressor;
	size_t bound, n;

	if (!*cp)
		*cp = libdeflate_alloc_compressor(1);
	compressor = *cp;
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
	rendered_account(r);
	own_count_gzip();
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
		if (fl->latest && (fl->latest->done_ns >= arrival_ns ||
				   (!fl->busy && over_budget(fl)))) {
			r = fl->latest;
			/* Relaxed: taken under fl->lock from the reference
			 * fl->latest holds, which cannot drop meanwhile. */
			atomic_fetch_add_explicit(&r->refs, 1,
						  memory_order_relaxed);
			break;
		}
		if (!fl->busy) {
			struct rendered *fresh;

			fl->busy = 1;
			pthread_mutex_unlock(&fl->lock);
			fresh = render_page(fmt);
			if (fresh && want_gzip)
				compress(fresh, &fl->lead_gz);
			/* Done when published: a scrape that arrived while we
			 * compressed still gets this render. */
			if (fresh)
				fresh->done_ns = mono_ns();
			pthread_mutex_lock(&fl->lock);
			fl->busy = 0;
			pthread_cond_broadcast(&fl->done);
			if (!fresh)
				break;
			rendered_put(fl->latest);
			fl->latest = fresh;
			/* Relaxed: ours alone until we unlock fl->lock. */
			atomic_fetch_add_explicit(&fresh->refs, 1,
						  memory_order_relaxed);
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
		compress(r, &fl->lock_gz);
	pthread_mutex_unlock(&fl->lock);
	return r;
}
