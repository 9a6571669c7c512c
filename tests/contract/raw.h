/*
 * What the writers keep in a segment, read from the raw file rather than
 * through a reader: the contract tests' view of counts a page never shows
 * (a family's series count and its creation journal, failure counters).
 */
#ifndef SHMETRICS_CONTRACT_RAW_H
#define SHMETRICS_CONTRACT_RAW_H

#include <stdint.h>

struct raw_family {
	uint32_t series_count;          /* as the gate keeps it */
	int pending;                    /* its journal names a record */
	int removing;                   /* ... that a removal takes away */
	uint32_t gate_count;            /* the journal's count before */
};

/*
 * The published record of family `family` in segment `segname` (records of
 * the name that were never published count 0; the largest count wins).
 * All zero if there is none.  Exits the test with status 1 if the segment
 * cannot be read.
 */
struct raw_family raw_family(const char *segname, const char *family);

/* Series records of the segment in state `state` (SHMET_SERIES_*; for
 * SHMET_SERIES_CLAIMED, a claim of any family). */
uint32_t raw_series_in(const char *segname, uint32_t state);

/* The family table as the writers keep it (layout 5, writer/reclaim.c). */
struct raw_families {
	uint32_t used;                  /* families_used: records handed out */
	uint32_t strings_used;          /* bytes of the string pool */
	uint32_t indexed;               /* records in the family index */
	uint32_t tombs;                 /* tombstones in the family index */
	uint32_t freed;                 /* records FREE */
	uint32_t reclaiming, claimed;   /* records in a reclaim's journal */
	uint32_t torn;                  /* not FREE with an odd incarnation */
	uint32_t reclaims;              /* sum of incarnations / 2 */
	uint32_t named;                 /* records in the index named `name` */
	uint32_t family_strings;        /* string bytes the records hold */
};
struct raw_families raw_families(const char *segname, const char *name);

/* The segment's failure counter of SHMET_FAIL_* reason. */
uint64_t raw_failures(const char *segname, uint32_t reason);

/* A child's exit code, or 128 + its signal; -1 if it cannot be waited. */
int wait_exit(int pid);

#endif
