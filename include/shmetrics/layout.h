/*
 * shmetrics segment layout: the contract between writer processes and
 * readers that may have been built at different times.
 *
 * Writers (writer/) and readers (lib/) share this
 * file and format.h, which holds every rule both sides apply to what is
 * here.  Every on-segment structure has fixed-width fields, an
 * explicit size and offset pinned by _Static_assert, no enums, no bool and no
 * pointers: all references are offsets from the segment start (regions) or
 * from the string pool start (strings).
 *
 * Segment map (all offsets are stored in the header, readers bounds-check
 * every one of them before use):
 *
 *   Offset              Length                          Region
 *   0                   SHMET_HEADER_SIZE (4096)        struct shmet_seg_header
 *   writers_off         max_writers * 64                struct shmet_seg_writer[]
 *   families_off        max_families * 128              struct shmet_seg_family[]
 *   family_index_off    family_index_slots * 4          uint32 family id + 1, 0 = empty,
 *                                                       SHMET_INDEX_TOMB = reclaimed
 *   registrants_off     max_writers * registrant words  one bitmap of max_families
 *                       * 8                             bits per writer slot: the
 *                                                       records its owner registered
 *   series_off          max_series * 64                 struct shmet_seg_series[]
 *   series_index_off    series_index_slots * 4          uint32 series id + 1, 0 = empty,
 *                                                       SHMET_INDEX_TOMB = removed
 *   strings_off         string_bytes                    append-only string pool
 *   exemplar_map_off    ceil(exemplar pages / 64) * 8   one bit per page of the
 *                                                       exemplar region: 1 once a
 *                                                       writer reserved it
 *   values_off          (max_writers + 2) * block_stride value blocks, page aligned:
 *                                                       one per writer slot, then
 *                                                       the shared fallback block
 *                                                       (max_writers), then the
 *                                                       retired gauges block
 *                                                       (max_writers + 1)
 *   cpu_off             cpu_blocks * block_stride       per-CPU value blocks (block
 *                       (= values_off + (max_writers    max_writers + 2 + cpu is
 *                       + 2) * block_stride)            CPU cpu's), counters and
 *                                                       histograms only
 *   exemplars_off       cells_per_block * 1024          struct shmet_seg_exemplar[],
 *                       (= cpu_off + cpu_blocks *       one slot per cell index
 *                       block_stride)                   (sparse, reserved per page)
 *
 * Cells: a value block is an array of 8-byte cells.  A series owns
 * cells_per_series consecutive cells starting at its first_cell, at the same
 * index in every block:
 *   counter    [0] uint64 integer increments, [1] double (bits) float increments
 *   gauge      [0] double (bits) value, [1] uint64 write stamp: 0 = never
 *              written by this block's writer, else 1 or (mostrecent modes)
 *              CLOCK_MONOTONIC ns + 1 of the last write
 *   histogram  [0..bound_count] uint64 per-bucket counts (not cumulative; the
 *              last is the +Inf bucket), [bound_count + 1] double (bits) sum
 * Gauge series take their cells from gauge chunks (layout 6): runs of up
 * to SHMET_GAUGE_CHUNK_CELLS cells carved from cells_used and handed out,
 * two cells at a time, through the header's gauge_chunk cursor, so that a
 * writer block (which holds only gauges, "Fallback cells" below) has its
 * values in a few dense runs, not one line in every page (format.h,
 * "Gauge chunks").  Where a series' cells are changes nothing a reader
 * computes; only how many lines and pages a scrape reads.
 *
 * Strings in the pool: a string reference is {offset, length} relative to
 * strings_off.  Label blobs (family label names, series label values) are a
 * sequence of {uint16 length, bytes} entries, label_count of them, unaligned.
 * Histogram bounds are label_count-independent double[bound_count], 8-aligned.
 *
 * Collector records: a family record of type SHMET_TYPE_COLLECTOR names a
 * group of families that an application declares together (the health
 * endpoint reports each group's state).  Its name is "@" + the collector's
 * name, so it never matches a metric name; its label_names blob lists the
 * member family names (label_count of them); it has no cells and no
 * series.
 *
 * Value blocks: the fallback block takes the counters and histograms of
 * processes that found every slot held by a live process, and the
 * fallback writes of processes with rseq ("Fallback cells"); it holds no
 * gauges (a gauge is one process's fact, and the fallback block mixes
 * processes).  The retired block holds, per gauge series of a mode that
 * keeps dead writers' values (sum, max, min, mostrecent), the dead
 * writers' values combined by the mode, folded in at each takeover.
 *
 * Per-CPU blocks: counters and histograms are counted in the block of
 * the CPU the writing thread runs on, inside a restartable sequence
 * (docs/DESIGN.md, "Per-CPU cells"); writers that cannot use rseq count
 * in their own block as before.  A CPU block holds no gauges: its gauge
 * cells are never written.  cpu_blocks is the creating host's possible
 * CPUs, at most SHMET_MAX_CPU_BLOCKS.  Every CPU block is reserved
 * (fallocated) to the same extent, cpu_reserved_bytes, which only grows
 * and is raised only after every CPU block was reserved that far.
 *
 * Fallback cells: where a counter's or histogram's atomic fallback (a
 * thread without rseq, a CPU beyond cpu_blocks, an aborted section)
 * writes.  A writer whose process has rseq when it claims its slot sends
 * its handles' fallback to the shared fallback block (atomics: exact
 * across processes) and sets the header's fallback_counts, so that its
 * own block holds only gauges and readers read only the gauge cells of
 * it: the scrape does not grow with processes.  A writer without rseq
 * (SHMETRICS_NO_RSEQ=1, valgrind, a kernel or policy that refuses it, no
 * mapping of the CPU blocks), and a fork child of a writer that counted
 * in its own block, count in their own block and set the slot's
 * counts_here, so readers sum that block whole.
 *
 * Exemplars (layout 6, writer/exemplar.c, docs/DESIGN.md "Exemplars"):
 * the latest exemplar of a series' bucket is kept in the exemplar slot of
 * the cell index first_cell + bucket (a counter: bucket 0; a histogram:
 * its bucket, bound_count being +Inf), so a reader finds it from the
 * series record alone.  A slot names the series record and incarnation
 * that wrote it (a record or its cells reused later never show another
 * series' exemplar) and is written under its sequence lock (seq odd while
 * a writer is in it).  The region is sparse: a writer reserves
 * (fallocates) a slot's page before its first write and then sets the
 * page's bit in the exemplar map; readers read a slot only if its page's
 * bit is set (and lseek(SEEK_DATA) agrees: a reader believes no bit
 * alone), so neither side ever faults on an unreserved page.
 *
 * Reserved extents: a writer reserves (fallocates) its block's pages before
 * it writes them and publishes how far in shmet_seg_writer.reserved_bytes;
 * readers read a block only that far (and never past the file's size).
 *
 * History:
 *   1  initial layout
 *   2  + shmet_seg_writer.reserved_bytes, + header fallback_reserved_bytes,
 *      + SHMET_TYPE_COLLECTOR records, + the retired gauges block;
 *      hash and rules moved to format.h (unchanged)
 *   3  + per-CPU value blocks after the retired block (header cpu_blocks,
 *      cpu_off, cpu_reserved_bytes, in former padding); per-thread blocks
 *      are gone (a writer slot is one process again);
 *      + shmet_seg_family.gate_series and gate_count (the series creation
 *      gate's journal); series_count counts published series only;
 *      + the header's fold journal (line 6)
 *   4  one name may have several family records, its shapes across
 *      releases ("versions": other label names, buckets, mode or type),
 *      + shmet_seg_family.registered_ns and base (a record for another
 *      help or unit that shares its base record's series);
 *      series records are 64 bytes: + state, gen, removed_ns, digest,
 *      changed_ns, blob_cap (removed series are tombstones, their records
 *      reused after SHMET_REUSE_NS); + shmet_seg_family.removals; header
 *      + series_ttl_s, line 7 (stale_writes, sweep_ns, expired); the gate's
 *      journal names removals and reuses too
 *      + shmet_seg_writer.counts_here, + header fallback_counts (both in
 *      former padding): the fallback of writers with rseq counts in the
 *      fallback block, and readers sum only the gauge cells of a writer
 *      block without counts_here (a layout 3 reader would miss counts)
 *   5  family records are reclaimed (writer/reclaim.c, docs/DESIGN.md
 *      "Reclaiming families"): + the registrants region after the family
 *      index (header registrants_off, in former padding2: per writer
 *      slot, a bitmap of the family records its owner registered);
 *      + shmet_seg_family.state (LIVE, RECLAIMING, FREE, CLAIMED),
 *      incarnation (odd while the record is free or being rebuilt),
 *      pinned (registered by a process without a slot: never
 *      reclaimed), strings_cap (bytes of the record's one string
 *      allocation, kept while it is free for a registration whose
 *      strings fit); the family index holds SHMET_INDEX_TOMB for a
 *      reclaimed record (a layout 4 reader would count it as corrupt);
 *      + shmet_seg_series.cells (in former padding), the cells a record
 *      owns, which a reuser reads instead of its family record's
 *      + header series_probe_max (line 7, in former padding): lookups
 *      probe the series index no further than the farthest insertion,
 *      which a layout 4 writer would not raise
 *   6  exemplars ("Exemplars" above): + the exemplar map after the
 *      string pool (so values_off moves) and the exemplar region after
 *      the CPU blocks (so total_size grows by cells_per_block * 1024,
 *      sparse), + header line 8 (exemplar_map_off, exemplars_off, in
 *      former reserved bytes), + struct shmet_seg_exemplar; a layout 5
 *      reader would not know the region, a layout 5 writer would leave
 *      the map unset (no exemplars, but a reader would refuse the
 *      geometry anyway); and gauge series take their cells from gauge
 *      chunks ("Cells" above): + header gauge_chunk (line 3, in former padding3), the chunk
 *      cursor; a layout 5 writer would scatter its gauges among the
 *      other cells again (readers read either, but a scrape of many
 *      processes' gauges reads many more lines and pages)
 */
