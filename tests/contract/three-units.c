/*
 * Translation unit 3 of 3: opens in tu-open.c, closes in tu-close.c, then
 * forks here.  When the writer's slow path was static inline, each unit had
 * its own fork list: the close in one unit left the segment on another's
 * list and the fork handler used freed memory (ASan: heap-use-after-free).
 * The slow path now exists once per process; this runs under ASan in CI.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "three-units.h"

int
main(void)
{
	struct shmet_segment *seg = malloc(sizeof *seg);
	struct shmet_segment other;
	char name[64];
	int status;
	pid_t pid;

	snprintf(name, sizeof name, "/shmet-3tu-%d", (int)getpid());
	if (!seg || tu_open(seg, name) < 0 || tu_open(&other, name) < 0) {
		fprintf(stderr, "open: %s\n", shmet_last_error(NULL));
		return 1;
	}
	tu_close(seg);
	free(seg);              /* a stale fork list entry would point here */
	pid = fork();
	if (pid == 0) {
		struct shmet_counter c;
		int rc = shmet_counter_new(&other, &c, "child_total", "c");

		shmet_counter_inc(&c);
		_exit(rc == 0 ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "fork child failed\n");
		return 1;
	}
	tu_close(&other);
	shmet_unlink(name);
	printf("open, close and fork in three units: ok\n");
	return 0;
}
