/*
 * Renderers: the specification's JSON and the health document (text and
 * OpenMetrics: render.c).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "reader-private.h"
#include "render-private.h"

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
			shmet_priv_buf_put_escaped(b, s->label_values[i],
						   ESC_JSON_KEY);
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
	struct le_texts merged;
	uint32_t nb = f->bound_count;

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
		if (s->merge != UINT32_MAX) {
			/* versions merged over the bounds they share */
			const double *bounds;
			uint32_t count = shmet_index_series_bounds(idx, si,
								   &bounds);

			format_bounds(bounds, count, &merged);
			le = &merged;
			nb = count;
		}
		for (uint32_t k = 0; k <= nb; k++) {
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
	/* every CPU block is reserved as far as cells are used */
	return (uint64_t)in->strings_used +
	       8ull * in->cells_used * (in->writers_live + in->writers_dead + 1 +
					in->cpu_blocks);
}

SHMET_EXPORT int
shmet_health_degraded(const struct shmet_reader_info *in)
{
	uint64_t failures = 0;
	int reusable;

	for (uint32_t i = 0; i < SHMET_FAIL_COUNT; i++)
		failures += in->failures[i];
	/*
	 * Records in use, not handed out: churn keeps the high-water marks
	 * at the capacity while removed and expired records are reused.
	 * Cells and label strings go back with a series record, so their
	 * pools (high-water marks) warn only while no removed record waits
	 * to be reused.
	 */
	reusable = in->series_used > in->series_in_use;
	return failures > 0 ||
	       above_90(in->families_in_use, in->max_families) ||
	       above_90(in->series_in_use, in->max_series) ||
	       (!reusable && (above_90(in->cells_used, in->cells_per_block) ||
			      above_90(in->strings_used, in->string_bytes))) ||
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
			    idx->skipped_series || idx->type_conflicts
		    ? "degraded"
		    : "healthy");
	buf_puts(b, "\",\n  \"registry\": \"application\",\n");
	/*
	 * The specification's two counts, with what they count said in the
	 * response itself: read without it, metric_families was compared
	 * with the segment's family records (collector declarations take
	 * records too) and total_metrics with the entries of /metrics/json
	 * (one per sample line: a histogram series has many).
	 */
	json_kv_u64(b, "  ", "metric_families", idx->nfamilies, 0);
	json_kv_u64(b, "  ", "total_metrics", idx->nseries, 0);
	buf_puts(b, "  \"definitions\": {\n"
		    "    \"metric_families\": \"families of the segment on "
		    "the page, without the exporter's own\",\n"
		    "    \"total_metrics\": \"series of those families, one "
		    "per label set; a histogram series is one, not one per "
		    "bucket, sum and count line as in /metrics/json\"\n"
		    "  },\n");
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
	/* records, not families: a collector's declaration takes one too */
	json_kv_u64(b, "    ", "family_records_used", in->families_used, 0);
	json_kv_u64(b, "    ", "family_records_in_use", in->families_in_use,
		    0);
	json_kv_u64(b, "    ", "family_records_capacity", in->max_families, 0);
	json_kv_u64(b, "    ", "series_used", in->series_used, 0);
	json_kv_u64(b, "    ", "series_in_use", in->series_in_use, 0);
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
	/* the series lifecycle (writer/expire.c, remove.c) */
	json_kv_u64(b, "    ", "series_ttl_seconds", in->series_ttl_s, 0);
	json_kv_u64(b, "    ", "series_expired", in->series_expired, 0);
	json_kv_u64(b, "    ", "stale_writes", in->stale_writes, 0);
	/* versions of a name (index.c): another type than the newest's */
	json_kv_u64(b, "    ", "type_conflicts", idx->type_conflicts, 0);
	json_kv_u64(b, "    ", "series_shadowed", idx->shadowed_series, 0);
	buf_puts(b, "    \"registration_failures\": {\n");
	for (uint32_t i = 0; i < SHMET_FAIL_COUNT; i++)
		json_kv_u64(b, "      ", shmet_seg_failure_name(i),
			    in->failures[i],
			    i + 1 == SHMET_FAIL_COUNT);
	buf_puts(b, "    }\n  }\n}\n");
	return b->failed ? -1 : 0;
}
