#ifndef THREE_UNITS_H
#define THREE_UNITS_H

struct shmet_segment;

int tu_open(struct shmet_segment *seg, const char *name);
void tu_close(struct shmet_segment *seg);

#endif
