/*
 * Writes a deterministic segment for the exposition tests: nasty label
 * values, NaN and infinities, huge and tiny doubles, an empty family,
 * histograms, float and integer counters.  Gauges use modes that include
 * dead writers, so the values survive this process's exit.
 *
 *   golden-writer SEGMENT
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <shmetrics.h>

static int failures;

static void
check(int rc, struct shmet_segment *seg, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "golden-writer: %s: %s\n", what,
			shmet_last_error(seg));
		failures++;
	}
}

int
main(int argc, char **argv)
{
	static const char *const campaign[] = {
		"campaign_calls_initiated_total",
		"campaign_calls_completed_total",
		"campaign_calls_failed_total", "campaign_cost_total",
		"campaign_active_campaigns", "campaign_pending_leads",
		"campaign_concurrent_calls", "campaign_success_rate",
		"campaign_call_duration_seconds",
		"campaign_processing_latency_seconds",
		"campaign_poll_cycle_duration_seconds",
	};
	static const char *const webhook[] = {
		"webhook_queued_total", "webhook_delivered_total",
		"webhook_failed_total", "webhook_dead_letter_total",
		"webhook_retry_attempts_total",
		"webhook_worker_processed_total", "webhook_queue_size",
		"webhook_queue_oldest_age_seconds", "webhook_active_workers",
		"webhook_worker_uptime_seconds",
		"webhook_delivery_latency_seconds",
		"webhook_queue_processing_duration_seconds",
	};
	static const char *const cu[] = { "campaign_id", "user_id" };
	static const char *const v1[] = { "value" };
	static const double lat[] = { 0.005, 0.05, 0.5, 1, 2.5, 1e6 };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_family_desc d;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct shmet_histogram h;
	const char *vals[2];

	if (argc != 2 && !(argc == 3 && !strcmp(argv[2], "--tiny"))) {
		fprintf(stderr, "usage: golden-writer SEGMENT [--tiny]\n");
		return 2;
	}
	memset(&o, 0, sizeof o);
	o.name = argv[1];
	o.max_series = 256;
	o.max_writers = 4;
	o.cells_per_block = 4096;
	o.cpu_blocks = 2;       /* the size in dump.health: not the host's */
	if (argc == 3) {        /* a seed for the fuzz corpus */
		o.max_families = 8;
		o.max_series = 40;
		o.max_writers = 2;
		/* 128 cells: the exemplar region (1 KiB a cell, layout 6)
		 * keeps the seed under the fuzzer's -max_len */
		o.cells_per_block = 128;
		o.string_bytes = 4096;
	}
	check(shmet_open(&seg, &o), &seg, "open");
	/* The specification's two collectors, of which this writer
	 * registers some families: health shows them "partial". */
	check(shmet_collector_register(&seg, "campaign_metrics",
				       sizeof campaign / sizeof *campaign,
				       campaign), &seg, "campaign collector");
	check(shmet_collector_register(&seg, "webhook_metrics",
				       sizeof webhook / sizeof *webhook,
				       webhook), &seg, "webhook collector");

	check(shmet_counter_family(&seg, &f, "campaign_calls_initiated_total",
				   "Total number of campaign calls initiated",
				   2, cu), &seg, "calls");
	check(shmet_counter_labels(&f, &c, SHMET_VALUES("abc123", "user456")),
	      &seg, "calls 1");
	shmet_counter_add(&c, 145);
	check(shmet_counter_labels(&f, &c, SHMET_VALUES("xyz789", "user456")),
	      &seg, "calls 2");
	shmet_counter_add(&c, 89);
	/* quote, backslash, newline, UTF-8, empty */
	vals[0] = "q\"uo\\te\nline";
	vals[1] = "";
	check(shmet_counter_labels(&f, &c, 2, vals), &seg, "nasty 1");
	shmet_counter_add(&c, 1);
	vals[0] = "ünïcödé ✓ 日本";
	vals[1] = "tab\there";
	check(shmet_counter_labels(&f, &c, 2, vals), &seg, "nasty 2");
	shmet_counter_add(&c, 18446744073709551615ull);

	check(shmet_counter_family(&seg, &f, "campaign_cost_total",
				   "Total campaign cost ($)", 2, cu), &seg,
	      "cost");
	check(shmet_counter_labels(&f, &c, SHMET_VALUES("abc123", "user456")),
	      &seg, "cost 1");
	shmet_counter_add_double(&c, 0.1);
	shmet_counter_add_double(&c, 0.2);
	shmet_counter_add(&c, 3);

	memset(&d, 0, sizeof d);
	d.name = "odd_values";
	d.help = "Help with \\ backslash and\nnewline and \"quotes\"";
	d.type = SHMET_TYPE_GAUGE;
	d.gauge_mode = SHMET_GAUGE_SUM;
	d.label_count = 1;
	d.label_names = v1;
	check(shmet_family_register(&seg, &d, &f), &seg, "odd");
	{
		static const struct {
			const char *name;
			double v;
		} odd[] = {
			{ "nan", NAN },          { "pinf", INFINITY },
			{ "ninf", -INFINITY },   { "tiny", 5e-324 },
			{ "small", 1e-300 },     { "huge", 1.7976931348623157e308 },
			{ "tenth", 0.1 },        { "third", 1.0 / 3 },
			{ "negzero", -0.0 },     { "big_int", 9007199254740992.0 },
			{ "million", 1e6 },      { "neg", -42.5 },
		};

		for (unsigned i = 0; i < sizeof odd / sizeof odd[0]; i++) {
			vals[0] = odd[i].name;
			check(shmet_gauge_labels(&f, &g, 1, vals), &seg, "odd v");
			shmet_gauge_set(&g, odd[i].v);
		}
	}
	check(shmet_gauge_family(&seg, &f, "empty_family",
				 "A family without series", SHMET_GAUGE_SUM, 1,
				 v1), &seg, "empty");
	check(shmet_gauge_new(&seg, &g, "webhook_queue_size",
			      "Current queue size", SHMET_GAUGE_MAX), &seg,
	      "queue");
	shmet_gauge_set(&g, 17);

	memset(&d, 0, sizeof d);
	d.name = "webhook_delivery_latency_seconds";
	d.help = "HTTP delivery latency";
	d.unit = "seconds";
	d.type = SHMET_TYPE_HISTOGRAM;
	d.bound_count = sizeof lat / sizeof lat[0];
	d.bounds = lat;
	d.label_count = 1;
	d.label_names = (const char *const[]){ "partner_id" };
	check(shmet_family_register(&seg, &d, &f), &seg, "latency");
	check(shmet_histogram_labels(&f, &h, SHMET_VALUES("p1")), &seg, "h1");
	shmet_histogram_observe(&h, 0.001);
	shmet_histogram_observe(&h, 0.05);
	shmet_histogram_observe(&h, 0.3);
	shmet_histogram_observe(&h, 0.3);
	shmet_histogram_observe(&h, 7);
	shmet_histogram_observe(&h, 2e6);
	check(shmet_histogram_labels(&f, &h, SHMET_VALUES("p2")), &seg, "h2");

	check(shmet_counter_new(&seg, &c, "plain_events", "No _total suffix"),
	      &seg, "plain");
	shmet_counter_add(&c, 7);
	if (argc == 3) {
		/* the fuzz seed holds exemplars too (their times would make
		 * the golden pages differ from run to run: not there) */
		static const char *const tn[] = { "trace_id", "span" };
		static const char *const tv[] = {
			"4bf92f3577b34da6a3ce929d0e0e4736", "\u00e9t\u00e9" };

		check(shmet_counter_family(&seg, &f,
					   "campaign_calls_initiated_total",
					   "Total number of campaign calls "
					   "initiated", 2, cu), &seg, "calls");
		check(shmet_counter_labels(&f, &c, SHMET_VALUES("abc123",
							     "user456")),
		      &seg, "calls 1");
		check(shmet_counter_inc_exemplar(&c, 2, tn, tv), &seg, "ex c");
		check(shmet_family_register(&seg, &d, &f), &seg, "latency");
		check(shmet_histogram_labels(&f, &h, SHMET_VALUES("p1")), &seg,
		      "h1 again");
		check(shmet_histogram_observe_exemplar(&h, 0.3, 1, tn, tv),
		      &seg, "ex h");
	}
	shmet_close(&seg);
	return failures ? 1 : 0;
}
