/*
 * Per-CPU blocks that cannot grow: /dev/shm (a private 32 MiB tmpfs in a
 * mount namespace of our own) fills while a second thread counts.  With
 * 64 KiB left, registrations can reserve the process block's next chunk
 * but not the 4 CPU blocks' (4 x 64 KiB): they must fail with -ENOMEM
 * and hand out scratch handles; the registrations below the CPU blocks'
 * watermark still succeed without a syscall.  The thread writes every
 * handle, successful or not, and must neither die of SIGBUS nor lose a
 * count.  Run with and without SHMETRICS_NO_RSEQ=1.  Needs root
 * (unshare, mount); skipped (77) otherwise.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <shmetrics.h>

#include "percpu.h"
#include "snapshot.h"

#define MAX_HANDLES 12000

static struct shmet_segment seg;
static struct shmet_counter first, handles[MAX_HANDLES];
static struct shmet_counter refused[MAX_HANDLES];
static int nhandles, nrefused;
static pthread_barrier_t step;

static void *
counter_thread(void *arg)
{
	(void)arg;
	shmet_counter_inc(&first);      /* resolves its rseq area */
	pthread_barrier_wait(&step);    /* main fills tmpfs, registers */
	pthread_barrier_wait(&step);
	for (int i = 0; i < nhandles; i++)
		shmet_counter_inc(&handles[i]);
	for (int i = 0; i < nrefused; i++)     /* scratch: must not fault */
		shmet_counter_inc(&refused[i]);
	return NULL;
}

/* Fill /dev/shm, then free `leave` bytes of it. */
static int
fill(off_t leave)
{
	int fd = open("/dev/shm/filler", O_RDWR | O_CREAT | O_TRUNC, 0600);
	off_t size = 0;

	if (fd < 0)
		return -1;
	for (off_t step_bytes = 1 << 20; step_bytes >= 4096; step_bytes /= 2)
		while (posix_fallocate(fd, size, step_bytes) == 0)
			size += step_bytes;
	if (ftruncate(fd, size - leave) < 0)
		return -1;
	close(fd);
	return 0;
}

int
main(void)
{
	struct shmet_options o = { 0 };
	struct shmet_family fam;
	static const char *const labels[] = { "i" };
	pthread_t t;
	uint64_t got = 0;
	int ok = 0, failed = 0, not_enomem = 0;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=32m") < 0) {
		printf("skipped: needs root for a private tmpfs (%s)\n",
		       strerror(errno));
		return 77;
	}
	o.name = "/shmet-thrtmpfs";
	o.max_writers = 8;
	o.cells_per_block = 131072;     /* 1 MiB blocks */
	o.max_series = 16384;
	o.max_families = 16;
	o.string_bytes = 262144;
	o.cpu_blocks = 4;
	o.max_series_per_family = MAX_HANDLES + 16;
	if (shmet_open(&seg, &o) < 0 ||
	    shmet_counter_new(&seg, &first, "first_total", "f") < 0 ||
	    shmet_counter_family(&seg, &fam, "many_total", "m", 1, labels) < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}
	shmet_counter_inc(&first);      /* main: the process block */
	pthread_barrier_init(&step, NULL, 2);
	pthread_create(&t, NULL, counter_thread, NULL);
	pthread_barrier_wait(&step);
	/* 64 KiB left: one more reservation chunk, for one block only */
	if (fill(65536) < 0) {
		perror("fill");
		return 1;
	}
	for (int i = 0; i < MAX_HANDLES; i++) {
		char v[16];
		const char *vals[1] = { v };
		int rc;

		snprintf(v, sizeof v, "%d", i);
		rc = shmet_counter_labels(&fam, &handles[nhandles], 1, vals);
		if (rc == 0) {
			nhandles++;
			ok++;
		} else {
			refused[nrefused++] = handles[nhandles];
			not_enomem += rc != -ENOMEM;
			failed++;
		}
	}
	pthread_barrier_wait(&step);
	pthread_join(t, NULL);          /* a SIGBUS would have killed us */
	{
		struct snapshot snap;

		snapshot_take(o.name, &snap);
		for (int i = 0; i < nhandles; i++)
			got += snapshot_cell(&snap,
					     percpu_cell_index(&seg, handles[i].cell));
		snapshot_free(&snap);
	}
	printf("registrations ok %d, refused %d (%d not ENOMEM); counted "
	       "%llu of %d\n", ok, failed, not_enomem,
	       (unsigned long long)got, nhandles);
	shmet_close(&seg);
	shmet_unlink(o.name);
	unlink("/dev/shm/filler");
	/* the first 64 KiB chunk (4096 two-cell series) was reserved in
	 * every block before the fill */
	if (got != (uint64_t)nhandles || failed == 0 || not_enomem != 0 ||
	    ok < 4000) {
		printf("FAIL\n");
		return 1;
	}
	printf("ok\n");
	return 0;
}
