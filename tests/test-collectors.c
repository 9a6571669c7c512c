/*
 * The specification's collectors: each function changes exactly the
 * series it should, read back through lib/.
 */
#include "config.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include <shmetrics-collectors.h>

#include "test-common.h"

/* Every sample of a snapshot as "name{labels} value" lines, to diff. */
struct state {
	char *text;
};

static void
state_take(struct state *st)
{
	struct test_snapshot s;
	struct shmet_buf b = { 0 };

	test_snapshot_take(&s);
	shmet_render_text(s.index, s.values, &b);
	st->text = b.data ? b.data : calloc(1, 1);
	test_snapshot_free(&s);
}

/* Lines of after that are not in before (changed or new samples). */
static int
changed_lines(const struct state *before, const struct state *after,
	      char *out, size_t len)
{
	int n = 0;
	const char *p = after->text;

	out[0] = '\0';
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char line[1024];

		snprintf(line, sizeof line, "%.*s\n", (int)l, p);
		if (line[0] != '#' && !strstr(before->text, line)) {
			n++;
			strncat(out, line, len - strlen(out) - 1);
		}
		p += l + (e ? 1 : 0);
	}
	return n;
}

static double
sample(const char *name, uint32_t n, const char *const *labels, uint32_t vn,
       const char *const *values)
{
	struct test_snapshot s;
	const struct shmet_index_family *f;
	double v = NAN;

	test_snapshot_take(&s);
	f = shmet_index_find(s.index, name);
	ck_assert_msg(f != NULL, "family %s missing", name);
	ck_assert_uint_eq(f->label_count, n);
	ck_assert_uint_eq(vn, n);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_str_eq(f->label_names[i].ptr, labels[i]);
	{
		int si = test_find_series(&s, name, n, values);

		ck_assert_msg(si >= 0, "series of %s missing", name);
		if (f->type == SHMET_TYPE_COUNTER)
			v = shmet_values_counter(s.values, s.index, si);
		else if (f->type == SHMET_TYPE_GAUGE)
			v = test_gauge(&s, si);
		else
			v = (double)shmet_values_hist_count(s.values, s.index,
							    si);
	}
	test_snapshot_free(&s);
	return v;
}

START_TEST(test_collectors_register_all_23_families)
{
	struct shmet_segment seg;
	struct shmet_campaign_collector c;
	struct shmet_webhook_collector w;
	struct test_snapshot s;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_campaign_collector_init(&c, &seg), 0);
	ck_assert_int_eq(shmet_webhook_collector_init(&w, &seg, "worker-1"), 0);
	test_snapshot_take(&s);
	ck_assert_uint_eq(shmet_index_family_count(s.index), 23);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

#define CHECK_ONLY(st0, expected_lines, ...)                                  \
	do {                                                                  \
		struct state st1_;                                            \
		char diff_[8192];                                             \
		int n_;                                                       \
		state_take(&st1_);                                            \
		n_ = changed_lines(&(st0), &st1_, diff_, sizeof diff_);        \
		ck_assert_msg(n_ == (expected_lines),                         \
			      "%d lines changed, want %d:\n%s", n_,           \
			      (expected_lines), diff_);                       \
		free((st0).text);                                             \
		(st0) = st1_;                                                 \
	} while (0)

