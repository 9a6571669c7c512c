/*
 * negotiate.c's interface: Accept and Accept-Encoding as RFC 9110 lists
 * of items with weights.  A header of its own (no civetweb, liburcu or
 * reader types) so that tests/test-negotiate.c builds negotiate.c alone
 * and includes nothing else of the exporter.
 */
#ifndef SHMETRICS_EXPORTER_NEGOTIATE_H
#define SHMETRICS_EXPORTER_NEGOTIATE_H

#include <stddef.h>

/* negotiate.c: header values as RFC 9110 lists of items with weights. */
struct hv_item {
	const char *name;               /* not NUL-terminated */
	size_t len;
	int q;                          /* weight in thousandths, 0..1000 */
};
/* The next item of a comma-separated header value at *p (advanced past
 * it); parameters other than q are skipped.  0 at the end. */
int hv_next(const char **p, struct hv_item *it);
/* Weight that header gives the first of names (most specific first, e.g.
 * "text/plain", "text/ *", "* / *") that it lists; -1 if none. */
int hv_quality(const char *header, const char *const *names);
/* Serve gzip for this Accept-Encoding (NULL: absent)? */
int negotiate_gzip(const char *accept_encoding);
/* Serve OpenMetrics rather than text 0.0.4 for this Accept? */
int negotiate_openmetrics(const char *accept);

#endif /* SHMETRICS_EXPORTER_NEGOTIATE_H */
