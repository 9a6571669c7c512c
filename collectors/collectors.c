/*
 * libshmetrics-collectors: the specification's collectors
 * (shmetrics-collectors.h), on the public writer API of <shmetrics.h> only.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <shmetrics.h>

#include "shmetrics-collectors.h"

#define SHMET_COLLECTORS_EXPORT __attribute__((visibility("default")))

#define NBOUNDS(b) ((uint32_t)(sizeof(b) / sizeof((b)[0])))

SHMET_COLLECTORS_EXPORT const double
shmet_call_duration_bounds[SHMET_CALL_DURATION_NBOUNDS] = {
	10, 30, 60, 120, 180, 300, 600, 900, 1200, 1800
};
SHMET_COLLECTORS_EXPORT const double
shmet_processing_latency_bounds[SHMET_PROCESSING_LATENCY_NBOUNDS] = {
	0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
SHMET_COLLECTORS_EXPORT const double
shmet_poll_cycle_bounds[SHMET_POLL_CYCLE_NBOUNDS] = {
	0.5, 1, 2, 5, 10, 15, 30
};
SHMET_COLLECTORS_EXPORT const double
shmet_delivery_latency_bounds[SHMET_DELIVERY_LATENCY_NBOUNDS] = {
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
SHMET_COLLECTORS_EXPORT const double
shmet_queue_processing_bounds[SHMET_QUEUE_PROCESSING_NBOUNDS] = {
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
};

/* ------------------------------------------------------------------ */
/* Timers                                                              */

static struct shmet_timer
timer_start_at(const struct shmet_histogram *h, uint64_t start_ns,
	       double scale)
{
	struct shmet_timer t;

	t.hist = *h;
	t.start_ns = start_ns;
	t.scale = scale;
	t.done = 0;
	return t;
}

SHMET_COLLECTORS_EXPORT struct shmet_timer
shmet_timer_start(const struct shmet_histogram *h)
{
	return timer_start_at(h, shmet_now_ns(), 1);
}

static double
elapsed_s(uint64_t start_ns, uint64_t now_ns, double scale)
{
	if (now_ns < start_ns)
		return 0;
	return (double)(now_ns - start_ns) / 1e9 * scale;
}

SHMET_COLLECTORS_EXPORT double
shmet_timer_stop(struct shmet_timer *t)
{
	double s;

	if (t->done)
		return -1;
	t->done = 1;
	s = elapsed_s(t->start_ns, shmet_now_ns(), t->scale);
	shmet_histogram_observe(&t->hist, s);
	return s;
}

SHMET_COLLECTORS_EXPORT void
shmet_timer_cleanup(struct shmet_timer *t)
{
	shmet_timer_stop(t);
}

/* A trace id worth an exemplar: neither NULL nor empty. */
static int
traced(const char *trace_id)
{
	return trace_id && *trace_id;
}

static const char *const trace_name[1] = { "trace_id" };

/* Count on k, with the exemplar {trace_id} if there is one. */
static void
inc_traced(const struct shmet_counter *k, const char *trace_id)
{
	if (traced(trace_id))
		shmet_counter_inc_exemplar(k, 1, trace_name, &trace_id);
	else
		shmet_counter_inc(k);
}

/* Observe s on h, with the exemplar {trace_id} if there is one. */
static void
observe_traced(const struct shmet_histogram *h, double s,
	       const char *trace_id)
{
	if (traced(trace_id))
		shmet_histogram_observe_exemplar(h, s, 1, trace_name,
						 &trace_id);
	else
		shmet_histogram_observe(h, s);
}

SHMET_COLLECTORS_EXPORT double
shmet_timer_stop_traced(struct shmet_timer *t, const char *trace_id)
{
	double s;

	if (t->done)
		return -1;
	t->done = 1;
	s = elapsed_s(t->start_ns, shmet_now_ns(), t->scale);
	observe_traced(&t->hist, s, trace_id);
	return s;
}

/* ------------------------------------------------------------------ */
/* Registration from a table                                           */

