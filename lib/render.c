/*
 * Renderers: Prometheus text 0.0.4 and OpenMetrics 1.0.0 (the
 * specification's JSON and health: render-json.c).  Each walks the index (families sorted by name, series
 * by label values) once and writes into a caller-owned buffer; nothing is
 * allocated per series.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "reader-private.h"
#include "render-private.h"

void
format_bounds(const double *bounds, uint32_t count, struct le_texts *le)
{
	for (uint32_t i = 0; i < count; i++)
		le->len[i] = shmet_priv_fmt_double(le->text[i], bounds[i],
						   DBL_FLOAT);
	le->len[count] = (size_t)sprintf(le->text[count], "+Inf");
}

void
format_les(const struct shmet_index_family *f, struct le_texts *le)
{
	format_bounds(f->bounds, f->bound_count, le);
}

/* ------------------------------------------------------------------ */
/* Sample lines shared by text and OpenMetrics                        */

struct sample_line {
	struct shmet_buf *b;
	const struct shmet_index_family *f;     /* NULL for a described one */
	struct shmet_str labels;        /* name="value",... escaped */
	int om;                         /* OpenMetrics: its counter rules */
	/* OpenMetrics: where the last exemplar lookup ended (the walk goes
	 * in series order, as the exemplars are kept), or NULL */
	size_t *ex_at;
};

/* name + suffix + {labels[, extra_name="extra"]} + space */
static void
put_sample_head(const struct sample_line *l, struct shmet_str name,
		const char *suffix, const char *extra_name, const char *extra,
		size_t extra_len)
{
	struct shmet_buf *b = l->b;
	struct shmet_str lt = l->labels;

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

/*
 * OpenMetrics only: " # {name="value",...} value timestamp", the latest
 * exemplar of series si's bucket, if the scrape read one (values-
 * exemplar.c checked its labels).  Text 0.0.4 has no exemplars.
 */
static void
put_exemplar(const struct sample_line *l, const struct shmet_values *v,
	     const struct shmet_index *idx, uint32_t si, uint32_t bucket)
{
	struct shmet_exemplar e;
	const unsigned char *p, *end;
	char ts[48];
	int n;

	if (!l->om ||
	    !(l->ex_at ? shmet_priv_values_exemplar_from(v, si, bucket,
							  l->ex_at, &e)
		       : shmet_values_exemplar(v, idx, si, bucket, &e)))
		return;
	p = e.labels;
	end = e.labels + e.labels_len;
	buf_put(l->b, " # {", 4);
	for (uint32_t i = 0; i < e.label_count; i++) {
		const unsigned char *name, *value;
		uint32_t nl, vl;

		if (!shmet_seg_blob_next(&p, end, &name, &nl) ||
		    !shmet_seg_blob_next(&p, end, &value, &vl))
			break;  /* never: checked when read */
		if (i)
			buf_putc(l->b, ',');
		buf_put(l->b, (const char *)name, nl);
		buf_put(l->b, "=\"", 2);
		shmet_priv_buf_put_escaped(
			l->b, (struct shmet_str){ (const char *)value, vl },
			ESC_LABEL);
		buf_putc(l->b, '"');
	}
	buf_put(l->b, "} ", 2);
	/* "1.0" as prometheus_client writes an exemplar's value */
	shmet_priv_buf_put_double(l->b, e.value, DBL_FLOAT);
	/* seconds with milliseconds: what Prometheus keeps of it */
	n = snprintf(ts, sizeof ts, " %llu.%03llu",
		     (unsigned long long)(e.ts_ns / 1000000000u),
		     (unsigned long long)(e.ts_ns % 1000000000u / 1000000u));
	buf_put(l->b, ts, (size_t)n);
}

static void
put_counter_value(const struct sample_line *l, const struct shmet_values *v,
		  const struct shmet_index *idx, uint32_t si)
{
	struct shmet_buf *b = l->b;
	double fl = shmet_values_counter_float(v, idx, si);

	if (fl == 0)
		shmet_priv_buf_put_u64(b, shmet_values_counter_int(v, idx, si));
	else
		shmet_priv_buf_put_double(b, shmet_values_counter(v, idx, si), DBL_PLAIN);
	put_exemplar(l, v, idx, si, 0);
	buf_putc(b, '\n');
}

static void
put_histogram(const struct sample_line *l, struct shmet_str name,
	      const struct shmet_values *v, const struct shmet_index *idx,
	      uint32_t si, const struct le_texts *le)
{
	double sum = shmet_values_hist_sum(v, idx, si);
	uint64_t cum = 0;
	const double *bounds;
	uint32_t count = shmet_index_series_bounds(idx, si, &bounds);
	struct le_texts merged;

	if (idx->series[si].merge != UINT32_MAX) {
		/* versions merged over the bounds they share (index.c) */
		format_bounds(bounds, count, &merged);
		le = &merged;
	}
	for (uint32_t k = 0; k <= count; k++) {
		uint64_t n = shmet_values_bucket(v, idx, si, k);

		/* Saturate: buckets never decrease, even summed from a
		 * segment whose counts would wrap. */
		cum = cum + n < cum ? UINT64_MAX : cum + n;
		put_sample_head(l, name, "_bucket", "le", le->text[k],
				le->len[k]);
		shmet_priv_buf_put_u64(l->b, cum);
		if (idx->series[si].merge == UINT32_MAX)
			put_exemplar(l, v, idx, si, k);
		buf_putc(l->b, '\n');
	}
	/*
	 * OpenMetrics allows no _sum with negative buckets, and no negative
	 * or NaN _sum (observations of -3, or of DBL_MAX and -DBL_MAX, are
	 * legal), and no _count without a _sum: such a histogram is served
	 * there as its buckets alone (its count is the +Inf bucket).  Text
	 * has no such rules and keeps both.
	 */
	if (l->om && !((l->f->bound_count == 0 || l->f->bounds[0] >= 0) &&
		       sum >= 0))
		return;
	put_sample_head(l, name, "_sum", NULL, NULL, 0);
	shmet_priv_buf_put_double(l->b, sum, DBL_PLAIN);
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
		/* Writers keep a counter finite and >= 0; a segment that
		 * holds a NaN or negative one is not served as one in
		 * OpenMetrics, which refuses the whole page for it. */
		if (l->om && !(shmet_values_counter(v, idx, si) >= 0))
			break;
		put_sample_head(l, name, counter_suffix, NULL, NULL, 0);
		put_counter_value(l, v, idx, si);
		break;
	case SHMET_TYPE_GAUGE:
		put_gauge(l, name, v, si, cur);
		break;
	default:
		put_histogram(l, name, v, idx, si, le);
		break;
	}
}