START_TEST(test_campaign_collector_functions)
{
	static const char *const cu[] = { "campaign_id", "user_id" };
	static const char *const cuo[] = { "campaign_id", "user_id", "outcome" };
	static const char *const cue[] = { "campaign_id", "user_id",
					   "error_type" };
	static const char *const u[] = { "user_id" };
	static const char *const ca[] = { "campaign_id" };
	static const char *const co[] = { "campaign_id", "outcome" };
	struct shmet_segment seg;
	struct shmet_campaign_collector c;
	struct state st;

	test_open(&seg, NULL);
	shmet_campaign_collector_init(&c, &seg);
	state_take(&st);

	shmet_campaign_record_call_initiated(&c, "c1", "u1");
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("campaign_calls_initiated_total", 2, cu,
				   SHMET_VALUES("c1", "u1")), 1);

	SHMET_TIMED(shmet_campaign_time_processing(&c, "c1")) {
		usleep(1000);
	}
	/* one series: 7 buckets + +Inf + sum + count = 10 lines */
	CHECK_ONLY(st, 10);
	ck_assert_double_eq(sample("campaign_processing_latency_seconds", 1,
				   ca, SHMET_VALUES("c1")), 1);

	shmet_campaign_record_call_completed(&c, "c1", "u1", "success", 95.0,
					     0.25);
	/* completed 1 + duration 13 + cost 1 */
	CHECK_ONLY(st, 15);
	ck_assert_double_eq(sample("campaign_calls_completed_total", 3, cuo,
				   SHMET_VALUES("c1", "u1", "success")), 1);
	ck_assert_double_eq(sample("campaign_call_duration_seconds", 2, co,
				   SHMET_VALUES("c1", "success")), 1);
	ck_assert_double_eq(sample("campaign_cost_total", 2, cu,
				   SHMET_VALUES("c1", "u1")), 0.25);

	shmet_campaign_record_call_failed(&c, "c1", "u1", "timeout");
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("campaign_calls_failed_total", 3, cue,
				   SHMET_VALUES("c1", "u1", "timeout")), 1);

	shmet_campaign_update_active_campaigns(&c, "u1", 3);
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("campaign_active_campaigns", 1, u,
				   SHMET_VALUES("u1")), 3);
	shmet_campaign_update_pending_leads(&c, "c1", 42);
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("campaign_pending_leads", 1, ca,
				   SHMET_VALUES("c1")), 42);
	shmet_campaign_update_concurrent_calls(&c, 7);
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("campaign_concurrent_calls", 0, NULL, 0, NULL),
			    7);
	shmet_campaign_update_success_rate(&c, "c1", 0.75);
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("campaign_success_rate", 1, ca,
				   SHMET_VALUES("c1")), 0.75);
	SHMET_TIMED(shmet_campaign_time_poll_cycle(&c)) {
	}
	/* 7 buckets + +Inf + sum + count */
	CHECK_ONLY(st, 10);
	ck_assert_double_eq(sample("campaign_poll_cycle_duration_seconds", 0,
				   NULL, 0, NULL), 1);
	free(st.text);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_webhook_collector_functions)
{
	static const char *const ep[] = { "event_type", "partner_id" };
	static const char *const eps[] = { "event_type", "partner_id",
					   "status_code" };
	static const char *const pa[] = { "partner_id", "attempt_number" };
	static const char *const w[] = { "worker_id" };
	static const char *const p[] = { "partner_id" };
	struct shmet_segment seg;
	struct shmet_webhook_collector m;
	struct shmet_delivery_timer t;
	struct state st;

	test_open(&seg, NULL);
	shmet_webhook_collector_init(&m, &seg, "worker-7");
	ck_assert_double_eq(sample("webhook_active_workers", 0, NULL, 0, NULL), 1);
	ck_assert_double_eq(sample("webhook_worker_processed_total", 1, w,
				   SHMET_VALUES("worker-7")), 0);
	state_take(&st);

	shmet_webhook_record_queued(&m, "call_ended", "p1");
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("webhook_queued_total", 2, ep,
				   SHMET_VALUES("call_ended", "p1")), 1);

	t = shmet_webhook_time_delivery(&m, "p1");
	/* the latency series exists (8 + +Inf + sum + count), all zero */
	CHECK_ONLY(st, 11);
	ck_assert_double_eq(sample("webhook_delivery_latency_seconds", 1, p,
				   SHMET_VALUES("p1")), 0);
	shmet_delivery_set_success(&t, "call_ended");
	/* delivered 1, counted at once; the latency waits for the end */
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("webhook_delivered_total", 2, ep,
				   SHMET_VALUES("call_ended", "p1")), 1);
	ck_assert_double_eq(sample("webhook_delivery_latency_seconds", 1, p,
				   SHMET_VALUES("p1")), 0);
	ck_assert_double_ge(shmet_delivery_end(&t), 0);
	ck_assert_double_eq(sample("webhook_delivery_latency_seconds", 1, p,
				   SHMET_VALUES("p1")), 1);
	{
		struct state st1;
		char diff[8192];

		state_take(&st1);
		ck_assert_int_ge(changed_lines(&st, &st1, diff, sizeof diff), 2);
		ck_assert_ptr_null(strstr(diff, "webhook_delivered_total"));
		free(st.text);
		st = st1;
	}

	t = shmet_webhook_time_delivery(&m, "p1");
	shmet_delivery_set_failed(&t, "call_ended", 0);
	shmet_delivery_end(&t);
	/* bucket lines whose cumulative count moved, sum, count, failed */
	{
		struct state st1;
		char diff[8192];

		state_take(&st1);
		ck_assert_int_ge(changed_lines(&st, &st1, diff, sizeof diff), 3);
		ck_assert_ptr_nonnull(strstr(diff, "webhook_failed_total{"
						   "event_type=\"call_ended\","
						   "partner_id=\"p1\","
						   "status_code=\"0\"} 1"));
		ck_assert_ptr_null(strstr(diff, "webhook_delivered_total"));
		free(st.text);
		st = st1;
	}
	ck_assert_double_eq(sample("webhook_failed_total", 3, eps,
				   SHMET_VALUES("call_ended", "p1", "0")), 1);
	ck_assert_double_eq(sample("webhook_delivery_latency_seconds", 1, p,
				   SHMET_VALUES("p1")), 2);

	SHMET_TIMED(shmet_webhook_time_processing(&m, "p2", 0)) {
	}
	CHECK_ONLY(st, 11);
	ck_assert_double_eq(sample("webhook_queue_processing_duration_seconds",
				   1, p, SHMET_VALUES("p2")), 1);

	shmet_webhook_record_retry(&m, "p1", 3);
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("webhook_retry_attempts_total", 2, pa,
				   SHMET_VALUES("p1", "3")), 1);
	shmet_webhook_record_dead_letter(&m, "call_ended", "p1");
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("webhook_dead_letter_total", 2, ep,
				   SHMET_VALUES("call_ended", "p1")), 1);
	shmet_webhook_update_queue_health(&m, 12, 345.5);
	CHECK_ONLY(st, 2);
	ck_assert_double_eq(sample("webhook_queue_size", 0, NULL, 0, NULL), 12);
	ck_assert_double_eq(sample("webhook_queue_oldest_age_seconds", 0, NULL, 0,
				   NULL), 345.5);
	usleep(2000);
	shmet_webhook_update_worker_uptime(&m);
	CHECK_ONLY(st, 1);
	ck_assert_double_gt(sample("webhook_worker_uptime_seconds", 1, w,
				   SHMET_VALUES("worker-7")), 0.001);
	shmet_webhook_record_processed(&m);
	CHECK_ONLY(st, 1);
	ck_assert_double_eq(sample("webhook_worker_processed_total", 1, w,
				   SHMET_VALUES("worker-7")), 1);
	free(st.text);
	shmet_close(&seg);
}
END_TEST

