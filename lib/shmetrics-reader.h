/*
 * libshmetrics: the reader side of a shmetrics segment.
 *
 * A reader maps a segment read-only and trusts nothing in it: every offset,
 * index and length is bounds-checked, and a foreign, truncated, newer or
 * garbage segment yields a negative errno and a message, never a crash.
 *
 * Three layers, each cheaper to refresh than the one before:
 *   shmet_reader   the mapping and its validated header
 *   shmet_index    families and series, validated, sorted and copied out
 *                  of the segment; rebuild it when shmet_reader_generation()
 *                  moves
 *   shmet_values   one scrape: every cell summed over writer blocks, gauges
 *                  combined by their mode
 *
 * Thread safety: a reader, an index and a values object may each be used
 * from one thread at a time; an index is immutable after build and may be
 * read from any number of threads.
 */
#ifndef SHMETRICS_READER_H
#define SHMETRICS_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMET_READER_ERRLEN 256

struct shmet_reader;
struct shmet_index;

struct shmet_str {
	const char *ptr;                /* not NUL-terminated in general */
	uint32_t len;
};

struct shmet_reader_info {
	uint32_t layout_version;
	uint64_t total_size;
	uint64_t created_ns;
	uint64_t generation;
	/*
	 * _used: records handed out so far (a high-water mark: a removed,
	 * expired or reclaimed record is reused, not given back); _in_use:
	 * records linked in the index now, what a full segment means.
	 */
	uint32_t max_families, families_used, families_in_use;
	uint32_t max_series, series_used, series_in_use;
	uint32_t cells_per_block, cells_used;
	uint32_t string_bytes, strings_used;
	uint32_t max_writers;
	uint32_t max_series_per_family;
	uint32_t writers_live, writers_dead, writers_unused;
	uint64_t failures[16];          /* by SHMET_FAIL_* */
	uint32_t cpu_blocks;            /* per-CPU value blocks (layout 3) */
	uint32_t series_ttl_s;          /* idle expiry; 0: never (layout 4) */
	uint64_t series_expired;        /* series expired so far */
	uint64_t stale_writes;          /* writes of handles of removed series */
};

struct shmet_writer_info {
	uint32_t slot;
	uint32_t state;                 /* SHMET_WRITER_* */
	int live;                       /* its OFD lock is held */
	int64_t pid;
	uint64_t claimed_ns;
	uint64_t takeovers;
};

struct shmet_index_family {
	struct shmet_str name, help, unit;
	uint32_t type;                  /* SHMET_TYPE_* */
	uint32_t gauge_mode;            /* SHMET_GAUGE_* for gauges */
	uint32_t label_count;
	uint32_t bound_count;
	uint32_t cells_per_series;
	const struct shmet_str *label_names;
	const double *bounds;
	uint32_t first_series;          /* into the index's sorted series */
	uint32_t series_count;
	/*
	 * 1 if the previous family has the same name: another version of it
	 * (a shape an earlier release registered, or a record for another
	 * help).  A name's versions are adjacent, the newest first; pages
	 * show the first one's HELP, TYPE and UNIT once, then the series of
	 * every version.  All versions of a name have the first one's type.
	 */
	uint32_t continues;
	uint64_t registered_ns;         /* CLOCK_REALTIME, the newest first */
};

struct shmet_index_series {
	uint32_t family;                /* position in the sorted families */
	uint32_t first_cell;
	const struct shmet_str *label_values;
	/* name1="value1",name2="value2" escaped for the text formats, built
	 * once per index so that scrapes only copy it */
	struct shmet_str label_text;
	/*
	 * UINT32_MAX, or the histogram's merge (shmet_index_merge): the
	 * same label set counted by versions of the name with other buckets,
	 * shown as one series over the bounds they all have.
	 */
	uint32_t merge;
	/* the series record and its incarnation when the index was built:
	 * what an exemplar slot must name to be this series' (layout 6) */
	uint32_t record;
	uint32_t gen;
};

