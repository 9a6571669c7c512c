/*
 * The render buffer and text escaping (buf.c): appends, numbers in the
 * exposition formats' spelling, and the escaping rules of label values,
 * help texts and JSON strings.  struct shmet_buf itself is public
 * (shmetrics-reader.h): callers own and reuse it across scrapes.
 */
#ifndef SHMETRICS_BUF_H
#define SHMETRICS_BUF_H

#include <stdint.h>
#include <string.h>

#include "shmetrics-reader.h"

/* Appends are inline: a scrape makes millions of them, and the capacity
 * check is almost always true. */
static inline void
buf_put(struct shmet_buf *b, const void *s, size_t n)
{
	if (__builtin_expect(b->len + n + 1 > b->cap, 0) &&
	    shmet_buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static inline void
buf_puts(struct shmet_buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static inline void
buf_putc(struct shmet_buf *b, char c)
{
	if (__builtin_expect(b->len + 2 > b->cap, 0) &&
	    shmet_buf_reserve(b, 1) < 0)
		return;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}

static inline void
buf_put_str(struct shmet_buf *b, struct shmet_str s)
{
	buf_put(b, s.ptr, s.len);
}

enum { DBL_PLAIN, DBL_FLOAT };
/* ESC_JSON_KEY: a label value inside a /metrics/json key ("name{k=v,...}"):
 * JSON escaping, and a backslash before each \ , = } of the value, so
 * that two label sets never make the same key. */
enum { ESC_LABEL, ESC_HELP, ESC_JSON, ESC_JSON_KEY };
void shmet_priv_buf_put_u64(struct shmet_buf *b, uint64_t v);
size_t shmet_priv_fmt_double(char *out, double d, int style);
void shmet_priv_buf_put_double(struct shmet_buf *b, double d, int style);
void shmet_priv_buf_put_escaped(struct shmet_buf *b, struct shmet_str s,
				int kind);

#endif /* SHMETRICS_BUF_H */
