/*
 * The follower (lib/follow.c) and the render entry (lib/page.c): what
 * every consumer opens a segment and serves a page through.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <shmetrics/name.h>

#include "test-common.h"

static int
refresh(struct shmet_follow *f, unsigned flags, char *err)
{
	return shmet_follow_refresh(f, flags, err, 256);
}

START_TEST(test_follow_missing_then_created)
{
	struct shmet_follow *f;
	struct shmet_segment seg;
	struct shmet_counter c;
	char err[256];

	ck_assert_int_eq(shmet_follow_new(test_segment_name,
					  SHMET_FOLLOW_ANY_OWNER, &f), 0);
	ck_assert_str_eq(shmet_follow_name(f), test_segment_name);
	ck_assert_int_eq(refresh(f, 0, err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "cannot open segment"));
	ck_assert_ptr_null(shmet_follow_view(f));
	test_open(&seg, NULL);
	ck_assert_int_eq(refresh(f, 0, err), SHMET_FOLLOW_REOPENED);
	ck_assert_int_eq(refresh(f, SHMET_FOLLOW_CHECK_NAME, err),
			 SHMET_FOLLOW_SAME);
	/* a new record moves the generation: a new index, same mapping;
	 * the first build at a new generation is followed by one more
	 * (shmet_index_current), then it stays */
	shmet_counter_new(&seg, &c, "follow_total", "F");
	ck_assert_int_eq(refresh(f, 0, err), SHMET_FOLLOW_REBUILT);
	while (refresh(f, 0, err) == SHMET_FOLLOW_REBUILT)
		;
	ck_assert_int_eq(refresh(f, 0, err), SHMET_FOLLOW_SAME);
	ck_assert_ptr_nonnull(shmet_index_find(
		shmet_view_index(shmet_follow_view(f)), "follow_total"));
	shmet_close(&seg);
	shmet_follow_free(f);
}
END_TEST

START_TEST(test_follow_replaced)
{
	struct shmet_follow *f;
	struct shmet_segment seg;
	struct shmet_reader_info in;
	struct shmet_view *old;
	char err[256];

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_follow_new(test_segment_name,
					  SHMET_FOLLOW_ANY_OWNER, &f), 0);
	ck_assert_int_eq(refresh(f, 0, err), SHMET_FOLLOW_REOPENED);
	/* an old view kept past the follower's move stays readable */
	old = shmet_view_ref(shmet_follow_view(f));
	shmet_close(&seg);
	ck_assert_int_eq(shmet_name_unlink(test_segment_name), 0);
	test_open(&seg, NULL);
	/* without the name check the mapping is kept */
	ck_assert_int_ge(refresh(f, 0, err), SHMET_FOLLOW_SAME);
	ck_assert_ptr_eq(shmet_view_reader(shmet_follow_view(f)),
			 shmet_view_reader(old));
	ck_assert_int_eq(refresh(f, SHMET_FOLLOW_CHECK_NAME, err),
			 SHMET_FOLLOW_REOPENED);
	ck_assert_ptr_ne(shmet_view_reader(shmet_follow_view(f)),
			 shmet_view_reader(old));
	/* the old view still reads (ASan would see a freed mapping) */
	ck_assert_int_eq(shmet_reader_info(shmet_view_reader(old), &in), 0);
	ck_assert_uint_eq(in.families_used, 0);
	shmet_view_unref(old);
	/* destroyed: the view is let go of */
	shmet_close(&seg);
	ck_assert_int_eq(shmet_name_unlink(test_segment_name), 0);
	ck_assert_int_eq(refresh(f, SHMET_FOLLOW_CHECK_NAME, err), -ENOENT);
	ck_assert_ptr_null(shmet_follow_view(f));
	shmet_follow_free(f);
}
END_TEST

START_TEST(test_follow_resized)
{
	struct shmet_follow *f;
	struct shmet_segment seg;
	char err[256];
	int fd;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_follow_new(test_segment_name,
					  SHMET_FOLLOW_ANY_OWNER, &f), 0);
	ck_assert_int_eq(refresh(f, 0, err), SHMET_FOLLOW_REOPENED);
	shmet_close(&seg);
	/* cut short under the mapping: the same object, another size */
	fd = shmet_name_open(test_segment_name, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 8192), 0);
	close(fd);
	ck_assert_int_eq(refresh(f, SHMET_FOLLOW_CHECK_NAME, err), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "header says"));
	ck_assert_ptr_null(shmet_follow_view(f));
	shmet_follow_free(f);
}
END_TEST

START_TEST(test_follow_being_created)
{
	struct shmet_follow *f;
	char err[256];
	int fd;

	fd = shmet_name_open(test_segment_name, O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmet_follow_new(test_segment_name,
					  SHMET_FOLLOW_ANY_OWNER, &f), 0);
	/* empty, then all zeros: the creator has not written the header */
	ck_assert_int_eq(refresh(f, 0, err), -EAGAIN);
	ck_assert_int_eq(ftruncate(fd, 8192), 0);
	ck_assert_int_eq(refresh(f, 0, err), -EAGAIN);
	ck_assert_ptr_nonnull(strstr(err, "bad magic"));
	/* garbage is not waited for */
	ck_assert_int_eq(pwrite(fd, "garbage!", 8, 0), 8);
	ck_assert_int_eq(refresh(f, 0, err), -EPROTO);
	close(fd);
	shmet_follow_free(f);
}
END_TEST

