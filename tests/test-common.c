#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-common.h"

char test_segment_name[64];

void
test_segment_setup(void)
{
	static unsigned counter;

	snprintf(test_segment_name, sizeof test_segment_name,
		 "/shmet-test-%d-%u", (int)getpid(), counter++);
	shmet_unlink(test_segment_name);
}

void
test_segment_teardown(void)
{
	shmet_unlink(test_segment_name);
}

struct shmet_options
test_options(void)
{
	struct shmet_options o;

	memset(&o, 0, sizeof o);
	o.name = test_segment_name;
	o.max_families = 64;
	o.max_series = 8192;
	o.max_writers = 32;
	o.cells_per_block = 65536;
	o.string_bytes = 1 << 20;
	return o;
}

void
test_open(struct shmet_segment *seg, const struct shmet_options *opts)
{
	struct shmet_options o = test_options();
	int rc = shmet_open(seg, opts ? opts : &o);

	ck_assert_msg(rc == 0, "shmet_open: %d %s", rc, shmet_last_error(seg));
}

void
test_snapshot_take(struct test_snapshot *s)
{
	char err[SHMET_READER_ERRLEN];
	int rc;

	memset(s, 0, sizeof *s);
	rc = shmet_reader_open(test_segment_name, &s->reader, err, sizeof err);
	ck_assert_msg(rc == 0, "reader: %s", err);
	rc = shmet_index_build(s->reader, &s->index, err, sizeof err);
	ck_assert_msg(rc == 0, "index: %s", err);
	s->values = shmet_values_new();
	ck_assert_ptr_nonnull(s->values);
	rc = shmet_values_collect(s->reader, s->index, s->values);
	ck_assert_int_eq(rc, 0);
}

void
test_snapshot_free(struct test_snapshot *s)
{
	shmet_values_free(s->values);
	shmet_index_free(s->index);
	shmet_reader_close(s->reader);
}

int
test_find_series(const struct test_snapshot *s, const char *name, uint32_t n,
		 const char *const *values)
{
	const struct shmet_index_family *f = shmet_index_find(s->index, name);
	uint32_t fi = 0;

	if (!f)
		return -1;
	while (shmet_index_family(s->index, fi) != f)
		fi++;
	/* the name's versions follow it (shmetrics-reader.h, continues) */
	for (; (f = shmet_index_family(s->index, fi)) &&
	       (f == shmet_index_find(s->index, name) || f->continues);
	     fi++) {
		int i = test_find_in_family(s, f, n, values);

		if (i >= 0)
			return i;
	}
	return -1;
}

int
test_find_in_family(const struct test_snapshot *s,
		    const struct shmet_index_family *f, uint32_t n,
		    const char *const *values)
{
	if (f->label_count != n)
		return -1;
	for (uint32_t i = f->first_series;
	     i < f->first_series + f->series_count; i++) {
		const struct shmet_index_series *se =
			shmet_index_series(s->index, i);
		uint32_t k = 0;

		while (k < n && strlen(values[k]) == se->label_values[k].len &&
		       memcmp(values[k], se->label_values[k].ptr,
			      se->label_values[k].len) == 0)
			k++;
		if (k == n)
			return (int)i;
	}
	return -1;
}

double
test_counter(const char *name, uint32_t n, const char *const *values)
{
	struct test_snapshot s;
	double v;
	int i;

	test_snapshot_take(&s);
	i = test_find_series(&s, name, n, values);
	ck_assert_msg(i >= 0, "series of %s not found", name);
	v = shmet_values_counter(s.values, s.index, (uint32_t)i);
	test_snapshot_free(&s);
	return v;
}

uint64_t
test_hist_count(const char *name, uint32_t n, const char *const *values)
{
	struct test_snapshot s;
	uint64_t v;
	int i;

	test_snapshot_take(&s);
	i = test_find_series(&s, name, n, values);
	ck_assert_msg(i >= 0, "series of %s not found", name);
	v = shmet_values_hist_count(s.values, s.index, (uint32_t)i);
	test_snapshot_free(&s);
	return v;
}

static void
wait_all(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		int status;

		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "child %d failed (status 0x%x)", i, status);
	}
}

/* Fork n children running fn; with go, each spins until *go is set. */
static void
fork_children(pid_t *pids, int n, void (*fn)(int i, void *arg), void *arg,
	      const int *go)
{
	ck_assert_int_le(n, 256);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			while (go && !__atomic_load_n(go, __ATOMIC_ACQUIRE))
				;
			fn(i, arg);
			_exit(0);
		}
	}
}

void
test_fork_all(int n, void (*fn)(int i, void *arg), void *arg)
{
	pid_t pids[256];

	fork_children(pids, n, fn, arg, NULL);
	wait_all(pids, n);
}

void
test_fork_all_at_once(int n, void (*fn)(int i, void *arg), void *arg)
{
	pid_t pids[256];
	int *go = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(go, MAP_FAILED);
	fork_children(pids, n, fn, arg, go);
	usleep(50000);          /* let every child reach the spin */
	__atomic_store_n(go, 1, __ATOMIC_RELEASE);
	wait_all(pids, n);
	munmap(go, 4096);
}

double
test_gauge(const struct test_snapshot *s, uint32_t series)
{
	double g;

	shmet_values_gauge(s->values, series, &g);
	return g;
}

int
test_gauge_set(const struct test_snapshot *s, uint32_t series)
{
	double g;

	return shmet_values_gauge(s->values, series, &g);
}

int
test_shown(const char *name, uint32_t n, const char *const *values)
{
	struct test_snapshot s;
	int i;

	test_snapshot_take(&s);
	i = test_find_series(&s, name, n, values);
	test_snapshot_free(&s);
	return i >= 0;
}

uint32_t
test_series_shown(const char *name)
{
	struct test_snapshot s;
	const struct shmet_index_family *f;
	uint32_t n;

	test_snapshot_take(&s);
	f = shmet_index_find(s.index, name);
	n = f ? f->series_count : 0;
	test_snapshot_free(&s);
	return n;
}
