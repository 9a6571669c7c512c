/*
 * shmetrics-exporter internals.
 */
#ifndef SHMETRICS_EXPORTER_H
#define SHMETRICS_EXPORTER_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "shmetrics-reader.h"

static inline uint64_t
exporter_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* Formats served from the segment. */
enum fmt { FMT_TEXT, FMT_OPENMETRICS, FMT_JSON, FMT_HEALTH, FMT_COUNT };

/*
 * One published view of the segment: the read-only mapping (shared by
 * successive views of the same segment object) and an index built at one
 * generation.  Published through an RCU pointer; readers hold
 * urcu_memb_read_lock() while they use it.
 */
struct mapping {
	struct shmet_reader *reader;
	dev_t dev;
	ino_t ino;
	int refs;                       /* views using it; refresher only */
};

struct view {
	struct mapping *map;
	struct shmet_index *index;
	uint64_t generation;
};

/* A finished render, shared by every scrape that asked for it. */
struct rendered {
	int refs;                       /* atomic */
	uint64_t done_ns;               /* CLOCK_MONOTONIC when finished */
	int status;                     /* HTTP status */
	struct shmet_buf body;
	struct shmet_buf gz;            /* gzip of body, if anyone asked */
	int gz_done;
};

/* source.c: the RCU-published view and the thread that refreshes it. */
int source_start(const char *segment);
void source_stop(void);
/* A read-side critical section (liburcu): the view stays valid in it. */
void source_read_lock(void);
void source_read_unlock(void);
/* Between source_read_lock/unlock: the current view or NULL. */
struct view *source_view(void);
/* Why there is no view ("waiting for segment /x: ..."). */
void source_status(char *out, size_t len);

/* scrape.c: single-flight rendering with own metrics. */
int scrape_init(void);
void scrape_fini(void);
/*
 * A render of fmt finished after arrival_ns, shared with concurrent
 * callers; waits at most until deadline_ns for one in progress.  NULL on
 * timeout or out of memory.  Release with rendered_put().
 */
struct rendered *scrape_get(enum fmt fmt, uint64_t arrival_ns,
			    uint64_t deadline_ns, int want_gzip);
void rendered_put(struct rendered *r);
/* Count a request that was answered (for the exporter's own metrics). */
void scrape_count_request(enum fmt fmt, int status);

/* Thread setup for any thread that reads the view (civetweb's too). */
void exporter_thread_init(void);
void exporter_thread_exit(void);

void exporter_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

extern const char *exporter_segment_name;

#endif
