/*
 * The values object's memory (values-mem.c), shared with the scrape that
 * fills it (values.c).  Internal to lib/.
 */
#ifndef SHMETRICS_VALUES_PRIVATE_H
#define SHMETRICS_VALUES_PRIVATE_H

#include "reader-private.h"

/* The prefix every global of the library has (tests/check-symbols.sh). */
#define grow shmet_priv_grow
#define reserve_values shmet_priv_reserve_values
#define cells_free shmet_priv_cells_free

/* *p an array of at least want elems (realloc'd); 0 or -ENOMEM. */
int grow(void **p, size_t *cap, size_t want, size_t elem);
/* v's arrays sized for idx and zeroed for a scrape; 0 or -ENOMEM. */
int reserve_values(struct shmet_values *v, const struct shmet_index *idx);
void cells_free(void *p, size_t cap_bytes);
/* values-exemplar.c: the scrape's exemplars into v, after its cells. */
int shmet_priv_read_exemplars(const struct shmet_reader *r,
			      const struct shmet_index *idx,
			      struct shmet_values *v);

#endif /* SHMETRICS_VALUES_PRIVATE_H */
