/*
 * libshmetrics-reader internals shared by the lib/ sources; never
 * installed.  The one internal header tests may include, by name
 * (tests/test-reader.c checks the mapping's protection and the counts of
 * records left out); everything else they use is public.
 */
#ifndef SHMETRICS_READER_PRIVATE_H
#define SHMETRICS_READER_PRIVATE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <time.h>

#include <shmetrics/format.h>

#include "shmetrics-reader.h"
#include "arena.h"
#include "buf.h"

#define SHMET_EXPORT __attribute__((visibility("default")))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Byte order of two strings, then shorter first. */
static inline int
cmp_str(struct shmet_str a, struct shmet_str b)
{
	int c = memcmp(a.ptr, b.ptr, MIN(a.len, b.len));

	if (c)
		return c;
	return (a.len > b.len) - (a.len < b.len);
}

/* A broken internal invariant: never reached by bad segment contents. */
#define shmet_die(msg)                                                        \
	do {                                                                  \
		fprintf(stderr, "%s:%d: internal error: %s\n", __FILE__,      \
			__LINE__, (msg));                                     \
		abort();                                                      \
	} while (0)

/* CLOCK_MONOTONIC in ns (the writers' clock for gauge stamps). */
static inline uint64_t
reader_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

struct shmet_reader {
	int fd;                         /* O_RDONLY, -1 for memory */
	int claim_fd;                   /* the claim file if we may read it */
	int mapped;
	const unsigned char *base;      /* PROT_READ mapping or borrowed */
	size_t size;
	struct shmet_seg_header hdr;    /* validated copy of immutable fields */
	/* per writer slot: CLOCK_MONOTONIC ns of the last liveness check
	 * << 1 | live; shared by the threads that scrape with this reader */
	_Atomic uint64_t *live_cache;
	/*
	 * Per block: which pages hold data (values.c), as a bitmap of
	 * data_bytes bytes, and when it was last refreshed.  A page that
	 * holds data keeps it, so bits are only ever set (atomic OR); pages
	 * that gained data are seen at most DATA_CACHE_NS late (their
	 * counts are delayed, never lost: before, they read as zero).
	 */
	_Atomic uint64_t *data_checked;
	/*
	 * Per block: what its writers had published when data_checked was
	 * stamped (the reserved extent; for the retired block, the sum of
	 * takeovers, which fold into it; mixed with the index's generation).  Pages gain data only by a
	 * writer's fallocate, which it then publishes: a changed key means
	 * new pages, so they are looked for at once and a write is never
	 * read late (before, up to DATA_CACHE_NS).
	 */
	_Atomic uint64_t *data_key;
	_Atomic uint8_t *data_bits;
	size_t data_bytes;
	/*
	 * One bit per page of the exemplar region: lseek(SEEK_DATA) found it
	 * holding data (values-exemplar.c), so a scrape may read its slots.
	 * The map's bit alone is the writer's word, and a hostile one would
	 * make a scrape read (and so allocate) holes.  Pages are reserved,
	 * never punched (writer/exemplar.c), so bits are only ever set
	 * (relaxed atomic OR: a fact about the file, publishing nothing).
	 * NULL for a memory reader, which has no holes.
	 */
	_Atomic uint64_t *ex_data;
	/*
	 * The generation of the last index built from this reader.  An index
	 * built at a generation that the previous build did not see is
	 * unsettled: shmet_index_current() asks for one more build, because a
	 * writer announces a record (a bump) before its CAS and a build can
	 * fall between the two (writer/gate.c).
	 */
	_Atomic uint64_t built_gen;
	char name[256];
};

#define DATA_CACHE_NS 100000000u        /* 100 ms */

/*
 * guard.c: run reads of r's mapping so that a SIGBUS (the file shrank
 * under it) returns to the caller instead of killing the process:
 *
 *	struct shmet_priv_guard g;
 *
 *	if (sigsetjmp(g.jb, 0))
 *		return -ESTALE;         (guard already left)
 *	shmet_priv_guard_enter(&g, r);
 *	... reads ...
 *	shmet_priv_guard_leave(&g);
 *
 * Between enter and leave, touch no state that must survive a jump
 * (locals the jump path uses must be volatile or set before sigsetjmp).
 */
struct shmet_priv_guard {
	sigjmp_buf jb;
	const unsigned char *lo, *hi;
	struct shmet_priv_guard *prev;
};

void shmet_priv_guard_install(void);
void shmet_priv_guard_enter(struct shmet_priv_guard *g,
			    const struct shmet_reader *r);
void shmet_priv_guard_leave(struct shmet_priv_guard *g);
/* 0, or -ESTALE with a message if the file is now smaller than mapped. */
int shmet_priv_reader_check_size(const struct shmet_reader *r, char *err,
				 size_t errlen);

