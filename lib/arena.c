/*
 * A chunked arena; see arena.h.
 */
#include "config.h"

#include <stdlib.h>

#include "arena.h"

#define MAX(a, b) ((a) > (b) ? (a) : (b))

void *
shmet_priv_arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c = a->head;
	size_t need = (size + sizeof(max_align_t) - 1) &
		      ~(sizeof(max_align_t) - 1);

	if (!c || c->size - c->used < need) {
		size_t chunk = MAX(need, (size_t)1 << 20);

		c = malloc(sizeof *c + chunk);
		if (!c)
			return NULL;
		c->next = a->head;
		c->used = 0;
		c->size = chunk;
		a->head = c;
	}
	c->used += need;
	return (char *)c->data + c->used - need;
}

void
shmet_priv_arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_chunk *next = a->head->next;

		free(a->head);
		a->head = next;
	}
}
