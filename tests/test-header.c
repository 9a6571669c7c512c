/*
 * Compiled as strict C11 (-std=c11 -pedantic -Werror) and, as
 * test-header.cpp, as C++17: the public header must build warning-free in
 * both, with shmetrics.h included first and nothing else defined.
 * Runs every API once so that every inline body is instantiated.
 */
#include <shmetrics.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main(void)
{
	static const char *const names[] = { "campaign_id", "user_id" };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_family_desc d;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct shmet_histogram h;
	double b[12];
	char name[64];
	int rc = 0;

	snprintf(name, sizeof name, "/shmet-header-%d", (int)getpid());
	memset(&o, 0, sizeof o);
	o.name = name;
	o.max_series = 64;
	o.cells_per_block = 1024;
	o.max_writers = 2;
	rc |= shmet_open(&seg, &o);
	rc |= shmet_counter_family(&seg, &f, "a_total", "a", 2, names);
	rc |= shmet_counter_labels(&f, &c, SHMET_VALUES("x", "y"));
	shmet_counter_inc(&c);
	shmet_counter_add(&c, 2);
	shmet_counter_add_double(&c, 0.5);
	rc |= shmet_gauge_family(&seg, &f, "g", "g", SHMET_GAUGE_MAX, 0, NULL);
	rc |= shmet_gauge_labels(&f, &g, 0, NULL);
	rc |= shmet_gauge_new(&seg, &g, "g2", "g", 0);
	shmet_gauge_set(&g, 1);
	shmet_gauge_inc(&g);
	shmet_gauge_dec(&g);
	shmet_gauge_add(&g, 2);
	shmet_gauge_set_to_current_time(&g);
	shmet_exponential_bounds(0.005, 2, 12, b);
	rc |= shmet_histogram_family(&seg, &f, "h_seconds", "h", 12, b, 0,
				     NULL);
	rc |= shmet_histogram_labels(&f, &h, 0, NULL);
	rc |= shmet_histogram_new(&seg, &h, "h2_seconds", "h", 12, b);
	shmet_linear_bounds(1, 1, 12, b);
	shmet_histogram_observe(&h, 0.3);
	shmet_histogram_observe_since(&h, shmet_now_ns());
	SHMET_TIME(&h) {
		rc |= 0;
	}
	memset(&d, 0, sizeof d);
	d.name = "c_total";
	d.type = SHMET_TYPE_COUNTER;
	rc |= shmet_family_register(&seg, &d, &f);
	rc |= shmet_counter_new(&seg, &c, "z_total", "z");
	if (rc)
		fprintf(stderr, "error: %s\n", shmet_last_error(&seg));
	shmet_close(&seg);
	shmet_unlink(name);
	return rc ? 1 : 0;
}
