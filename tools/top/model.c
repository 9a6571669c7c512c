/*
 * shmetrics-top: following the segment (lib/follow.c), sampling it, the
 * filter and the titles of rows.  The rows themselves (rates, quantiles,
 * folding, order) are rows.c's.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmetrics/rules.h>
#include <shmetrics/name.h>

#include "escape.h"
#include "model.h"

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
top_model_init(struct top_model *m, const char *segment)
{
	memset(m, 0, sizeof *m);
	m->segment = segment;
	snprintf(m->segment_name, sizeof m->segment_name, "%s",
		 shmet_name_resolve(segment));
	m->sort = TOP_SORT_NAME;
}

static void
free_names(struct top_model *m)
{
	for (uint32_t i = 0; m->names && i < m->nnames; i++)
		free(m->names[i]);
	free(m->names);
	m->names = NULL;
	m->nnames = 0;
	free(m->match);
	m->match = NULL;
}

/* Forget what was sampled: rates start again from the next sample. */
static void
forget(struct top_model *m)
{
	free_names(m);
	m->idx = NULL;
	m->r = NULL;
	shmet_values_free(m->cur);
	shmet_values_free(m->prev);
	m->cur = NULL;
	m->prev = NULL;
	m->have_prev = 0;
	m->samples = 0;
	m->nrows = 0;
	m->start.ncells = 0;
	memset(&m->info, 0, sizeof m->info);
}

/* Forget the segment: the next sample opens it again, from scratch. */
static void
disconnect(struct top_model *m)
{
	forget(m);
	if (m->follow)
		shmet_follow_reset(m->follow);
}

void
top_model_fini(struct top_model *m)
{
	disconnect(m);
	shmet_follow_free(m->follow);
	free(m->start.u);
	free(m->start.d);
	free(m->rows);
	free(m->order);
	free(m->hist_scratch);
	if (m->have_re)
		regfree(&m->re);
	memset(m, 0, sizeof *m);
}

static int
match_series(struct top_model *m, uint32_t s)
{
	const struct shmet_index_series *se = shmet_index_series(m->idx, s);
	const char *name = m->names[se->family];
	size_t nlen = strlen(name), len = nlen + se->label_text.len + 3;
	char stack[512], *text = len <= sizeof stack ? stack : malloc(len);
	int ok;

	if (!text)
		return 1;
	memcpy(text, name, nlen);
	if (se->label_text.len) {
		text[nlen] = '{';
		memcpy(text + nlen + 1, se->label_text.ptr, se->label_text.len);
		text[nlen + 1 + se->label_text.len] = '}';
		text[nlen + 2 + se->label_text.len] = '\0';
	} else {
		text[nlen] = '\0';
	}
	ok = regexec(&m->re, text, 0, NULL, 0) == 0;
	if (text != stack)
		free(text);
	return ok;
}

/* The filter's verdict per series: once per index or filter change. */
static void
compute_matches(struct top_model *m)
{
	uint32_t n = shmet_index_series_count(m->idx);

	for (uint32_t s = 0; s < n; s++)
		m->match[s] = !m->have_re || match_series(m, s);
}

/* Names and filter verdicts for the follower's new index. */
static int
index_changed(struct top_model *m)
{
	const struct shmet_index *idx =
		shmet_view_index(shmet_follow_view(m->follow));
	uint32_t nf;

	free_names(m);
	m->idx = idx;
	m->r = shmet_view_reader(shmet_follow_view(m->follow));
	nf = shmet_index_family_count(idx);
	m->names = calloc(nf ? nf : 1, sizeof *m->names);
	m->match = malloc(shmet_index_series_count(idx) + 1u);
	if (!m->names || !m->match)
		goto nomem;
	m->nnames = nf;
	for (uint32_t i = 0; i < nf; i++) {
		const struct shmet_index_family *f = shmet_index_family(idx, i);
		/* the sample name, as pages show it (the rule book's) */
		const char *suffix = shmet_seg_sample_suffix(
			f->type, f->name.ptr, f->name.len);

		m->names[i] = malloc(f->name.len + strlen(suffix) + 1);
		if (!m->names[i])
			goto nomem;
		memcpy(m->names[i], f->name.ptr, f->name.len);
		strcpy(m->names[i] + f->name.len, suffix);
	}
	compute_matches(m);
	return 0;
nomem:
	snprintf(m->status, sizeof m->status, "out of memory");
	disconnect(m);
	return -ENOMEM;
}

/*
 * Follow the segment (lib/follow.c): opened, replaced, destroyed, resized
 * or with new records.  A reopened segment starts the rates again.
 */
static int
follow(struct top_model *m)
{
	char err[SHMET_READER_ERRLEN];
	int rc;

	if (!m->follow) {
		rc = shmet_follow_new(m->segment_name, SHMET_FOLLOW_ANY_OWNER,
				      &m->follow);
		if (rc < 0) {
			snprintf(m->status, sizeof m->status, "segment %s: %s",
				 m->segment_name, rc == -EINVAL
				 ? "not a segment name" : strerror(-rc));
			return rc;
		}
	}
	rc = shmet_follow_refresh(m->follow, SHMET_FOLLOW_CHECK_NAME, err,
				  sizeof err);
	if (rc < 0) {
		snprintf(m->status, sizeof m->status, "%s", err);
		disconnect(m);
		return rc;
	}
	if (rc == SHMET_FOLLOW_REOPENED)
		forget(m);
	if (rc != SHMET_FOLLOW_SAME)
		return index_changed(m);
	return 0;
}

