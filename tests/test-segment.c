/*
 * Segment creation, attach and close against the process's limits:
 * address space (RLIMIT_AS), file size (RLIMIT_FSIZE), and names that
 * exist but are not segments.  Segment names start with /wt-seg-.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics/lock.h>

#include "test-common.h"

/* Address-space limits mean nothing under ASan's shadow or valgrind. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static int
address_space_is_real(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return !UNDER_ASAN && !(pre && strstr(pre, "vgpreload"));
}

static void
seg_setup(void)
{
	static unsigned counter;

	snprintf(test_segment_name, sizeof test_segment_name,
		 "/wt-seg-%d-%u", (int)getpid(), counter++);
	shmet_unlink(test_segment_name);
}

static void
seg_teardown(void)
{
	shmet_unlink(test_segment_name);
}

/* Default capacities (a 1 GiB segment) on our test name. */
static struct shmet_options
default_options(void)
{
	struct shmet_options o;

	memset(&o, 0, sizeof o);
	o.name = test_segment_name;
	return o;
}

/* VmSize of this process, in kB. */
static long
vm_size_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
			break;
	fclose(f);
	ck_assert_int_gt(kb, 0);
	return kb;
}

/* Wait for child pid; assert it exited (not killed) with code 0. */
static void
assert_child_ok(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child killed by signal %d",
		      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

static void
open_close(const struct shmet_options *o)
{
	struct shmet_segment seg;

	test_open(&seg, o);
	shmet_close(&seg);
}

START_TEST(test_close_releases_address_space)
{
	struct shmet_options o = default_options();
	long after_one, after_many;

	open_close(&o);
	after_one = vm_size_kb();
	for (int i = 1; i < 1000; i++)
		open_close(&o);
	after_many = vm_size_kb();
	ck_assert_msg(after_many <= after_one + after_one / 100,
		      "VmSize %ld kB after one cycle, %ld kB after 1000",
		      after_one, after_many);
}
END_TEST

/*
 * A closed segment keeps only the pages its handles can reach: a
 * counter's and a histogram's cells in the first 64 KiB of the block, of
 * each per-CPU block and of the fallback block, the page of the string
 * pool that holds the histogram's bounds, and the page of their series
 * records (their incarnations, which every write compares).
 */
START_TEST(test_close_keeps_only_what_handles_reach)
{
	struct shmet_options o = test_options();
	struct shmet_counter c[100];
	struct shmet_histogram h[100];
	double b[] = { 1, 2, 3 };
	long before, after, cpus = 0;

	open_close(&o);
	before = vm_size_kb();
	for (int i = 0; i < 100; i++) {
		struct shmet_segment seg;

		test_open(&seg, &o);
		ck_assert_int_eq(shmet_counter_new(&seg, &c[i], "kept_total",
						   "k"), 0);
		ck_assert_int_eq(shmet_histogram_new(&seg, &h[i], "kept_h",
						     "h", 3, b), 0);
		shmet_counter_inc(&c[i]);
		shmet_histogram_observe(&h[i], 2);
		cpus = seg.hdr->cpu_blocks;
		shmet_close(&seg);
	}
	after = vm_size_kb();
	/* and 64 KiB of each per-CPU block, where counters count, and of
	 * the fallback block, where they fall back (writer/fallback.c) */
	ck_assert_msg(after - before <= 100 * (64 + 4 + 4 + 64 * cpus + 64) +
						before / 100,
		      "VmSize grew by %ld kB over 100 cycles", after - before);
	/* Every handle still writes, and records nothing. */
	for (int i = 0; i < 100; i++) {
		shmet_counter_add(&c[i], 5);
		shmet_histogram_observe(&h[i], 0.5);
		shmet_histogram_observe(&h[i], 100);
	}
	ck_assert_double_eq(test_counter("kept_total", 0, NULL), 100);
	ck_assert_uint_eq(test_hist_count("kept_h", 0, NULL), 100);
}
END_TEST

struct counting_thread {
	struct shmet_counter *c;
	pthread_barrier_t *bar;
};

/* Count, let main close the segment, count again (now into nothing). */
static void *
count_across_close(void *arg)
{
	struct counting_thread *t = (struct counting_thread *)arg;

	shmet_counter_add(t->c, 2);     /* claims a block of its own */
	pthread_barrier_wait(t->bar);   /* main closes */
	pthread_barrier_wait(t->bar);
	shmet_counter_add(t->c, 7);
	return NULL;
}

/* A thread with a block of its own keeps counting safely after close. */
START_TEST(test_thread_counts_after_close)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_counter c;
	pthread_barrier_t bar;
	struct counting_thread t = { &c, &bar };
	pthread_t th;

	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "threads_total", "t"), 0);
	shmet_counter_inc(&c);          /* main takes the process block */
	pthread_barrier_init(&bar, NULL, 2);
	ck_assert_int_eq(pthread_create(&th, NULL, count_across_close, &t), 0);
	pthread_barrier_wait(&bar);
	shmet_close(&seg);
	pthread_barrier_wait(&bar);
	pthread_join(th, NULL);
	shmet_counter_inc(&c);
	pthread_barrier_destroy(&bar);
	ck_assert_double_eq(test_counter("threads_total", 0, NULL), 3);
}
END_TEST

