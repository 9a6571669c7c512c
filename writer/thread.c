/*
 * shmetrics writer: Per-thread counting blocks (docs/DESIGN.md, "Threads").
 */
#include "writer-private.h"

/* Per-thread blocks (docs/DESIGN.md, "Threads")                    */

/* The hot path's thread-local entry (declared in inline-impl.h). */
#if defined(__GNUC__)
__thread struct shmet_impl_tls shmet_impl_tls
	__attribute__((tls_model("initial-exec"), visibility("default")));
#else
_Thread_local struct shmet_impl_tls shmet_impl_tls;
#endif


SHMET_W_DEF SHMET_THREAD_LOCAL struct shmet_impl_tstate shmet_impl_tstate;
SHMET_W_DEF pthread_key_t shmet_impl_thread_key;
SHMET_W_DEF pthread_once_t shmet_impl_thread_once = PTHREAD_ONCE_INIT;
SHMET_W_DEF uint64_t shmet_impl_next_key;    /* under the fork-list lock */

/* The attached segment with this key; the fork-list lock is held. */
SHMET_W struct shmet_segment *
shmet_impl_seg_by_key(uint64_t key)
{
	for (struct shmet_segment *s = shmet_impl_forklist.head; s; s = s->next)
		if (s->key == key)
			return s;
	return NULL;
}

/* 1 if our description already holds slot (OFD locks of one description
 * never conflict with each other, so the claim loop must skip these). */
SHMET_W int
shmet_impl_slot_mine(const struct shmet_segment *seg, uint32_t slot)
{
	const struct shmet_impl_threads *t = seg->threads;

	if (slot == seg->slot)
		return 1;
	for (uint32_t i = 0; i < t->count; i++)
		if (t->rec[i].block && t->rec[i].slot == slot)
			return 1;
	return 0;
}

/*
 * Claim a free writer slot for record r, map its block (at r->block when
 * fixed: the fork child keeps the address every delta points to) and
 * reserve it up to every cell allocated so far, before the thread can
 * write there.  The threads lock is held.  Async-signal-safe: open-coded
 * like shmet_impl_claim, which the fork child also runs.
 */
SHMET_W int
shmet_impl_thread_claim(struct shmet_segment *seg, struct shmet_impl_thr *r,
			int fixed)
{
	const struct shmet_seg_header *h = seg->hdr;
	int claim = seg->claim_fd >= 0 ? seg->claim_fd : seg->fd;

	for (uint32_t i = 0; i < h->max_writers; i++) {
		void *p;
		int rc;

		if (shmet_impl_slot_mine(seg, i) ||
		    shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_WRLCK) < 0)
			continue;
		p = mmap(fixed ? (void *)r->block : NULL,
			 (size_t)h->block_stride, PROT_READ | PROT_WRITE,
			 MAP_SHARED | (fixed ? MAP_FIXED : 0), seg->fd,
			 (off_t)(h->values_off + (uint64_t)i * h->block_stride));
		if (p == MAP_FAILED) {
			rc = -errno;
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			return rc;
		}
		/* Relaxed: process-local, under the threads lock. */
		SHMET_AT(store_explicit)(&r->reserved, 0, SHMET_MO(relaxed));
		/*
		 * Registrations must take the lock until this block is
		 * reserved: clear `covered` before reading cells_used, both
		 * seq_cst (the other half of the Dekker pair in
		 * shmet_impl_reserve_threads); the next registration that
		 * takes the lock recomputes it.
		 */
		SHMET_AT(store_explicit)(&seg->threads->covered, 0,
					 SHMET_MO(seq_cst));
		/* Seq_cst cells_used: the Dekker pair above; a registration
		 * that allocates beyond it sees covered = 0 and reserves our
		 * block itself (reserve_threads), after the lock we hold. */
		rc = shmet_impl_reserve_block(
			seg, i, &r->reserved,
			SHMET_AT(load_explicit)(&h->cells_used,
						SHMET_MO(seq_cst)));
		if (rc < 0) {
			if (!fixed)
				munmap(p, (size_t)h->block_stride);
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			return rc;
		}
		r->block = (shmet_impl_cell *)p;
		r->slot = i;
		/* Relaxed: process-local, under the threads lock. */
		shmet_impl_take_slot(seg, i, r->block,
				     SHMET_AT(load_explicit)(&r->reserved,
							     SHMET_MO(relaxed)));
		r->live = seg->claim_fd < 0 ||
			  shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(i),
					 F_WRLCK) == 0;
		return 0;
	}
	return -ENOSPC;
}

/* Give r's slot back (state RELEASED, locks dropped); its counts stay
 * for the reader and for the next owner, as a dead writer's do. */