/* The suffix that counter samples of a family named name carry. */
static const char *
total_suffix(uint32_t type, struct shmet_str name)
{
	return shmet_seg_sample_suffix(type, name.ptr, name.len);
}

/*
 * Counter samples always end in _total (as Python's client and OpenMetrics
 * have it): the suffix a counter registered without one gets.
 */
const char *
counter_total(const struct shmet_index_family *f)
{
	return total_suffix(f->type, f->name);
}

static const char *
type_name(uint32_t type)
{
	return shmet_seg_type_name(type);
}

static struct shmet_str
cstr(const char *s)
{
	struct shmet_str out = { s ? s : "", s ? (uint32_t)strlen(s) : 0 };

	return out;
}

/* ------------------------------------------------------------------ */
/* Prometheus text 0.0.4                                              */

static void
put_text_header(struct shmet_buf *b, struct shmet_str name, const char *total,
		struct shmet_str help, uint32_t type)
{
	buf_puts(b, "# HELP ");
	buf_put_str(b, name);
	buf_puts(b, total);
	buf_putc(b, ' ');
	shmet_priv_buf_put_escaped(b, help, ESC_HELP);
	buf_puts(b, "\n# TYPE ");
	buf_put_str(b, name);
	buf_puts(b, total);
	buf_putc(b, ' ');
	buf_puts(b, type_name(type));
	buf_putc(b, '\n');
}

