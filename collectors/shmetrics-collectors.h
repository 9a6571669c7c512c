/*
 * shmetrics-collectors: the specification's two collectors as C, a campaign
 * collector and a webhook collector, one function per method of the Python
 * originals (CampaignMetricsCollector, WebhookMetricsCollector).
 *
 *	#include <shmetrics-collectors.h>
 *	cc ... $(pkg-config --cflags --libs shmetrics-collectors)
 *
 * Built on the public writer API of <shmetrics.h> only; the application
 * opens the segment (shmet_open) and hands it to the collector's init.
 *
 * Names, types, labels and help texts are the specification's.  Bucket
 * bounds lie inside its ranges (shmet_*_bounds below).  Gauge modes are
 * chosen so that a fleet reads right without extra code:
 *   campaign_concurrent_calls      livesum: each engine reports its own
 *                                  calls; a dead engine's calls vanish
 *   campaign_active_campaigns      livesum: engines own disjoint campaigns
 *                                  and each reports, per user_id, the
 *                                  active campaigns it owns
 *   campaign_pending_leads,        livemostrecent: one campaign's fact,
 *   campaign_success_rate          reported by whichever engine owns it
 *                                  (a rate is never summed)
 *   webhook_queue_size,            livemostrecent: one queue's facts,
 *   webhook_queue_oldest_age_seconds reported by the queue's owner
 *                                  (shmet_webhook_queue_*), so they stay,
 *                                  and keep growing, while no worker lives
 *   webhook_active_workers         livesum of a per-process 1: drops when a
 *                                  worker dies (0 when none is alive)
 *   webhook_worker_uptime_seconds  livesum: one writer per worker_id; the
 *                                  series disappears with its worker
 *
 * Every record_* / update_* call resolves its series (a hash lookup in the
 * segment, about 35 ns) and never fails visibly: errors are counted in the
 * segment like every registration failure.
 *
 * Timers follow Python's "with": a scope timer observes once when its scope
 * is left by any path (end of block, break, continue, return, goto), as
 * __exit__ runs on every exit, exceptions included.  This needs
 * __attribute__((cleanup)) (GCC, Clang: SHMET_HAVE_SCOPE_EXIT is 1).
 * Elsewhere SHMET_TIMED and SHMET_DELIVERY observe when the block ends
 * normally or with continue; break, return and goto skip the observation,
 * so call shmet_timer_stop() / shmet_delivery_end() yourself before such
 * an exit (both observe at most once, so calling them is always safe).
 *
 * Thread safety: collectors may be shared by threads after init; a timer
 * belongs to the thread that started it.
 */
#ifndef SHMETRICS_COLLECTORS_H
#define SHMETRICS_COLLECTORS_H

#include <shmetrics.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bucket bounds, in seconds. */
#define SHMET_CALL_DURATION_NBOUNDS 10
#define SHMET_PROCESSING_LATENCY_NBOUNDS 7
#define SHMET_POLL_CYCLE_NBOUNDS 7
#define SHMET_DELIVERY_LATENCY_NBOUNDS 8
#define SHMET_QUEUE_PROCESSING_NBOUNDS 8
/* 10, 30, 60, 120, 180, 300, 600, 900, 1200, 1800 */
extern const double shmet_call_duration_bounds[SHMET_CALL_DURATION_NBOUNDS];
/* 0.1, 0.25, 0.5, 1, 2.5, 5, 10 */
extern const double
shmet_processing_latency_bounds[SHMET_PROCESSING_LATENCY_NBOUNDS];
/* 0.5, 1, 2, 5, 10, 15, 30 */
extern const double shmet_poll_cycle_bounds[SHMET_POLL_CYCLE_NBOUNDS];
/* 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 */
extern const double
shmet_delivery_latency_bounds[SHMET_DELIVERY_LATENCY_NBOUNDS];
/* 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 */
extern const double
shmet_queue_processing_bounds[SHMET_QUEUE_PROCESSING_NBOUNDS];

/* ------------------------------------------------------------------ */
/* Timers                                                              */

/*
 * A running timer on a resolved histogram.  It observes
 * (now - start_ns) * scale seconds, at most once.
 */
struct shmet_timer {
	struct shmet_histogram hist;
	uint64_t start_ns;              /* shmet_now_ns() time base */
	double scale;                   /* reported seconds per real second */
	int done;                       /* observed already */
};

/* Start a timer on h now, scale 1. */
struct shmet_timer
shmet_timer_start(const struct shmet_histogram *h);

