/*
 * shmetrics-top: the table once, as plain text or JSON, for scripts and
 * tests.  Values are printed exactly (shortest round-trip text, as the
 * exposition has them), so that they compare with shmetrics-ctl dump.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics/layout.h>

#include "escape.h"
#include "plain.h"

#define TITLE_MAX 4096

void
top_summary(const struct top_model *m, char *out, size_t len)
{
	const struct shmet_reader_info *in = &m->info;

	snprintf(out, len,
		 "series %u/%u  cells %.1f%%  strings %.1f%%  writers %u live, "
		 "%u dead  failures %llu",
		 in->series_used, in->max_series,
		 in->cells_per_block ?
			 100.0 * in->cells_used / in->cells_per_block : 0.0,
		 in->string_bytes ?
			 100.0 * in->strings_used / in->string_bytes : 0.0,
		 in->writers_live, in->writers_dead,
		 (unsigned long long)top_failures(in));
}

void
top_format_number(double x, int width, char *out, size_t len)
{
	static const char *const suffix[] = { "", "k", "M", "G", "T", "P" };
	double a = fabs(x);
	int i = 0;

	if (isnan(x)) {
		snprintf(out, len, "-");
		return;
	}
	if (isinf(x)) {
		snprintf(out, len, x > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (x == floor(x) && a < 1e7) {
		snprintf(out, len, "%.0f", x);
		if ((int)strlen(out) <= width)
			return;
	}
	if (a >= 0.01 && a < 1e5) {
		snprintf(out, len, "%.*f", a < 100 ? 3 : a < 1000 ? 2 : 1, x);
		if ((int)strlen(out) <= width)
			return;
	}
	if (a >= 1e3) {
		while (a >= 1000 && i < 5) {
			a /= 1000;
			x /= 1000;
			i++;
		}
		snprintf(out, len, "%.*f%s", a < 10 ? 2 : a < 100 ? 1 : 0, x,
			 suffix[i]);
		return;
	}
	snprintf(out, len, "%.2g", x);
}

/* Exactly as the exposition prints it: NaN is a gauge's value here. */
static void
exact(double x, char *out)
{
	shmet_format_double(out, x);
}

static void
fixed(double x, char *out, size_t len)
{
	if (isnan(x))
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%.3f", x);
}

static void
approx(double x, char *out, size_t len)
{
	if (isnan(x))
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%.6g", x);
}

int
top_print_text(const struct top_model *m, FILE *out)
{
	char title[TITLE_MAX], line[512];
	int width = 4;

	top_summary(m, line, sizeof line);
	fprintf(out, "# shmetrics-top %s  %s%s\n", m->segment_name, line,
		shmet_health_degraded(&m->info) ? "  DEGRADED" : "");
	fprintf(out, "# interval %.3f s  elapsed %.3f s  sort %s  fold %s  "
		     "filter %s\n",
		top_model_interval(m), top_model_elapsed(m),
		top_sort_name(m->sort), m->fold ? "on" : "off",
		m->have_re ? m->filter : "-");
	for (size_t i = 0; i < m->nrows; i++) {
		int n;

		top_row_title(m, &m->rows[i], title, sizeof title);
		n = (int)strlen(title);
		if (n > width)
			width = n;
	}
	fprintf(out, "%-*s  %-9s  %5s  %14s  %12s  %12s  %10s  %10s  %10s  "
		     "%10s\n",
		width, "NAME", "TYPE", "N", "VALUE", "RATE/S", "RATE0/S",
		"MEAN", "P50", "P95", "P99");
	for (size_t i = 0; i < m->nrows; i++) {
		const struct top_row *row = &m->rows[m->order[i]];
		const struct shmet_index_family *f =
			shmet_index_family(m->idx, row->family);
		char v[64], r[64], r0[64], mean[64], q[TOP_NQ][64];

		top_row_title(m, row, title, sizeof title);
		if (row->integral)
			snprintf(v, sizeof v, "%llu",
				 (unsigned long long)row->ivalue);
		else
			exact(row->value, v);
		fixed(row->rate, r, sizeof r);
		fixed(row->rate_start, r0, sizeof r0);
		approx(row->mean, mean, sizeof mean);
		for (int k = 0; k < TOP_NQ; k++)
			approx(row->q[k], q[k], sizeof q[k]);
		fprintf(out, "%-*s  %-9s  %5u  %14s  %12s  %12s  %10s  %10s  "
			     "%10s  %10s\n",
			width, title, top_type_name(f->type), row->nseries, v,
			r, r0, mean, q[0], q[1], q[2]);
	}
	return ferror(out) ? -EIO : 0;
}

static void
json_number(struct shmet_buf *b, double x)
{
	char num[64];

	if (isnan(x) || isinf(x)) {
		shmet_buf_printf(b, "null");
		return;
	}
	shmet_format_double(num, x);
	shmet_buf_printf(b, "%s", num);
}

/* A sample's value: non-finite ones as the exposition spells them. */
static void
json_value(struct shmet_buf *b, double x)
{
	char num[64];

	if (isnan(x) || isinf(x)) {
		shmet_format_double(num, x);
		shmet_buf_printf(b, "\"%s\"", num);
		return;
	}
	json_number(b, x);
}

static void
json_string(struct shmet_buf *b, const char *p, size_t len)
{
	char stack[1100], *s = len < sizeof stack ? stack : malloc(len + 1);

	if (!s) {
		b->failed = 1;
		return;
	}
	memcpy(s, p, len);
	s[len] = '\0';
	shmet_buf_printf(b, "\"");
	shmet_buf_put_json_escaped(b, s);
	shmet_buf_printf(b, "\"");
	if (s != stack)
		free(s);
}