#ifndef SHMETRICS_LAYOUT_H
#define SHMETRICS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
#include <atomic>
#define SHMET_ATOMIC(T) std::atomic<T>
#define SHMET_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#include <stdatomic.h>
#define SHMET_ATOMIC(T) _Atomic T
#define SHMET_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* "\x7fSHMETRC" read as a little-endian uint64 */
#define SHMET_MAGIC             UINT64_C(0x435254454d48537f)
#define SHMET_LAYOUT_VERSION    6u      /* see History above */
#define SHMET_HEADER_SIZE       4096u
#define SHMET_CACHELINE         64u
#define SHMET_EXTRA_BLOCKS      2u      /* fallback and retired blocks */
#define SHMET_PAGE              4096u
#define SHMET_MAX_CPU_BLOCKS    1024u   /* CPUs beyond count in writer blocks */

/* The default segment's name: shmetrics/name.h. */

#define SHMET_INIT_EMPTY        0u      /* creator has not finished */
#define SHMET_INIT_READY        1u      /* every region initialised */

/* Family types (uint32 on the segment). */
#define SHMET_TYPE_COUNTER      1u
#define SHMET_TYPE_GAUGE        2u
#define SHMET_TYPE_HISTOGRAM    3u
#define SHMET_TYPE_COLLECTOR    4u      /* a named group of families */
#define SHMET_COLLECTOR_PREFIX  '@'     /* first byte of a collector's name */

