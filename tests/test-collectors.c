/*
 * The specification's collectors: each function changes exactly the
 * series it should, read back through lib/.
 */
#include "config.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include <shmetrics/collectors.h>

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
	shmet_render_text(s.index, &s.values, &b);
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
			v = shmet_values_counter(&s.values, s.index, si);
		else if (f->type == SHMET_TYPE_GAUGE)
			v = s.values.gauge[si];
		else
			v = (double)shmet_values_hist_count(&s.values, s.index,
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
	shmet_delivery_set_success(&t, "call_ended");
	/* latency 8 + +Inf + sum + count = 11, delivered 1 */
	CHECK_ONLY(st, 12);
	ck_assert_double_eq(sample("webhook_delivered_total", 2, ep,
				   SHMET_VALUES("call_ended", "p1")), 1);
	ck_assert_double_eq(sample("webhook_delivery_latency_seconds", 1, p,
				   SHMET_VALUES("p1")), 1);

	t = shmet_webhook_time_delivery(&m, "p1");
	shmet_delivery_set_failed(&t, "call_ended", 0);
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

	SHMET_TIMED(shmet_webhook_time_processing(&m, "p2")) {
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

TEST_SUITE(collectors)
{
	Suite *s = suite_create("collectors");
	TCase *tc = tcase_create("Specification collectors");

	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_collectors_register_all_23_families);
	tcase_add_test(tc, test_campaign_collector_functions);
	tcase_add_test(tc, test_webhook_collector_functions);
	suite_add_tcase(s, tc);
	return s;
}