/*
 * Observe the elapsed (scaled) seconds once and return them; later calls
 * observe nothing and return -1.
 */
double
shmet_timer_stop(struct shmet_timer *t);

/* The cleanup handler of the scope macros: shmet_timer_stop(). */
void
shmet_timer_cleanup(struct shmet_timer *t);

/*
 * As shmet_timer_stop(), with the exemplar {trace_id="trace_id"} on the
 * observation's bucket (OpenMetrics pages show it; NULL or "": none).
 * Call it before the scope ends (the cleanup then observes nothing).
 */
double
shmet_timer_stop_traced(struct shmet_timer *t, const char *trace_id);

#if defined(__GNUC__) || defined(__clang__)
#define SHMET_HAVE_SCOPE_EXIT 1
#define SHMET_IMPL_CLEANUP(fn) __attribute__((cleanup(fn)))
#else
#define SHMET_HAVE_SCOPE_EXIT 0
#define SHMET_IMPL_CLEANUP(fn)
#endif

#define SHMET_IMPL_CAT2(a, b) a##b
#define SHMET_IMPL_CAT(a, b) SHMET_IMPL_CAT2(a, b)
#define SHMET_IMPL_TM SHMET_IMPL_CAT(shmet_impl_tm_, __LINE__)
#define SHMET_IMPL_TP SHMET_IMPL_CAT(shmet_impl_tp_, __LINE__)

/*
 * SHMET_TIMED(timer) { ... } runs the block once and observes its duration
 * once, as Python's "with metrics.time_processing(...):", on every exit
 * path (see the top of this file for compilers without cleanup).  The block
 * is a loop: break and continue leave the timed block, not a loop around
 * it.
 */
#if SHMET_HAVE_SCOPE_EXIT
#define SHMET_TIMED(timer_expr) \
	for (struct shmet_timer SHMET_IMPL_TM \
		SHMET_IMPL_CLEANUP(shmet_timer_cleanup) = (timer_expr), \
	     *SHMET_IMPL_TP = &SHMET_IMPL_TM; \
	     SHMET_IMPL_TP; SHMET_IMPL_TP = NULL)
#else
#define SHMET_TIMED(timer_expr) \
	for (struct shmet_timer SHMET_IMPL_TM = (timer_expr), \
	     *SHMET_IMPL_TP = &SHMET_IMPL_TM; \
	     SHMET_IMPL_TP; \
	     shmet_timer_stop(&SHMET_IMPL_TM), SHMET_IMPL_TP = NULL)
#endif

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
	double time_scale;                      /* see _set_time_scale() */
	int error;                              /* first registration error */
};

/*
 * Register the campaign families on seg (attached with shmet_open()).
 *
 * @return 0, or the first registration's negative errno; the collector is
 * usable either way (failed families record into scratch cells).
 */
int
shmet_campaign_collector_init(struct shmet_campaign_collector *c,
			      struct shmet_segment *seg);

/*
 * Seconds reported per real second by this collector's timers: 1 (the
 * default) in production; a simulation whose clock runs N times faster
 * than real time sets N, so that timed durations share its time base.
 */
void
shmet_campaign_collector_set_time_scale(struct shmet_campaign_collector *c,
					double scale);

/* record_call_initiated(campaign_id, user_id) */
void
shmet_campaign_record_call_initiated(const struct shmet_campaign_collector *c,
				     const char *campaign_id,
				     const char *user_id);

/*
 * Trace ids (exemplars): the _traced forms below and
 * shmet_timer_stop_traced() do what their plain forms do and attach
 * {trace_id="trace_id"} to the sample they count (a call's or a
 * delivery's trace; NULL or "": none, as the plain form).
 */

/* record_call_initiated(campaign_id, user_id, trace_id=...): call setup */
void
shmet_campaign_record_call_initiated_traced(
	const struct shmet_campaign_collector *c, const char *campaign_id,
	const char *user_id, const char *trace_id);

/* with time_processing(campaign_id): SHMET_TIMED(...) { ... } */
struct shmet_timer
shmet_campaign_time_processing(const struct shmet_campaign_collector *c,
			       const char *campaign_id);

/*
 * record_call_completed(campaign_id, user_id, outcome, duration, cost):
 * completed_total, call_duration_seconds and (cost > 0) cost_total.
 */
void
shmet_campaign_record_call_completed(const struct shmet_campaign_collector *c,
				     const char *campaign_id,
				     const char *user_id, const char *outcome,
				     double duration_s, double cost);

