/*
 * A chunked arena (arena.c): allocations never move and are freed all at
 * once.  An index keeps everything it copied out of a segment in one, so
 * that building and freeing an index is a handful of mallocs.
 */
#ifndef SHMETRICS_ARENA_H
#define SHMETRICS_ARENA_H

#include <stddef.h>

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	max_align_t data[];
};

struct arena {
	struct arena_chunk *head;
};

void *shmet_priv_arena_alloc(struct arena *a, size_t size);
void shmet_priv_arena_free(struct arena *a);

#endif /* SHMETRICS_ARENA_H */