static void
text_segment(const struct shmet_index *idx, const struct shmet_values *v,
	     struct shmet_buf *b)
{
	struct sample_cursor cur = { v, 0 };
	struct le_texts le;

	for (uint32_t fi = 0; fi < idx->nfamilies; fi++) {
		const struct shmet_index_family *f = &idx->families[fi];
		struct sample_line l = { b, f, { NULL, 0 }, 0, NULL };
		const char *total = counter_total(f);

		if (!f->continues)      /* a name's versions: one header */
			put_text_header(b, f->name, total, f->help, f->type);
		if (f->type == SHMET_TYPE_HISTOGRAM)
			format_les(f, &le);
		for (uint32_t k = 0; k < f->series_count; k++) {
			l.labels = idx->series[f->first_series + k].label_text;
			put_series(&l, f->name, total, v, idx,
				   f->first_series + k, &le, &cur);
		}
	}
}

SHMET_EXPORT int
shmet_render_text(const struct shmet_index *idx, const struct shmet_values *v,
		  struct shmet_buf *b)
{
	text_segment(idx, v, b);
	return b->failed ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* OpenMetrics 1.0.0                                                  */

/* A counter family is named without _total; its samples with. */
static struct shmet_str
om_family_name(uint32_t type, struct shmet_str name)
{
	name.len = (uint32_t)shmet_seg_family_base_len(type, name.ptr, name.len);
	return name;
}

static void
put_om_header(struct shmet_buf *b, struct shmet_str family, uint32_t type,
	      struct shmet_str unit, struct shmet_str help)
{
	buf_puts(b, "# TYPE ");
	buf_put_str(b, family);
	buf_putc(b, ' ');
	buf_puts(b, type_name(type));
	buf_putc(b, '\n');
	if (unit.len) {
		buf_puts(b, "# UNIT ");
		buf_put_str(b, family);
		buf_putc(b, ' ');
		buf_put_str(b, unit);
		buf_putc(b, '\n');
	}
	buf_puts(b, "# HELP ");
	buf_put_str(b, family);
	buf_putc(b, ' ');
	shmet_priv_buf_put_escaped(b, help, ESC_LABEL);
	buf_putc(b, '\n');
}

/* Every family of the segment, without the final "# EOF". */
static void
om_segment(const struct shmet_index *idx, const struct shmet_values *v,
	   struct shmet_buf *b)
{
	struct sample_cursor cur = { v, 0 };
	struct le_texts le;
	size_t ex_at = 0;