/* The same, the call's trace id on call_duration_seconds and
 * calls_completed_total. */
void
shmet_campaign_record_call_completed_traced(
	const struct shmet_campaign_collector *c, const char *campaign_id,
	const char *user_id, const char *outcome, double duration_s,
	double cost, const char *trace_id);

/* record_call_failed(campaign_id, user_id, error_type) */
void
shmet_campaign_record_call_failed(const struct shmet_campaign_collector *c,
				  const char *campaign_id, const char *user_id,
				  const char *error_type);

/* update_active_campaigns(user_id, count): this engine's campaigns. */
void
shmet_campaign_update_active_campaigns(const struct shmet_campaign_collector *c,
				       const char *user_id, double count);

/* update_pending_leads(campaign_id, count) */
void
shmet_campaign_update_pending_leads(const struct shmet_campaign_collector *c,
				    const char *campaign_id, double count);

/* update_concurrent_calls(count): this engine's calls. */
void
shmet_campaign_update_concurrent_calls(const struct shmet_campaign_collector *c,
				       double count);

/* update_success_rate(campaign_id, rate) */
void
shmet_campaign_update_success_rate(const struct shmet_campaign_collector *c,
				   const char *campaign_id, double rate);

/* with time_poll_cycle(): SHMET_TIMED(...) { ... } */
struct shmet_timer
shmet_campaign_time_poll_cycle(const struct shmet_campaign_collector *c);

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
	double time_scale;                      /* see _set_time_scale() */
	int error;
};

/*
 * The timer of "with time_delivery(partner_id) as timer:".  It owns a copy
 * of partner_id, so the caller's string may change or go away.
 */
struct shmet_delivery_timer {
	const struct shmet_webhook_collector *c;
	struct shmet_timer latency;     /* webhook_delivery_latency_seconds */
	uint64_t enqueued_ns;           /* 0: no queue-to-delivery time */
	int delivered;                  /* set_success() was called */
	char partner_id[SHMET_MAX_LABEL_VALUE_LEN + 2]; /* owned copy */
	/* shmet_delivery_set_trace(): owned copy, "" for none */
	char trace_id[4 * SHMET_EXEMPLAR_MAX_CHARS + 1];
};

/*
 * Register the webhook families on seg and count this process as one
 * active worker (webhook_active_workers) until it exits or dies.
 *
 * @return 0, or the first registration's negative errno; the collector is
 * usable either way.
 */
int
shmet_webhook_collector_init(struct shmet_webhook_collector *c,
			     struct shmet_segment *seg, const char *worker_id);

/* As shmet_campaign_collector_set_time_scale(); also scales the uptime. */
void
shmet_webhook_collector_set_time_scale(struct shmet_webhook_collector *c,
				       double scale);

/* record_queued(event_type, partner_id) */
void
shmet_webhook_record_queued(const struct shmet_webhook_collector *c,
			    const char *event_type, const char *partner_id);

/*
 * with time_delivery(partner_id) as timer: starts the delivery timer.
 * Its end (shmet_delivery_end(), or leaving an SHMET_DELIVERY block)
 * observes webhook_delivery_latency_seconds exactly once, whether
 * set_success / set_failed were called or not, once or both.
 */
struct shmet_delivery_timer
shmet_webhook_time_delivery(const struct shmet_webhook_collector *c,
			    const char *partner_id);

/*
 * As shmet_webhook_time_delivery(), for a webhook queued at enqueued_ns
 * (shmet_now_ns()): if set_success() was called, the end also observes
 * webhook_queue_processing_duration_seconds ("Queue to delivery time"),
 * from enqueued_ns to the end of the successful delivery.
 */
struct shmet_delivery_timer
shmet_webhook_time_delivery_queued(const struct shmet_webhook_collector *c,
				   const char *partner_id,
				   uint64_t enqueued_ns);

/*
 * The delivery's trace id (an exemplar on delivered_total,
 * delivery_latency_seconds and queue_processing_duration_seconds); set
 * it before set_success and the end.  NULL or "": none.
 */
void
shmet_delivery_set_trace(struct shmet_delivery_timer *t,
			 const char *trace_id);

/* timer.set_success(event_type): delivered_total, counted at once. */
void
shmet_delivery_set_success(struct shmet_delivery_timer *t,
			   const char *event_type);

/*
 * timer.set_failed(event_type, status_code): failed_total, counted at once;
 * status_code 0 means a connection error.
 */