/* uWSGI's limit-as = 1000 (MB): the default segment must still open. */
START_TEST(test_open_under_address_space_limit)
{
	pid_t pid;

	if (!address_space_is_real())
		return;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { 1000000ul * 1024, 1000000ul * 1024 };
		struct shmet_options o = default_options();
		struct shmet_segment seg;
		struct shmet_counter c;
		int rc;

		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(2);
		rc = shmet_open(&seg, &o);
		if (rc != 0) {
			fprintf(stderr, "shmet_open: %d %s\n", rc,
				shmet_last_error(&seg));
			_exit(3);
		}
		if (shmet_counter_new(&seg, &c, "limited_total", "l") != 0)
			_exit(4);
		shmet_counter_inc(&c);
		shmet_close(&seg);
		/* and again, now that the segment exists */
		if (shmet_open(&seg, &o) != 0)
			_exit(5);
		shmet_close(&seg);
		_exit(0);
	}
	assert_child_ok(pid);
	ck_assert_double_eq(test_counter("limited_total", 0, NULL), 1);
}
END_TEST

/* Limit this process's file size to `bytes`, with SIGXFSZ's default
 * action (terminate), as an application that never heard of it has. */
static int
limit_fsize(rlim_t bytes)
{
	struct rlimit rl = { bytes, bytes };

	signal(SIGXFSZ, SIG_DFL);
	return setrlimit(RLIMIT_FSIZE, &rl);
}

/*
 * A file size limit below the segment's size: creation is refused with
 * -EFBIG, the creator is not killed by SIGXFSZ, and the next open, without
 * the limit, creates the segment.
 */
START_TEST(test_fsize_limit_refuses_creation)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int rc;

		if (limit_fsize(1 << 20) < 0)
			_exit(2);
		rc = shmet_open(&seg, &o);
		if (rc != -EFBIG)
			_exit(3);
		if (!strstr(shmet_last_error(&seg), "RLIMIT_FSIZE") ||
		    !strstr(shmet_last_error(&seg), "1048576"))
			_exit(4);
		_exit(0);
	}
	assert_child_ok(pid);
	test_open(&seg, &o);
	shmet_close(&seg);
}
END_TEST

/* The same with the default capacities, and with SHMET_OPEN_NO_WRITER. */
START_TEST(test_fsize_limit_refuses_default_segment)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shmet_options o = default_options();
		struct shmet_segment seg;

		if (limit_fsize(512ul << 20) < 0)
			_exit(2);
		if (shmet_open(&seg, &o) != -EFBIG)
			_exit(3);
		o.flags = SHMET_OPEN_NO_WRITER;
		if (shmet_open(&seg, &o) != -EFBIG)
			_exit(4);
		_exit(0);
	}
	assert_child_ok(pid);
}
END_TEST

/*
 * A limit lowered after the segment exists refuses nothing: value blocks
 * lie inside the file, which does not grow (nor does the kernel signal).
 */
START_TEST(test_fsize_limit_after_creation)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	pid_t pid;

	test_open(&seg, &o);
	shmet_close(&seg);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shmet_counter c;

		if (limit_fsize(4096) < 0)
			_exit(2);
		if (shmet_open(&seg, &o) != 0)
			_exit(3);
		if (shmet_counter_new(&seg, &c, "limited_total", "l") != 0)
			_exit(4);
		shmet_counter_add(&c, 4);
		shmet_close(&seg);
		_exit(0);
	}
	assert_child_ok(pid);
	ck_assert_double_eq(test_counter("limited_total", 0, NULL), 4);
}
END_TEST

/* Create the name as another application would: `len` bytes of `data`. */
static int
make_file(const char *name, const void *data, size_t len)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);

	ck_assert_int_ge(fd, 0);
	if (len)
		ck_assert_int_eq(pwrite(fd, data, len, 0), (ssize_t)len);
	return fd;
}

/* Assert the file behind fd still holds exactly `len` bytes of `data`. */
static void
assert_unchanged(int fd, const void *data, size_t len)
{
	unsigned char back[8192];
	struct stat st;

	ck_assert_uint_le(len, sizeof back);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)len);
	ck_assert_int_eq(pread(fd, back, len, 0), (ssize_t)len);
	ck_assert_int_eq(memcmp(back, data, len), 0);
}