/* Gauge modes, as in Python's multiprocess client. */
#define SHMET_GAUGE_ALL                 1u
#define SHMET_GAUGE_LIVEALL             2u
#define SHMET_GAUGE_SUM                 3u
#define SHMET_GAUGE_LIVESUM             4u
#define SHMET_GAUGE_MAX                 5u
#define SHMET_GAUGE_MIN                 6u
#define SHMET_GAUGE_MOSTRECENT          7u
#define SHMET_GAUGE_LIVEMOSTRECENT      8u

/* Series record states. */
#define SHMET_SERIES_LIVE       0u
#define SHMET_SERIES_REMOVED    1u
#define SHMET_SERIES_CLAIMED    2u      /* | family record << 8 */

/*
 * A removed or expired record's cells are given to another series no
 * sooner than this after the removal: a write that had passed its handle's
 * check (in an rseq section that the kernel did not abort, so a thread
 * running without a stop) has landed long before.
 */
#define SHMET_REUSE_NS          UINT64_C(1000000000)

/* A series index slot whose record was removed: lookups pass over it,
 * a creation may take it (writer/series.c). */
#define SHMET_INDEX_TOMB        0xffffffffu

/* shmet_seg_family.gate_series: a reuse's journal (writer/reuse.c). */
#define SHMET_GATE_REUSING      0x40000000u

