/*
 * Idle expiry (writer/expire.c): series that no process wrote for the
 * segment's TTL leave the pages and give their records to new series.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-common.h"

START_TEST(test_idle_series_expire)
{
	static const char *const k[] = { "k" };
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter a, b;
	struct shmet_gauge g;

	o.series_ttl_s = 1;
	test_open(&seg, &o);
	ck_assert_uint_eq(seg.hdr->series_ttl_s, 1);
	shmet_counter_family(&seg, &f, "idle_total", "i", 1, k);
	shmet_counter_labels(&f, &a, SHMET_VALUES("a"));
	shmet_counter_labels(&f, &b, SHMET_VALUES("b"));
	ck_assert_int_eq(shmet_gauge_new(&seg, &g, "held", "h",
					 SHMET_GAUGE_LIVESUM), 0);
	shmet_gauge_set(&g, 3);
	shmet_counter_inc(&a);
	ck_assert_int_eq(shmet_expire(&seg), 0);
	usleep(1100 * 1000);
	shmet_counter_inc(&a);
	/* b was never written: idle since its creation */
	ck_assert_int_eq(shmet_expire(&seg), 1);
	ck_assert(!test_shown("idle_total", SHMET_VALUES("b")));
	ck_assert(test_shown("idle_total", SHMET_VALUES("a")));
	usleep(1100 * 1000);
	/* a stopped counting; the gauge's owner lives: it stays */
	ck_assert_int_eq(shmet_expire(&seg), 1);
	ck_assert(!test_shown("idle_total", SHMET_VALUES("a")));
	ck_assert(test_shown("held", 0, NULL));
	ck_assert_uint_eq(atomic_load(&seg.hdr->expired), 2);
	/* a handle held across the expiry drops its writes, counted */
	shmet_counter_inc(&a);
	ck_assert_uint_eq(atomic_load(&seg.hdr->stale_writes), 1);
	ck_assert(!test_shown("idle_total", SHMET_VALUES("a")));
	/* resolving the values again starts a new series */
	shmet_counter_labels(&f, &a, SHMET_VALUES("a"));
	shmet_counter_inc(&a);
	ck_assert_double_eq(test_counter("idle_total", SHMET_VALUES("a")), 1);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_no_ttl_never_expires)
{
	struct shmet_segment seg;
	struct shmet_counter c;

	test_open(&seg, NULL);
	shmet_counter_new(&seg, &c, "kept_total", "k");
	ck_assert_int_eq(shmet_expire(&seg), 0);
	ck_assert(test_shown("kept_total", 0, NULL));
	shmet_close(&seg);
}
END_TEST

/*
 * A process holds a handle across the expiry of its series and the reuse
 * of its record by another process's series; then both count 1,000,000:
 * the other series is exact, the stale handle's writes are all dropped
 * and counted, and resolving again counts exactly too.
 */
START_TEST(test_stale_handle_across_reuse)
{
	static const char *const k[] = { "k" };
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter x;
	int go[2], done[2], status;
	pid_t pid;
	char c;

	o.series_ttl_s = 1;
	o.max_series = 1;
	test_open(&seg, &o);
	shmet_counter_family(&seg, &f, "reused_total", "r", 1, k);
	ck_assert_int_eq(shmet_counter_labels(&f, &x, SHMET_VALUES("x")), 0);
	shmet_counter_add(&x, 7);
	/* a sweep sees x written: idle from now on */
	ck_assert_int_eq(shmet_expire(&seg), 0);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid = fork();
	if (pid == 0) {
		struct shmet_segment s2;
		struct shmet_family f2;
		struct shmet_counter y;

		if (read(go[0], &c, 1) != 1 || shmet_open(&s2, &o) != 0 ||
		    shmet_counter_family(&s2, &f2, "reused_total", "r", 1,
					 k) != 0)
			_exit(2);
		/* x is idle past the TTL: y takes its record, a second
		 * after the expiry */
		if (shmet_expire(&s2) != 1)
			_exit(3);
		usleep(1100 * 1000);
		if (shmet_counter_labels(&f2, &y, SHMET_VALUES("y")) != 0)
			_exit(4);
		if (write(done[1], "r", 1) != 1)
			_exit(5);
		for (int i = 0; i < 1000000; i++)
			shmet_counter_inc(&y);
		shmet_close(&s2);
		_exit(0);
	}
	close(go[0]);
	close(done[1]);
	usleep(1100 * 1000);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	if (read(done[0], &c, 1) != 1) {
		waitpid(pid, &status, 0);
		ck_abort_msg("child failed: 0x%x", status);
	}
	for (int i = 0; i < 1000000; i++)
		shmet_counter_inc(&x);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child 0x%x", status);
	ck_assert_double_eq(test_counter("reused_total", SHMET_VALUES("y")),
			    1000000);
	ck_assert(!test_shown("reused_total", SHMET_VALUES("x")));
	ck_assert_uint_eq(atomic_load(&seg.hdr->stale_writes), 1000000);
	/* x again: the segment holds one series, y, which is live */
	ck_assert_int_eq(shmet_counter_labels(&f, &x, SHMET_VALUES("x")),
			 -ENOSPC);
	shmet_close(&seg);
}
END_TEST

TEST_SUITE(expire)
{
	Suite *s = suite_create("expire");
	TCase *tc = tcase_create("expire");

	tcase_add_checked_fixture(tc, test_segment_setup,
				  test_segment_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_idle_series_expire);
	tcase_add_test(tc, test_no_ttl_never_expires);
	tcase_add_test(tc, test_stale_handle_across_reuse);
	suite_add_tcase(s, tc);
	return s;
}