START_TEST(test_follow_owner)
{
	struct shmet_follow *f;
	struct shmet_segment seg;
	char err[256];

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_follow_new(test_segment_name,
					  (long)getuid() + 1, &f), 0);
	ck_assert_int_eq(refresh(f, 0, err), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "belongs to uid"));
	ck_assert_ptr_null(shmet_follow_view(f));
	shmet_follow_free(f);
	ck_assert_int_eq(shmet_follow_new(test_segment_name, (long)getuid(),
					  &f), 0);
	ck_assert_int_eq(refresh(f, 0, err), SHMET_FOLLOW_REOPENED);
	shmet_follow_free(f);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_follow_names)
{
	struct shmet_follow *f;

	ck_assert_int_eq(shmet_follow_new("no-slash", SHMET_FOLLOW_ANY_OWNER,
					  &f), -EINVAL);
	ck_assert_ptr_null(f);
	setenv(SHMET_ENV_SEGMENT, "/shmet-follow-env", 1);
	ck_assert_str_eq(shmet_name_resolve(NULL), "/shmet-follow-env");
	ck_assert_str_eq(shmet_name_resolve(""), "/shmet-follow-env");
	ck_assert_str_eq(shmet_name_resolve("/x"), "/x");
	ck_assert_int_eq(shmet_follow_new(NULL, SHMET_FOLLOW_ANY_OWNER, &f),
			 0);
	ck_assert_str_eq(shmet_follow_name(f), "/shmet-follow-env");
	shmet_follow_free(f);
	unsetenv(SHMET_ENV_SEGMENT);
	ck_assert_str_eq(shmet_name_resolve(NULL), SHMET_DEFAULT_SEGMENT);
}
END_TEST

START_TEST(test_page_formats)
{
	static const char *const names[] = { "text", "openmetrics", "json",
					     "health" };
	struct shmet_buf b = { 0 };

	for (int i = 0; i < SHMET_FORMAT_COUNT; i++) {
		ck_assert_int_eq(shmet_format_parse(names[i]), i);
		ck_assert_str_eq(shmet_format_name(i), names[i]);
	}
	ck_assert_int_eq(shmet_format_parse("xml"), -EINVAL);
	ck_assert_int_eq(shmet_format_parse(NULL), -EINVAL);
	ck_assert_str_eq(shmet_format_content_type(SHMET_FORMAT_TEXT),
			 "text/plain; version=0.0.4; charset=utf-8");
	ck_assert_str_eq(shmet_format_content_type(SHMET_FORMAT_OPENMETRICS),
			 "application/openmetrics-text; version=1.0.0; "
			 "charset=utf-8");
	ck_assert_str_eq(shmet_format_content_type(SHMET_FORMAT_HEALTH),
			 "application/json");
	ck_assert_int_eq(shmet_render_unhealthy("waiting \"x\"", &b), 0);
	ck_assert_str_eq(b.data, "{\n  \"status\": \"unhealthy\",\n  "
				 "\"registry\": \"application\",\n  "
				 "\"reason\": \"waiting \\\"x\\\"\"\n}\n");
	shmet_buf_free(&b);
}
END_TEST

/* A page through the entry is byte for byte the renderer's own. */
START_TEST(test_page_matches_renderers)
{
	struct shmet_follow *f;
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_values *v = shmet_values_new();
	struct shmet_buf a = { 0 }, b = { 0 };
	const struct shmet_view *view;
	char err[256];

	test_open(&seg, NULL);
	shmet_counter_new(&seg, &c, "page_total", "P");
	shmet_counter_add(&c, 7);
	ck_assert_int_eq(shmet_follow_new(test_segment_name,
					  SHMET_FOLLOW_ANY_OWNER, &f), 0);
	ck_assert_int_ge(refresh(f, 0, err), 0);
	view = shmet_follow_view(f);
	ck_assert_int_eq(shmet_render_page(view, SHMET_FORMAT_TEXT, NULL, 0,
					   v, &a), 0);
	ck_assert_int_eq(shmet_render_text(shmet_view_index(view), v, &b), 0);
	ck_assert_str_eq(a.data, b.data);
	ck_assert_ptr_nonnull(strstr(a.data, "page_total 7\n"));
	shmet_buf_reset(&a);
	shmet_buf_reset(&b);
	ck_assert_int_eq(shmet_render_page(view, SHMET_FORMAT_OPENMETRICS,
					   NULL, 0, v, &a), 0);
	ck_assert_int_eq(shmet_render_openmetrics(shmet_view_index(view), v,
						  &b), 0);
	ck_assert_str_eq(a.data, b.data);
	shmet_buf_reset(&a);
	ck_assert_int_eq(shmet_render_page(NULL, SHMET_FORMAT_JSON, NULL, 0,
					   v, &a), -ENOENT);
	ck_assert_int_eq(shmet_render_page(NULL, SHMET_FORMAT_TEXT, NULL, 0,
					   v, &a), 0);
	ck_assert_uint_eq(a.len, 0);
	shmet_buf_free(&a);
	shmet_buf_free(&b);
	shmet_values_free(v);
	shmet_follow_free(f);
	shmet_close(&seg);
}
END_TEST

TEST_SUITE(follow)
{
	Suite *s = suite_create("follow");
	TCase *tc = tcase_create("follow");

	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_follow_missing_then_created);
	tcase_add_test(tc, test_follow_replaced);
	tcase_add_test(tc, test_follow_resized);
	tcase_add_test(tc, test_follow_being_created);
	tcase_add_test(tc, test_follow_owner);
	tcase_add_test(tc, test_follow_names);
	tcase_add_test(tc, test_page_formats);
	tcase_add_test(tc, test_page_matches_renderers);
	suite_add_tcase(s, tc);
	return s;
}
