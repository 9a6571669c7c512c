/* Translation unit 1 of 3: attaches.  See three-units.c. */
#include "config.h"

#include <shmetrics.h>

#include "three-units.h"

int
tu_open(struct shmet_segment *seg, const char *name)
{
	struct shmet_options o = { 0 };

	o.name = name;
	o.max_series = 64;
	o.max_writers = 4;
	o.cells_per_block = 1024;
	return shmet_open(seg, &o);
}