/*
 * The queue owner's handle: the two queue gauges only (no worker counted,
 * no worker series), registered exactly as the worker collector registers
 * them (a worker's init after it is not refused with -EEXIST), and set by
 * the owner alone.
 */
START_TEST(test_webhook_queue_owner)
{
	struct shmet_segment seg;
	struct shmet_webhook_queue q;
	struct shmet_webhook_collector w;
	struct test_snapshot s;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_webhook_queue_init(&q, &seg), 0);
	test_snapshot_take(&s);
	ck_assert_uint_eq(shmet_index_family_count(s.index), 2);
	ck_assert_ptr_nonnull(shmet_index_find(s.index, "webhook_queue_size"));
	ck_assert_ptr_nonnull(shmet_index_find(
		s.index, "webhook_queue_oldest_age_seconds"));
	test_snapshot_free(&s);
	shmet_webhook_queue_update(&q, 128, 600);
	ck_assert_double_eq(sample("webhook_queue_size", 0, NULL, 0, NULL), 128);
	ck_assert_double_eq(sample("webhook_queue_oldest_age_seconds", 0, NULL,
				   0, NULL), 600);
	ck_assert_int_eq(shmet_webhook_collector_init(&w, &seg, "worker-1"), 0);
	shmet_webhook_queue_update(&q, 129, 601.5);
	ck_assert_double_eq(sample("webhook_queue_size", 0, NULL, 0, NULL), 129);
	ck_assert_double_eq(sample("webhook_queue_oldest_age_seconds", 0, NULL,
				   0, NULL), 601.5);
	shmet_close(&seg);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Timers with Python's "with" semantics                               */

