/*
 * lib/trust.c: the reader's trust boundary (see there).  Everything the
 * index build (index.c), the reader (reader.c) and the scrape (values.c)
 * believe of a segment passed one of these.  Internal to lib/.
 */
#ifndef SHMETRICS_TRUST_H
#define SHMETRICS_TRUST_H

#include "datamap.h"
#include "reader-private.h"

/*
 * Every global of the library starts with shmet_ (tests/check-symbols.sh:
 * linking libshmetrics.a must not clash with an application's names); the
 * functions keep the short names they had in index.c and reader.c.
 */
#define set_err shmet_priv_set_err
#define trust_header shmet_priv_trust_header
#define load_family shmet_priv_load_family
#define load_collector shmet_priv_load_collector
#define record_type shmet_priv_record_type
#define load_series shmet_priv_load_series
#define keep_disjoint_blobs shmet_priv_keep_disjoint_blobs
#define drop_colliding shmet_priv_drop_colliding
#define trust_fold_journal shmet_priv_trust_fold_journal

/* err (if any) formatted; returns rc. */
int set_err(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

int trust_header(struct shmet_seg_header *copy, const void *base,
		 size_t size, const char *what, char *err, size_t errlen);

/* Family record id, validated and copied; 0, or -1 if corrupt. */
int load_family(const struct shmet_reader *r, struct shmet_priv_datamap *m,
		struct arena *a, uint32_t id, struct shmet_index_family *out);
/* Collector record id: "@" + a name, and its member family names. */
int load_collector(const struct shmet_reader *r, struct shmet_priv_datamap *m,
		   struct arena *a, uint32_t id,
		   struct shmet_index_collector *out);
/* The record's type, read once (0 if its page is a hole). */
uint32_t record_type(const struct shmet_reader *r,
		     struct shmet_priv_datamap *m, uint32_t id);
int load_series(const struct shmet_reader *r, struct shmet_priv_datamap *m,
		const struct shmet_index *idx, const uint32_t *pos_of_id,
		uint8_t *seen, uint32_t v, struct shmet_seg_series *s,
		uint32_t *pos);

/* A series record's label blob, for keep_disjoint_blobs. */
struct blob_ref {
	uint32_t off, len;
	uint32_t series;                /* index into idx->series */
};
void keep_disjoint_blobs(const struct shmet_reader *r,
			 struct shmet_priv_datamap *m, struct shmet_index *idx,
			 struct blob_ref *refs, uint32_t n);

/* Families sorted by name, their segment id in first_series: those that
 * collide with an older one left out; 0 or -ENOMEM. */
int drop_colliding(struct shmet_index *idx, uint32_t *pos_of_id);

int trust_fold_journal(const struct shmet_reader *r, uint32_t ncells,
		       uint32_t *slot, uint32_t *cell);

#endif /* SHMETRICS_TRUST_H */
