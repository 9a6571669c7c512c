/*
 * Renderers: Prometheus text 0.0.4, OpenMetrics 1.0.0, the specification's
 * JSON, and health.  Each walks the index (families sorted by name, series
 * by label values) once and writes into a caller-owned buffer; nothing is
 * allocated per series.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "reader-private.h"

/*
 * The per-family le texts, formatted once per family per render.  The
 * same text in every format (prometheus_client's "1.0" style): a
 * Prometheus that switches format, or a user comparing pages, sees one
 * series per bucket, not two.
 */
struct le_texts {
	char text[SHMET_MAX_BOUNDS + 1][40];
	size_t len[SHMET_MAX_BOUNDS + 1];
};

static void
format_les(const struct shmet_index_family *f, struct le_texts *le)
{
	for (uint32_t i = 0; i < f->bound_count; i++)
		le->len[i] = shmet_priv_fmt_double(le->text[i], f->bounds[i],
						   DBL_FLOAT);
	le->len[f->bound_count] = (size_t)sprintf(le->text[f->bound_count],
						  "+Inf");
}

/* Cursor over the per-writer gauge samples (sorted by series, pid). */
struct sample_cursor {
	const struct shmet_values *v;
	size_t next;
};

static const struct shmet_gauge_sample *
next_sample(struct sample_cursor *c, uint32_t series)
{
	while (c->next < c->v->nsamples &&
	       c->v->samples[c->next].series < series)
		c->next++;
	if (c->next < c->v->nsamples && c->v->samples[c->next].series == series)
		return &c->v->samples[c->next++];
	return NULL;
}

static int
per_writer_mode(const struct shmet_index_family *f)
{
	return f->type == SHMET_TYPE_GAUGE &&
	       shmet_seg_gauge_mode_per_writer(f->gauge_mode);
}