/*
 * One histogram series counted by several versions of its name (a release
 * changed the buckets): its buckets are the bounds every version has
 * (then +Inf), each exact: a version's count up to a bound it has is the
 * sum of its buckets up to it.  part_cells[p] is part p's first cell,
 * part_bounds[p] its bound count, part_to[p][k] the merged bucket its
 * bucket k counts in.  Part 0 is the series itself (the newest version).
 */
struct shmet_index_merge {
	uint32_t bound_count;
	const double *bounds;
	uint32_t nparts;
	const uint32_t *part_cells;
	const uint32_t *part_bounds;
	const uint8_t *const *part_to;
};

/* What an index made of the versions of names (docs/DESIGN.md, "Shapes
 * across releases"). */
struct shmet_index_versions {
	uint32_t type_conflicts;        /* records hidden: another type than
					   their name's newest */
	uint32_t shadowed_series;       /* gauge series hidden: a newer
					   version has their label set */
	uint32_t merged_series;         /* histogram series shown merged */
};
void shmet_index_versions(const struct shmet_index *idx,
			  struct shmet_index_versions *out);

/* A histogram series' bucket bounds: the merge's, or its family's. */
uint32_t shmet_index_series_bounds(const struct shmet_index *idx,
				   uint32_t series, const double **bounds);

/* Per-writer gauge sample for modes all and liveall. */
struct shmet_gauge_sample {
	uint32_t series;
	int64_t pid;
	double value;
};

/* One scrape's values (opaque): every cell summed over the writer blocks,
 * gauges combined by their mode.  Reuse one across scrapes: it keeps its
 * memory. */
struct shmet_values;

/* Open by name (NULL or empty: $SHMETRICS_SEGMENT or "/shmetrics"),
 * O_RDONLY; consumers that keep a segment open follow it instead
 * (shmet_follow_new, below). */
int shmet_reader_open(const char *name, struct shmet_reader **out, char *err,
		      size_t errlen);
/* Borrow size bytes at data as a segment (tests, fuzzing). */
int shmet_reader_open_memory(const void *data, size_t size,
			     struct shmet_reader **out, char *err,
			     size_t errlen);
void shmet_reader_close(struct shmet_reader *r);
/* fstat(2) of the file this reader mapped (not of whatever the name
 * points at now): its owner, identity and size.  -EBADF for memory. */
int shmet_reader_stat(const struct shmet_reader *r, struct stat *st);

/* Moves whenever a family or series is published. */
uint64_t shmet_reader_generation(const struct shmet_reader *r);
int shmet_reader_info(const struct shmet_reader *r,
		      struct shmet_reader_info *info);
/* Fill up to max writer slots; returns the count or a negative errno. */
int shmet_reader_writers(const struct shmet_reader *r,
			 struct shmet_writer_info *out, uint32_t max);

int shmet_index_build(const struct shmet_reader *r, struct shmet_index **out,
		      char *err, size_t errlen);
void shmet_index_free(struct shmet_index *idx);
uint64_t shmet_index_generation(const struct shmet_index *idx);
/*
 * 1 if idx shows everything r's segment has published: its generation is
 * current and the build before it saw the same generation (a writer
 * announces a record before it publishes it, so the first build at a new
 * generation may miss it).  0: build a new index.
 */
int shmet_index_current(const struct shmet_index *idx,
			const struct shmet_reader *r);
uint32_t shmet_index_family_count(const struct shmet_index *idx);
const struct shmet_index_family *
shmet_index_family(const struct shmet_index *idx, uint32_t i);
uint32_t shmet_index_series_count(const struct shmet_index *idx);
const struct shmet_index_series *
shmet_index_series(const struct shmet_index *idx, uint32_t i);
/* Find a family by name; NULL if absent. */
const struct shmet_index_family *
shmet_index_find(const struct shmet_index *idx, const char *name);