struct family_spec {
	size_t offset;                  /* of the struct shmet_family */
	struct shmet_family_desc desc;
};

/*
 * Register every family of a collector and declare the collector with
 * them (for the health endpoint; name NULL: families only, as part of a
 * collector declared elsewhere); returns the first error.
 */
static int
register_specs(struct shmet_segment *seg, const char *name, void *collector,
	       const struct family_spec *specs, size_t n)
{
	const char *names[SHMET_MAX_COLLECTOR_FAMILIES];
	int error = 0;

	for (size_t i = 0; i < n && i < SHMET_MAX_COLLECTOR_FAMILIES; i++)
		names[i] = specs[i].desc.name;
	if (name)
		error = shmet_collector_register(seg, name, (uint32_t)n, names);
	for (size_t i = 0; i < n; i++) {
		struct shmet_family *fam = (struct shmet_family *)(void *)
			((char *)collector + specs[i].offset);
		int rc = shmet_family_register(seg, &specs[i].desc, fam);

		if (rc < 0 && error == 0)
			error = rc;
	}
	return error;
}

/* Label name lists of the specification. */
static const char *const l_cu[] = { "campaign_id", "user_id" };
static const char *const l_cuo[] = { "campaign_id", "user_id", "outcome" };
static const char *const l_cue[] = { "campaign_id", "user_id",
				     "error_type" };
static const char *const l_u[] = { "user_id" };
static const char *const l_c[] = { "campaign_id" };
static const char *const l_co[] = { "campaign_id", "outcome" };
static const char *const l_ep[] = { "event_type", "partner_id" };
static const char *const l_eps[] = { "event_type", "partner_id",
				     "status_code" };
static const char *const l_pa[] = { "partner_id", "attempt_number" };
static const char *const l_w[] = { "worker_id" };
static const char *const l_p[] = { "partner_id" };

#define SPEC(coll, field, name_, help_, unit_, type_, mode_, nl, l, nb, b) \
	{ .offset = offsetof(struct coll, field), \
	  .desc = { .name = name_, .help = help_, .unit = unit_, \
		    .type = type_, .gauge_mode = mode_, .label_count = nl, \
		    .label_names = l, .bound_count = nb, .bounds = b } }
#define COUNTER(coll, field, name, help, nl, l) \
	SPEC(coll, field, name, help, NULL, SHMET_TYPE_COUNTER, 0, nl, l, \
	     0, NULL)