void
shmet_delivery_set_failed(struct shmet_delivery_timer *t,
			  const char *event_type, int status_code);

/*
 * End the delivery: observe the latency (and the queue-to-delivery time,
 * see above) once.  Returns the latency, or -1 if already ended.
 */
double
shmet_delivery_end(struct shmet_delivery_timer *t);

/* The cleanup handler of SHMET_DELIVERY: shmet_delivery_end(). */
void
shmet_delivery_timer_cleanup(struct shmet_delivery_timer *t);

/*
 * SHMET_DELIVERY(t, shmet_webhook_time_delivery(c, partner)) { ... }
 * declares the delivery timer t for the block and ends it on every exit
 * path, as "with metrics.time_delivery(partner) as t:".
 */
#if SHMET_HAVE_SCOPE_EXIT
#define SHMET_DELIVERY(t, timer_expr) \
	for (struct shmet_delivery_timer t \
		SHMET_IMPL_CLEANUP(shmet_delivery_timer_cleanup) = \
			(timer_expr), \
	     *SHMET_IMPL_CAT(shmet_impl_dp_, __LINE__) = &t; \
	     SHMET_IMPL_CAT(shmet_impl_dp_, __LINE__); \
	     SHMET_IMPL_CAT(shmet_impl_dp_, __LINE__) = NULL)
#else
#define SHMET_DELIVERY(t, timer_expr) \
	for (struct shmet_delivery_timer t = (timer_expr), \
	     *SHMET_IMPL_CAT(shmet_impl_dp_, __LINE__) = &t; \
	     SHMET_IMPL_CAT(shmet_impl_dp_, __LINE__); \
	     shmet_delivery_end(&t), \
	     SHMET_IMPL_CAT(shmet_impl_dp_, __LINE__) = NULL)
#endif

/*
 * with time_processing(partner_id): a scope timer on
 * webhook_queue_processing_duration_seconds ("Queue to delivery time")
 * that starts at enqueued_ns, the shmet_now_ns() of the enqueue (0: now).
 * Wrap it around the delivery of a webhook; shmet_webhook_time_delivery_
 * queued() observes the same histogram on successful deliveries only.
 */
struct shmet_timer
shmet_webhook_time_processing(const struct shmet_webhook_collector *c,
			      const char *partner_id, uint64_t enqueued_ns);

/* record_retry(partner_id, attempt_number) */
void
shmet_webhook_record_retry(const struct shmet_webhook_collector *c,
			   const char *partner_id, int attempt_number);

/* record_dead_letter(event_type, partner_id) */
void
shmet_webhook_record_dead_letter(const struct shmet_webhook_collector *c,
				 const char *event_type,
				 const char *partner_id);

/*
 * update_queue_health(queue_size, oldest_age_seconds), as the
 * specification's worker collector has it.  A worker's value leaves the
 * page when the worker dies; a queue that outlives its workers is better
 * reported by its owner (shmet_webhook_queue below).
 */
void
shmet_webhook_update_queue_health(const struct shmet_webhook_collector *c,
				  double queue_size, double oldest_age_s);

/*
 * The queue's own gauges, for the process that owns the queue (a broker,
 * the fleet's queue process) rather than its workers:
 * webhook_queue_size and webhook_queue_oldest_age_seconds, the same
 * families the worker collector registers.  Being livemostrecent, they
 * show the last value of the live process that set them last: with the
 * owner alive they stay on the page when every worker is dead, which is
 * exactly when a backlog builds.
 */
struct shmet_webhook_queue {
	struct shmet_family queue_size;
	struct shmet_family queue_oldest_age;
	struct shmet_gauge size, oldest;
	int error;
};

/* Register the two families on seg; 0 or the first negative errno (the
 * handle is usable either way). */
int
shmet_webhook_queue_init(struct shmet_webhook_queue *q,
			 struct shmet_segment *seg);

/* Set both gauges (size in events, age in seconds). */
void
shmet_webhook_queue_update(const struct shmet_webhook_queue *q,
			   double queue_size, double oldest_age_s);

/*
 * update_worker_uptime(): seconds (scaled) since init.
 * @return the value set.
 */
double
shmet_webhook_update_worker_uptime(const struct shmet_webhook_collector *c);

/* One webhook processed by this worker (worker_processed_total). */
void
shmet_webhook_record_processed(const struct shmet_webhook_collector *c);

#ifdef __cplusplus
}
#endif

#endif /* SHMETRICS_COLLECTORS_H */