static int
has_suffix(struct shmet_str s, const char *suffix)
{
	size_t n = strlen(suffix);

	return s.len >= n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

/* ------------------------------------------------------------------ */
/* Sample lines shared by text and OpenMetrics                        */

struct sample_line {
	struct shmet_buf *b;
	const struct shmet_index_family *f;
	const struct shmet_index_series *s;
};

/* name + suffix + {labels[, extra_name="extra"]} + space */
static void
put_sample_head(const struct sample_line *l, struct shmet_str name,
		const char *suffix, const char *extra_name, const char *extra,
		size_t extra_len)
{
	struct shmet_buf *b = l->b;
	struct shmet_str lt = l->s->label_text;

	buf_put_str(b, name);
	buf_puts(b, suffix);
	if (lt.len == 0 && !extra_name) {
		buf_putc(b, ' ');
		return;
	}
	buf_putc(b, '{');
	buf_put_str(b, lt);
	if (extra_name) {
		if (lt.len)
			buf_putc(b, ',');
		buf_puts(b, extra_name);
		buf_put(b, "=\"", 2);
		buf_put(b, extra, extra_len);
		buf_putc(b, '"');
	}
	buf_put(b, "} ", 2);
}

static void
put_counter_value(struct shmet_buf *b, const struct shmet_values *v,
		  const struct shmet_index *idx, uint32_t si)
{
	double fl = shmet_values_counter_float(v, idx, si);

	if (fl == 0)
		shmet_priv_buf_put_u64(b, shmet_values_counter_int(v, idx, si));
	else
		shmet_priv_buf_put_double(b, shmet_values_counter(v, idx, si), DBL_PLAIN);
	buf_putc(b, '\n');
}

static void
put_histogram(const struct sample_line *l, struct shmet_str name,
	      const struct shmet_values *v, const struct shmet_index *idx,
	      uint32_t si, const struct le_texts *le)
{
	uint64_t cum = 0;

	for (uint32_t k = 0; k <= l->f->bound_count; k++) {
		cum += shmet_values_bucket(v, idx, si, k);
		put_sample_head(l, name, "_bucket", "le", le->text[k],
				le->len[k]);
		shmet_priv_buf_put_u64(l->b, cum);
		buf_putc(l->b, '\n');
	}
	put_sample_head(l, name, "_sum", NULL, NULL, 0);
	shmet_priv_buf_put_double(l->b, shmet_values_hist_sum(v, idx, si), DBL_PLAIN);
	buf_putc(l->b, '\n');
	put_sample_head(l, name, "_count", NULL, NULL, 0);
	shmet_priv_buf_put_u64(l->b, cum);         /* count is the +Inf bucket */
	buf_putc(l->b, '\n');
}

static void
put_gauge(const struct sample_line *l, struct shmet_str name,
	  const struct shmet_values *v, uint32_t si, struct sample_cursor *cur)
{
	const struct shmet_gauge_sample *gs;

	if (!per_writer_mode(l->f)) {
		if (!v->gauge_set[si])
			return;         /* no writer has set it */
		put_sample_head(l, name, "", NULL, NULL, 0);
		shmet_priv_buf_put_double(l->b, v->gauge[si], DBL_PLAIN);
		buf_putc(l->b, '\n');
		return;
	}
	while ((gs = next_sample(cur, si))) {
		char pid[24];
		int n = snprintf(pid, sizeof pid, "%lld", (long long)gs->pid);

		put_sample_head(l, name, "", "pid", pid, (size_t)n);
		shmet_priv_buf_put_double(l->b, gs->value, DBL_PLAIN);
		buf_putc(l->b, '\n');
	}
}

static void
put_series(const struct sample_line *l, struct shmet_str name,
	   const char *counter_suffix, const struct shmet_values *v,
	   const struct shmet_index *idx, uint32_t si,
	   const struct le_texts *le, struct sample_cursor *cur)
{
	switch (l->f->type) {
	case SHMET_TYPE_COUNTER:
		put_sample_head(l, name, counter_suffix, NULL, NULL, 0);
		put_counter_value(l->b, v, idx, si);
		break;
	case SHMET_TYPE_GAUGE:
		put_gauge(l, name, v, si, cur);
		break;
	default:
		put_histogram(l, name, v, idx, si, le);
		break;
	}
}

/*
 * Counter samples always end in _total (as Python's client and OpenMetrics
 * have it): the suffix a counter registered without one gets.
 */
static const char *
counter_total(const struct shmet_index_family *f)
{
	return f->type == SHMET_TYPE_COUNTER && !has_suffix(f->name, "_total")
		       ? "_total"
		       : "";
}

static const char *
type_name(uint32_t type)
{
	return type == SHMET_TYPE_COUNTER ? "counter" :
	       type == SHMET_TYPE_GAUGE	  ? "gauge" :
					    "histogram";
}

/* ------------------------------------------------------------------ */
/* Prometheus text 0.0.4                                              */

SHMET_EXPORT int
shmet_render_text(const struct shmet_index *idx, const struct shmet_values *v,
		  struct shmet_buf *b)
{
	struct sample_cursor cur = { v, 0 };
	struct le_texts le;

	for (uint32_t fi = 0; fi < idx->nfamilies; fi++) {
		const struct shmet_index_family *f = &idx->families[fi];
		struct sample_line l = { b, f, NULL };
		const char *total = counter_total(f);

		buf_puts(b, "# HELP ");
		buf_put_str(b, f->name);
		buf_puts(b, total);
		buf_putc(b, ' ');
		shmet_priv_buf_put_escaped(b, f->help, ESC_HELP);
		buf_puts(b, "\n# TYPE ");
		buf_put_str(b, f->name);
		buf_puts(b, total);
		buf_putc(b, ' ');
		buf_puts(b, type_name(f->type));
		buf_putc(b, '\n');
		if (f->type == SHMET_TYPE_HISTOGRAM)
			format_les(f, &le);
		for (uint32_t k = 0; k < f->series_count; k++) {
			l.s = &idx->series[f->first_series + k];
			put_series(&l, f->name, total, v, idx,
				   f->first_series + k, &le, &cur);
		}
	}
	return b->failed ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* OpenMetrics 1.0.0                                                  */

SHMET_EXPORT int
shmet_render_openmetrics(const struct shmet_index *idx,
			 const struct shmet_values *v, struct shmet_buf *b)
{
	struct sample_cursor cur = { v, 0 };
	struct le_texts le;

	for (uint32_t fi = 0; fi < idx->nfamilies; fi++) {
		const struct shmet_index_family *f = &idx->families[fi];
		struct sample_line l = { b, f, NULL };
		struct shmet_str family = f->name;

		/* A counter family is named without _total; samples with. */
		if (f->type == SHMET_TYPE_COUNTER && has_suffix(family, "_total"))
			family.len -= 6;
		buf_puts(b, "# TYPE ");
		buf_put_str(b, family);
		buf_putc(b, ' ');
		buf_puts(b, type_name(f->type));
		buf_putc(b, '\n');
		if (f->unit.len) {
			buf_puts(b, "# UNIT ");
			buf_put_str(b, family);
			buf_putc(b, ' ');
			buf_put_str(b, f->unit);
			buf_putc(b, '\n');
		}
		buf_puts(b, "# HELP ");
		buf_put_str(b, family);
		buf_putc(b, ' ');
		shmet_priv_buf_put_escaped(b, f->help, ESC_LABEL);
		buf_putc(b, '\n');
		if (f->type == SHMET_TYPE_HISTOGRAM)
			format_les(f, &le);
		for (uint32_t k = 0; k < f->series_count; k++) {
			l.s = &idx->series[f->first_series + k];
			put_series(&l, family, "_total", v, idx,
				   f->first_series + k, &le, &cur);
		}
	}
	buf_puts(b, "# EOF\n");
	return b->failed ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* JSON, in the specification's shape                                 */

static void
json_key_labels(struct shmet_buf *b, const struct shmet_index_family *f,
		const struct shmet_index_series *s, const char *suffix,
		const char *extra_name, const char *extra)
{
	int first = 1;

	buf_putc(b, '"');
	shmet_priv_buf_put_escaped(b, f->name, ESC_JSON);
	buf_puts(b, suffix);
	if (f->label_count || extra_name) {
		buf_putc(b, '{');
		for (uint32_t i = 0; i < f->label_count; i++) {
			if (!first)
				buf_putc(b, ',');
			first = 0;
			buf_put_str(b, f->label_names[i]);
			buf_putc(b, '=');
			shmet_priv_buf_put_escaped(b, s->label_values[i], ESC_JSON);
		}
		if (extra_name) {
			if (!first)
				buf_putc(b, ',');
			buf_puts(b, extra_name);
			buf_putc(b, '=');
			buf_puts(b, extra);
		}
		buf_putc(b, '}');
	}
	buf_puts(b, "\": ");
}

/* JSON has no NaN or infinities: those become the strings Prometheus
 * uses for them. */
static void
json_number(struct shmet_buf *b, double d)
{
	char tmp[48];
	size_t n = shmet_priv_fmt_double(tmp, d, DBL_PLAIN);

	if (tmp[0] == 'N' || tmp[1] == 'I') {
		buf_putc(b, '"');
		buf_put(b, tmp, n);
		buf_putc(b, '"');
	} else {
		buf_put(b, tmp, n);
	}
}

struct json_state {
	struct shmet_buf *b;
	int first;
};

/* Separator and key of a plain (suffix-less) entry. */
static void
json_key_first(struct json_state *js, const struct shmet_index_family *f,
	       const struct shmet_index_series *s, const char *suffix)
{
	buf_puts(js->b, js->first ? "\n    " : ",\n    ");
	js->first = 0;
	json_key_labels(js->b, f, s, suffix, NULL, NULL);
}

static void
json_entry(struct json_state *js, const struct shmet_index_family *f,
	   const struct shmet_index_series *s, const char *suffix,
	   const char *extra_name, const char *extra, double value)
{
	buf_puts(js->b, js->first ? "\n    " : ",\n    ");
	js->first = 0;
	json_key_labels(js->b, f, s, suffix, extra_name, extra);
	json_number(js->b, value);
}

static void
json_series(struct json_state *js, const struct shmet_index *idx,
	    const struct shmet_values *v, uint32_t si,
	    const struct le_texts *le, struct sample_cursor *cur)
{
	const struct shmet_index_series *s = &idx->series[si];
	const struct shmet_index_family *f = &idx->families[s->family];
	const struct shmet_gauge_sample *gs;
	uint64_t cum = 0;
	char pid[24];

	switch (f->type) {
	case SHMET_TYPE_COUNTER:
		if (shmet_values_counter_float(v, idx, si) == 0 &&
		    shmet_values_counter_int(v, idx, si) <= INT64_MAX) {
			/* exact, even above 2^53; above 2^63 as a double,
			 * which every JSON parser (jansson too) accepts */
			json_key_first(js, f, s, counter_total(f));
			shmet_priv_buf_put_u64(js->b, shmet_values_counter_int(v, idx, si));
			break;
		}
		json_entry(js, f, s, counter_total(f), NULL, NULL,
			   shmet_values_counter(v, idx, si));
		break;
	case SHMET_TYPE_GAUGE:
		if (!per_writer_mode(f)) {
			if (v->gauge_set[si])
				json_entry(js, f, s, "", NULL, NULL,
					   v->gauge[si]);
			break;
		}
		while ((gs = next_sample(cur, si))) {
			snprintf(pid, sizeof pid, "%lld", (long long)gs->pid);
			json_entry(js, f, s, "", "pid", pid, gs->value);
		}
		break;
	default:
		for (uint32_t k = 0; k <= f->bound_count; k++) {
			cum += shmet_values_bucket(v, idx, si, k);
			json_entry(js, f, s, "_bucket", "le", le->text[k],
				   (double)cum);
		}
		json_entry(js, f, s, "_sum", NULL, NULL,
			   shmet_values_hist_sum(v, idx, si));
		json_entry(js, f, s, "_count", NULL, NULL, (double)cum);
		break;
	}
}

static void
put_rfc3339(struct shmet_buf *b, uint64_t realtime_ns)
{
	time_t t = (time_t)(realtime_ns / 1000000000u);
	struct tm tm;
	char tmp[32];

	gmtime_r(&t, &tm);
	strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_puts(b, tmp);
}

SHMET_EXPORT int
shmet_render_json(const struct shmet_index *idx, const struct shmet_values *v,
		  uint64_t realtime_ns, struct shmet_buf *b)
{
	struct sample_cursor cur = { v, 0 };
	struct json_state js = { b, 1 };
	struct le_texts le;

	buf_puts(b, "{\n  \"timestamp\": \"");
	put_rfc3339(b, realtime_ns);
	buf_puts(b, "\",\n  \"metrics\": {");
	for (uint32_t fi = 0; fi < idx->nfamilies; fi++) {
		const struct shmet_index_family *f = &idx->families[fi];

		if (f->type == SHMET_TYPE_HISTOGRAM)
			format_les(f, &le);
		for (uint32_t k = 0; k < f->series_count; k++)
			json_series(&js, idx, v, f->first_series + k, &le, &cur);
	}
	buf_puts(b, js.first ? "},\n" : "\n  },\n");
	buf_puts(b, "  \"registry\": \"application\"\n}\n");
	return b->failed ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Health                                                             */

/* A collector's state by which of its families the index has. */
static const char *
collector_state(const struct shmet_index *idx,
		const struct shmet_index_collector *c)
{
	uint32_t have = 0;

	for (uint32_t i = 0; i < c->family_count; i++) {
		char name[SHMET_MAX_NAME_LEN + 1];

		memcpy(name, c->families[i].ptr, c->families[i].len);
		name[c->families[i].len] = '\0';
		have += shmet_index_find(idx, name) != NULL;
	}
	return have == c->family_count ? "registered"
	       : have			? "partial"
					: "not_registered";
}

SHMET_EXPORT const char *
shmet_failure_name(uint32_t reason)
{
	return shmet_seg_failure_name(reason);
}

static int
above_90(uint64_t used, uint64_t cap)
{
	return cap > 0 && used * 10 > cap * 9;
}

static void
json_kv_u64(struct shmet_buf *b, const char *indent, const char *key,
	    uint64_t v, int last)
{
	buf_puts(b, indent);
	buf_putc(b, '"');
	buf_puts(b, key);
	buf_puts(b, "\": ");
	shmet_priv_buf_put_u64(b, v);
	buf_puts(b, last ? "\n" : ",\n");
}

SHMET_EXPORT uint64_t
shmet_reader_bytes_used(const struct shmet_reader_info *in)
{
	return (uint64_t)in->strings_used +
	       8ull * in->cells_used * (in->writers_live + in->writers_dead + 1);
}

SHMET_EXPORT int
shmet_health_degraded(const struct shmet_reader_info *in)
{
	uint64_t failures = 0;

	for (uint32_t i = 0; i < SHMET_FAIL_COUNT; i++)
		failures += in->failures[i];
	return failures > 0 || above_90(in->families_used, in->max_families) ||
	       above_90(in->series_used, in->max_series) ||
	       above_90(in->cells_used, in->cells_per_block) ||
	       above_90(in->strings_used, in->string_bytes) ||
	       above_90(in->writers_live, in->max_writers);
}

SHMET_EXPORT int
shmet_render_health(const struct shmet_index *idx,
		    const struct shmet_reader_info *in, struct shmet_buf *b)
{
	uint64_t used_bytes = shmet_reader_bytes_used(in);

	buf_puts(b, "{\n  \"status\": \"");
	/* Records left out (corrupt or colliding) degrade it too. */
	buf_puts(b, shmet_health_degraded(in) || idx->skipped_families ||
			    idx->skipped_series
		    ? "degraded"
		    : "healthy");
	buf_puts(b, "\",\n  \"registry\": \"application\",\n");
	json_kv_u64(b, "  ", "metric_families", idx->nfamilies, 0);
	json_kv_u64(b, "  ", "total_metrics", idx->nseries, 0);
	buf_puts(b, "  \"collectors\": {");
	for (uint32_t i = 0; i < idx->ncollectors; i++) {
		const struct shmet_index_collector *c = &idx->collectors[i];

		buf_puts(b, i ? ",\n    \"" : "\n    \"");
		buf_put_str(b, c->name);     /* a label-name: nothing to escape */
		buf_puts(b, "\": \"");
		buf_puts(b, collector_state(idx, c));
		buf_putc(b, '"');
	}
	buf_puts(b, idx->ncollectors ? "\n  },\n" : "},\n");
	buf_puts(b, "  \"segment\": {\n");
	json_kv_u64(b, "    ", "layout_version", in->layout_version, 0);
	json_kv_u64(b, "    ", "bytes_total", in->total_size, 0);
	json_kv_u64(b, "    ", "bytes_used", used_bytes, 0);
	json_kv_u64(b, "    ", "families_used", in->families_used, 0);
	json_kv_u64(b, "    ", "families_capacity", in->max_families, 0);
	json_kv_u64(b, "    ", "series_used", in->series_used, 0);
	json_kv_u64(b, "    ", "series_capacity", in->max_series, 0);
	json_kv_u64(b, "    ", "cells_used", in->cells_used, 0);
	json_kv_u64(b, "    ", "cells_capacity", in->cells_per_block, 0);
	json_kv_u64(b, "    ", "string_bytes_used", in->strings_used, 0);
	json_kv_u64(b, "    ", "string_bytes_capacity", in->string_bytes, 0);
	json_kv_u64(b, "    ", "writers_live", in->writers_live, 0);
	json_kv_u64(b, "    ", "writers_dead", in->writers_dead, 0);
	json_kv_u64(b, "    ", "writers_capacity", in->max_writers, 0);
	json_kv_u64(b, "    ", "records_skipped",
		    idx->skipped_families + idx->skipped_series, 0);
	buf_puts(b, "    \"registration_failures\": {\n");
	for (uint32_t i = 0; i < SHMET_FAIL_COUNT; i++)
		json_kv_u64(b, "      ", shmet_seg_failure_name(i),
			    in->failures[i],
			    i + 1 == SHMET_FAIL_COUNT);
	buf_puts(b, "    }\n  }\n}\n");
	return b->failed ? -1 : 0;
}