/* count and sum of one histogram series (count 0 if it does not exist) */
static uint64_t
hist(const char *name, const char *value, double *sum)
{
	struct test_snapshot s;
	uint64_t n = 0;
	int si;

	test_snapshot_take(&s);
	si = test_find_series(&s, name, 1, &value);
	if (sum)
		*sum = 0;
	if (si >= 0) {
		n = shmet_values_hist_count(s.values, s.index, si);
		if (sum)
			*sum = shmet_values_hist_sum(s.values, s.index, si);
	}
	test_snapshot_free(&s);
	return n;
}

static uint64_t
processing_count(const char *campaign)
{
	return hist("campaign_processing_latency_seconds", campaign, NULL);
}

static uint64_t
latency_count(const char *partner)
{
	return hist("webhook_delivery_latency_seconds", partner,
		    NULL);
}

static struct shmet_segment tseg;
static struct shmet_campaign_collector camp;
static struct shmet_webhook_collector hook;

static void
timers_setup(void)
{
	test_open(&tseg, NULL);
	ck_assert_int_eq(shmet_campaign_collector_init(&camp, &tseg), 0);
	ck_assert_int_eq(shmet_webhook_collector_init(&hook, &tseg, "w"), 0);
}

static void
timers_teardown(void)
{
	shmet_close(&tseg);
}

START_TEST(test_timer_observes_on_normal_exit)
{
	timers_setup();
	SHMET_TIMED(shmet_campaign_time_processing(&camp, "normal")) {
		ck_assert_uint_eq(processing_count("normal"), 0);
	}
	ck_assert_uint_eq(processing_count("normal"), 1);
	timers_teardown();
}
END_TEST

START_TEST(test_timer_observes_on_break)
{
	int ran_after = 0;

	timers_setup();
	SHMET_TIMED(shmet_campaign_time_processing(&camp, "break")) {
		if (processing_count("break") == 0)
			break;
		ran_after = 1;
	}
	ck_assert_int_eq(ran_after, 0);
	ck_assert_uint_eq(processing_count("break"), 1);
	/* continue leaves the block too, once */
	SHMET_TIMED(shmet_campaign_time_processing(&camp, "break")) {
		continue;
	}
	ck_assert_uint_eq(processing_count("break"), 2);
	timers_teardown();
}
END_TEST

/* returns from inside the timed block */
static int
timed_early_return(int fail)
{
	SHMET_TIMED(shmet_campaign_time_processing(&camp, "return")) {
		if (fail)
			return -1;
		usleep(100);
	}
	return 0;
}

START_TEST(test_timer_observes_on_return)
{
	timers_setup();
	ck_assert_int_eq(timed_early_return(1), -1);
	ck_assert_uint_eq(processing_count("return"), 1);
	ck_assert_int_eq(timed_early_return(0), 0);
	ck_assert_uint_eq(processing_count("return"), 2);
	timers_teardown();
}
END_TEST