/* shmet_seg_family.gate_series: this bit marks a removal's journal. */
#define SHMET_GATE_REMOVING     0x80000000u

/*
 * Family record states (shmet_seg_family.state, writer/reclaim.c).  A
 * record is shown only while its incarnation is even (not being rebuilt)
 * and its state is LIVE, RECLAIMING or CLAIMED (then published, not yet
 * marked LIVE).
 */
#define SHMET_FAMILY_LIVE       0u      /* what a new record holds */
#define SHMET_FAMILY_RECLAIMING 1u      /* a reclaim is checking it (gated) */
#define SHMET_FAMILY_FREE       2u      /* reclaimed: reusable */
#define SHMET_FAMILY_CLAIMED    3u      /* a registration rebuilds it (gated) */

/* Writer slot states. */
#define SHMET_WRITER_UNUSED     0u      /* never claimed: its block is all zero */
#define SHMET_WRITER_ACTIVE     1u      /* claimed; alive while its lock is held */
#define SHMET_WRITER_RELEASED   2u      /* detached cleanly */

/* Registration failures, counted in shmet_seg_header.failures[]. */
#define SHMET_FAIL_INVALID_NAME         0u
#define SHMET_FAIL_INVALID_LABELS       1u
#define SHMET_FAIL_LABEL_VALUE          2u
#define SHMET_FAIL_INVALID_BUCKETS      3u
#define SHMET_FAIL_SHAPE_MISMATCH       4u
#define SHMET_FAIL_FAMILIES_FULL        5u
#define SHMET_FAIL_SERIES_FULL          6u
#define SHMET_FAIL_CELLS_FULL           7u
#define SHMET_FAIL_STRINGS_FULL         8u
#define SHMET_FAIL_CARDINALITY          9u
#define SHMET_FAIL_NO_MEMORY            10u
#define SHMET_FAIL_WRITERS_FULL         11u
#define SHMET_FAIL_COUNT                12u
#define SHMET_FAIL_SLOTS                16u     /* room in the header */

/* Limits that are part of the format. */
#define SHMET_MAX_LABELS        16u
#define SHMET_MAX_BOUNDS        128u
#define SHMET_MAX_NAME_LEN      200u
#define SHMET_MAX_HELP_LEN      1024u
#define SHMET_MAX_LABEL_VALUE_LEN 1024u
#define SHMET_MAX_COLLECTOR_FAMILIES 256u

struct shmet_seg_str {
	uint32_t off;                   /* from strings_off */
	uint32_t len;                   /* bytes */
};

struct shmet_seg_header {
	/* Line 0: identity, written once by the creator before init_state. */
	uint64_t magic;                 /* SHMET_MAGIC */
	uint32_t layout_version;        /* SHMET_LAYOUT_VERSION */
	uint32_t header_size;           /* SHMET_HEADER_SIZE */
	uint64_t total_size;            /* bytes of the whole segment */
	uint64_t created_ns;            /* CLOCK_REALTIME at creation */
	SHMET_ATOMIC(uint32_t) init_state; /* SHMET_INIT_*; release-stored last */
	uint32_t padding0;              /* zero filled */
	uint8_t padding1[24];           /* zero filled, rest of the line */