static void
assert_refused(const struct shmet_options *o)
{
	struct shmet_segment seg;

	ck_assert_int_eq(shmet_open(&seg, o), -EPROTO);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg),
				     "not a shmetrics segment"));
}

/* Another application's 100 bytes, by shm name and by tmpfs path. */
START_TEST(test_foreign_file_is_not_rewritten)
{
	struct shmet_options o = test_options();
	char path[128], data[100];
	int fd;

	memset(data, 'y', sizeof data);
	fd = make_file(test_segment_name, data, sizeof data);
	assert_refused(&o);
	o.flags = SHMET_OPEN_NO_CREATE;
	assert_refused(&o);
	snprintf(path, sizeof path, "/dev/shm%s", test_segment_name);
	o.name = path;
	o.flags = 0;
	assert_refused(&o);
	assert_unchanged(fd, data, sizeof data);
	close(fd);
}
END_TEST

/* A header-sized file with another magic, not ready and "ready". */
START_TEST(test_wrong_magic_is_not_rewritten)
{
	struct shmet_options o = test_options();
	unsigned char data[8192];
	struct shmet_seg_header *h = (struct shmet_seg_header *)(void *)data;
	int fd;

	memset(data, 0, sizeof data);
	h->magic = SHMET_MAGIC ^ 1;
	h->layout_version = SHMET_LAYOUT_VERSION;
	fd = make_file(test_segment_name, data, sizeof data);
	assert_refused(&o);
	assert_unchanged(fd, data, sizeof data);
	h->init_state = SHMET_INIT_READY;
	ck_assert_int_eq(pwrite(fd, data, sizeof data, 0),
			 (ssize_t)sizeof data);
	assert_refused(&o);
	assert_unchanged(fd, data, sizeof data);
	close(fd);
}
END_TEST

/*
 * An empty file that no initialiser holds is a creator's that died (or
 * was refused) before its first write, as far as anyone can tell, and
 * holds nothing to lose: it is initialised.  So is a file that starts with
 * the magic, an initialiser's that died after its first write.
 */
START_TEST(test_dead_creator_files_are_initialised)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	uint64_t magic = SHMET_MAGIC;
	unsigned char half[8192];
	int fd;

	fd = make_file(test_segment_name, "", 0);
	close(fd);
	test_open(&seg, &o);
	shmet_close(&seg);
	shmet_unlink(test_segment_name);

	fd = make_file(test_segment_name, &magic, sizeof magic);
	close(fd);
	test_open(&seg, &o);
	shmet_close(&seg);
	shmet_unlink(test_segment_name);

	memset(half, 0x5a, sizeof half);
	memcpy(half, &magic, sizeof magic);
	fd = make_file(test_segment_name, half, sizeof half);
	close(fd);
	test_open(&seg, &o);
	shmet_close(&seg);
}
END_TEST

/* An empty file whose creator is alive (holds the init lock) is waited
 * for, not refused, and not taken over. */
START_TEST(test_live_creator_is_waited_for)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	int fd = make_file(test_segment_name, "", 0);

	ck_assert_int_eq(shmet_seg_lock(fd, SHMET_LOCK_INIT, F_WRLCK), 0);
	o.init_timeout_ms = 50;
	ck_assert_int_eq(shmet_open(&seg, &o), -ETIMEDOUT);
	assert_unchanged(fd, "", 0);
	ck_assert_int_eq(shmet_seg_lock(fd, SHMET_LOCK_INIT, F_UNLCK), 0);
	test_open(&seg, &o);
	shmet_close(&seg);
	close(fd);
}
END_TEST

TEST_SUITE(segment)
{
	Suite *s = suite_create("segment");
	TCase *tc;

	tc = tcase_create("Address space");
	tcase_add_checked_fixture(tc, seg_setup, seg_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_close_releases_address_space);
	tcase_add_test(tc, test_close_keeps_only_what_handles_reach);
	tcase_add_test(tc, test_thread_counts_after_close);
	tcase_add_test(tc, test_open_under_address_space_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("File size limit");
	tcase_add_checked_fixture(tc, seg_setup, seg_teardown);
	tcase_add_test(tc, test_fsize_limit_refuses_creation);
	tcase_add_test(tc, test_fsize_limit_refuses_default_segment);
	tcase_add_test(tc, test_fsize_limit_after_creation);
	suite_add_tcase(s, tc);

	tc = tcase_create("Names that are not segments");
	tcase_add_checked_fixture(tc, seg_setup, seg_teardown);
	tcase_add_test(tc, test_foreign_file_is_not_rewritten);
	tcase_add_test(tc, test_wrong_magic_is_not_rewritten);
	tcase_add_test(tc, test_dead_creator_files_are_initialised);
	tcase_add_test(tc, test_live_creator_is_waited_for);
	suite_add_tcase(s, tc);
	return s;
}