START_TEST(test_timer_observes_on_goto)
{
	timers_setup();
	SHMET_TIMED(shmet_campaign_time_poll_cycle(&camp)) {
		goto out;
	}
	ck_abort_msg("goto did not leave the block");
out:
	ck_assert_double_eq(sample("campaign_poll_cycle_duration_seconds", 0,
				   NULL, 0, NULL), 1);
	timers_teardown();
}
END_TEST

START_TEST(test_timer_stop_observes_once)
{
	timers_setup();
	SHMET_TIMED(shmet_campaign_time_processing(&camp, "once")) {
		/* no explicit handle here: a timer of our own */
	}
	{
		struct shmet_timer t = shmet_campaign_time_processing(&camp,
								      "once");

		ck_assert_double_ge(shmet_timer_stop(&t), 0);
		ck_assert_double_eq(shmet_timer_stop(&t), -1);
	}
	ck_assert_uint_eq(processing_count("once"), 2);
	timers_teardown();
}
END_TEST

START_TEST(test_timer_time_scale)
{
	double sum;

	timers_setup();
	shmet_campaign_collector_set_time_scale(&camp, 1000);
	SHMET_TIMED(shmet_campaign_time_processing(&camp, "scaled")) {
		usleep(5000);
	}
	ck_assert_uint_eq(hist("campaign_processing_latency_seconds", "scaled",
			       &sum), 1);
	/* at least 5 ms real, reported as at least 5 s */
	ck_assert_double_ge(sum, 5.0);
	timers_teardown();
}
END_TEST

START_TEST(test_delivery_neither_set_observes_once)
{
	timers_setup();
	SHMET_DELIVERY(t, shmet_webhook_time_delivery(&hook, "neither")) {
		ck_assert_uint_eq(latency_count("neither"), 0);
	}
	ck_assert_uint_eq(latency_count("neither"), 1);
	timers_teardown();
}
END_TEST

START_TEST(test_delivery_both_set_observes_once)
{
	static const char *const ep[] = { "event_type", "partner_id" };
	static const char *const eps[] = { "event_type", "partner_id",
					   "status_code" };

	timers_setup();
	SHMET_DELIVERY(t, shmet_webhook_time_delivery(&hook, "both")) {
		shmet_delivery_set_failed(&t, "call_ended", 503);
		shmet_delivery_set_success(&t, "call_ended");
	}
	ck_assert_uint_eq(latency_count("both"), 1);
	ck_assert_double_eq(sample("webhook_delivered_total", 2, ep,
				   SHMET_VALUES("call_ended", "both")), 1);
	ck_assert_double_eq(sample("webhook_failed_total", 3, eps,
				   SHMET_VALUES("call_ended", "both", "503")),
			    1);
	timers_teardown();
}
END_TEST

static int
delivery_early_return(void)
{
	SHMET_DELIVERY(t, shmet_webhook_time_delivery(&hook, "return")) {
		shmet_delivery_set_failed(&t, "call_ended", 0);
		return -1;
	}
	return 0;
}

START_TEST(test_delivery_observes_on_break_and_return)
{
	timers_setup();
	SHMET_DELIVERY(t, shmet_webhook_time_delivery(&hook, "break")) {
		shmet_delivery_set_success(&t, "call_ended");
		break;
	}
	ck_assert_uint_eq(latency_count("break"), 1);
	ck_assert_int_eq(delivery_early_return(), -1);
	ck_assert_uint_eq(latency_count("return"), 1);
	/* an explicit end inside the block is not repeated at its exit */
	SHMET_DELIVERY(t, shmet_webhook_time_delivery(&hook, "break")) {
		ck_assert_double_ge(shmet_delivery_end(&t), 0);
		ck_assert_double_eq(shmet_delivery_end(&t), -1);
	}
	ck_assert_uint_eq(latency_count("break"), 2);
	timers_teardown();
}
END_TEST

