/*
 * The kill-point harness of the contract tests that kill (or stop, or
 * cancel) a victim process at each test point it reaches (kill-points.c,
 * lifecycle-points.c, reclaim-points.c): a traced run lists the points,
 * then one run is killed at each, and the victim reports each step that
 * returned on a pipe.
 */
#ifndef SHMETRICS_CONTRACT_VICTIM_H
#define SHMETRICS_CONTRACT_VICTIM_H

#include <stddef.h>

/* One test point a traced run reached: its name and which visit in its
 * process it was. */
struct victim_point {
	char name[48];
	unsigned nth;
};

/* In the victim: write line to the report pipe (exits 9 if it cannot). */
void victim_report(const char *line);

/*
 * Run victim() in a child: with point, `action` ("kill", "stop",
 * "cancel": writer/points.c) at its nth visit of point; with trace_fd >= 0,
 * traced into it (the points its processes reach, "pid name" a line).
 * What it reported lands in rep (cap bytes, NUL-terminated).  Returns its
 * wait status (waitpid), -1 if it cannot be waited for.
 */
int victim_run(int (*victim)(void), const char *point, const char *action,
	       unsigned nth, int trace_fd, char *rep, size_t cap);

/*
 * Run victim() traced into a fresh temporary file (unlinked), its reports
 * into rep; returns the file, for victim_points (the caller closes it).
 * With failures, a victim that did not exit 0 is a failure, counted
 * there.  Exits the test with status 1 if no file can be made.
 */
int victim_traced(int (*victim)(void), char *rep, size_t cap,
		  int *failures);

/* fn() in a child: its exit code, or 128 + its signal (wait_exit). */
int victim_in_child(int (*fn)(void));

/* The writer after a killed victim, fn() in a child: 0 if it exited 0,
 * else 1, with "FAIL ctx: ..." on stderr (its capacity leaked?). */
int victim_later_writer(int (*fn)(void), const char *ctx);

/*
 * The points of a traced run (trace_fd, read from its start) whose names
 * begin with one of prefixes (NULL-terminated; prefixes NULL: all), as
 * (name, n-th visit in its process), each pair once; at most max into
 * pts.  Returns how many.
 */
unsigned victim_points(int trace_fd, const char *const *prefixes,
		       struct victim_point *pts, unsigned max);

#endif
