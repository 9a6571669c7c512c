/* Translation unit 2 of 3: detaches.  See three-units.c. */
#include "config.h"

#include <shmetrics.h>

#include "three-units.h"

void
tu_close(struct shmet_segment *seg)
{
	shmet_close(seg);
}