START_TEST(test_delivery_owns_partner_id)
{
	static const char *const ep[] = { "event_type", "partner_id" };
	char partner[16];

	timers_setup();
	snprintf(partner, sizeof partner, "owned");
	SHMET_DELIVERY(t, shmet_webhook_time_delivery(&hook, partner)) {
		/* the caller reuses its buffer before the end */
		snprintf(partner, sizeof partner, "other");
		shmet_delivery_set_success(&t, "call_ended");
	}
	ck_assert_uint_eq(latency_count("owned"), 1);
	ck_assert_uint_eq(latency_count("other"), 0);
	ck_assert_double_eq(sample("webhook_delivered_total", 2, ep,
				   SHMET_VALUES("call_ended", "owned")), 1);
	timers_teardown();
}
END_TEST

START_TEST(test_delivery_queue_to_delivery_time)
{
	const char *q = "webhook_queue_processing_duration_seconds";
	uint64_t enqueued;
	double sum;

	timers_setup();
	/* queued 2 s ago: delivered now, so at least 2 s queue to delivery */
	enqueued = shmet_now_ns() - 2000000000ull;
	SHMET_DELIVERY(t, shmet_webhook_time_delivery_queued(&hook, "queued",
							     enqueued)) {
		shmet_delivery_set_success(&t, "call_ended");
	}
	ck_assert_uint_eq(hist(q, "queued", &sum), 1);
	ck_assert_double_ge(sum, 2.0);
	ck_assert_uint_eq(latency_count("queued"), 1);
	/* a failed attempt is not a delivery: no queue-to-delivery time */
	SHMET_DELIVERY(t, shmet_webhook_time_delivery_queued(&hook, "queued",
							     enqueued)) {
		shmet_delivery_set_failed(&t, "call_ended", 500);
	}
	ck_assert_uint_eq(hist(q, "queued", NULL), 1);
	ck_assert_uint_eq(latency_count("queued"), 2);
	timers_teardown();
}
END_TEST

START_TEST(test_worker_uptime_scaled)
{
	double set;

	timers_setup();
	shmet_webhook_collector_set_time_scale(&hook, 1000);
	usleep(2000);
	set = shmet_webhook_update_worker_uptime(&hook);
	ck_assert_double_ge(set, 2.0);
	ck_assert_double_eq(sample("webhook_worker_uptime_seconds", 1,
				   (const char *const[]){ "worker_id" },
				   SHMET_VALUES("w")), set);
	timers_teardown();
}
END_TEST

/* The exemplar trace ids of the OpenMetrics page's sample lines that
 * start with prefix, concatenated in page order. */
static void
om_traces(const char *prefix, char *out, size_t outlen)
{
	struct test_snapshot s;
	struct shmet_buf b = { 0 };
	const char *p;

	out[0] = 0;
	test_snapshot_take(&s);
	ck_assert_int_eq(shmet_render_openmetrics(s.index, s.values, &b), 0);
	for (p = b.data; p && *p;) {
		const char *end = strchr(p, '\n'), *t;

		if (!strncmp(p, prefix, strlen(prefix)) &&
		    (t = strstr(p, "# {trace_id=\"")) && (!end || t < end)) {
			t += strlen("# {trace_id=\"");
			strncat(out, t, (size_t)(strchr(t, '"') - t));
			strncat(out, ";", outlen - strlen(out) - 1);
		}
		p = end ? end + 1 : NULL;
	}
	shmet_buf_free(&b);
	test_snapshot_free(&s);
}

/* Trace ids where a call or a delivery has one: call setup, call
 * duration, delivery; none where it is NULL or "". */
