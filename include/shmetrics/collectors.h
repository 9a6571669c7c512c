/*
 * The specification's collectors (shared/spec/metrics-exporter.md) as C:
 * a campaign collector and a webhook collector, with one function per
 * method of the Python originals.  Header-only, like <shmetrics.h>.
 *
 * Names, types, labels and help texts are the specification's.  Bucket
 * bounds lie inside its ranges (README, "Collectors").  Gauge modes are
 * chosen so that a fleet reads right without extra code:
 *   campaign_concurrent_calls      livesum: each engine reports its own
 *                                  calls; a dead engine's calls vanish
 *   campaign_active_campaigns,     livemostrecent: every engine polls the
 *   campaign_pending_leads,        same database, so they report the same
 *   campaign_success_rate          fact; summing would multiply it
 *   webhook_queue_size,            livemostrecent: one shared queue seen by
 *   webhook_queue_oldest_age_seconds every worker
 *   webhook_active_workers         livesum of a per-process 1: drops when a
 *                                  worker dies
 *   webhook_worker_uptime_seconds  livesum: one writer per worker_id; the
 *                                  series disappears with its worker
 *
 * Every record_* / update_* call resolves its series (a hash lookup in the
 * segment, about 35 ns) and never fails visibly: errors are counted in the
 * segment like every registration failure.
 */
#ifndef SHMETRICS_COLLECTORS_H
#define SHMETRICS_COLLECTORS_H

#include <shmetrics.h>

#include <stdio.h>

/* A running timer on a resolved histogram. */
struct shmet_timer {
	struct shmet_histogram hist;
	uint64_t start_ns;
};

static inline struct shmet_timer
shmet_timer_start(const struct shmet_histogram *h)
{
	struct shmet_timer t;

	t.hist = *h;
	t.start_ns = shmet_now_ns();
	return t;
}

/* Observe the elapsed seconds; returns them. */
static inline double
shmet_timer_stop(const struct shmet_timer *t)
{
	double s = (double)(shmet_now_ns() - t->start_ns) / 1e9;

	shmet_histogram_observe(&t->hist, s);
	return s;
}

/*
 * SHMET_TIMED(timer) { ... } runs the block once and stops the timer after
 * it, as Python's "with metrics.time_processing(...):".
 */
#define SHMET_TIMED(timer_expr) \
	for (struct shmet_timer shmet_impl_tm_ = (timer_expr), \
	     *shmet_impl_tp_ = &shmet_impl_tm_; \
	     shmet_impl_tp_; \
	     shmet_timer_stop(&shmet_impl_tm_), shmet_impl_tp_ = NULL)

