/*
 * shmetrics writer: named test points, the kill-point harness's hooks
 * (tests/crash/).  Each step of a multi-step protocol calls SHMET_POINT
 * with its name; in a build with test points (meson option test_points)
 * the environment can make the process die, stop or be cancelled there:
 *
 *	SHMETRICS_TEST_POINT=name[:action[:n]][,name[:action[:n]]...]
 *		action: kill (SIGKILL itself, the default), stop (SIGSTOP
 *		itself: the test continues it), cancel (pthread_cancel of the
 *		calling thread, acted on at its next cancellation point)
 *		n: act at the n-th time the point is reached (default 1)
 *	SHMETRICS_TEST_POINT_TRACE=fd
 *		write "pid name\n" to fd at every point reached, so the harness
 *		learns which points a scenario passes
 *
 * Only async-signal-safe calls (getenv reads environ; write, raise,
 * kill): points are reached in fork children too.  Without the option the
 * points compile to nothing.
 */
#include "writer-private.h"

#ifdef SHMET_TEST_POINTS

/* Times each listed point was reached, process-wide, by list position. */
#define SHMET_IMPL_POINTS_MAX 8
static SHMET_ATOMIC(uint32_t) shmet_impl_point_hits[SHMET_IMPL_POINTS_MAX];

static int
shmet_impl_point_is(const char *spec, const char *name, const char **rest)
{
	size_t n = strlen(name);

	if (strncmp(spec, name, n) != 0 || (spec[n] != '\0' && spec[n] != ':'))
		return 0;
	*rest = spec[n] == ':' ? spec + n + 1 : spec + n;
	return 1;
}

static void
shmet_impl_point_trace(const char *name)
{
	const char *fd_text = getenv("SHMETRICS_TEST_POINT_TRACE");
	char line[96];
	size_t n = strlen(name);
	int fd;

	int at = 0;
	long pid = (long)getpid();
	char digits[24];
	int nd = 0;

	if (!fd_text || n + 24 > sizeof line)
		return;
	fd = atoi(fd_text);
	/* "pid name\n", formatted without stdio (fork children). */
	do {
		digits[nd++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid);
	while (nd)
		line[at++] = digits[--nd];
	line[at++] = ' ';
	memcpy(line + at, name, n);
	at += (int)n;
	line[at++] = '\n';
	if (write(fd, line, (size_t)at) < 0) {
		/* the harness is gone: nothing to tell */
	}
}

/* The entry of the list spec for point name and its position, or NULL. */
static const char *
shmet_impl_point_find(const char *spec, const char *name, unsigned *pos)
{
	const char *rest;

	for (*pos = 0; *pos < SHMET_IMPL_POINTS_MAX; (*pos)++) {
		if (shmet_impl_point_is(spec, name, &rest))
			return rest;
		spec = strchr(spec, ',');
		if (!spec)
			return NULL;
		spec++;
	}
	return NULL;
}

SHMET_W void
shmet_impl_point(const char *name)
{
	const char *spec = getenv("SHMETRICS_TEST_POINT");
	const char *rest, *colon, *comma;
	unsigned long nth = 1;
	unsigned pos;

	shmet_impl_point_trace(name);
	if (!spec || !(rest = shmet_impl_point_find(spec, name, &pos)))
		return;
	colon = strchr(rest, ':');
	comma = strchr(rest, ',');
	if (colon && (!comma || colon < comma))
		nth = strtoul(colon + 1, NULL, 10);
	/* Relaxed: a count of this process's own visits. */
	if (SHMET_AT(fetch_add_explicit)(&shmet_impl_point_hits[pos], 1,
					 SHMET_MO(relaxed)) + 1 != nth)
		return;
	if (strncmp(rest, "stop", 4) == 0) {
		raise(SIGSTOP);
	} else if (strncmp(rest, "cancel", 6) == 0) {
		pthread_cancel(pthread_self());
	} else {
		kill(getpid(), SIGKILL);
		for (;;)
			pause();
	}
}

/* In a fork child: its own visits count from 1, so that "n-th time"
 * means the n-th in the process the harness traced. */
SHMET_W void
shmet_impl_points_forked(void)
{
	for (unsigned i = 0; i < SHMET_IMPL_POINTS_MAX; i++)
		SHMET_AT(store_explicit)(&shmet_impl_point_hits[i], 0,
					 SHMET_MO(relaxed));
}

#endif /* SHMET_TEST_POINTS */
