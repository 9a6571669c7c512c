/*
 * What the renderers share (render.c), for the JSON and health renderers
 * (render-json.c).  Internal to lib/.
 */
#ifndef SHMETRICS_RENDER_PRIVATE_H
#define SHMETRICS_RENDER_PRIVATE_H

#include "reader-private.h"

/* The prefix every global of the library has (tests/check-symbols.sh). */
#define counter_total shmet_priv_counter_total
#define format_bounds shmet_priv_format_bounds
#define format_les shmet_priv_format_les

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

/* Cursor over the per-writer gauge samples (sorted by series, pid). */
struct sample_cursor {
	const struct shmet_values *v;
	size_t next;
};

static inline const struct shmet_gauge_sample *
next_sample(struct sample_cursor *c, uint32_t series)
{
	while (c->next < c->v->nsamples &&
	       c->v->samples[c->next].series < series)
		c->next++;
	if (c->next < c->v->nsamples && c->v->samples[c->next].series == series)
		return &c->v->samples[c->next++];
	return NULL;
}

static inline int
per_writer_mode(const struct shmet_index_family *f)
{
	return f->type == SHMET_TYPE_GAUGE &&
	       shmet_seg_gauge_mode_per_writer(f->gauge_mode);
}

const char *counter_total(const struct shmet_index_family *f);
void format_bounds(const double *bounds, uint32_t count, struct le_texts *le);
void format_les(const struct shmet_index_family *f, struct le_texts *le);

#endif /* SHMETRICS_RENDER_PRIVATE_H */
