/*
 * Content negotiation (RFC 9110 section 12.4): Accept and Accept-Encoding
 * are comma-separated lists of items, each with optional ";name=value"
 * parameters, of which "q" is the item's weight (0 to 1, three decimals;
 * 0 means "not acceptable").  One tokenizer reads both headers.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "negotiate.h"

static const char *
skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A token or quoted string (a parameter value) at p; returns its end. */
static const char *
skip_value(const char *p)
{
	if (*p != '"')
		return p + strcspn(p, ",; \t");
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

/* qvalue = "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3"0" ]; anything else
 * counts as 0: a malformed weight must not make an item preferred. */
static int
parse_q(const char *p, size_t len)
{
	int q, scale = 100;

	if (len == 0 || (p[0] != '0' && p[0] != '1'))
		return 0;
	q = (p[0] - '0') * 1000;
	if (len == 1)
		return q;
	if (p[1] != '.' || len > 5)
		return 0;
	for (size_t i = 2; i < len; i++, scale /= 10) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		q += (p[i] - '0') * scale;
	}
	return q > 1000 ? 0 : q;
}

int
hv_next(const char **cursor, struct hv_item *it)
{
	const char *p = *cursor;

	if (!p)
		return 0;
	/* Empty list elements (", ,") are allowed and skipped. */
	for (;;) {
		p = skip_ows(p);
		if (*p != ',')
			break;
		p++;
	}
	if (!*p)
		return 0;
	it->name = p;
	p += strcspn(p, ",; \t");
	it->len = (size_t)(p - it->name);
	it->q = 1000;
	for (;;) {
		const char *name, *value;
		size_t nlen;

		p = skip_ows(p);
		if (*p != ';')
			break;
		name = p = skip_ows(p + 1);
		p += strcspn(p, "=,; \t");
		nlen = (size_t)(p - name);
		p = skip_ows(p);
		if (*p != '=')
			continue;       /* a parameter without a value */
		value = p = skip_ows(p + 1);
		p = skip_value(p);
		if (nlen == 1 && (*name == 'q' || *name == 'Q'))
			it->q = parse_q(value, (size_t)(p - value));
	}
	/* Junk up to the next comma belongs to this item. */
	p += strcspn(p, ",");
	*cursor = p;
	return 1;
}

int
hv_quality(const char *header, const char *const *names)
{
	int best_rank = -1, q = -1;

	for (const char *p = header; p;) {
		struct hv_item it;

		if (!hv_next(&p, &it))
			break;
		for (int r = 0; names[r]; r++) {
			if (strlen(names[r]) != it.len ||
			    strncasecmp(names[r], it.name, it.len) != 0)
				continue;
			/* The most specific name decides; among repeats of
			 * one name, the highest weight. */
			if (best_rank < 0 || r < best_rank ||
			    (r == best_rank && it.q > q)) {
				best_rank = r;
				q = it.q;
			}
		}
	}
	return q;
}

/*
 * gzip when the client weighs it above zero and no lower than identity.
 * Identity is acceptable unless refused ("identity;q=0", or "*;q=0" with
 * no identity item), but even then the body goes uncompressed rather
 * than as a 406: a scrape must not fail over an advisory header.
 */
int
negotiate_gzip(const char *accept_encoding)
{
	static const char *const gzip[] = { "gzip", "x-gzip", "*", NULL };
	static const char *const identity[] = { "identity", "*", NULL };
	int qg, qi;

	if (!accept_encoding)
		return 0;
	qg = hv_quality(accept_encoding, gzip);
	qi = hv_quality(accept_encoding, identity);
	/* Not listed: acceptable but least preferred (RFC 9110 12.5.3). */
	if (qi < 0)
		qi = 0;
	return qg > 0 && qg >= qi;  /* a tie goes to gzip, as before */
}

/*
 * OpenMetrics when the client weighs it above zero and no lower than
 * text/plain (or text/ *, or * / *: the most specific that it lists).
 * Wildcards never select OpenMetrics: text is the default format.
 */
int
negotiate_openmetrics(const char *accept)
{
	static const char *const om[] = { "application/openmetrics-text",
					   NULL };
	static const char *const text[] = { "text/plain", "text/*", "*/*",
					     NULL };
	int qo, qt;

	if (!accept)
		return 0;
	qo = hv_quality(accept, om);
	qt = hv_quality(accept, text);
	return qo > 0 && qo >= qt;  /* a tie goes to OpenMetrics, as before */
}