/* Collect one scrape's values for idx (v zeroed before the first call). */
/* A values object, or NULL if memory ran out. */
struct shmet_values *shmet_values_new(void);
/* Collect one scrape's values for idx into v (any previous scrape's are
 * replaced).  0, -ENOMEM, or -ESTALE if the file shrank under the read. */
int shmet_values_collect(const struct shmet_reader *r,
			 const struct shmet_index *idx, struct shmet_values *v);
/* Free v and everything it holds (NULL: nothing). */
void shmet_values_free(struct shmet_values *v);
/* Writer blocks the last collect read. */
uint32_t shmet_values_blocks_read(const struct shmet_values *v);
/* A gauge series' value combined by its mode into *out; 0 if no writer
 * holds it (the series is absent from a page), else 1. */
int shmet_values_gauge(const struct shmet_values *v, uint32_t series,
		       double *out);
/* In the mostrecent modes, the write stamp of the value
 * shmet_values_gauge gives (CLOCK_MONOTONIC ns + 1 of its write; 0 in
 * the other modes, whose fold needs none), for folding series by the rule
 * book (shmetrics/rules.h, shmet_seg_gauge_fold); 0 if no writer holds
 * it, else 1. */
int shmet_values_gauge_stamp(const struct shmet_values *v, uint32_t series,
			     uint64_t *stamp);
/*
 * The summed cells of the last collect, by cell (a series' cells start at
 * its first_cell): *u integer sums, *d float sums; returns the count.
 * Cell numbers are stable across index rebuilds, so a tool that computes
 * rates (shmetrics-top) can keep earlier sums by cell.
 */
size_t shmet_values_cells(const struct shmet_values *v, const uint64_t **u,
			  const double **d);
/* The per-writer samples of gauges in modes all and liveall, sorted by
 * series, then pid: *out and the count. */
size_t shmet_values_samples(const struct shmet_values *v,
			    const struct shmet_gauge_sample **out);

/* Value accessors by sorted series position. */
double shmet_values_counter(const struct shmet_values *v,
			    const struct shmet_index *idx, uint32_t series);
/* Integer part of a counter (exact). */
uint64_t shmet_values_counter_int(const struct shmet_values *v,
				  const struct shmet_index *idx,
				  uint32_t series);
double shmet_values_counter_float(const struct shmet_values *v,
				  const struct shmet_index *idx,
				  uint32_t series);
/* Non-cumulative count of bucket b (b = bound_count is +Inf). */
uint64_t shmet_values_bucket(const struct shmet_values *v,
			     const struct shmet_index *idx, uint32_t series,
			     uint32_t b);
uint64_t shmet_values_hist_count(const struct shmet_values *v,
				 const struct shmet_index *idx,
				 uint32_t series);
/*
 * The latest exemplar of a counter series (bucket 0) or of a histogram
 * series' bucket, as the scrape read it (layout 6): 1 and *out filled,
 * or 0 if it has none (never written, written for a series that the
 * record held before, being written at the scrape, or invalid).  labels
 * is a label blob (the segment's {uint16 little-endian length, bytes}
 * codec) of label_count name, value pairs, checked: names are label
 * names, values UTF-8, 128 characters in all.  Valid until the next
 * collect into v.
 */
struct shmet_exemplar {
	const unsigned char *labels;
	uint32_t labels_len;
	uint32_t label_count;
	double value;
	uint64_t ts_ns;                 /* CLOCK_REALTIME of the write */
};
int shmet_values_exemplar(const struct shmet_values *v,
			  const struct shmet_index *idx, uint32_t series,
			  uint32_t bucket, struct shmet_exemplar *out);

double shmet_values_hist_sum(const struct shmet_values *v,
			     const struct shmet_index *idx, uint32_t series);

/*
 * Rendering into a caller-owned growable buffer (reuse it across scrapes:
 * it keeps its capacity).  Each returns 0, or -1 if memory ran out.
 */
