/* The public header as C++17: see test-header.c. */
#include <shmetrics.h>
#include <shmetrics-collectors.h>

#include <cstdio>
#include <cstring>
#include <unistd.h>

int
main()
{
	static const char *const names[] = { "k" };
	const char *values[] = { "v" };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct shmet_histogram h;
	double b[4];
	char name[64];
	int rc = 0;

	std::snprintf(name, sizeof name, "/shmet-headerpp-%d", (int)getpid());
	std::memset(&o, 0, sizeof o);
	o.name = name;
	o.max_series = 256;
	o.cells_per_block = 4096;
	o.max_writers = 2;
	rc |= shmet_open(&seg, &o);
	rc |= shmet_counter_family(&seg, &f, "a_total", "a", 1, names);
	rc |= shmet_counter_labels(&f, &c, 1, values);
	shmet_counter_inc(&c);
	shmet_counter_add_double(&c, 1.5);
	rc |= shmet_gauge_new(&seg, &g, "g", "g", SHMET_GAUGE_MOSTRECENT);
	shmet_gauge_set(&g, 3);
	shmet_gauge_dec(&g);
	shmet_linear_bounds(1, 1, 4, b);
	rc |= shmet_histogram_new(&seg, &h, "h", "h", 4, b);
	SHMET_TIME(&h) {
		shmet_histogram_observe(&h, 2);
	}
	{
		struct shmet_campaign_collector c;
		struct shmet_webhook_collector w;

		rc |= shmet_campaign_collector_init(&c, &seg);
		rc |= shmet_webhook_collector_init(&w, &seg, "w1");
		shmet_campaign_record_call_initiated(&c, "c", "u");
		SHMET_TIMED(shmet_campaign_time_poll_cycle(&c)) {
		}
	}
	shmet_close(&seg);
	shmet_unlink(name);
	return rc ? 1 : 0;
}