START_TEST(test_collectors_trace_ids)
{
	struct shmet_timer t;
	char got[512];

	timers_setup();
	shmet_campaign_record_call_initiated_traced(&camp, "c1", "u1", "tr-1");
	shmet_campaign_record_call_initiated_traced(&camp, "c2", "u1", NULL);
	om_traces("campaign_calls_initiated_total{", got, sizeof got);
	ck_assert_str_eq(got, "tr-1;");
	t = shmet_campaign_time_processing(&camp, "c1");
	ck_assert_double_ge(shmet_timer_stop_traced(&t, "tr-2"), 0);
	ck_assert_double_eq(shmet_timer_stop_traced(&t, "tr-x"), -1);
	om_traces("campaign_processing_latency_seconds_bucket{", got,
		  sizeof got);
	ck_assert_str_eq(got, "tr-2;");
	shmet_campaign_record_call_completed_traced(&camp, "c1", "u1",
						    "answered", 65, 0.5, "tr-3");
	shmet_campaign_record_call_completed_traced(&camp, "c1", "u1",
						    "answered", 15, 0.5, "");
	/* 65 s: the le="120.0" bucket; 15 s (le="30.0") has none */
	om_traces("campaign_call_duration_seconds_bucket{", got, sizeof got);
	ck_assert_str_eq(got, "tr-3;");
	om_traces("campaign_call_duration_seconds_bucket{campaign_id=\"c1\","
		  "outcome=\"answered\",le=\"120.0\"} 2 ",
		  got, sizeof got);
	ck_assert_str_eq(got, "tr-3;");
	om_traces("campaign_calls_completed_total{", got, sizeof got);
	ck_assert_str_eq(got, "tr-3;");
	SHMET_DELIVERY(d, shmet_webhook_time_delivery_queued(
				  &hook, "p1", shmet_now_ns())) {
		shmet_delivery_set_trace(&d, "tr-4");
		shmet_delivery_set_success(&d, "call_ended");
	}
	om_traces("webhook_delivered_total{", got, sizeof got);
	ck_assert_str_eq(got, "tr-4;");
	om_traces("webhook_delivery_latency_seconds_bucket{", got, sizeof got);
	ck_assert_str_eq(got, "tr-4;");
	om_traces("webhook_queue_processing_duration_seconds_bucket{", got,
		  sizeof got);
	ck_assert_str_eq(got, "tr-4;");
	/* no trace: none */
	SHMET_DELIVERY(d, shmet_webhook_time_delivery(&hook, "p2")) {
		shmet_delivery_set_success(&d, "call_ended");
	}
	om_traces("webhook_delivered_total{event_type=\"call_ended\","
		  "partner_id=\"p2\"}", got, sizeof got);
	ck_assert_str_eq(got, "");
	timers_teardown();
}
END_TEST

TEST_SUITE(collectors)
{
	Suite *s = suite_create("collectors");
	TCase *tc = tcase_create("Specification collectors");

	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_collectors_register_all_23_families);
	tcase_add_test(tc, test_campaign_collector_functions);
	tcase_add_test(tc, test_webhook_collector_functions);
	tcase_add_test(tc, test_webhook_queue_owner);
	suite_add_tcase(s, tc);

	tc = tcase_create("Timers as Python's with");
	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_timer_observes_on_normal_exit);
	tcase_add_test(tc, test_timer_observes_on_break);
	tcase_add_test(tc, test_timer_observes_on_return);
	tcase_add_test(tc, test_timer_observes_on_goto);
	tcase_add_test(tc, test_timer_stop_observes_once);
	tcase_add_test(tc, test_timer_time_scale);
	tcase_add_test(tc, test_delivery_neither_set_observes_once);
	tcase_add_test(tc, test_delivery_both_set_observes_once);
	tcase_add_test(tc, test_delivery_observes_on_break_and_return);
	tcase_add_test(tc, test_delivery_owns_partner_id);
	tcase_add_test(tc, test_delivery_queue_to_delivery_time);
	tcase_add_test(tc, test_worker_uptime_scaled);
	tcase_add_test(tc, test_collectors_trace_ids);
	suite_add_tcase(s, tc);
	return s;
}