	/* Line 1: capacities, immutable after init. */
	uint32_t max_families;
	uint32_t family_index_slots;    /* power of two */
	uint32_t max_series;
	uint32_t series_index_slots;    /* power of two */
	uint32_t max_writers;           /* slots; block max_writers is the fallback */
	uint32_t cells_per_block;
	uint32_t string_bytes;
	uint32_t max_series_per_family; /* default cardinality limit */
	uint32_t cpu_blocks;            /* per-CPU value blocks, 1..SHMET_MAX_CPU_BLOCKS */
	uint32_t series_ttl_s;          /* idle series expire; 0: never */
	uint64_t cpu_off;               /* first per-CPU block (geometry) */
	uint64_t registrants_off;       /* registrant bitmaps (geometry) */
	uint8_t padding2[8];

	/* Line 2: region offsets, immutable after init. */
	uint64_t writers_off;
	uint64_t families_off;
	uint64_t family_index_off;
	uint64_t series_off;
	uint64_t series_index_off;
	uint64_t strings_off;
	uint64_t values_off;
	uint64_t block_stride;          /* bytes per value block, page multiple */

	/*
	 * Line 3: allocation cursors.  Bumped by every registering process, so
	 * they live apart from the immutable lines that readers load often.
	 */
	SHMET_ATOMIC(uint32_t) families_used;
	SHMET_ATOMIC(uint32_t) series_used;
	SHMET_ATOMIC(uint32_t) cells_used;
	SHMET_ATOMIC(uint32_t) strings_used;
	SHMET_ATOMIC(uint64_t) generation; /* bumped after each publication */
	SHMET_ATOMIC(uint64_t) fallback_reserved_bytes; /* of the fallback block */
	SHMET_ATOMIC(uint64_t) cpu_reserved_bytes; /* of every per-CPU block */
	/*
	 * 1 once a writer with a slot directed its handles' fallback into the
	 * fallback block ("Fallback cells" above); release-stored before the
	 * handle is returned, never cleared.  Readers read the fallback block
	 * when this or failures[writers_full] is set.
	 */
	SHMET_ATOMIC(uint32_t) fallback_counts;
	uint32_t padding3a;             /* zero filled */
	/*
	 * Layout 6: the gauge chunk cells are handed out from, as
	 * shmet_seg_gauge_chunk() packs it (format.h): the next free cell
	 * and the chunk's end; 0 = none yet.  Bumped by every registering
	 * process, with the other cursors of this line.
	 */
	SHMET_ATOMIC(uint64_t) gauge_chunk;
	uint8_t padding3[8];

	/* Lines 4-5: registration failures by SHMET_FAIL_* reason. */
	SHMET_ATOMIC(uint64_t) failures[SHMET_FAIL_SLOTS];

	/*
	 * Line 6: the takeover fold's journal (writer/slot.c), written only
	 * under the retire lock: the retired cells of one gauge series as
	 * they were before a fold, so that the next folder can undo a fold
	 * whose folder died before it zeroed the dead writer's cells.
	 */
	SHMET_ATOMIC(uint32_t) fold_state;  /* 1: a fold is in progress */
	SHMET_ATOMIC(uint32_t) fold_slot;   /* the block folded from */
	SHMET_ATOMIC(uint32_t) fold_cell;   /* the series' first cell */
	uint32_t padding4;
	SHMET_ATOMIC(uint64_t) fold_value;  /* retired[cell] before */
	SHMET_ATOMIC(uint64_t) fold_stamp;  /* retired[cell + 1] before */
	uint8_t padding5[32];

