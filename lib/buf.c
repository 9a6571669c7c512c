/*
 * A growable output buffer and the number and string formatting that the
 * renderers share.  Growth is geometric, so a scrape allocates O(log n)
 * times, never per series; a failed allocation sets ->failed and later
 * appends do nothing.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "reader-private.h"

SHMET_EXPORT void
shmet_buf_free(struct shmet_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

SHMET_EXPORT void
shmet_buf_reset(struct shmet_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data)
		b->data[0] = '\0';
}

SHMET_EXPORT int
shmet_buf_reserve(struct shmet_buf *b, size_t more)
{
	size_t cap;
	char *n;

	if (b->failed)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	n = realloc(b->data, cap);
	if (!n) {
		b->failed = 1;
		return -1;
	}
	b->data = n;
	b->cap = cap;
	return 0;
}

void
shmet_priv_buf_put_u64(struct shmet_buf *b, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_put(b, tmp + sizeof tmp - n, (size_t)n);
}

/*
 * Fast path for doubles with a short decimal form (0.5, 12.25, 3.3): the
 * smallest k <= 8 such that m / 10^k == d for an integer m < 2^53.  IEEE
 * division of two exact values is correctly rounded, so that equality
 * means strtod("m / 10^k") gives back d: the text round-trips, and the
 * smallest k gives the fewest digits, which is what "%.15g" prints for
 * values between 1e-4 and 1e15.  0 if no such k.
 */
static size_t
fmt_decimal(char *out, double d)
{
	static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
				      1e8 };
	char digits[24];
	int n = 0;

	for (int k = 1; k <= 8; k++) {
		double m = nearbyint(d * p10[k]);
		uint64_t u;
		size_t len = 0;

		if (fabs(m) >= 9007199254740992.0)
			return 0;
		if (m / p10[k] != d)
			continue;
		u = (uint64_t)fabs(m);
		n = 0;
		do {
			digits[n++] = (char)('0' + u % 10);
			u /= 10;
		} while (u || n <= k);
		if (d < 0)
			out[len++] = '-';
		while (n > k)
			out[len++] = digits[--n];
		out[len++] = '.';
		while (n > 0)
			out[len++] = digits[--n];
		while (out[len - 1] == '0')     /* k is minimal: never all */
			len--;
		out[len] = '\0';
		return len;
	}
	return 0;
}

/*
 * Shortest text that parses back to exactly d ("%.17g" always does; most
 * values need fewer digits).  Integral values below 2^53 take the integer
 * path.  style DBL_PLAIN: "42", "0.1", "1e+21"; DBL_FLOAT: always looks
 * like a float ("42.0"), with Go's exponent switch at 1e6 for positive
 * values, as OpenMetrics wants for le.
 */
size_t
shmet_priv_fmt_double(char *out, double d, int style)
{
	char tmp[40];
	size_t n;

	if (isnan(d))
		return (size_t)sprintf(out, "NaN");
	if (isinf(d))
		return (size_t)sprintf(out, d > 0 ? "+Inf" : "-Inf");
	if (d == floor(d) && fabs(d) < 9007199254740992.0 &&
	    (style == DBL_PLAIN || fabs(d) < 1e6)) {
		n = (size_t)sprintf(out, "%lld", (long long)d);
		if (d == 0 && signbit(d))
			n = (size_t)sprintf(out, "-0");
		if (style == DBL_FLOAT)
			n += (size_t)sprintf(out + n, ".0");
		return n;
	}
	if (style == DBL_PLAIN && fabs(d) >= 1e-4 && fabs(d) < 1e15) {
		n = fmt_decimal(out, d);
		if (n)
			return n;
	}
	if (style == DBL_FLOAT && d >= 1e6) {
		/* Go's (and OpenMetrics') canonical form: 1e+06, 2.5e+07. */
		for (int prec = 0; prec <= 16; prec++) {
			snprintf(tmp, sizeof tmp, "%.*e", prec, d);
			if (prec == 16 || strtod(tmp, NULL) == d)
				break;
		}
		n = strlen(tmp);
		memcpy(out, tmp, n + 1);
		return n;
	}
	/*
	 * For normal doubles, 15 significant digits suffice whenever any
	 * shorter text would round-trip (DBL_DIG), and %g drops trailing
	 * zeros, so starting at 15 finds the shortest; subnormals carry
	 * fewer digits and search from 1.
	 */
	for (int prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (prec == 17 || strtod(tmp, NULL) == d)
			break;
	}
	n = strlen(tmp);
	if (style == DBL_FLOAT && !strpbrk(tmp, ".en")) {
		memcpy(tmp + n, ".0", 3);
		n += 2;
	}
	memcpy(out, tmp, n + 1);
	return n;
}

void
shmet_priv_buf_put_double(struct shmet_buf *b, double d, int style)
{
	char tmp[48];
	size_t n = shmet_priv_fmt_double(tmp, d, style);

	buf_put(b, tmp, n);
}

/*
 * Escape s for a quoted string of the given kind.  Invalid UTF-8 becomes
 * U+FFFD: every format requires UTF-8 and a scrape must never be rejected
 * for one writer's bytes.
 */
void
shmet_priv_buf_put_escaped(struct shmet_buf *b, struct shmet_str s, int kind)
{
	const unsigned char *p = (const unsigned char *)s.ptr;
	size_t i = 0, run = 0;

	if (shmet_buf_reserve(b, s.len) < 0)
		return;
	while (i < s.len) {
		unsigned char c = p[i];
		const char *esc = NULL;
		char uesc[8];
		size_t len = c < 0x80 ? 1 : shmet_seg_utf8_len(p + i, s.len - i);

		if (c == '\\')
			esc = kind == ESC_JSON_KEY ? "\\\\\\\\" : "\\\\";
		else if (kind == ESC_JSON_KEY &&
			 (c == ',' || c == '=' || c == '}')) {
			uesc[0] = '\\';
			uesc[1] = '\\';
			uesc[2] = (char)c;
			uesc[3] = '\0';
			esc = uesc;
		} else if (c == '\n')
			esc = "\\n";
		else if (c == '"' && kind != ESC_HELP)
			esc = "\\\"";
		else if ((kind == ESC_JSON || kind == ESC_JSON_KEY) && c < 0x20) {
			snprintf(uesc, sizeof uesc, "\\u%04x", c);
			esc = uesc;
		} else if (len == 0)
			esc = SHMET_UTF8_REPLACEMENT;
		if (!esc) {
			i += len;
			run += len;
			continue;
		}
		buf_put(b, p + i - run, run);
		run = 0;
		buf_puts(b, esc);
		i += len ? len : 1;
	}
	buf_put(b, p + i - run, run);
}

SHMET_EXPORT int
shmet_buf_printf(struct shmet_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || shmet_buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

SHMET_EXPORT void
shmet_buf_put_json_escaped(struct shmet_buf *b, const char *s)
{
	struct shmet_str str = { s, (uint32_t)strlen(s) };

	shmet_priv_buf_put_escaped(b, str, ESC_JSON);
}

SHMET_EXPORT size_t
shmet_format_double(char *out, double d)
{
	return shmet_priv_fmt_double(out, d, DBL_PLAIN);
}
