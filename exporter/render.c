/*
 * One page of one format from the current view: /metrics (segment plus
 * the exporter's own metrics), /metrics/json and /metrics/health, or
 * what to say without a segment.  A render is reference counted: the
 * scrapes that share it (scrape.c) each hold one reference.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "exporter.h"

/* Relaxed: a gauge for the memory budget of scrape.c, not a
 * synchronisation; each render's own bytes are counted by one thread. */
static atomic_size_t alive_bytes;

size_t
renders_bytes(void)
{
	return atomic_load_explicit(&alive_bytes, memory_order_relaxed);
}

void
rendered_account(struct rendered *r)
{
	size_t now = r->body.cap + r->gz.cap;

	if (now > r->accounted) {
		atomic_fetch_add_explicit(&alive_bytes, now - r->accounted,
					  memory_order_relaxed);
		r->accounted = now;
	}
}

void
rendered_put(struct rendered *r)
{
	/*
	 * Release: this thread's reads of the body happen before the
	 * decrement; acquire: the thread that drops the last reference
	 * sees every other holder's reads done before it frees.
	 */
	if (r && atomic_fetch_sub_explicit(&r->refs, 1,
					   memory_order_acq_rel) == 1) {
		atomic_fetch_sub_explicit(&alive_bytes, r->accounted,
					  memory_order_relaxed);
		shmet_buf_free(&r->body);
		shmet_buf_free(&r->gz);
		free(r);
	}
}

/* Without a segment, the health and JSON pages say why, with 503. */
static int
render_unhealthy(struct rendered *r)
{
	char reason[320];

	source_status(reason, sizeof reason);
	r->status = 503;
	return shmet_render_unhealthy(reason, &r->body);
}

struct rendered *
render_page(enum fmt fmt)
{
	struct rendered *r = calloc(1, sizeof *r);
	struct shmet_values *vals = shmet_values_new();
	uint64_t t0 = mono_ns();
	struct shmet_view *v;
	int rc;

	if (!r || !vals) {
		free(r);
		shmet_values_free(vals);
		return NULL;
	}
	/* Relaxed: r is not shared yet; scrape.c publishes it under its
	 * flight lock. */
	atomic_init(&r->refs, 1);
	r->status = 200;
	/* One allocation of about the right size instead of a doubling
	 * chain: the last render of this format tells its size. */
	shmet_buf_reserve(&r->body, own_last_render_bytes(fmt) + 65536);
	source_read_lock();
	v = source_view();
	if (fmt == FMT_TEXT || fmt == FMT_OPENMETRICS)
		rc = own_render(&r->body, fmt, v, vals);
	else if (!v)
		rc = render_unhealthy(r);
	else
		rc = shmet_render_page(v, (enum shmet_format)fmt, NULL, 0,
				       vals, &r->body);
	source_read_unlock();
	shmet_values_free(vals);
	if (rc < 0 || r->body.failed) {
		rendered_put(r);
		/* -ESTALE: the file shrank under the scrape (503; the
		 * refresher reopens it), not a lack of memory */
		exporter_log("render %s failed: %s", fmt_name(fmt),
			     rc == -ESTALE ? "the segment shrank while it was "
					     "read" :
			     rc < -1 ? strerror(-rc) : "out of memory");
		return NULL;
	}
	rendered_account(r);
	own_count_render(fmt, mono_ns() - t0, r->body.len);
	return r;
}