	/* Line 7: the series lifecycle's counts (writer/remove.c, expire.c). */
	/* writes through handles of removed or expired series: dropped */
	SHMET_ATOMIC(uint64_t) stale_writes;
	/* CLOCK_MONOTONIC ns of the last expiry sweep's start (writer/
	 * expire.c): the one sweeper claims it with a CAS */
	SHMET_ATOMIC(uint64_t) sweep_ns;
	SHMET_ATOMIC(uint64_t) expired;     /* series expired so far */
	/*
	 * The largest probe distance (slots past its hash's home) at which
	 * a series was ever put in the series index; only grows.  A lookup
	 * probes no further: an index whose empty slots all became
	 * tombstones after churn would otherwise be probed whole on every
	 * miss (writer/series.c).
	 */
	SHMET_ATOMIC(uint32_t) series_probe_max;
	uint32_t padding6a;             /* zero filled */
	uint8_t padding6[32];

	/* Line 8: the exemplar regions (layout 6), immutable after init. */
	uint64_t exemplar_map_off;      /* page bitmap (geometry) */
	uint64_t exemplars_off;         /* exemplar slots (geometry) */
	uint8_t padding7[48];

	uint8_t reserved[SHMET_HEADER_SIZE - 9 * SHMET_CACHELINE];
};

/*
 * One writer slot, one cache line: slots are claimed by different processes
 * and must not share a line.
 */
struct shmet_seg_writer {
	SHMET_ATOMIC(uint32_t) state;   /* SHMET_WRITER_* */
	uint32_t padding0;
	SHMET_ATOMIC(int64_t) pid;      /* as seen by the claimer */
	SHMET_ATOMIC(uint64_t) claimed_ns;   /* CLOCK_REALTIME of the claim */
	SHMET_ATOMIC(uint64_t) takeovers;    /* claims of this slot after the first */
	SHMET_ATOMIC(uint64_t) last_gauge_ns; /* CLOCK_REALTIME of the claim's gauge reset */
	SHMET_ATOMIC(uint64_t) reserved_bytes; /* of the block, fallocated; only grows */
	/*
	 * 1: counters and histograms of this slot's writers take their
	 * atomic fallback in this block, so readers sum all its cells; 0:
	 * only its gauge cells were ever written ("Fallback cells" above).
	 * Release-stored by the claimer before any handle can write the
	 * block; never cleared, as a dead writer's counts stay.
	 */
	SHMET_ATOMIC(uint32_t) counts_here;
	uint32_t padding2;              /* zero filled */
	uint8_t padding1[8];
};

struct shmet_seg_family {
	uint32_t type;                  /* SHMET_TYPE_* */
	uint32_t gauge_mode;            /* SHMET_GAUGE_*, 0 unless gauge */
	uint32_t label_count;           /* <= SHMET_MAX_LABELS */
	uint32_t bound_count;           /* finite bounds; buckets = bound_count + 1 */
	uint32_t cells_per_series;
	uint32_t max_series;            /* cardinality limit */
	/*
	 * The series creation gate's fields (writer/gate.c): written only by
	 * the process holding the family's gate, so a count, unlike a
	 * reservation, never runs ahead of what is published.
	 */
	SHMET_ATOMIC(uint32_t) series_count; /* series published (limit) */
	SHMET_ATOMIC(uint32_t) gate_series; /* record + 1 being published; 0 */
	struct shmet_seg_str name;
	struct shmet_seg_str help;
	struct shmet_seg_str unit;      /* len 0: no unit */
	struct shmet_seg_str label_names; /* label blob */
	struct shmet_seg_str bounds;    /* double[bound_count], len in bytes */
	uint64_t hash;                  /* shmet_seg_name_hash of the name */
	SHMET_ATOMIC(uint32_t) gate_count; /* series_count before gate_series */
	/*
	 * 0, or the id + 1 of the record whose series this one shares: a
	 * registration that differs from an existing record only in help
	 * or unit gets a record of its own for them (the page shows the
	 * newest), and counts in the series of that one ("an alias").
	 */
	uint32_t base;
	/*
	 * CLOCK_REALTIME of the record's latest registration: of a name's
	 * versions, readers show the newest one's help and type.
	 */
	SHMET_ATOMIC(uint64_t) registered_ns;
	/*
	 * Series removed from this record so far (writer/remove.c): a
	 * process that caches handles by label values (Python's labels())
	 * drops its cache when this moves, so its next write after another
	 * process's removal starts the series again instead of going to
	 * the removed one's cells, unseen.
	 */
	SHMET_ATOMIC(uint32_t) removals;
	/*
	 * Reclaiming (layout 5, writer/reclaim.c): SHMET_FAMILY_*, written
	 * only by the holder of the record's gate.  The incarnation moves
	 * when the record is freed and when a registration has rebuilt it
	 * (odd in between), so a reader or a registration that read it
	 * before and after its fields knows they are one record's.
	 */
	SHMET_ATOMIC(uint32_t) state;
	SHMET_ATOMIC(uint32_t) incarnation;
	/* 1: a process without a writer slot registered it, whose
	 * liveness nobody can see: never reclaimed */
	SHMET_ATOMIC(uint32_t) pinned;
	/* bytes of the record's string allocation, from bounds.off */
	uint32_t strings_cap;
	uint8_t reserved[12];
};

