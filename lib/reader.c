/*
 * libshmetrics reader: map, validate, index and aggregate a segment.
 *
 * Trust: the segment is written by other processes, possibly of another
 * build, possibly buggy or hostile.  Immutable header fields are copied once
 * and validated by recomputing the geometry; every record is validated
 * before use and its strings are copied out, so later changes in the
 * segment cannot invalidate what was checked.
 *
 * Ordering guarantees (pairs with include/shmetrics/impl.h):
 * - Index slots are loaded with acquire, pairing with the writers' release
 *   CAS: a record found through the index is complete.
 * - init_state is loaded with acquire, pairing with the creator's release.
 * - Writer slot state is loaded with acquire, pairing with the claimer's
 *   release store made after it filled the slot record.
 * - Value cells are loaded relaxed: see impl.h "Value cells".  Every cell is
 *   read once per scrape, and each counter cell is monotonic, so the sum of
 *   a later scrape is never below an earlier one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmetrics/lock.h>
#include <shmetrics/name.h>

#include "datamap.h"
#include "reader-private.h"
#include "trust.h"

static int
reader_init(struct shmet_reader *r, const void *base, size_t size,
	    const char *what, char *err, size_t errlen)
{
	r->base = base;
	r->size = size;
	snprintf(r->name, sizeof r->name, "%s", what);
	return trust_header(&r->hdr, base, size, what, err, errlen);
}

/*
 * The claim file (lock.h), when this reader may open it (the writers'
 * user, or root): its locks say which slots live writers hold, and no
 * reader can fake them.  -1 otherwise: the segment's liveness locks.
 */
static int
open_claim(const char *name)
{
	char path[300];

	if (strlen(name) + sizeof SHMET_CLAIM_SUFFIX > sizeof path)
		return -1;
	snprintf(path, sizeof path, "%s%s", name, SHMET_CLAIM_SUFFIX);
	return shmet_name_open(path, O_RDONLY | O_CLOEXEC, 0);
}

/* reader_init, returning -ESTALE if the file shrinks while we read it. */
static int
reader_init_guarded(struct shmet_reader *r, const void *base, size_t size,
		    const char *what, char *err, size_t errlen)
{
	struct shmet_priv_guard g;
	int rc;

	r->base = base;
	r->size = size;
	if (sigsetjmp(g.jb, 0))
		return set_err(err, errlen, -ESTALE,
			       "%s: the segment shrank while it was read",
			       what);
	shmet_priv_guard_enter(&g, r);
	rc = reader_init(r, base, size, what, err, errlen);
	shmet_priv_guard_leave(&g);
	return rc;
}