static void
json_labels(struct shmet_buf *b, const struct top_model *m,
	    const struct top_row *row)
{
	const struct shmet_index_family *f =
		shmet_index_family(m->idx, row->family);
	const struct shmet_index_series *se;
	const char *sep = "";

	shmet_buf_printf(b, "{");
	if (row->series != TOP_FAMILY_ROW) {
		se = shmet_index_series(m->idx, row->series);
		for (uint32_t i = 0; i < f->label_count; i++) {
			shmet_buf_printf(b, "%s", sep);
			json_string(b, f->label_names[i].ptr,
				    f->label_names[i].len);
			shmet_buf_printf(b, ":");
			json_string(b, se->label_values[i].ptr,
				    se->label_values[i].len);
			sep = ",";
		}
		if (row->pid >= 0)
			shmet_buf_printf(b, "%s\"pid\":\"%lld\"", sep,
					 (long long)row->pid);
	}
	shmet_buf_printf(b, "}");
}

int
top_print_json(const struct top_model *m, FILE *out)
{
	const struct shmet_reader_info *in = &m->info;
	struct shmet_buf b = { 0 }, safe = { 0 };
	int rc = 0;

	shmet_buf_printf(&b, "{\"segment\":");
	json_string(&b, m->segment_name, strlen(m->segment_name));
	shmet_buf_printf(&b, ",\"interval_seconds\":");
	json_number(&b, top_model_interval(m));
	shmet_buf_printf(&b, ",\"elapsed_seconds\":");
	json_number(&b, top_model_elapsed(m));
	shmet_buf_printf(&b,
		",\"fill\":{\"families\":[%u,%u],\"series\":[%u,%u],"
		"\"families_in_use\":[%u,%u],\"series_in_use\":[%u,%u],"
		"\"cells\":[%u,%u],\"string_bytes\":[%u,%u]},"
		"\"writers\":{\"live\":%u,\"dead\":%u,\"unused\":%u},"
		"\"failures\":{",
		in->families_used, in->max_families, in->series_used,
		in->max_series, in->families_in_use, in->max_families,
		in->series_in_use, in->max_series, in->cells_used,
		in->cells_per_block,
		in->strings_used, in->string_bytes, in->writers_live,
		in->writers_dead, in->writers_unused);
	for (uint32_t i = 0; i < SHMET_FAIL_COUNT; i++)
		shmet_buf_printf(&b, "%s\"%s\":%llu", i ? "," : "",
				 shmet_failure_name(i),
				 (unsigned long long)in->failures[i]);
	shmet_buf_printf(&b, "},\"degraded\":%s,\"sort\":\"%s\","
			     "\"fold\":%s,\"filter\":",
			 shmet_health_degraded(in) ? "true" : "false",
			 top_sort_name(m->sort), m->fold ? "true" : "false");
	if (m->have_re)
		json_string(&b, m->filter, strlen(m->filter));
	else
		shmet_buf_printf(&b, "null");
	shmet_buf_printf(&b, ",\"rows\":[");
	for (size_t i = 0; i < m->nrows; i++) {
		const struct top_row *row = &m->rows[m->order[i]];
		const struct shmet_index_family *f =
			shmet_index_family(m->idx, row->family);
		const char *name = m->names[row->family];

		shmet_buf_printf(&b, "%s\n{\"name\":", i ? "," : "");
		json_string(&b, name, strlen(name));
		shmet_buf_printf(&b, ",\"type\":\"%s\",\"labels\":",
				 top_type_name(f->type));
		json_labels(&b, m, row);
		shmet_buf_printf(&b, ",\"series\":%u,\"value\":",
				 row->nseries);
		if (row->integral)
			shmet_buf_printf(&b, "%llu",
					 (unsigned long long)row->ivalue);
		else
			json_value(&b, row->value);
		if (f->type != SHMET_TYPE_GAUGE) {
			shmet_buf_printf(&b, ",\"rate\":");
			json_number(&b, row->rate);
			shmet_buf_printf(&b, ",\"rate_since_start\":");
			json_number(&b, row->rate_start);
		}
		if (f->type == SHMET_TYPE_HISTOGRAM) {
			shmet_buf_printf(&b, ",\"sum\":");
			json_number(&b, row->sum);
			shmet_buf_printf(&b, ",\"mean\":");
			json_number(&b, row->mean);
			shmet_buf_printf(&b, ",\"p50\":");
			json_number(&b, row->q[0]);
			shmet_buf_printf(&b, ",\"p95\":");
			json_number(&b, row->q[1]);
			shmet_buf_printf(&b, ",\"p99\":");
			json_number(&b, row->q[2]);
		}
		shmet_buf_printf(&b, "}");
	}
	shmet_buf_printf(&b, "]}\n");
	/* JSON escapes C0 but not DEL or C1: those as \u00XX (escape.h),
	 * the same strings to a parser, inert on a terminal */
	tool_escape(&safe, b.data ? b.data : "", b.len,
		    TOOL_ESCAPE_JSON | TOOL_ESCAPE_LINES);
	if (b.failed || safe.failed)
		rc = -ENOMEM;
	else if (fwrite(safe.data, 1, safe.len, out) != safe.len ||
		 fflush(out))
		rc = -EIO;
	shmet_buf_free(&b);
	shmet_buf_free(&safe);
	return rc;
}