struct shmet_buf {
	char *data;                     /* NUL-terminated */
	size_t len, cap;
	int failed;
};
void shmet_buf_free(struct shmet_buf *b);
/* Empty the buffer, keeping its memory. */
void shmet_buf_reset(struct shmet_buf *b);
/* Make room for more bytes; 0 or -1 (and b->failed) on no memory. */
int shmet_buf_reserve(struct shmet_buf *b, size_t more);
int shmet_buf_printf(struct shmet_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* s as the inside of a JSON string (escaped, invalid UTF-8 replaced). */
void shmet_buf_put_json_escaped(struct shmet_buf *b, const char *s);
/* Shortest round-trip text of d into out (at least 48 bytes); "+Inf",
 * "-Inf", "NaN".  Returns the length. */
size_t shmet_format_double(char *out, double d);

/* Prometheus text 0.0.4. */
int shmet_render_text(const struct shmet_index *idx,
		      const struct shmet_values *v, struct shmet_buf *b);
/* OpenMetrics 1.0.0, ending in "# EOF". */
int shmet_render_openmetrics(const struct shmet_index *idx,
			     const struct shmet_values *v,
			     struct shmet_buf *b);
/*
 * Families that do not come from a segment (a program's own figures),
 * described in memory and rendered with the same naming, escaping, number
 * formatting and counter _total rules as the segment's.
 */
struct shmet_extra_label {
	const char *name;               /* a valid label name */
	const char *value;              /* any bytes; invalid UTF-8 replaced */
};

struct shmet_extra_sample {
	const struct shmet_extra_label *labels;
	uint32_t label_count;
	double value;
};

struct shmet_extra_family {
	const char *name;               /* a valid metric name */
	const char *help;               /* NULL: empty */
	uint32_t type;                  /* SHMET_TYPE_COUNTER or _GAUGE */
	const struct shmet_extra_sample *samples;
	uint32_t sample_count;
};

/*
 * The segment's families (idx and v, or both NULL for no segment), then
 * each of fams that idx does not already have (a counter x and x_total
 * count as the same family), appended to b.  The OpenMetrics form ends
 * the exposition with its one "# EOF", after fams.  Returns 0, -EINVAL if
 * a family is neither a counter nor a gauge or a label is NULL (nothing
 * written), or -ENOMEM if memory ran out.
 */
int shmet_render_families_text(const struct shmet_index *idx,
			       const struct shmet_values *v,
			       const struct shmet_extra_family *fams,
			       size_t count, struct shmet_buf *b);
int shmet_render_families_openmetrics(const struct shmet_index *idx,
				      const struct shmet_values *v,
				      const struct shmet_extra_family *fams,
				      size_t count, struct shmet_buf *b);
/* The specification's JSON; realtime_ns stamps it. */
int shmet_render_json(const struct shmet_index *idx,
		      const struct shmet_values *v, uint64_t realtime_ns,
		      struct shmet_buf *b);
/* Health JSON: the specification's fields plus segment usage. */
int shmet_render_health(const struct shmet_index *idx,
			const struct shmet_reader_info *info,
			struct shmet_buf *b);
/*
 * Following a segment by name (lib/follow.c): the one way consumers (the
 * exporter, Python, shmetrics-top, ctl) open a segment and keep it
 * current.  A follower holds a view (a read-only mapping and an index of
 * it); shmet_follow_refresh makes it current:
 *   - SHMET_FOLLOW_CHECK_NAME: when the object behind the name is another
 *     one (destroyed, replaced) or has another size (cut short, grown),
 *     the view is let go of and the name opened again;
 *   - the identity, size and owner checked are those of the file mapped
 *     (never a second look at the name, which can move in between);
 *   - the index is rebuilt when the segment's generation moved.
 * Returns SHMET_FOLLOW_SAME, _REBUILT (a new index of the same mapping)
 * or _REOPENED (another mapping: earlier values mean nothing now), or a
 * negative errno with a message in err: -ENOENT no such segment, -EAGAIN
 * its creator has not finished (wait quietly), -EPERM it belongs to
 * another uid than owner, anything else a segment that cannot be used.
 * After a failed rebuild an earlier view stays current.
 * A view is reference counted: shmet_view_ref keeps one alive after the
 * follower moved on (the exporter serves it to readers until they are
 * done).  A follower is used by one thread at a time; a view's counts
 * may be taken and dropped from any thread.
 */
struct shmet_follow;
struct shmet_view;

#define SHMET_FOLLOW_ANY_OWNER  (-1L)
#define SHMET_FOLLOW_CHECK_NAME 1u

enum { SHMET_FOLLOW_SAME, SHMET_FOLLOW_REBUILT, SHMET_FOLLOW_REOPENED };

/* name NULL or empty: $SHMETRICS_SEGMENT or "/shmetrics"; owner a uid or
 * SHMET_FOLLOW_ANY_OWNER.  0, -EINVAL (not a segment name) or -ENOMEM. */
int shmet_follow_new(const char *name, long owner, struct shmet_follow **out);
void shmet_follow_free(struct shmet_follow *f);
/* The name followed, resolved. */
const char *shmet_follow_name(const struct shmet_follow *f);
int shmet_follow_refresh(struct shmet_follow *f, unsigned flags, char *err,
			 size_t errlen);
/* Let go of the view (a collect said -ESTALE): the next refresh opens. */
void shmet_follow_reset(struct shmet_follow *f);
/* The current view (borrowed), or NULL. */
struct shmet_view *shmet_follow_view(const struct shmet_follow *f);
struct shmet_view *shmet_view_ref(struct shmet_view *v);
void shmet_view_unref(struct shmet_view *v);
const struct shmet_reader *shmet_view_reader(const struct shmet_view *v);
const struct shmet_index *shmet_view_index(const struct shmet_view *v);

/*
 * The render entry (lib/page.c): formats by name, their content types,
 * and one page of a view.
 */
enum shmet_format {
	SHMET_FORMAT_TEXT,              /* Prometheus text 0.0.4 */
	SHMET_FORMAT_OPENMETRICS,       /* OpenMetrics 1.0.0 */
	SHMET_FORMAT_JSON,              /* the specification's JSON */
	SHMET_FORMAT_HEALTH,            /* the health document */
	SHMET_FORMAT_COUNT
};
/* "text", "openmetrics", "json" or "health"; -EINVAL for anything else. */
int shmet_format_parse(const char *name);
const char *shmet_format_name(enum shmet_format f);
const char *shmet_format_content_type(enum shmet_format f);
/*
 * One page of f from view into b: the values are collected into vals
 * (reuse it), fams (text and OpenMetrics only) follow the segment's
 * families.  Without a view only text and OpenMetrics render (fams
 * alone); the others are -ENOENT: serve shmet_render_unhealthy.  0,
 * -ENOMEM, -ESTALE (the file shrank under the read: reset the follower)
 * or -EINVAL.
 */
int shmet_render_page(const struct shmet_view *view, enum shmet_format f,
		      const struct shmet_extra_family *fams, size_t nfams,
		      struct shmet_values *vals, struct shmet_buf *b);
/* The health document of no usable segment (serve it with 503). */
int shmet_render_unhealthy(const char *reason, struct shmet_buf *b);
/* Bytes of the segment holding data: strings, and the used cells of
 * every writer block ever claimed (plus the fallback block). */
uint64_t shmet_reader_bytes_used(const struct shmet_reader_info *info);
/* Any capacity above 90% or any registration failure. */
int shmet_health_degraded(const struct shmet_reader_info *info);
/* "invalid_name", ... for SHMET_FAIL_* reasons. */
const char *shmet_failure_name(uint32_t reason);

#ifdef __cplusplus
}
#endif

#endif /* SHMETRICS_READER_H */