#define GAUGE(coll, field, name, help, unit, mode, nl, l) \
	SPEC(coll, field, name, help, unit, SHMET_TYPE_GAUGE, \
	     SHMET_GAUGE_##mode, nl, l, 0, NULL)
#define HISTOGRAM(coll, field, name, help, nl, l, b) \
	SPEC(coll, field, name, help, "seconds", SHMET_TYPE_HISTOGRAM, 0, \
	     nl, l, NBOUNDS(b), b)

/* ------------------------------------------------------------------ */
/* Campaign engine                                                     */

#define C_ shmet_campaign_collector
static const struct family_spec campaign_specs[] = {
	COUNTER(C_, calls_initiated, "campaign_calls_initiated_total",
		"Total number of campaign calls initiated", 2, l_cu),
	COUNTER(C_, calls_completed, "campaign_calls_completed_total",
		"Total calls completed", 3, l_cuo),
	COUNTER(C_, calls_failed, "campaign_calls_failed_total",
		"Total call failures", 3, l_cue),
	COUNTER(C_, cost, "campaign_cost_total", "Total campaign cost ($)",
		2, l_cu),
	GAUGE(C_, active_campaigns, "campaign_active_campaigns",
	      "Number of active campaigns", NULL, LIVESUM, 1, l_u),
	GAUGE(C_, pending_leads, "campaign_pending_leads",
	      "Pending leads in campaign", NULL, LIVEMOSTRECENT, 1, l_c),
	GAUGE(C_, concurrent_calls, "campaign_concurrent_calls",
	      "Current concurrent calls", NULL, LIVESUM, 0, NULL),
	GAUGE(C_, success_rate, "campaign_success_rate",
	      "Campaign success rate (0-1)", NULL, LIVEMOSTRECENT, 1, l_c),
	HISTOGRAM(C_, call_duration, "campaign_call_duration_seconds",
		  "Call duration distribution", 2, l_co,
		  shmet_call_duration_bounds),
	HISTOGRAM(C_, processing_latency,
		  "campaign_processing_latency_seconds",
		  "Call processing time", 1, l_c,
		  shmet_processing_latency_bounds),
	HISTOGRAM(C_, poll_cycle, "campaign_poll_cycle_duration_seconds",
		  "Engine poll cycle duration", 0, NULL,
		  shmet_poll_cycle_bounds),
};
#undef C_

SHMET_COLLECTORS_EXPORT int
shmet_campaign_collector_init(struct shmet_campaign_collector *c,
			      struct shmet_segment *seg)
{
	memset(c, 0, sizeof *c);
	c->time_scale = 1;
	c->error = register_specs(seg, "campaign_metrics", c, campaign_specs,
				  sizeof campaign_specs /
				  sizeof campaign_specs[0]);
	shmet_gauge_labels(&c->concurrent_calls, &c->concurrent, 0, NULL);
	shmet_histogram_labels(&c->poll_cycle, &c->poll, 0, NULL);
	return c->error;
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_collector_set_time_scale(struct shmet_campaign_collector *c,
					double scale)
{
	if (scale > 0)
		c->time_scale = scale;
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_record_call_initiated_traced(
	const struct shmet_campaign_collector *c, const char *campaign_id,
	const char *user_id, const char *trace_id)
{
	const char *v[2] = { campaign_id, user_id };
	struct shmet_counter k;

	shmet_counter_labels(&c->calls_initiated, &k, 2, v);
	inc_traced(&k, trace_id);
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_record_call_initiated(const struct shmet_campaign_collector *c,
				     const char *campaign_id,
				     const char *user_id)
{
	shmet_campaign_record_call_initiated_traced(c, campaign_id, user_id,
						    NULL);
}

SHMET_COLLECTORS_EXPORT struct shmet_timer
shmet_campaign_time_processing(const struct shmet_campaign_collector *c,
			       const char *campaign_id)
{
	struct shmet_histogram h;

	shmet_histogram_labels(&c->processing_latency, &h, 1, &campaign_id);
	return timer_start_at(&h, shmet_now_ns(), c->time_scale);
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_record_call_completed(const struct shmet_campaign_collector *c,
				     const char *campaign_id,
				     const char *user_id, const char *outcome,
				     double duration_s, double cost)
{
	shmet_campaign_record_call_completed_traced(c, campaign_id, user_id,
						    outcome, duration_s, cost,
						    NULL);
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_record_call_completed_traced(
	const struct shmet_campaign_collector *c, const char *campaign_id,
	const char *user_id, const char *outcome, double duration_s,
	double cost, const char *trace_id)
{
	const char *cuo[3] = { campaign_id, user_id, outcome };
	const char *co[2] = { campaign_id, outcome };
	struct shmet_counter k;
	struct shmet_histogram h;

	shmet_counter_labels(&c->calls_completed, &k, 3, cuo);
	inc_traced(&k, trace_id);
	shmet_histogram_labels(&c->call_duration, &h, 2, co);
	observe_traced(&h, duration_s, trace_id);
	if (cost > 0) {
		shmet_counter_labels(&c->cost, &k, 2, cuo);
		shmet_counter_add_double(&k, cost);
	}
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_record_call_failed(const struct shmet_campaign_collector *c,
				  const char *campaign_id, const char *user_id,
				  const char *error_type)
{
	const char *v[3] = { campaign_id, user_id, error_type };
	struct shmet_counter k;

	shmet_counter_labels(&c->calls_failed, &k, 3, v);
	shmet_counter_inc(&k);
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_update_active_campaigns(const struct shmet_campaign_collector *c,
				       const char *user_id, double count)
{
	struct shmet_gauge g;

	shmet_gauge_labels(&c->active_campaigns, &g, 1, &user_id);
	shmet_gauge_set(&g, count);
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_update_pending_leads(const struct shmet_campaign_collector *c,
				    const char *campaign_id, double count)
{
	struct shmet_gauge g;

	shmet_gauge_labels(&c->pending_leads, &g, 1, &campaign_id);
	shmet_gauge_set(&g, count);
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_update_concurrent_calls(const struct shmet_campaign_collector *c,
				       double count)
{
	shmet_gauge_set(&c->concurrent, count);
}

SHMET_COLLECTORS_EXPORT void
shmet_campaign_update_success_rate(const struct shmet_campaign_collector *c,
				   const char *campaign_id, double rate)
{
	struct shmet_gauge g;

	shmet_gauge_labels(&c->success_rate, &g, 1, &campaign_id);
	shmet_gauge_set(&g, rate);
}

SHMET_COLLECTORS_EXPORT struct shmet_timer
shmet_campaign_time_poll_cycle(const struct shmet_campaign_collector *c)
{
	return timer_start_at(&c->poll, shmet_now_ns(), c->time_scale);
}

/* ------------------------------------------------------------------ */
/* Webhook worker                                                      */

/* The queue's gauges, in the worker's collector and in the queue owner's
 * (shmet_webhook_queue_init): one definition, so both register the same. */
#define QUEUE_SIZE(coll) \
	GAUGE(coll, queue_size, "webhook_queue_size", "Current queue size", \
	      NULL, LIVEMOSTRECENT, 0, NULL)
#define QUEUE_OLDEST_AGE(coll) \
	GAUGE(coll, queue_oldest_age, "webhook_queue_oldest_age_seconds", \
	      "Age of oldest webhook", "seconds", LIVEMOSTRECENT, 0, NULL)

#define W_ shmet_webhook_collector
static const struct family_spec webhook_specs[] = {
	COUNTER(W_, queued, "webhook_queued_total", "Total webhooks queued",
		2, l_ep),
	COUNTER(W_, delivered, "webhook_delivered_total",
		"Total successful deliveries", 2, l_ep),
	COUNTER(W_, failed, "webhook_failed_total", "Total delivery failures",
		3, l_eps),
	COUNTER(W_, dead_letter, "webhook_dead_letter_total",
		"Webhooks in dead letter queue", 2, l_ep),
	COUNTER(W_, retry_attempts, "webhook_retry_attempts_total",
		"Total retry attempts", 2, l_pa),
	COUNTER(W_, worker_processed, "webhook_worker_processed_total",
		"Webhooks processed by worker", 1, l_w),
	QUEUE_SIZE(W_),
	QUEUE_OLDEST_AGE(W_),
	GAUGE(W_, active_workers, "webhook_active_workers",
	      "Active worker instances", NULL, LIVESUM, 0, NULL),
	GAUGE(W_, worker_uptime, "webhook_worker_uptime_seconds",
	      "Worker uptime", "seconds", LIVESUM, 1, l_w),
	HISTOGRAM(W_, delivery_latency, "webhook_delivery_latency_seconds",
		  "HTTP delivery latency", 1, l_p,
		  shmet_delivery_latency_bounds),
	HISTOGRAM(W_, queue_processing,
		  "webhook_queue_processing_duration_seconds",
		  "Queue to delivery time", 1, l_p,
		  shmet_queue_processing_bounds),
};
#undef W_

SHMET_COLLECTORS_EXPORT int
shmet_webhook_collector_init(struct shmet_webhook_collector *c,
			     struct shmet_segment *seg, const char *worker_id)
{
	memset(c, 0, sizeof *c);
	c->started_ns = shmet_now_ns();
	c->time_scale = 1;
	c->error = register_specs(seg, "webhook_metrics", c, webhook_specs,
				  sizeof webhook_specs /
				  sizeof webhook_specs[0]);
	shmet_gauge_labels(&c->queue_size, &c->size, 0, NULL);
	shmet_gauge_labels(&c->queue_oldest_age, &c->oldest, 0, NULL);
	shmet_gauge_labels(&c->active_workers, &c->active, 0, NULL);
	shmet_gauge_labels(&c->worker_uptime, &c->uptime, 1, &worker_id);
	shmet_counter_labels(&c->worker_processed, &c->processed, 1,
			     &worker_id);
	/* This process is one active worker until it dies or exits. */
	shmet_gauge_set(&c->active, 1);
	shmet_gauge_set(&c->uptime, 0);
	return c->error;
}

SHMET_COLLECTORS_EXPORT void
shmet_webhook_collector_set_time_scale(struct shmet_webhook_collector *c,
				       double scale)
{
	if (scale > 0)
		c->time_scale = scale;
}

SHMET_COLLECTORS_EXPORT void
shmet_webhook_record_queued(const struct shmet_webhook_collector *c,
			    const char *event_type, const char *partner_id)
{
	const char *v[2] = { event_type, partner_id };
	struct shmet_counter k;

	shmet_counter_labels(&c->queued, &k, 2, v);
	shmet_counter_inc(&k);
}

SHMET_COLLECTORS_EXPORT struct shmet_delivery_timer
shmet_webhook_time_delivery_queued(const struct shmet_webhook_collector *c,
				   const char *partner_id,
				   uint64_t enqueued_ns)
{
	struct shmet_delivery_timer t;
	struct shmet_histogram h;
	const char *p;

	memset(&t, 0, sizeof t);
	t.c = c;
	/* An owned copy.  The buffer holds one byte more than a label value
	 * may have, so a value too long stays too long (and is refused, as
	 * the original would be) instead of being cut to a valid one. */
	snprintf(t.partner_id, sizeof t.partner_id, "%s", partner_id);
	p = t.partner_id;
	t.enqueued_ns = enqueued_ns;
	shmet_histogram_labels(&c->delivery_latency, &h, 1, &p);
	t.latency = timer_start_at(&h, shmet_now_ns(), c->time_scale);
	return t;
}

SHMET_COLLECTORS_EXPORT struct shmet_delivery_timer
shmet_webhook_time_delivery(const struct shmet_webhook_collector *c,
			    const char *partner_id)
{
	return shmet_webhook_time_delivery_queued(c, partner_id, 0);
}

SHMET_COLLECTORS_EXPORT void
shmet_delivery_set_trace(struct shmet_delivery_timer *t, const char *trace_id)
{
	/* cut to the buffer: a longer one is refused by the exemplar's
	 * 128-character check anyway, and then counted without it */
	snprintf(t->trace_id, sizeof t->trace_id, "%s",
		 trace_id ? trace_id : "");
}

SHMET_COLLECTORS_EXPORT void
shmet_delivery_set_success(struct shmet_delivery_timer *t,
			   const char *event_type)
{
	const char *v[2] = { event_type, t->partner_id };
	struct shmet_counter k;

	t->delivered = 1;
	shmet_counter_labels(&t->c->delivered, &k, 2, v);
	inc_traced(&k, t->trace_id);
}

SHMET_COLLECTORS_EXPORT void
shmet_delivery_set_failed(struct shmet_delivery_timer *t,
			  const char *event_type, int status_code)
{
	char status[16];
	const char *v[3] = { event_type, t->partner_id, status };
	struct shmet_counter k;

	snprintf(status, sizeof status, "%d", status_code);
	shmet_counter_labels(&t->c->failed, &k, 3, v);
	shmet_counter_inc(&k);
}

SHMET_COLLECTORS_EXPORT double
shmet_delivery_end(struct shmet_delivery_timer *t)
{
	uint64_t now = shmet_now_ns();
	const char *p = t->partner_id;
	struct shmet_histogram h;
	double s;

	if (t->latency.done)
		return -1;
	t->latency.done = 1;
	s = elapsed_s(t->latency.start_ns, now, t->latency.scale);
	observe_traced(&t->latency.hist, s, t->trace_id);
	if (t->delivered && t->enqueued_ns != 0) {
		shmet_histogram_labels(&t->c->queue_processing, &h, 1, &p);
		observe_traced(&h, elapsed_s(t->enqueued_ns, now,
					     t->latency.scale),
			       t->trace_id);
	}
	return s;
}

SHMET_COLLECTORS_EXPORT void
shmet_delivery_timer_cleanup(struct shmet_delivery_timer *t)
{
	shmet_delivery_end(t);
}

SHMET_COLLECTORS_EXPORT struct shmet_timer
shmet_webhook_time_processing(const struct shmet_webhook_collector *c,
			      const char *partner_id, uint64_t enqueued_ns)
{
	struct shmet_histogram h;

	shmet_histogram_labels(&c->queue_processing, &h, 1, &partner_id);
	return timer_start_at(&h, enqueued_ns ? enqueued_ns : shmet_now_ns(),
			      c->time_scale);
}

SHMET_COLLECTORS_EXPORT void
shmet_webhook_record_retry(const struct shmet_webhook_collector *c,
			   const char *partner_id, int attempt_number)
{
	char attempt[16];
	const char *v[2] = { partner_id, attempt };
	struct shmet_counter k;

	snprintf(attempt, sizeof attempt, "%d", attempt_number);
	shmet_counter_labels(&c->retry_attempts, &k, 2, v);
	shmet_counter_inc(&k);
}

SHMET_COLLECTORS_EXPORT void
shmet_webhook_record_dead_letter(const struct shmet_webhook_collector *c,
				 const char *event_type,
				 const char *partner_id)
{
	const char *v[2] = { event_type, partner_id };
	struct shmet_counter k;

	shmet_counter_labels(&c->dead_letter, &k, 2, v);
	shmet_counter_inc(&k);
}

SHMET_COLLECTORS_EXPORT void
shmet_webhook_update_queue_health(const struct shmet_webhook_collector *c,
				  double queue_size, double oldest_age_s)
{
	shmet_gauge_set(&c->size, queue_size);
	shmet_gauge_set(&c->oldest, oldest_age_s);
}

#define Q_ shmet_webhook_queue
static const struct family_spec queue_specs[] = {
	QUEUE_SIZE(Q_),
	QUEUE_OLDEST_AGE(Q_),
};
#undef Q_

SHMET_COLLECTORS_EXPORT int
shmet_webhook_queue_init(struct shmet_webhook_queue *q,
			 struct shmet_segment *seg)
{
	memset(q, 0, sizeof *q);
	/* Part of the webhook collector, which the workers declare: the
	 * owner adds no collector of its own to /metrics/health. */
	q->error = register_specs(seg, NULL, q, queue_specs,
				  sizeof queue_specs / sizeof queue_specs[0]);
	shmet_gauge_labels(&q->queue_size, &q->size, 0, NULL);
	shmet_gauge_labels(&q->queue_oldest_age, &q->oldest, 0, NULL);
	return q->error;
}

SHMET_COLLECTORS_EXPORT void
shmet_webhook_queue_update(const struct shmet_webhook_queue *q,
			   double queue_size, double oldest_age_s)
{
	shmet_gauge_set(&q->size, queue_size);
	shmet_gauge_set(&q->oldest, oldest_age_s);
}

SHMET_COLLECTORS_EXPORT double
shmet_webhook_update_worker_uptime(const struct shmet_webhook_collector *c)
{
	double s = elapsed_s(c->started_ns, shmet_now_ns(), c->time_scale);

	shmet_gauge_set(&c->uptime, s);
	return s;
}

SHMET_COLLECTORS_EXPORT void
shmet_webhook_record_processed(const struct shmet_webhook_collector *c)
{
	shmet_counter_inc(&c->processed);
}