SHMET_EXPORT int
shmet_reader_open(const char *name, struct shmet_reader **out, char *err,
		  size_t errlen)
{
	struct shmet_reader *r;
	struct stat st;
	void *p;
	int rc;

	*out = NULL;
	name = shmet_name_resolve(name);
	r = calloc(1, sizeof *r);
	if (!r)
		return set_err(err, errlen, -ENOMEM, "out of memory");
	/* name.h: a POSIX shm name or a file path on a tmpfs. */
	r->fd = shmet_name_open(name, O_RDONLY, 0);
	r->claim_fd = r->fd >= 0 ? open_claim(name) : -1;
	if (r->fd < 0) {
		rc = -errno;
		free(r);
		/* EINVAL: name.h found something other than a file */
		return set_err(err, errlen, rc, "%s: cannot open segment: %s",
			       name, rc == -EINVAL ? "not a regular file"
						   : strerror(-rc));
	}
	if (fstat(r->fd, &st) < 0) {
		rc = -errno;
		goto fail_msg;
	}
	if (st.st_size < (off_t)SHMET_HEADER_SIZE) {
		rc = set_err(err, errlen, -EPROTO,
			     "%s: %lld bytes, smaller than a segment header "
			     "(%u)", name, (long long)st.st_size,
			     SHMET_HEADER_SIZE);
		goto fail;
	}
	/* Read-only on purpose: the exporter can never write a segment. */
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, r->fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		goto fail_msg;
	}
	r->mapped = 1;
	shmet_priv_guard_install();
	rc = reader_init_guarded(r, p, (size_t)st.st_size, name, err, errlen);
	if (rc < 0)
		goto fail;
	r->live_cache = calloc(r->hdr.max_writers, sizeof *r->live_cache);
	r->data_bytes = (r->hdr.cells_per_block / (SHMET_PAGE / 8) + 8) / 8;
	r->data_checked = calloc(shmet_seg_blocks(&r->hdr),
				 sizeof *r->data_checked);
	r->data_key = calloc(shmet_seg_blocks(&r->hdr), sizeof *r->data_key);
	r->data_bits = calloc((size_t)shmet_seg_blocks(&r->hdr) *
				      r->data_bytes, 1);
	r->ex_data = calloc(shmet_seg_exemplar_map_words(
				    r->hdr.cells_per_block),
			    sizeof *r->ex_data);
	if (!r->live_cache || !r->data_checked || !r->data_key ||
	    !r->data_bits || !r->ex_data) {
		rc = set_err(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	*out = r;
	return 0;

fail_msg:
	set_err(err, errlen, rc, "%s: %s", name, strerror(-rc));
fail:
	shmet_reader_close(r);
	return rc;
}

SHMET_EXPORT int
shmet_reader_open_memory(const void *data, size_t size,
			 struct shmet_reader **out, char *err, size_t errlen)
{
	struct shmet_reader *r = calloc(1, sizeof *r);
	int rc;

	*out = NULL;
	if (!r)
		return set_err(err, errlen, -ENOMEM, "out of memory");
	r->fd = -1;
	r->claim_fd = -1;
	rc = reader_init(r, data, size, "memory", err, errlen);
	if (rc < 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

SHMET_EXPORT void
shmet_reader_close(struct shmet_reader *r)
{
	if (!r)
		return;
	if (r->mapped)
		munmap((void *)r->base, r->size);
	if (r->fd >= 0)
		close(r->fd);
	if (r->claim_fd >= 0)
		close(r->claim_fd);
	free(r->live_cache);
	free((void *)r->data_checked);
	free((void *)r->data_key);
	free((void *)r->data_bits);
	free((void *)r->ex_data);
	free(r);
}

const struct shmet_seg_header *
shmet_priv_reader_live_header(const struct shmet_reader *r)
{
	return (const struct shmet_seg_header *)r->base;
}

SHMET_EXPORT int
shmet_reader_stat(const struct shmet_reader *r, struct stat *st)
{
	if (r->fd < 0)
		return -EBADF;
	return fstat(r->fd, st) < 0 ? -errno : 0;
}

SHMET_EXPORT uint64_t
shmet_reader_generation(const struct shmet_reader *r)
{
	struct shmet_priv_guard g;
	uint64_t gen;

	/* The file shrank under us: a value no index has, so that the
	 * caller rebuilds and learns why. */
	if (sigsetjmp(g.jb, 0))
		return UINT64_MAX;
	shmet_priv_guard_enter(&g, r);
	/* Acquire: pairs with the writers' release increment. */
	gen = atomic_load_explicit(&shmet_priv_reader_live_header(r)->generation,
				   memory_order_acquire);
	shmet_priv_guard_leave(&g);
	return gen;
}

int
shmet_priv_reader_check_size(const struct shmet_reader *r, char *err,
			     size_t errlen)
{
	struct stat st;

	if (r->fd < 0 || fstat(r->fd, &st) < 0 ||
	    (uint64_t)st.st_size >= r->size)
		return 0;
	return set_err(err, errlen, -ESTALE,
		       "%s: the segment shrank from %zu to %lld bytes; "
		       "reopen it", r->name, r->size, (long long)st.st_size);
}

uint32_t
shmet_priv_reader_cursor(const struct shmet_reader *r, int which)
{
	const struct shmet_seg_header *h = shmet_priv_reader_live_header(r);

	/* Relaxed: statistics, clamped to the capacities; nothing is read
	 * through them (the index walks the published slots). */
	switch (which) {
	case CURSOR_FAMILIES:
		return MIN(atomic_load_explicit(&h->families_used,
						memory_order_relaxed),
			   r->hdr.max_families);
	case CURSOR_SERIES:
		return MIN(atomic_load_explicit(&h->series_used,
						memory_order_relaxed),
			   r->hdr.max_series);
	case CURSOR_CELLS:
		return MIN(atomic_load_explicit(&h->cells_used,
						memory_order_relaxed),
			   r->hdr.cells_per_block);
	default:
		return MIN(atomic_load_explicit(&h->strings_used,
						memory_order_relaxed),
			   r->hdr.string_bytes);
	}
}

const struct shmet_seg_writer *
shmet_priv_reader_writer(const struct shmet_reader *r, uint32_t slot)
{
	return (const struct shmet_seg_writer *)(r->base + r->hdr.writers_off) +
	       slot;
}

/*
 * A slot is live while its claimer holds the slot's OFD lock.  Without a
 * file (a segment in memory) ACTIVE is taken at its word.
 */
int
shmet_priv_reader_writer_live(const struct shmet_reader *r, uint32_t slot,
		   uint32_t state)
{
	if (state != SHMET_WRITER_ACTIVE)
		return 0;
	if (r->fd < 0)
		return 1;
	/* The claim file decides when we may read it (the owner's or
	 * root's reader); else the liveness lock on the segment.  Cannot
	 * tell (-1): do not declare it dead. */
	return shmet_seg_slot_held(r->claim_fd >= 0 ? r->claim_fd : r->fd,
				   slot) != 0;
}

/*
 * A liveness check is a syscall per writer block; a scrape of 64 blocks
 * spent about a tenth of its time in them.  Checks are reused for 100 ms
 * (a dead writer's live gauges vanish that much later at most).  Relaxed:
 * a stale or raced entry only repeats a check.
 */
int
shmet_priv_reader_writer_live_cached(const struct shmet_reader *r, uint32_t slot,
			  uint32_t state, uint64_t now_ns)
{
	uint64_t e;
	int live;

	if (state != SHMET_WRITER_ACTIVE || !r->live_cache)
		return shmet_priv_reader_writer_live(r, slot, state);
	e = atomic_load_explicit(&r->live_cache[slot], memory_order_relaxed);
	if (e && now_ns - (e >> 1) < LIVE_CACHE_NS)
		return (int)(e & 1);
	live = shmet_priv_reader_writer_live(r, slot, state);
	atomic_store_explicit(&r->live_cache[slot],
			      (now_ns << 1) | (uint64_t)live,
			      memory_order_relaxed);
	return live;
}

SHMET_EXPORT int
shmet_reader_writers(const struct shmet_reader *r,
		     struct shmet_writer_info *out, uint32_t max)
{
	uint32_t n = MIN(max, r->hdr.max_writers);
	struct shmet_priv_guard g;

	if (shmet_priv_reader_check_size(r, NULL, 0) < 0)
		return -ESTALE;
	if (sigsetjmp(g.jb, 0))
		return -ESTALE;
	shmet_priv_guard_enter(&g, r);
	for (uint32_t i = 0; i < n; i++) {
		const struct shmet_seg_writer *w = shmet_priv_reader_writer(r, i);
		struct shmet_writer_info *o = &out[i];

		o->slot = i;
		/* Acquire: pairs with the claimer's release of state. */
		o->state = atomic_load_explicit(&w->state,
						memory_order_acquire);
		o->live = shmet_priv_reader_writer_live(r, i, o->state);
		/* Relaxed: informational, ordered by the acquire of state. */
		o->pid = atomic_load_explicit(&w->pid, memory_order_relaxed);
		o->claimed_ns = atomic_load_explicit(&w->claimed_ns,
						     memory_order_relaxed);
		o->takeovers = atomic_load_explicit(&w->takeovers,
						    memory_order_relaxed);
	}
	shmet_priv_guard_leave(&g);
	return (int)n;
}

/*
 * Records linked in an index (family or series): published and not
 * removed, expired or reclaimed.  The cursors count records ever handed
 * out, which churn keeps at the capacity while reuse keeps it working;
 * this is what a full segment means.  Only the index's data pages are
 * read (datamap.h: reading a hole of a tmpfs file allocates a page, and
 * a hostile header can make the index gigabytes of hole).  Relaxed: a
 * statistic, clamped to the capacity; the slots lie in the mapping
 * (checked at open) and the caller holds the guard against a shrink.
 */
static uint32_t
count_linked(const struct shmet_reader *r, uint64_t off, uint32_t slots,
	     uint32_t cap)
{
	uint64_t at = off, end = off + 4ull * slots, d, h;
	uint32_t n = 0;

	while (at < end && n < cap) {
		int rc = r->fd >= 0 ? shmet_priv_data_next(r->fd, at, end, &d, &h)
				    : -1;

		if (rc == 0)
			break;                  /* no data left: all empty */
		if (rc < 0) {
			d = at;                 /* memory, or no SEEK_DATA */
			h = end;
		}
		/* the first whole slot at or after d */
		for (uint64_t p = off + (d - off + 3) / 4 * 4;
		     p + 4 <= h && n < cap; p += 4) {
			uint32_t v = atomic_load_explicit(
				(const _Atomic uint32_t *)(r->base + p),
				memory_order_relaxed);

			n += v != 0 && v != SHMET_INDEX_TOMB;
		}
		at = h;
	}
	return n;
}

SHMET_EXPORT int
shmet_reader_info(const struct shmet_reader *r, struct shmet_reader_info *info)
{
	const struct shmet_seg_header *h = shmet_priv_reader_live_header(r);
	struct shmet_priv_guard g;

	memset(info, 0, sizeof *info);
	if (shmet_priv_reader_check_size(r, NULL, 0) < 0)
		return -ESTALE;
	if (sigsetjmp(g.jb, 0))
		return -ESTALE;
	shmet_priv_guard_enter(&g, r);
	info->layout_version = r->hdr.layout_version;
	info->total_size = r->hdr.total_size;
	info->created_ns = r->hdr.created_ns;
	info->generation = shmet_reader_generation(r);
	info->max_families = r->hdr.max_families;
	info->families_used = shmet_priv_reader_cursor(r, CURSOR_FAMILIES);
	info->families_in_use = count_linked(r, r->hdr.family_index_off,
					     r->hdr.family_index_slots,
					     r->hdr.max_families);
	info->max_series = r->hdr.max_series;
	info->series_used = shmet_priv_reader_cursor(r, CURSOR_SERIES);
	info->series_in_use = count_linked(r, r->hdr.series_index_off,
					   r->hdr.series_index_slots,
					   r->hdr.max_series);
	info->cells_per_block = r->hdr.cells_per_block;
	info->cells_used = shmet_priv_reader_cursor(r, CURSOR_CELLS);
	info->string_bytes = r->hdr.string_bytes;
	info->strings_used = shmet_priv_reader_cursor(r, CURSOR_STRINGS);
	info->max_writers = r->hdr.max_writers;
	info->max_series_per_family = r->hdr.max_series_per_family;
	info->cpu_blocks = r->hdr.cpu_blocks;
	info->series_ttl_s = r->hdr.series_ttl_s;
	for (uint32_t i = 0; i < r->hdr.max_writers; i++) {
		/* Acquire: pairs with the claimer's release of state. */
		uint32_t state = atomic_load_explicit(
			&shmet_priv_reader_writer(r, i)->state, memory_order_acquire);

		if (state == SHMET_WRITER_UNUSED)
			info->writers_unused++;
		else if (shmet_priv_reader_writer_live(r, i, state))
			info->writers_live++;
		else
			info->writers_dead++;
	}
	/* Relaxed: statistics. */
	for (uint32_t i = 0; i < SHMET_FAIL_SLOTS; i++)
		info->failures[i] = atomic_load_explicit(&h->failures[i],
							 memory_order_relaxed);
	info->series_expired = atomic_load_explicit(&h->expired,
						    memory_order_relaxed);
	info->stale_writes = atomic_load_explicit(&h->stale_writes,
						  memory_order_relaxed);
	shmet_priv_guard_leave(&g);
	return 0;
}
