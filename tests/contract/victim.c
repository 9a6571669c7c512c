/* The kill-point harness (victim.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raw.h"
#include "victim.h"

static int report_fd = -1;

void
victim_report(const char *line)
{
	ssize_t n = (ssize_t)strlen(line);

	/* write() is a cancellation point: a cancelled protocol thread
	 * dies here at the latest, after the step it reports */
	if (write(report_fd, line, (size_t)n) != n)
		_exit(9);
}

int
victim_run(int (*victim)(void), const char *point, const char *action,
	   unsigned nth, int trace_fd, char *rep, size_t cap)
{
	int p[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(p) < 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		char spec[96], fd_text[16];

		close(p[0]);
		report_fd = p[1];
		if (point) {
			snprintf(spec, sizeof spec, "%s:%s:%u", point, action,
				 nth);
			setenv("SHMETRICS_TEST_POINT", spec, 1);
		}
		if (trace_fd >= 0) {
			snprintf(fd_text, sizeof fd_text, "%d", trace_fd);
			setenv("SHMETRICS_TEST_POINT_TRACE", fd_text, 1);
		}
		_exit(victim());
	}
	close(p[1]);
	while (got + 1 < cap && (n = read(p[0], rep + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	rep[got] = '\0';
	close(p[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

int
victim_traced(int (*victim)(void), char *rep, size_t cap, int *failures)
{
	char path[] = "/tmp/shmet-victim-trace-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		exit(1);
	unlink(path);
	if (victim_run(victim, NULL, NULL, 0, fd, rep, cap) != 0 &&
	    failures) {
		fprintf(stderr, "FAIL: the traced victim did not exit 0\n");
		(*failures)++;
	}
	return fd;
}

int
victim_later_writer(int (*fn)(void), const char *ctx)
{
	int rc = victim_in_child(fn);

	if (rc == 0)
		return 0;
	fprintf(stderr, "FAIL %s: the later writer exited %d "
		"(capacity leaked?)\n", ctx, rc);
	return 1;
}

int
victim_in_child(int (*fn)(void))
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	return wait_exit(pid);
}

static int
wanted(const char *name, const char *const *prefixes)
{
	if (!prefixes)
		return 1;
	for (; *prefixes; prefixes++)
		if (!strncmp(name, *prefixes, strlen(*prefixes)))
			return 1;
	return 0;
}

unsigned
victim_points(int trace_fd, const char *const *prefixes,
	      struct victim_point *pts, unsigned max)
{
	static struct { long pid; char name[48]; } seen[1024];
	unsigned nseen = 0, npts = 0;
	char line[128];
	int fd = dup(trace_fd);
	FILE *f;

	if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0)
		exit(1);
	f = fdopen(fd, "r");
	if (!f)
		exit(1);
	while (fgets(line, sizeof line, f) && nseen < 1024) {
		char name[48];
		long pid;
		unsigned nth = 1;
		int dup_pair = 0;

		if (sscanf(line, "%ld %47s", &pid, name) != 2 ||
		    !wanted(name, prefixes))
			continue;
		for (unsigned i = 0; i < nseen; i++)
			if (seen[i].pid == pid && !strcmp(seen[i].name, name))
				nth++;
		seen[nseen].pid = pid;
		snprintf(seen[nseen].name, sizeof seen[nseen].name, "%s",
			 name);
		nseen++;
		for (unsigned i = 0; i < npts; i++)
			if (!strcmp(pts[i].name, name) && pts[i].nth == nth)
				dup_pair = 1;
		if (!dup_pair && npts < max) {
			snprintf(pts[npts].name, sizeof pts[npts].name, "%s",
				 name);
			pts[npts].nth = nth;
			npts++;
		}
	}
	fclose(f);
	return npts;
}