static int
snapshot(struct top_snap *s, const struct shmet_values *v)
{
	const uint64_t *vu;
	const double *vd;
	size_t ncells = shmet_values_cells(v, &vu, &vd);

	if (ncells > s->cap) {
		uint64_t *u = realloc(s->u, ncells * sizeof *u);
		double *d;

		if (!u)
			return -ENOMEM;
		s->u = u;
		d = realloc(s->d, ncells * sizeof *d);
		if (!d)
			return -ENOMEM;
		s->d = d;
		s->cap = ncells;
	}
	memcpy(s->u, vu, ncells * sizeof *s->u);
	memcpy(s->d, vd, ncells * sizeof *s->d);
	s->ncells = ncells;
	return 0;
}

int
top_model_sample(struct top_model *m)
{
	struct shmet_values *tmp;
	int rc;

	rc = follow(m);
	if (rc < 0)
		return rc;
	if (!m->cur)
		m->cur = shmet_values_new();
	if (!m->prev)
		m->prev = shmet_values_new();
	if (!m->cur || !m->prev) {
		snprintf(m->status, sizeof m->status, "out of memory");
		disconnect(m);
		return -ENOMEM;
	}
	tmp = m->prev;
	m->prev = m->cur;
	m->cur = tmp;
	rc = shmet_values_collect(m->r, m->idx, m->cur);
	if (rc < 0) {
		/* -ESTALE: cut short under the read; the next sample
		 * reopens it (and says what is wrong with it, if anything) */
		snprintf(m->status, sizeof m->status, "segment %s: %s",
			 m->segment_name, rc == -ESTALE
			 ? "the segment shrank while it was read"
			 : strerror(-rc));
		disconnect(m);
		return rc;
	}
	m->t_prev = m->t_cur;
	m->t_cur = now_ns();
	m->have_prev = m->samples > 0;
	if (m->samples == 0) {
		if (snapshot(&m->start, m->cur) < 0) {
			snprintf(m->status, sizeof m->status, "out of memory");
			disconnect(m);
			return -ENOMEM;
		}
		m->t_start = m->t_cur;
	}
	m->samples++;
	shmet_reader_info(m->r, &m->info);
	m->status[0] = '\0';
	return top_model_arrange(m);
}

int
top_model_set_filter(struct top_model *m, const char *re, char *err,
		     size_t errlen)
{
	regex_t nre;
	int rc;

	if (!re || !*re) {
		if (m->have_re)
			regfree(&m->re);
		m->have_re = 0;
		m->filter[0] = '\0';
	} else {
		if (strlen(re) >= sizeof m->filter) {
			snprintf(err, errlen, "regular expression too long");
			return -EINVAL;
		}
		rc = regcomp(&nre, re, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			regerror(rc, &nre, err, errlen);
			return -EINVAL;
		}
		if (m->have_re)
			regfree(&m->re);
		m->re = nre;
		m->have_re = 1;
		snprintf(m->filter, sizeof m->filter, "%s", re);
	}
	if (m->idx)
		compute_matches(m);
	return top_model_arrange(m);
}

void
top_row_title(const struct top_model *m, const struct top_row *row,
	      char *out, size_t len)
{
	const struct shmet_index_series *se;
	const char *name = m->names[row->family], *labels;
	struct shmet_buf esc = { 0 };

	if (row->series == TOP_FAMILY_ROW) {
		snprintf(out, len, "%s", name);
		return;
	}
	se = shmet_index_series(m->idx, row->series);
	/* Label values are the writers' text, often request data: what a
	 * terminal would act on is shown escaped (escape.h), here once for
	 * the plain output and the ncurses view.  Names are valid already. */
	tool_escape(&esc, se->label_text.ptr, se->label_text.len, 0);
	labels = esc.failed ? "..." : esc.data ? esc.data : "";
	if (row->pid >= 0)
		snprintf(out, len, "%s{%s%spid=\"%lld\"}", name, labels,
			 se->label_text.len ? "," : "", (long long)row->pid);
	else if (se->label_text.len)
		snprintf(out, len, "%s{%s}", name, labels);
	else
		snprintf(out, len, "%s", name);
	shmet_buf_free(&esc);
}

const char *
top_type_name(uint32_t type)
{
	return shmet_seg_type_name(type);
}

const char *
top_sort_name(enum top_sort s)
{
	return s == TOP_SORT_RATE ? "rate" : s == TOP_SORT_VALUE ? "value" :
								   "name";
}

uint64_t
top_failures(const struct shmet_reader_info *in)
{
	uint64_t n = 0;

	for (int i = 0; i < 16; i++)
		n += in->failures[i];
	return n;
}
