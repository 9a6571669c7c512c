/*
 * The command-line conventions shmetrics-exporter, shmetrics-ctl,
 * shmetrics-fleet and shmetrics-top share (README, "Exit codes"), so that
 * a script or a systemd unit can tell a wrong command line from a failure
 * of the work, whichever program it runs:
 *
 *   0  done (--help and --version too)
 *   1  the command line is right, the work failed: a segment, file, port,
 *      certificate, user or group it names is missing, unusable or busy
 *   2  the command line is wrong: an unknown option, a missing value, a
 *      value not of its option's form or range, options that exclude each
 *      other, a stray argument, no command or an unknown one
 *
 * Every error is one line on stderr, "PROGRAM: ...".  A bad value names
 * its option and the value as given:
 *   PROGRAM: invalid value 'VALUE' for --OPTION: WHY (see --help)
 * --version prints "PROGRAM VERSION (layout N)".  The includer includes
 * config.h (SHMETRICS_VERSION) first, as every source here does.
 */
#ifndef SHMETRICS_TOOLS_CLI_H
#define SHMETRICS_TOOLS_CLI_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <shmetrics/layout.h>
#include <shmetrics/name.h>

#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

/* Why name cannot be a segment name (shmet_name_check's rule, in words
 * for --segment), or NULL if it can. */
static inline const char *
cli_segment_why(const char *name)
{
	size_t len = strlen(name);

	if (shmet_name_check(name) == 0)
		return NULL;
	if (name[0] != '/')
		return "must start with /";
	if (len < 2)
		return "must have a name after the /";
	if (len > SHMET_NAME_MAX)
		return "longer than 255 bytes";
	return "a path must not end with /";
}

/* "PROGRAM: message" + tail on stderr; returns status. */
static inline int
cli_vreport(const char *prog, int status, const char *tail, const char *fmt,
	    va_list ap)
{
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputs(tail, stderr);
	return status;
}

/* A failure of the work: one line, exit status 1. */
static inline int
cli_fail(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline int
cli_fail(const char *prog, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cli_vreport(prog, CLI_EXIT_FAILURE, "\n", fmt, ap);
	va_end(ap);
	return rc;
}

/* A wrong command line: one line, exit status 2. */
static inline int
cli_usage_error(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline int
cli_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cli_vreport(prog, CLI_EXIT_USAGE, " (see --help)\n", fmt, ap);
	va_end(ap);
	return rc;
}

/* getopt's complaint (an unknown option, or one without its value),
 * arg as given: exit status 2. */
static inline int
cli_unknown_option(const char *prog, const char *arg)
{
	return cli_usage_error(prog, "unknown option or missing value: '%s'",
			       arg);
}

/* --version: the program, its version and the segment layout it speaks,
 * on stdout; exit status 0. */
static inline int
cli_version(const char *prog)
{
	printf("%s %s (layout %u)\n", prog, SHMETRICS_VERSION,
	       SHMET_LAYOUT_VERSION);
	return 0;
}

#endif