enum reader_cursor_kind {
	CURSOR_FAMILIES,
	CURSOR_SERIES,
	CURSOR_CELLS,
	CURSOR_STRINGS,
};


struct shmet_values {
	uint32_t ncells;
	uint64_t *u;                    /* integer cells summed over blocks */
	double *d;                      /* float cells summed over blocks */
	double *gauge;                  /* per series (NaN-free), by mode */
	uint64_t *gauge_stamp;          /* per series: the newest stamp folded */
	uint8_t *gauge_set;             /* per series: any writer set it */
	struct shmet_gauge_sample *samples;
	size_t nsamples, samples_cap;
	size_t cap_cells, cap_series;
	size_t cap_u_bytes, cap_d_bytes; /* mapped sizes of u and d */
	uint32_t blocks_read;
	/* exemplars (values-exemplar.c), in series then bucket order:
	 * ex_key[i] = series << 8 | bucket of ex[i], whose blob is copied
	 * into ex_bytes (few of them: looked up by bisection, never an
	 * array per cell, which a hostile cells_per_block makes huge) */
	struct shmet_exemplar *ex;
	uint64_t *ex_key;
	size_t nex, cap_ex;
	unsigned char *ex_bytes;
	size_t nex_bytes, cap_ex_bytes;
	/* the scrape's candidate keys (slots in set map pages that were
	 * written), sorted into ex_key's order; ex_tmp: the sort's */
	uint64_t *ex_cand, *ex_tmp;
	size_t cap_ex_cand, cap_ex_tmp;
	uint64_t *ex_ext;               /* the map's data words' ranges */
	size_t cap_ex_ext;
};

/* A declared collector: its name and its member family names. */
struct shmet_index_collector {
	struct shmet_str name;
	uint32_t family_count;
	const struct shmet_str *families;
};

struct shmet_index {
	uint64_t generation;
	int settled;                    /* the previous build saw generation */
	struct shmet_index_family *families;
	uint32_t nfamilies;
	struct shmet_index_series *series;
	uint32_t nseries;
	uint32_t ncells;                /* cells covered by the series */
	uint32_t *dcells;               /* the float-sum cells */
	uint32_t ndcells;
	uint32_t *gauge_series;         /* positions of gauge series */
	uint32_t ngauges;
	int live_modes;                 /* a gauge needs writer liveness */
	struct shmet_index_collector *collectors; /* sorted by name */
	uint32_t ncollectors;
	uint32_t skipped_families;      /* corrupt or colliding records */
	uint32_t skipped_series;
	/* versions of a name hidden for another type than the newest's */
	uint32_t type_conflicts;
	/* series hidden because a newer version has the same label set (a
	 * gauge whose mode changed); histograms merge instead */
	uint32_t shadowed_series;
	struct shmet_index_merge *merges;
	uint32_t nmerges;
	/*
	 * The series that can show exemplars (counters, histograms not
	 * merged), by first cell (values-exemplar.c walks the exemplar map's
	 * set bits and finds their series here).  ex_disjoint: their slot
	 * ranges [first, end) do not overlap, so the ends grow with the
	 * firsts; else (a hostile or torn segment) the scrape looks at every
	 * series, as before layout 6's page walk.
	 */
	struct shmet_index_ex_range *ex_ranges;
	uint32_t nex_ranges;
	int ex_disjoint;
	struct arena arena;
};

/* A series' exemplar slots: first .. end - 1 (exemplar.h's slot of each
 * bucket), and its position in the index. */
struct shmet_index_ex_range {
	uint32_t first, end, series;
};


/*
 * shmet_values_exemplar for a walk in series order: *at is where the
 * previous lookup ended (start at 0), so each lookup costs a step, not a
 * bisection per bucket of every series; a lookup behind it bisects.
 */
int shmet_priv_values_exemplar_from(const struct shmet_values *v,
				    uint32_t series, uint32_t bucket, size_t *at,
				    struct shmet_exemplar *out);

const struct shmet_seg_header *shmet_priv_reader_live_header(const struct shmet_reader *r);
uint32_t shmet_priv_reader_cursor(const struct shmet_reader *r, int which);
const struct shmet_seg_writer *shmet_priv_reader_writer(const struct shmet_reader *r,
					     uint32_t slot);
int shmet_priv_reader_writer_live(const struct shmet_reader *r, uint32_t slot,
		       uint32_t state);
/* The same, answered from a check at most LIVE_CACHE_NS old. */
#define LIVE_CACHE_NS 100000000u        /* 100 ms */
int shmet_priv_reader_writer_live_cached(const struct shmet_reader *r, uint32_t slot,
			      uint32_t state, uint64_t now_ns);

#endif /* SHMETRICS_READER_PRIVATE_H */