struct shmet_seg_series {
	uint32_t family;                /* index into the family table */
	uint32_t first_cell;
	struct shmet_seg_str labels;    /* label blob of values */
	uint64_t hash;                  /* see format.h, series hash */
	/*
	 * SHMET_SERIES_LIVE (0: what a new record holds), _REMOVED (removed
	 * or expired: off the pages) or _CLAIMED | family << 8 (being
	 * reused for a series of that family, writer/reuse.c).
	 */
	SHMET_ATOMIC(uint32_t) state;
	/*
	 * The record's incarnation.  A handle keeps the value it resolved
	 * and the hot path compares it before each write (inside the rseq
	 * section): a removal moves it, so a handle kept across a removal
	 * or expiry never writes into the cells once another series has
	 * them; its writes are dropped and counted (stale_writes).
	 */
	SHMET_ATOMIC(uint32_t) gen;
	/* CLOCK_MONOTONIC ns of the removal (reuse waits SHMET_REUSE_NS) */
	SHMET_ATOMIC(uint64_t) removed_ns;
	/* expiry sweeps (writer/expire.c): the series' values as last seen
	 * (a digest) and when they last changed, CLOCK_MONOTONIC ns */
	SHMET_ATOMIC(uint64_t) digest;
	SHMET_ATOMIC(uint64_t) changed_ns;
	uint32_t blob_cap;              /* bytes allocated for labels */
	/* cells the record owns from first_cell (layout 5): a removed
	 * record's family record may be reclaimed and rebuilt with another
	 * shape, so a reuser cannot take the count from it */
	uint32_t cells;
};

/*
 * An exemplar slot (layout 6): the latest exemplar of one cell index,
 * written under a sequence lock (writer/exemplar.c, docs/DESIGN.md
 * "Exemplars").  seq is even while the slot is stable (0: never written)
 * and odd while a writer is in it.  Every other field is read and written
 * only as relaxed atomics between the lock's loads and stores, so a
 * reader that races a writer reads stale or mixed words, never undefined
 * behaviour, and throws them away when seq moved.
 */
#define SHMET_EXEMPLAR_SIZE     1024u   /* bytes per slot, 4 per page */
#define SHMET_EXEMPLAR_BLOB     968u    /* bytes of the label blob */
#define SHMET_EXEMPLAR_MAX_CHARS 128u   /* OpenMetrics: names + values */

struct shmet_seg_exemplar {
	SHMET_ATOMIC(uint32_t) seq;     /* sequence lock: odd = being written */
	SHMET_ATOMIC(uint32_t) series;  /* series record id + 1 that wrote it */
	SHMET_ATOMIC(uint32_t) gen;     /* that record's incarnation then */
	SHMET_ATOMIC(uint32_t) label_count; /* label pairs in the blob */
	SHMET_ATOMIC(uint32_t) blob_len; /* bytes of blob used */
	uint32_t padding0;
	SHMET_ATOMIC(uint64_t) value;   /* double (bits): the observed value */
	SHMET_ATOMIC(uint64_t) ts_ns;   /* CLOCK_REALTIME ns of the write */
	/* CLOCK_MONOTONIC ns when a writer last took (or went to take) the
	 * lock: a lock held odd for SHMET_REUSE_NS was left by a writer that
	 * died in it, and the next writer takes it over */
	SHMET_ATOMIC(uint64_t) busy_ns;
	/* shmet_seg_exemplar_sum() of the fields above and the blob: a check
	 * against a writer that resumed after its lock was taken over */
	SHMET_ATOMIC(uint64_t) sum;
	/* label_count pairs of label blob entries (labels.h): name, value */
	SHMET_ATOMIC(uint64_t) blob[SHMET_EXEMPLAR_BLOB / 8];
};