SHMET_W void
shmet_impl_thread_release(struct shmet_segment *seg, struct shmet_impl_thr *r)
{
	if (r->slot >= seg->hdr->max_writers)
		return;
	/* Release: pairs with the acquire in take_slot and readers. */
	SHMET_AT(store_explicit)(&shmet_impl_writers(seg)[r->slot].state,
				 SHMET_WRITER_RELEASED, SHMET_MO(release));
	if (seg->claim_fd >= 0) {
		shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(r->slot), F_UNLCK);
		shmet_seg_lock(seg->claim_fd, SHMET_LOCK_SLOT(r->slot),
			       F_UNLCK);
	} else {
		shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(r->slot), F_UNLCK);
	}
	r->slot = UINT32_MAX;
}

/*
 * Point r's mapping at the process block: its thread keeps its delta and
 * now shares the process block (atomic, correct, as before threads had
 * blocks).  Used when r's own block cannot be reserved or claimed.
 */
SHMET_W void
shmet_impl_thread_demote(struct shmet_segment *seg, struct shmet_impl_thr *r)
{
	const struct shmet_seg_header *h = seg->hdr;

	if (mmap((void *)r->block, (size_t)h->block_stride,
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, seg->fd,
		 (off_t)(h->values_off + (uint64_t)seg->slot *
					 h->block_stride)) == MAP_FAILED)
		/* Counts are lost, the process is not. */
		mmap((void *)r->block, (size_t)h->block_stride,
		     PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		     -1, 0);
	shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
}

/*
 * A registration made cells up to end_cell usable: reserve them in every
 * thread block of this process before its handle is returned (a write to
 * an unreserved tmpfs page is SIGBUS).  A block that cannot grow is
 * demoted to the process block, whose reservation already succeeded.
 */
SHMET_W void
shmet_impl_reserve_threads(struct shmet_segment *seg, uint64_t end_cell)
{
	struct shmet_impl_threads *t = seg->threads;
	uint64_t covered = UINT64_MAX;

	if (!t)
		return;
	/*
	 * Fast path: every thread block already covers our cells.  Our cell
	 * allocation (a seq_cst RMW of cells_used) and this seq_cst load
	 * pair with a claiming thread's seq_cst clear of `covered` and its
	 * seq_cst load of cells_used (shmet_impl_thread_claim): in the single
	 * order of seq_cst operations, either that thread reads our cells
	 * and reserves past them, or we read its clear and take the lock
	 * (Dekker).  No fences: TSan does not model them.
	 */
	if (8 * end_cell <= SHMET_AT(load_explicit)(&t->covered,
						    SHMET_MO(seq_cst)))
		return;
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < t->count; i++) {
		struct shmet_impl_thr *r = &t->rec[i];

		if (!r->block || r->slot >= seg->hdr->max_writers)
			continue;
		if (!r->live)
			r->live = shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(r->slot),
						 F_WRLCK) == 0;
		if (shmet_impl_reserve_block(seg, r->slot, &r->reserved,
					     end_cell) < 0) {
			shmet_impl_thread_demote(seg, r);
			shmet_impl_thread_release(seg, r);
			continue;
		}
		/* Relaxed: process-local, under the threads lock. */
		if (SHMET_AT(load_explicit)(&r->reserved, SHMET_MO(relaxed)) <
		    covered)
			covered = SHMET_AT(load_explicit)(&r->reserved,
							  SHMET_MO(relaxed));
	}
	/* Relaxed: read only as a hint under the fence above; the lock
	 * orders it against claims. */
	SHMET_AT(store_explicit)(&t->covered, covered, SHMET_MO(relaxed));
	pthread_mutex_unlock(&t->lock);
}

/* Drop this thread's hold on seg (entry e); the threads lock is held. */
SHMET_W void
shmet_impl_thread_detach(struct shmet_segment *seg,
			 const struct shmet_impl_tstate *ts, uint32_t rec)
{
	struct shmet_impl_threads *t = seg->threads;
	struct shmet_impl_thr *r;

	if (rec == SHMET_IMPL_REC_PROC && t->proc_owner == ts)
		t->proc_owner = NULL;
	if (rec >= t->count)
		return;
	r = &t->rec[rec];
	if (!r->block || r->owner != ts)
		return;
	shmet_impl_thread_release(seg, r);
	munmap((void *)r->block, (size_t)seg->hdr->block_stride);
	r->block = NULL;
	r->owner = NULL;
}