	for (uint32_t fi = 0; fi < idx->nfamilies; fi++) {
		const struct shmet_index_family *f = &idx->families[fi];
		struct sample_line l = { b, f, { NULL, 0 }, 1, &ex_at };
		struct shmet_str family = om_family_name(f->type, f->name);

		if (!f->continues)      /* a name's versions: one header */
			put_om_header(b, family, f->type, f->unit, f->help);
		if (f->type == SHMET_TYPE_HISTOGRAM)
			format_les(f, &le);
		for (uint32_t k = 0; k < f->series_count; k++) {
			l.labels = idx->series[f->first_series + k].label_text;
			put_series(&l, family, "_total", v, idx,
				   f->first_series + k, &le, &cur);
		}
	}
}

SHMET_EXPORT int
shmet_render_openmetrics(const struct shmet_index *idx,
			 const struct shmet_values *v, struct shmet_buf *b)
{
	om_segment(idx, v, b);
	buf_puts(b, "# EOF\n");
	return b->failed ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Described families (not from a segment), in either text format     */

static int
descs_valid(const struct shmet_extra_family *fams, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (!fams[i].name || (fams[i].type != SHMET_TYPE_COUNTER &&
				      fams[i].type != SHMET_TYPE_GAUGE))
			return 0;
		for (uint32_t k = 0; k < fams[i].sample_count; k++)
			for (uint32_t j = 0; j < fams[i].samples[k].label_count;
			     j++)
				if (!fams[i].samples[k].labels[j].name ||
				    !fams[i].samples[k].labels[j].value)
					return 0;
	}
	return 1;
}

/*
 * Does the segment have a family whose samples would carry the same
 * names?  A counter x and a counter x_total both give x_total samples.
 */
static int
segment_has(const struct shmet_index *idx, const struct shmet_extra_family *fd)
{
	struct shmet_str name = cstr(fd->name);
	char alt[SHMET_MAX_NAME_LEN + 8];

	if (!idx || shmet_index_find(idx, fd->name))
		return idx != NULL;
	if (fd->type != SHMET_TYPE_COUNTER || name.len > SHMET_MAX_NAME_LEN)
		return 0;
	if (shmet_seg_has_total(name.ptr, name.len))
		snprintf(alt, sizeof alt, "%.*s", (int)name.len - 6, name.ptr);
	else
		snprintf(alt, sizeof alt, "%s_total", fd->name);
	return shmet_index_find(idx, alt) != NULL;
}

/* name="value",... of one sample into tmp, escaped as the index does. */
static struct shmet_str
sample_labels(struct shmet_buf *tmp, const struct shmet_extra_sample *sd)
{
	struct shmet_str out;

	shmet_buf_reset(tmp);
	for (uint32_t j = 0; j < sd->label_count; j++) {
		if (j)
			buf_putc(tmp, ',');
		buf_puts(tmp, sd->labels[j].name);
		buf_put(tmp, "=\"", 2);
		shmet_priv_buf_put_escaped(tmp, cstr(sd->labels[j].value), ESC_LABEL);
		buf_putc(tmp, '"');
	}
	out.ptr = tmp->data;
	out.len = tmp->failed ? 0 : (uint32_t)tmp->len;
	return out;
}

static void
put_descs(struct shmet_buf *b, const struct shmet_index *idx,
	  const struct shmet_extra_family *fams, size_t count, int om)
{
	struct shmet_buf tmp = { 0 };

	for (size_t i = 0; i < count; i++) {
		const struct shmet_extra_family *fd = &fams[i];
		struct sample_line l = { b, NULL, { NULL, 0 }, om, NULL };
		struct shmet_str name = cstr(fd->name);
		const char *suffix;

		if (segment_has(idx, fd))
			continue;       /* one name, one family */
		if (om) {
			name = om_family_name(fd->type, name);
			suffix = fd->type == SHMET_TYPE_COUNTER ? "_total" : "";
			put_om_header(b, name, fd->type, cstr(NULL),
				      cstr(fd->help));
		} else {
			suffix = total_suffix(fd->type, name);
			put_text_header(b, name, suffix, cstr(fd->help),
					fd->type);
		}
		for (uint32_t k = 0; k < fd->sample_count; k++) {
			l.labels = sample_labels(&tmp, &fd->samples[k]);
			put_sample_head(&l, name, suffix, NULL, NULL, 0);
			shmet_priv_buf_put_double(b, fd->samples[k].value, DBL_PLAIN);
			buf_putc(b, '\n');
		}
		if (tmp.failed)
			b->failed = 1;
	}
	shmet_buf_free(&tmp);
}

SHMET_EXPORT int
shmet_render_families_text(const struct shmet_index *idx,
			   const struct shmet_values *v,
			   const struct shmet_extra_family *fams, size_t count,
			   struct shmet_buf *b)
{
	if (!descs_valid(fams, count) || (idx && !v))
		return -EINVAL;
	if (idx)
		text_segment(idx, v, b);
	put_descs(b, idx, fams, count, 0);
	return b->failed ? -ENOMEM : 0;
}

SHMET_EXPORT int
shmet_render_families_openmetrics(const struct shmet_index *idx,
				  const struct shmet_values *v,
				  const struct shmet_extra_family *fams,
				  size_t count, struct shmet_buf *b)
{
	if (!descs_valid(fams, count) || (idx && !v))
		return -EINVAL;
	if (idx)
		om_segment(idx, v, b);
	put_descs(b, idx, fams, count, 1);
	buf_puts(b, "# EOF\n");
	return b->failed ? -ENOMEM : 0;
}