/* Bucket bounds, in seconds. */
static const double shmet_call_duration_bounds[] = {
	10, 30, 60, 120, 180, 300, 600, 900, 1200, 1800
};
static const double shmet_processing_latency_bounds[] = {
	0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
static const double shmet_poll_cycle_bounds[] = {
	0.5, 1, 2, 5, 10, 15, 30
};
static const double shmet_delivery_latency_bounds[] = {
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
static const double shmet_queue_processing_bounds[] = {
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
};

#define SHMET_NBOUNDS(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

/* A family of a collector: its description and where its handle goes. */
struct shmet_impl_family_spec {
	size_t offset;          /* of the struct shmet_family in the collector */
	struct shmet_family_desc desc;
};

/*
 * Register every family of a collector and declare the collector with
 * them (for the health endpoint); returns the first error.
 */
static inline int
shmet_impl_register_specs(struct shmet_segment *seg, const char *name,
			  void *collector,
			  const struct shmet_impl_family_spec *specs, size_t n)
{
	const char *names[SHMET_MAX_COLLECTOR_FAMILIES];
	int error = 0;

	for (size_t i = 0; i < n && i < SHMET_MAX_COLLECTOR_FAMILIES; i++)
		names[i] = specs[i].desc.name;
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
static const char *const shmet_impl_l_cu[] = { "campaign_id", "user_id" };
static const char *const shmet_impl_l_cuo[] = { "campaign_id", "user_id",
						"outcome" };
static const char *const shmet_impl_l_cue[] = { "campaign_id", "user_id",
						"error_type" };
static const char *const shmet_impl_l_u[] = { "user_id" };
static const char *const shmet_impl_l_c[] = { "campaign_id" };
static const char *const shmet_impl_l_co[] = { "campaign_id", "outcome" };
static const char *const shmet_impl_l_ep[] = { "event_type", "partner_id" };
static const char *const shmet_impl_l_eps[] = { "event_type", "partner_id",
						"status_code" };
static const char *const shmet_impl_l_pa[] = { "partner_id",
					       "attempt_number" };
static const char *const shmet_impl_l_w[] = { "worker_id" };
static const char *const shmet_impl_l_p[] = { "partner_id" };

/* One table row: field, name, help, unit, type, gauge mode, labels, bounds
 * (positional, so that the header also compiles as C++). */
#define SHMET_IMPL_SPEC(coll, field, name, help, unit, type, mode, nl, l, \
			nb, b) \
	{ offsetof(struct coll, field), \
	  { name, help, unit, type, mode, nl, l, nb, b, 0 } }
#define SHMET_IMPL_COUNTER(coll, field, name, help, nl, l) \
	SHMET_IMPL_SPEC(coll, field, name, help, NULL, SHMET_TYPE_COUNTER, 0, \
			nl, l, 0, NULL)
#define SHMET_IMPL_GAUGE(coll, field, name, help, unit, mode, nl, l) \
	SHMET_IMPL_SPEC(coll, field, name, help, unit, SHMET_TYPE_GAUGE, \
			SHMET_GAUGE_##mode, nl, l, 0, NULL)
#define SHMET_IMPL_HISTOGRAM(coll, field, name, help, nl, l, b) \
	SHMET_IMPL_SPEC(coll, field, name, help, "seconds", \
			SHMET_TYPE_HISTOGRAM, 0, nl, l, SHMET_NBOUNDS(b), b)

/* ------------------------------------------------------------------ */
/* Campaign engine                                                     */

struct shmet_campaign_collector {
	struct shmet_family calls_initiated;    /* campaign_id, user_id */
	struct shmet_family calls_completed;    /* + outcome */
	struct shmet_family calls_failed;       /* + error_type */
	struct shmet_family cost;               /* campaign_id, user_id */
	struct shmet_family active_campaigns;   /* user_id */
	struct shmet_family pending_leads;      /* campaign_id */
	struct shmet_family concurrent_calls;
	struct shmet_family success_rate;       /* campaign_id */
	struct shmet_family call_duration;      /* campaign_id, outcome */
	struct shmet_family processing_latency; /* campaign_id */
	struct shmet_family poll_cycle;
	struct shmet_gauge concurrent;
	struct shmet_histogram poll;
	int error;                              /* first registration error */
};

/* Register the campaign families; returns the first error (or 0). */
static inline int
shmet_campaign_collector_init(struct shmet_campaign_collector *c,
			      struct shmet_segment *seg)
{
#define C_ shmet_campaign_collector
	static const struct shmet_impl_family_spec specs[] = {
		SHMET_IMPL_COUNTER(C_, calls_initiated,
			"campaign_calls_initiated_total",
			"Total number of campaign calls initiated", 2,
			shmet_impl_l_cu),
		SHMET_IMPL_COUNTER(C_, calls_completed,
			"campaign_calls_completed_total",
			"Total calls completed", 3, shmet_impl_l_cuo),
		SHMET_IMPL_COUNTER(C_, calls_failed,
			"campaign_calls_failed_total", "Total call failures", 3,
			shmet_impl_l_cue),
		SHMET_IMPL_COUNTER(C_, cost, "campaign_cost_total",
			"Total campaign cost ($)", 2, shmet_impl_l_cu),
		SHMET_IMPL_GAUGE(C_, active_campaigns,
			"campaign_active_campaigns",
			"Number of active campaigns", NULL, LIVEMOSTRECENT, 1,
			shmet_impl_l_u),
		SHMET_IMPL_GAUGE(C_, pending_leads, "campaign_pending_leads",
			"Pending leads in campaign", NULL, LIVEMOSTRECENT, 1,
			shmet_impl_l_c),
		SHMET_IMPL_GAUGE(C_, concurrent_calls,
			"campaign_concurrent_calls", "Current concurrent calls",
			NULL, LIVESUM, 0, NULL),
		SHMET_IMPL_GAUGE(C_, success_rate, "campaign_success_rate",
			"Campaign success rate (0-1)", NULL, LIVEMOSTRECENT, 1,
			shmet_impl_l_c),
		SHMET_IMPL_HISTOGRAM(C_, call_duration,
			"campaign_call_duration_seconds",
			"Call duration distribution", 2, shmet_impl_l_co,
			shmet_call_duration_bounds),
		SHMET_IMPL_HISTOGRAM(C_, processing_latency,
			"campaign_processing_latency_seconds",
			"Call processing time", 1, shmet_impl_l_c,
			shmet_processing_latency_bounds),
		SHMET_IMPL_HISTOGRAM(C_, poll_cycle,
			"campaign_poll_cycle_duration_seconds",
			"Engine poll cycle duration", 0, NULL,
			shmet_poll_cycle_bounds),
	};
#undef C_

	memset((void *)c, 0, sizeof *c);
	c->error = shmet_impl_register_specs(seg, "campaign_metrics", c, specs,
					     sizeof specs / sizeof specs[0]);
	shmet_gauge_labels(&c->concurrent_calls, &c->concurrent, 0, NULL);
	shmet_histogram_labels(&c->poll_cycle, &c->poll, 0, NULL);
	return c->error;
}

static inline void
shmet_campaign_record_call_initiated(const struct shmet_campaign_collector *c,
				     const char *campaign_id,
				     const char *user_id)
{
	const char *v[2] = { campaign_id, user_id };
	struct shmet_counter k;

	shmet_counter_labels(&c->calls_initiated, &k, 2, v);
	shmet_counter_inc(&k);
}

/* with metrics.time_processing(campaign_id): */
static inline struct shmet_timer
shmet_campaign_time_processing(const struct shmet_campaign_collector *c,
			       const char *campaign_id)
{
	struct shmet_histogram h;

	shmet_histogram_labels(&c->processing_latency, &h, 1, &campaign_id);
	return shmet_timer_start(&h);
}

/* Completed call: completed_total, call_duration_seconds, cost_total. */
static inline void
shmet_campaign_record_call_completed(const struct shmet_campaign_collector *c,
				     const char *campaign_id,
				     const char *user_id, const char *outcome,
				     double duration_s, double cost)
{
	const char *cuo[3] = { campaign_id, user_id, outcome };
	const char *co[2] = { campaign_id, outcome };
	struct shmet_counter k;
	struct shmet_histogram h;

	shmet_counter_labels(&c->calls_completed, &k, 3, cuo);
	shmet_counter_inc(&k);
	shmet_histogram_labels(&c->call_duration, &h, 2, co);
	shmet_histogram_observe(&h, duration_s);
	if (cost > 0) {
		shmet_counter_labels(&c->cost, &k, 2, cuo);
		shmet_counter_add_double(&k, cost);
	}
}

static inline void
shmet_campaign_record_call_failed(const struct shmet_campaign_collector *c,
				  const char *campaign_id, const char *user_id,
				  const char *error_type)
{
	const char *v[3] = { campaign_id, user_id, error_type };
	struct shmet_counter k;

	shmet_counter_labels(&c->calls_failed, &k, 3, v);
	shmet_counter_inc(&k);
}

static inline void
shmet_campaign_update_active_campaigns(const struct shmet_campaign_collector *c,
				       const char *user_id, double count)
{
	struct shmet_gauge g;

	shmet_gauge_labels(&c->active_campaigns, &g, 1, &user_id);
	shmet_gauge_set(&g, count);
}

static inline void
shmet_campaign_update_pending_leads(const struct shmet_campaign_collector *c,
				    const char *campaign_id, double count)
{
	struct shmet_gauge g;

	shmet_gauge_labels(&c->pending_leads, &g, 1, &campaign_id);
	shmet_gauge_set(&g, count);
}

static inline void
shmet_campaign_update_concurrent_calls(const struct shmet_campaign_collector *c,
				       double count)
{
	shmet_gauge_set(&c->concurrent, count);
}

static inline void
shmet_campaign_update_success_rate(const struct shmet_campaign_collector *c,
				   const char *campaign_id, double rate)
{
	struct shmet_gauge g;

	shmet_gauge_labels(&c->success_rate, &g, 1, &campaign_id);
	shmet_gauge_set(&g, rate);
}

/* with metrics.time_poll_cycle(): */
static inline struct shmet_timer
shmet_campaign_time_poll_cycle(const struct shmet_campaign_collector *c)
{
	return shmet_timer_start(&c->poll);
}

/* ------------------------------------------------------------------ */
/* Webhook worker                                                      */

struct shmet_webhook_collector {
	struct shmet_family queued;             /* event_type, partner_id */
	struct shmet_family delivered;          /* event_type, partner_id */
	struct shmet_family failed;             /* + status_code */
	struct shmet_family dead_letter;        /* event_type, partner_id */
	struct shmet_family retry_attempts;     /* partner_id, attempt_number */
	struct shmet_family worker_processed;   /* worker_id */
	struct shmet_family queue_size;
	struct shmet_family queue_oldest_age;
	struct shmet_family active_workers;
	struct shmet_family worker_uptime;      /* worker_id */
	struct shmet_family delivery_latency;   /* partner_id */
	struct shmet_family queue_processing;   /* partner_id */
	struct shmet_gauge size, oldest, active, uptime;
	struct shmet_counter processed;
	uint64_t started_ns;
	int error;
};

/* The delivery timer of time_delivery(partner_id). */
struct shmet_delivery_timer {
	const struct shmet_webhook_collector *c;
	const char *partner_id;
	struct shmet_timer timer;
};

static inline int
shmet_webhook_collector_init(struct shmet_webhook_collector *c,
			     struct shmet_segment *seg, const char *worker_id)
{
#define W_ shmet_webhook_collector
	static const struct shmet_impl_family_spec specs[] = {
		SHMET_IMPL_COUNTER(W_, queued, "webhook_queued_total",
			"Total webhooks queued", 2, shmet_impl_l_ep),
		SHMET_IMPL_COUNTER(W_, delivered, "webhook_delivered_total",
			"Total successful deliveries", 2, shmet_impl_l_ep),
		SHMET_IMPL_COUNTER(W_, failed, "webhook_failed_total",
			"Total delivery failures", 3, shmet_impl_l_eps),
		SHMET_IMPL_COUNTER(W_, dead_letter, "webhook_dead_letter_total",
			"Webhooks in dead letter queue", 2, shmet_impl_l_ep),
		SHMET_IMPL_COUNTER(W_, retry_attempts,
			"webhook_retry_attempts_total", "Total retry attempts",
			2, shmet_impl_l_pa),
		SHMET_IMPL_COUNTER(W_, worker_processed,
			"webhook_worker_processed_total",
			"Webhooks processed by worker", 1, shmet_impl_l_w),
		SHMET_IMPL_GAUGE(W_, queue_size, "webhook_queue_size",
			"Current queue size", NULL, LIVEMOSTRECENT, 0, NULL),
		SHMET_IMPL_GAUGE(W_, queue_oldest_age,
			"webhook_queue_oldest_age_seconds",
			"Age of oldest webhook", "seconds", LIVEMOSTRECENT, 0,
			NULL),
		SHMET_IMPL_GAUGE(W_, active_workers, "webhook_active_workers",
			"Active worker instances", NULL, LIVESUM, 0, NULL),
		SHMET_IMPL_GAUGE(W_, worker_uptime,
			"webhook_worker_uptime_seconds", "Worker uptime",
			"seconds", LIVESUM, 1, shmet_impl_l_w),
		SHMET_IMPL_HISTOGRAM(W_, delivery_latency,
			"webhook_delivery_latency_seconds",
			"HTTP delivery latency", 1, shmet_impl_l_p,
			shmet_delivery_latency_bounds),
		SHMET_IMPL_HISTOGRAM(W_, queue_processing,
			"webhook_queue_processing_duration_seconds",
			"Queue to delivery time", 1, shmet_impl_l_p,
			shmet_queue_processing_bounds),
	};
#undef W_

	memset((void *)c, 0, sizeof *c);
	c->started_ns = shmet_now_ns();
	c->error = shmet_impl_register_specs(seg, "webhook_metrics", c, specs,
					     sizeof specs / sizeof specs[0]);
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

static inline void
shmet_webhook_record_queued(const struct shmet_webhook_collector *c,
			    const char *event_type, const char *partner_id)
{
	const char *v[2] = { event_type, partner_id };
	struct shmet_counter k;

	shmet_counter_labels(&c->queued, &k, 2, v);
	shmet_counter_inc(&k);
}

/* with metrics.time_delivery(partner_id) as timer: */
static inline struct shmet_delivery_timer
shmet_webhook_time_delivery(const struct shmet_webhook_collector *c,
			    const char *partner_id)
{
	struct shmet_delivery_timer t;
	struct shmet_histogram h;

	shmet_histogram_labels(&c->delivery_latency, &h, 1, &partner_id);
	t.c = c;
	t.partner_id = partner_id;
	t.timer = shmet_timer_start(&h);
	return t;
}

/* timer.set_success(event_type): latency and delivered_total. */
static inline void
shmet_delivery_set_success(const struct shmet_delivery_timer *t,
			   const char *event_type)
{
	const char *v[2] = { event_type, t->partner_id };
	struct shmet_counter k;

	shmet_timer_stop(&t->timer);
	shmet_counter_labels(&t->c->delivered, &k, 2, v);
	shmet_counter_inc(&k);
}

/* timer.set_failed(event_type, status_code): 0 = connection error. */
static inline void
shmet_delivery_set_failed(const struct shmet_delivery_timer *t,
			  const char *event_type, int status_code)
{
	char status[16];
	const char *v[3] = { event_type, t->partner_id, status };
	struct shmet_counter k;

	snprintf(status, sizeof status, "%d", status_code);
	shmet_timer_stop(&t->timer);
	shmet_counter_labels(&t->c->failed, &k, 3, v);
	shmet_counter_inc(&k);
}

/* with metrics.time_processing(partner_id): */
static inline struct shmet_timer
shmet_webhook_time_processing(const struct shmet_webhook_collector *c,
			      const char *partner_id)
{
	struct shmet_histogram h;

	shmet_histogram_labels(&c->queue_processing, &h, 1, &partner_id);
	return shmet_timer_start(&h);
}

static inline void
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

static inline void
shmet_webhook_record_dead_letter(const struct shmet_webhook_collector *c,
				 const char *event_type,
				 const char *partner_id)
{
	const char *v[2] = { event_type, partner_id };
	struct shmet_counter k;

	shmet_counter_labels(&c->dead_letter, &k, 2, v);
	shmet_counter_inc(&k);
}

static inline void
shmet_webhook_update_queue_health(const struct shmet_webhook_collector *c,
				  double queue_size, double oldest_age_s)
{
	shmet_gauge_set(&c->size, queue_size);
	shmet_gauge_set(&c->oldest, oldest_age_s);
}

static inline void
shmet_webhook_update_worker_uptime(const struct shmet_webhook_collector *c)
{
	shmet_gauge_set(&c->uptime,
			(double)(shmet_now_ns() - c->started_ns) / 1e9);
}

/* One webhook processed by this worker (worker_processed_total). */
static inline void
shmet_webhook_record_processed(const struct shmet_webhook_collector *c)
{
	shmet_counter_inc(&c->processed);
}

#endif /* SHMETRICS_COLLECTORS_H */