/* pthread key destructor: the thread exits, its slots go back. */
SHMET_W void
shmet_impl_thread_exit(void *arg)
{
	struct shmet_impl_tstate *ts = (struct shmet_impl_tstate *)arg;
	sigset_t all, old;

	/*
	 * No signal handler of this thread may count while its blocks are
	 * torn down: its entries would still point at a block being
	 * unmapped, and it would re-enter the locks held here.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	shmet_impl_tls.key = 0;
	shmet_impl_tls.delta = 0;
	pthread_mutex_lock(&shmet_impl_forklist.lock);
	for (int i = 0; i < SHMET_IMPL_THREAD_SEGS; i++) {
		struct shmet_segment *seg;

		if (!ts->e[i].key)
			continue;
		seg = shmet_impl_seg_by_key(ts->e[i].key);
		if (seg && seg->threads) {
			pthread_mutex_lock(&seg->threads->lock);
			shmet_impl_thread_detach(seg, ts, ts->e[i].rec);
			pthread_mutex_unlock(&seg->threads->lock);
		}
		ts->e[i].key = 0;
	}
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
	ts->keyed = 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

SHMET_W void
shmet_impl_thread_key_create(void)
{
	if (pthread_key_create(&shmet_impl_thread_key,
			       shmet_impl_thread_exit) != 0)
		shmet_impl_thread_key = (pthread_key_t)-1;
}

/*
 * The calling thread's first counting write to segment `key`: take the
 * process block if no thread counts there, else claim a block of its own;
 * with neither (none free, or the process's cap reached), share the
 * process block.  Returns the new entry, or -1 (segment closed, too many
 * segments, or no thread blocks): write the process cell.
 */
SHMET_W int
shmet_impl_thread_attach(uint64_t key)
{
	struct shmet_impl_tstate *ts = &shmet_impl_tstate;
	struct shmet_segment *seg;
	struct shmet_impl_threads *t;
	int e = -1;

	/*
	 * Never wait here: this runs inside a hot-path call, perhaps from a
	 * signal handler that interrupted this very thread while it held
	 * these locks (a wait would never end).  Busy: -2, and the write
	 * goes to the process cell; the next write tries again.
	 */
	if (pthread_mutex_trylock(&shmet_impl_forklist.lock) != 0)
		return -2;
	seg = shmet_impl_seg_by_key(key);
	/* a free entry, or one of a segment closed since */
	for (int i = 0; seg && i < SHMET_IMPL_THREAD_SEGS && e < 0; i++)
		if (!ts->e[i].key || !shmet_impl_seg_by_key(ts->e[i].key))
			e = i;
	if (!seg || !seg->threads || e < 0) {
		pthread_mutex_unlock(&shmet_impl_forklist.lock);
		return -1;
	}
	t = seg->threads;
	if (pthread_mutex_trylock(&t->lock) != 0) {
		pthread_mutex_unlock(&shmet_impl_forklist.lock);
		return -2;
	}
	ts->e[e].key = key;
	ts->e[e].delta = 0;
	ts->e[e].rec = SHMET_IMPL_REC_NONE;
	if (!t->proc_owner) {
		t->proc_owner = ts;
		ts->e[e].rec = SHMET_IMPL_REC_PROC;
	} else {
		for (uint32_t i = 0; i < t->count; i++) {
			struct shmet_impl_thr *r = &t->rec[i];

			if (r->block)
				continue;
			if (shmet_impl_thread_claim(seg, r, 0) == 0) {
				r->owner = ts;
				ts->e[e].rec = i;
				ts->e[e].delta = (uintptr_t)r->block -
						 (uintptr_t)seg->block;
			}
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
	if (!ts->keyed) {
		pthread_once(&shmet_impl_thread_once,
			     shmet_impl_thread_key_create);
		ts->keyed = pthread_setspecific(shmet_impl_thread_key, ts) == 0;
	}
	return e;
}

/*
 * Point the hot path's entry at (key, delta).  A signal handler may run
 * between any two stores and count through the entry: the key is cleared
 * first and set last, so the handler never pairs a key with another
 * segment's delta (signal fences: the compiler keeps this order).
 */
SHMET_W void
shmet_impl_tls_set(uint64_t key, uintptr_t delta)
{
	shmet_impl_tls.key = 0;
	atomic_signal_fence(memory_order_seq_cst);
	shmet_impl_tls.delta = delta;
	atomic_signal_fence(memory_order_seq_cst);
	shmet_impl_tls.key = key;
}

/* The hot path's slow call; errno is kept, as a signal handler that
 * counts must leave it (the interrupted code may be about to read it). */
SHMET_W shmet_impl_acell *
shmet_impl_thread_cell_keep(shmet_impl_acell *cell, uint64_t key);

shmet_impl_acell *
shmet_impl_thread_cell(shmet_impl_acell *cell, uint64_t key)
{
	int saved = errno;
	shmet_impl_acell *c = shmet_impl_thread_cell_keep(cell, key);

	errno = saved;
	return c;
}

SHMET_W shmet_impl_acell *
shmet_impl_thread_cell_keep(shmet_impl_acell *cell, uint64_t key)
{
	struct shmet_impl_tstate *ts = &shmet_impl_tstate;
	int e = -1;

	if (key == 0)
		return cell;    /* a failed handle: its scratch cells */
	for (int i = 0; i < SHMET_IMPL_THREAD_SEGS && e < 0; i++)
		if (ts->e[i].key == key)
			e = i;
	if (e < 0)
		e = shmet_impl_thread_attach(key);
	if (e == -2)
		return cell;    /* locks busy: this write only */
	if (e < 0) {
		/*
		 * No entry (a thread in more than SHMET_IMPL_THREAD_SEGS
		 * segments, or a segment without thread blocks): cache a
		 * zero delta, so this thread's next writes here stay on the
		 * inline path and go to the process cells.
		 */
		shmet_impl_tls_set(key, 0);
		return cell;
	}
	shmet_impl_tls_set(key, ts->e[e].delta);
	return (SHMET_ATOMIC(uint64_t) *)((uintptr_t)cell + ts->e[e].delta);
}

/*
 * Fork child, after the process block moved to the child's own slot: the
 * forking thread (the child's only one) gets a slot of its own at the
 * same address, so its delta holds; the other threads' blocks belong to
 * the parent, and are unmapped.  Async-signal-safe.
 */
SHMET_W void
shmet_impl_threads_after_fork(struct shmet_segment *seg)
{
	struct shmet_impl_threads *t = seg->threads;
	const void *me = &shmet_impl_tstate;

	if (t->proc_owner != me)
		t->proc_owner = NULL;
	for (uint32_t i = 0; i < t->count; i++) {
		struct shmet_impl_thr *r = &t->rec[i];

		if (!r->block)
			continue;
		if (r->owner != me) {
			munmap((void *)r->block, (size_t)seg->hdr->block_stride);
			r->block = NULL;
			r->owner = NULL;
			continue;
		}
		r->slot = UINT32_MAX;   /* the parent's; not ours */
		if (shmet_impl_thread_claim(seg, r, 1) < 0)
			shmet_impl_thread_demote(seg, r);
	}
}

/* Close: every thread block goes back; the cells a thread can still
 * reach become zero pages, so it records nothing and cannot fault, and
 * the rest is unmapped (shmet_impl_retire_block). */
SHMET_W void
shmet_impl_threads_free(struct shmet_segment *seg)
{
	struct shmet_impl_threads *t = seg->threads;

	if (!t)
		return;
	for (uint32_t i = 0; i < t->count; i++) {
		struct shmet_impl_thr *r = &t->rec[i];

		if (!r->block)
			continue;
		shmet_impl_thread_release(seg, r);
		/* Relaxed: process-local; close runs alone. */
		shmet_impl_retire_block(
			(void *)r->block, (size_t)seg->hdr->block_stride,
			SHMET_AT(load_explicit)(&seg->reserved,
						SHMET_MO(relaxed)));
	}
	pthread_mutex_destroy(&t->lock);
	free(t->rec);
	free(t);
	seg->threads = NULL;
}

/*
 * The writer slots this process's threads may hold beyond the process's
 * own.  Threads that count at the same time contend only while they run
 * at once, so more blocks than online CPUs buy little; and every slot a
 * thread holds is one a new process cannot have (it would count in the
 * fallback block and lose its gauges), so one process takes at most an
 * eighth of the slots.  Threads beyond the cap share the process block.
 */
SHMET_W uint32_t
shmet_impl_thread_cap(const struct shmet_segment *seg,
		      const struct shmet_options *o)
{
	uint32_t share = seg->hdr->max_writers / 8;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (o->flags & SHMET_OPEN_ONE_BLOCK)
		return 0;
	if (o->max_thread_blocks)
		return o->max_thread_blocks < seg->hdr->max_writers
			       ? o->max_thread_blocks
			       : seg->hdr->max_writers;
	if (share == 0)
		share = 1;
	return cpus > 0 && (unsigned long)cpus < share ? (uint32_t)cpus
						       : share;
}

SHMET_W void
shmet_impl_threads_new(struct shmet_segment *seg, uint32_t cap)
{
	struct shmet_impl_threads *t;

	if (cap == 0)
		return;         /* every thread shares the process block */
	t = (struct shmet_impl_threads *)calloc(1, sizeof *t);
	if (t)
		t->rec = (struct shmet_impl_thr *)calloc(cap, sizeof *t->rec);
	if (!t || !t->rec || pthread_mutex_init(&t->lock, NULL) != 0) {
		if (t)
			free(t->rec);
		free(t);
		return;
	}
	t->count = cap;
	seg->threads = t;
}