/* The format assumes 8-byte lock-free atomics shared between processes. */
#ifndef __cplusplus
SHMET_STATIC_ASSERT(ATOMIC_LLONG_LOCK_FREE == 2,
		    "64-bit atomics must be lock-free to be shared");
SHMET_STATIC_ASSERT(ATOMIC_INT_LOCK_FREE == 2,
		    "32-bit atomics must be lock-free to be shared");
#endif
SHMET_STATIC_ASSERT(sizeof(SHMET_ATOMIC(uint64_t)) == 8, "atomic u64 size");
SHMET_STATIC_ASSERT(sizeof(SHMET_ATOMIC(uint32_t)) == 4, "atomic u32 size");
SHMET_STATIC_ASSERT(sizeof(double) == 8, "double is 8 bytes");

SHMET_STATIC_ASSERT(sizeof(struct shmet_seg_str) == 8, "str size");
SHMET_STATIC_ASSERT(sizeof(struct shmet_seg_header) == SHMET_HEADER_SIZE,
		    "header size");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, layout_version) == 8, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, total_size) == 16, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, created_ns) == 24, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, init_state) == 32, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, max_families) == 64, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, max_series_per_family) == 92, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, cpu_blocks) == 96, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, cpu_off) == 104, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, registrants_off) == 112, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, padding2) == 120, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, writers_off) == 128, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, block_stride) == 184, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, families_used) == 192, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, generation) == 208, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, fallback_reserved_bytes) == 216, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, cpu_reserved_bytes) == 224, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, fallback_counts) == 232, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, gauge_chunk) == 240, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, padding3) == 248, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, failures) == 256, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, fold_state) == 384, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, fold_value) == 400, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, stale_writes) == 448, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, expired) == 464, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, series_probe_max) == 472, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, exemplar_map_off) == 512, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, exemplars_off) == 520, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_header, reserved) == 576, "");

SHMET_STATIC_ASSERT(sizeof(struct shmet_seg_writer) == SHMET_CACHELINE,
		    "a writer slot is one cache line");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_writer, pid) == 8, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_writer, last_gauge_ns) == 32, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_writer, reserved_bytes) == 40, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_writer, counts_here) == 48, "");

SHMET_STATIC_ASSERT(sizeof(struct shmet_seg_family) == 128, "family size");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, series_count) == 24, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, name) == 32, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, bounds) == 64, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, hash) == 72, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, gate_series) == 28, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, gate_count) == 80, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, base) == 84, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, registered_ns) == 88, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, removals) == 96, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, state) == 100, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, incarnation) == 104, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_family, strings_cap) == 112, "");

SHMET_STATIC_ASSERT(sizeof(struct shmet_seg_series) == 64, "series size");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_series, labels) == 8, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_series, hash) == 16, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_series, state) == 24, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_series, gen) == 28, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_series, changed_ns) == 48, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_series, cells) == 60, "");

SHMET_STATIC_ASSERT(sizeof(struct shmet_seg_exemplar) == SHMET_EXEMPLAR_SIZE,
		    "exemplar slot size");
SHMET_STATIC_ASSERT(SHMET_PAGE % SHMET_EXEMPLAR_SIZE == 0,
		    "an exemplar slot never spans pages");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_exemplar, value) == 24, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_exemplar, sum) == 48, "");
SHMET_STATIC_ASSERT(offsetof(struct shmet_seg_exemplar, blob) == 56, "");

#endif /* SHMETRICS_LAYOUT_H */
