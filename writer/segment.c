/*
 * shmetrics writer: segment creation, attach and unlink.
 *
 * Create and attach (shmet_open), and what a kill (SIGKILL) after each step
 * leaves (tests/contract/kill-points.c kills at each):
 *   create.opened    an empty file of the name, no lock held: the next
 *                    opener initialises it (an empty file has nothing to
 *                    lose; anything else is refused, never rewritten)
 *   create.sized     the magic at offset 0, the file sized: the next
 *                    opener takes the init lock and initialises anew
 *   create.filled    the header written, not READY: the same
 *   create.ready     READY: a segment; no slot is held
 *   claim.*          see slot.c
 * Close: see close.c.
 * The initialiser holds the init lock (lock.h) from sizing to READY, so a
 * dead one's is gone and the next waiter initialises instead.
 */
#include "writer-private.h"

SHMET_W int
shmet_impl_resolve_name(struct shmet_segment *seg, const char *name)
{
	size_t len;

	name = shmet_name_resolve(name);
	len = strlen(name);
	/* name.h: "/name" is shm_open's, "/dir/file" a file on a tmpfs. */
	if (shmet_name_check(name) < 0 || len >= sizeof seg->name)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EINVAL,
				       "segment name '%.64s' must be '/' followed "
				       "by up to 254 characters without '/', "
				       "or an absolute file path on a tmpfs",
				       name);
	memcpy(seg->name, name, len + 1);
	return 0;
}

SHMET_W uint32_t
shmet_impl_opt(uint32_t v, uint32_t def)
{
	return v ? v : def;
}

/* -EFBIG, with a message naming the limit, if a segment of `size` bytes
 * cannot be created under RLIMIT_FSIZE. */
SHMET_W int
shmet_impl_check_fsize(struct shmet_segment *seg, uint64_t size)
{
	struct rlimit rl;

	if (shmet_impl_fsize_ok(seg->fd, size) == 0)
		return 0;
	getrlimit(RLIMIT_FSIZE, &rl);
	return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EFBIG,
			       "cannot create segment %s of %llu bytes: the "
			       "file size limit (RLIMIT_FSIZE, ulimit -f) is "
			       "%llu bytes", seg->name,
			       (unsigned long long)size,
			       (unsigned long long)rl.rlim_cur);
}

/*
 * An initialiser's first write: the magic, at offset 0, before the file
 * grows any further and never cleared after.  A file at the name that is
 * neither empty nor starts with it was therefore never touched by an
 * initialiser (shmet_impl_claimable).
 */
SHMET_W int
shmet_impl_mark_ours(struct shmet_segment *seg)
{
	uint64_t magic = SHMET_MAGIC;

	if (pwrite(seg->fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic)
		return 0;
	return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON,
			       errno ? -errno : -EIO,
			       "cannot write to segment %s: %s", seg->name,
			       strerror(errno ? errno : EIO));
}

/*
 * 1 if the file at the name may be initialised: it is empty (a creator's
 * between O_EXCL and its first write, or one that died or was refused
 * there) or starts with the magic (an initialiser's, live or dead).
 * Anything else is not a segment, and is never rewritten: a typo in
 * SHMETRICS_SEGMENT must not destroy another application's file.
 */
SHMET_W int
shmet_impl_claimable(int fd)
{
	struct stat st;
	uint64_t magic = 0;

	if (fstat(fd, &st) < 0)
		return 0;
	if (st.st_size == 0)
		return 1;
	return pread(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
	       magic == SHMET_MAGIC;
}

/* Fill a zeroed metadata region; called with the init lock held. */
SHMET_W int
shmet_impl_initialise(struct shmet_segment *seg,
		      const struct shmet_options *o)
{
	struct shmet_seg_header g, *h;
	void *meta;
	int rc;

	memset((void *)&g, 0, sizeof g);
	rc = shmet_seg_geometry(
		&g, shmet_impl_opt(o->max_families, SHMET_DEFAULT_MAX_FAMILIES),
		shmet_impl_opt(o->max_series, SHMET_DEFAULT_MAX_SERIES),
		shmet_impl_opt(o->max_writers, SHMET_DEFAULT_MAX_WRITERS),
		shmet_impl_opt(o->cells_per_block,
			       SHMET_DEFAULT_CELLS_PER_BLOCK),
		shmet_impl_opt(o->string_bytes, SHMET_DEFAULT_STRING_BYTES),
		o->cpu_blocks ? o->cpu_blocks : shmet_impl_host_cpus());
	if (rc < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, rc,
				       "segment capacities out of range");
	rc = shmet_impl_check_fsize(seg, g.total_size);
	if (rc < 0)
		return rc;
	rc = shmet_impl_mark_ours(seg);
	if (rc < 0)
		return rc;
	if (ftruncate(seg->fd, (off_t)g.total_size) < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot size segment %s to %llu bytes: %s",
				       seg->name,
				       (unsigned long long)g.total_size,
				       strerror(errno));
	SHMET_POINT("create.sized");
	/*
	 * Reserve the metadata pages now: a write to a tmpfs page that cannot
	 * be allocated is SIGBUS, and the application must never see one.
	 */
	rc = shmet_impl_fallocate(seg->fd, 0, g.values_off);
	if (rc != 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENOMEM,
				       "cannot reserve %llu bytes of shared "
				       "memory for %s: %s",
				       (unsigned long long)g.values_off,
				       seg->name, strerror(rc));
	meta = mmap(NULL, (size_t)g.values_off, PROT_READ | PROT_WRITE,
		    MAP_SHARED, seg->fd, 0);
	if (meta == MAP_FAILED)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot map %s: %s", seg->name,
				       strerror(errno));
	/* A dead initialiser may have left anything behind; the magic stays
	 * (shmet_impl_mark_ours), and the copy below rewrites it as is. */
	memset((unsigned char *)meta + sizeof g.magic, 0,
	       (size_t)g.values_off - sizeof g.magic);
	h = (struct shmet_seg_header *)meta;
	g.magic = SHMET_MAGIC;
	g.layout_version = SHMET_LAYOUT_VERSION;
	g.header_size = SHMET_HEADER_SIZE;
	g.created_ns = shmet_impl_clock_ns(CLOCK_REALTIME);
	g.max_series_per_family = shmet_impl_opt(
		o->max_series_per_family, SHMET_DEFAULT_MAX_SERIES_PER_FAMILY);
	g.series_ttl_s = o->series_ttl_s;
	memcpy((void *)h, (const void *)&g, sizeof g);
	SHMET_POINT("create.filled");
	/* Pairs with the acquire load in shmet_impl_is_ready(). */
	SHMET_AT(store_explicit)(&h->init_state, SHMET_INIT_READY,
				 SHMET_MO(release));
	SHMET_POINT("create.ready");
	munmap(meta, (size_t)g.values_off);
	return 0;
}

SHMET_W int
shmet_impl_is_ready(int fd)
{
	struct stat st;
	struct shmet_seg_header *h;
	int ready;

	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < SHMET_HEADER_SIZE)
		return 0;
	h = (struct shmet_seg_header *)mmap(NULL, SHMET_HEADER_SIZE, PROT_READ,
					    MAP_SHARED, fd, 0);
	if ((void *)h == MAP_FAILED)
		return 0;
	/* Pairs with the release store at the end of initialisation. */
	ready = SHMET_AT(load_explicit)(&h->init_state, SHMET_MO(acquire)) ==
		SHMET_INIT_READY;
	munmap((void *)h, SHMET_HEADER_SIZE);
	return ready;
}

/*
 * Whoever holds the init lock while the segment is not ready initialises
 * it.  The creator usually wins the lock first; if it died mid-way its lock
 * is gone and a waiter takes over.  A file that no initialiser ever wrote
 * (shmet_impl_claimable) is refused, locked or not, and left as it is.
 */
SHMET_W int
shmet_impl_wait_ready(struct shmet_segment *seg,
		      const struct shmet_options *o)
{
	uint64_t deadline = shmet_now_ns() +
		(uint64_t)shmet_impl_opt(o->init_timeout_ms,
					 SHMET_DEFAULT_INIT_TIMEOUT_MS) *
		UINT64_C(1000000);

	for (;;) {
		if (shmet_impl_is_ready(seg->fd))
			return 0;       /* shmet_impl_map checks it is ours */
		if (!shmet_impl_claimable(seg->fd))
			return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON,
					       -EPROTO,
					       "%s exists and is not a shmetrics "
					       "segment: refusing to attach or "
					       "rewrite it", seg->name);
		if (!(o->flags & SHMET_OPEN_NO_CREATE) &&
		    shmet_seg_lock(seg->fd, SHMET_LOCK_INIT, F_WRLCK) == 0) {
			int rc = 0;

			/* Under the lock: nobody initialises it meanwhile. */
			if (!shmet_impl_is_ready(seg->fd))
				rc = shmet_impl_claimable(seg->fd)
					     ? shmet_impl_initialise(seg, o)
					     : 1;
			shmet_seg_lock(seg->fd, SHMET_LOCK_INIT, F_UNLCK);
			if (rc <= 0)
				return rc;
			continue;       /* changed under us: refuse above */
		}
		if (shmet_now_ns() > deadline)
			return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON,
					       -ETIMEDOUT,
					       "segment %s was not initialised "
					       "in time", seg->name);
		shmet_impl_sleep_ms(1);
	}
}

/*
 * An existing segment is attached only if this user owns it and nobody
 * beyond the mode asked for may write it (as OpenSSH's StrictModes
 * checks): otherwise another local user who created the name first would
 * read and rewrite this process's metrics.
 */
SHMET_W int
shmet_impl_check_owner(struct shmet_segment *seg, mode_t mode)
{
	struct stat st;
	int rc = 0;

	if (fstat(seg->fd, &st) < 0)
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				     "cannot stat %s: %s", seg->name,
				     strerror(errno));
	else if (shmet_name_check_fd(seg->name, seg->fd) < 0)
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EXDEV,
				     "segment %s is not a file on a tmpfs: "
				     "refusing to attach", seg->name);
	else if (st.st_uid != geteuid())
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPERM,
				     "segment %s belongs to uid %u, not to "
				     "this user (uid %u): refusing to attach",
				     seg->name, (unsigned)st.st_uid,
				     (unsigned)geteuid());
	else if (st.st_mode & 0022 & ~mode)
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPERM,
				     "segment %s has mode %04o, writable by "
				     "more users than mode %04o allows: "
				     "refusing to attach", seg->name,
				     (unsigned)(st.st_mode & 07777),
				     (unsigned)mode);
	if (rc < 0) {
		close(seg->fd);
		seg->fd = -1;
	}
	return rc;
}

SHMET_W int
shmet_impl_open_fd(struct shmet_segment *seg, const struct shmet_options *o)
{
	mode_t mode = (mode_t)shmet_impl_opt(o->mode, SHMET_DEFAULT_MODE);

	for (int tries = 0; tries < 100; tries++) {
		if (!(o->flags & SHMET_OPEN_NO_CREATE)) {
			seg->fd = shmet_name_open(seg->name,
						  O_RDWR | O_CREAT | O_EXCL,
						  mode);
			if (seg->fd >= 0) {
				/* The umask must not narrow an explicit mode;
				 * a group lets e.g. an unprivileged exporter
				 * read the segment. */
				int bad = shmet_name_check_fd(seg->name,
							      seg->fd);

				if (bad < 0) {
					close(seg->fd);
					shmet_name_unlink(seg->name);
					seg->fd = -1;
					return shmet_impl_fail(
						seg, SHMET_IMPL_NO_REASON, bad,
						"segment %s is not a file on "
						"a tmpfs", seg->name);
				}
				if (fchmod(seg->fd, mode) < 0 ||
				    ((o->flags & SHMET_OPEN_SET_GROUP) &&
				     fchown(seg->fd, (uid_t)-1,
					    (gid_t)o->group) < 0)) {
					int rc = -errno;

					close(seg->fd);
					shmet_name_unlink(seg->name);
					seg->fd = -1;
					return shmet_impl_fail(
						seg, SHMET_IMPL_NO_REASON, rc,
						"cannot set mode or group of "
						"%s: %s", seg->name,
						strerror(-rc));
				}
				SHMET_POINT("create.opened");
				return 0;
			}
			if (errno != EEXIST)
				break;
		}
		seg->fd = shmet_name_open(seg->name, O_RDWR, 0);
		if (seg->fd >= 0)
			return shmet_impl_check_owner(seg, mode);
		if (errno != ENOENT || (o->flags & SHMET_OPEN_NO_CREATE))
			break;
		/* Unlinked between our two calls: try again. */
	}
	/* EINVAL: name.h found something other than a file (a FIFO
	 * anyone could have made in /dev/shm) */
	return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
			       "cannot open shared memory segment %s: %s",
			       seg->name, errno == EINVAL ? "not a regular file"
							  : strerror(errno));
}

/*
 * Open (creating it if needed) the claim file "<segment>.claim" that
 * arbitrates writer slots (lock.h).  Only this user may open it: its mode
 * is 0600 whatever the segment's, so readers of a group-readable segment
 * cannot lock its bytes.
 */
SHMET_W int
shmet_impl_open_claim(struct shmet_segment *seg)
{
	char name[sizeof seg->name];
	size_t len = strlen(seg->name);
	struct stat st;

	if (len + sizeof SHMET_CLAIM_SUFFIX > sizeof name)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENAMETOOLONG,
				       "segment name %s is too long for its "
				       "claim file", seg->name);
	memcpy(name, seg->name, len);
	memcpy(name + len, SHMET_CLAIM_SUFFIX, sizeof SHMET_CLAIM_SUFFIX);
	seg->claim_fd = shmet_name_open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (seg->claim_fd < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot open the claim file %s: %s",
				       name, strerror(errno));
	if (fstat(seg->claim_fd, &st) < 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 0077)) {
		close(seg->claim_fd);
		seg->claim_fd = -1;
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPERM,
				       "claim file %s must belong to this user "
				       "with mode 0600: refusing to attach",
				       name);
	}
	return 0;
}

/*
 * 0 if h (a copy of the header) is one this writer speaks, consistent
 * with itself and with the file's size, else -EPROTO with the reason.
 */
SHMET_W int
shmet_impl_check_header(struct shmet_segment *seg,
			const struct shmet_seg_header *h, uint64_t size)
{
	uint64_t got, want;
	int ours = h->magic == SHMET_MAGIC;

	if (ours && h->layout_version != SHMET_LAYOUT_VERSION)
		return shmet_impl_fail(
			seg, SHMET_IMPL_NO_REASON, -EPROTO,
			"%s has layout version %u; this writer speaks %u",
			seg->name, h->layout_version, SHMET_LAYOUT_VERSION);
	if (!ours)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       "%s is not a shmetrics segment",
				       seg->name);
	if (h->header_size != SHMET_HEADER_SIZE ||
	    shmet_seg_geometry_mismatch(h, &got, &want) ||
	    h->total_size != size)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       "%s has an inconsistent header",
				       seg->name);
	return 0;
}

static void shmet_impl_map_cpus(struct shmet_segment *seg,
				const struct shmet_seg_header *h);

/*
 * Map what the writer reads through seg->base: the metadata, right after
 * it the retired block (shmet_impl_retired), which takeovers fold into,
 * and after that the fallback block (shmet_impl_fallback_cells, where
 * counter and histogram handles fall back, fallback.c).  Not the whole
 * segment: its value blocks are most of it (1 GiB
 * with the default capacities), and each writer maps only its own, so
 * that a process's address space (RLIMIT_AS, uWSGI's limit-as) pays for
 * the metadata and a few blocks, not for every writer's.
 */
SHMET_W int
shmet_impl_map(struct shmet_segment *seg)
{
	struct shmet_seg_header h;
	struct stat st;
	unsigned char *p;
	uint64_t retired, fallback;
	size_t len;
	int rc;

	if (fstat(seg->fd, &st) < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot stat %s: %s", seg->name,
				       strerror(errno));
	if ((uint64_t)st.st_size < SHMET_HEADER_SIZE ||
	    pread(seg->fd, (void *)&h, sizeof h, 0) != (ssize_t)sizeof h)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       "%s is too small to be a segment",
				       seg->name);
	rc = shmet_impl_check_header(seg, &h, (uint64_t)st.st_size);
	if (rc < 0)
		return rc;
	len = (size_t)(h.values_off + 2 * h.block_stride);
	retired = h.values_off +
		  (uint64_t)shmet_seg_retired_block(&h) * h.block_stride;
	fallback = h.values_off +
		   (uint64_t)shmet_seg_fallback_block(&h) * h.block_stride;
	p = (unsigned char *)mmap(NULL, len, PROT_READ | PROT_WRITE,
				  MAP_SHARED, seg->fd, 0);
	if ((void *)p != MAP_FAILED &&
	    (mmap(p + h.values_off, (size_t)h.block_stride,
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, seg->fd,
		  (off_t)retired) == MAP_FAILED ||
	     mmap(p + h.values_off + h.block_stride, (size_t)h.block_stride,
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, seg->fd,
		  (off_t)fallback) == MAP_FAILED)) {
		rc = errno;
		munmap(p, len);
		p = (unsigned char *)MAP_FAILED;
		errno = rc;
	}
	if ((void *)p == MAP_FAILED)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot map %s: %s", seg->name,
				       strerror(errno));
	seg->base = p;
	seg->size = len;
	seg->hdr = (struct shmet_seg_header *)(void *)p;
	shmet_impl_map_cpus(seg, &h);
	/* The mapping's layout follows the copy: the header it maps must
	 * still say the same (a writer of this user may rewrite it). */
	if (seg->hdr->values_off != h.values_off ||
	    seg->hdr->block_stride != h.block_stride ||
	    seg->hdr->max_writers != h.max_writers) {
		munmap(p, len);
		seg->base = NULL;
		seg->hdr = NULL;
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       "the header of %s changed while it was "
				       "attached", seg->name);
	}
	return 0;
}

/*
 * Map the per-CPU blocks, where every counter and histogram handle of
 * this process counts (percpu.c): one mapping of cpu_blocks blocks,
 * address space only (MAP_NORESERVE; pages are reserved per registration
 * and are the segment's).  Without it (no address space left), handles
 * count in the process block with atomics: slower, as exact.
 */
static void
shmet_impl_map_cpus(struct shmet_segment *seg,
		    const struct shmet_seg_header *h)
{
	size_t len = (size_t)h->cpu_blocks * (size_t)h->block_stride;
	void *p;

	seg->cpus = NULL;
	seg->cpus_size = 0;
	if (len == 0)
		return;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_NORESERVE, seg->fd, (off_t)h->cpu_off);
	if (p == MAP_FAILED)
		return;
	seg->cpus = (unsigned char *)p;
	seg->cpus_size = len;
}

static int
shmet_open_steps(struct shmet_segment *seg, const struct shmet_options *opts)
{
	struct shmet_options none;
	int rc;

	memset(&none, 0, sizeof none);
	if (!opts)
		opts = &none;
	memset((void *)seg, 0, sizeof *seg);
	seg->fd = -1;
	seg->claim_fd = -1;
	seg->slot = UINT32_MAX;
	seg->spare_series = UINT32_MAX;
	seg->spare_family = UINT32_MAX;
	seg->flags = opts->flags;
	rc = shmet_impl_resolve_name(seg, opts->name);
	if (rc == 0)
		rc = shmet_impl_open_fd(seg, opts);
	if (rc == 0)
		rc = shmet_impl_wait_ready(seg, opts);
	if (rc == 0)
		rc = shmet_impl_map(seg);
	/* even without a slot: the creator makes the claim file before any
	 * other user could take the name */
	if (rc == 0)
		rc = shmet_impl_open_claim(seg);
	if (rc == 0)
		shmet_impl_registrants_open(seg);
	if (rc == 0 && !(opts->flags & SHMET_OPEN_NO_WRITER)) {
		/* attached first so that a fallback warning is counted, and
		 * on the fork list before it has a block: a fork in between
		 * gives the child a slot of its own too */
		seg->attached = 1;
		shmet_impl_forklist_add(seg);
		rc = shmet_impl_claim_reporting(seg);
		if (rc < 0)
			shmet_impl_forklist_remove(seg);
	}
	if (rc < 0) {
		if (seg->base)
			munmap(seg->base, seg->size);
		if (seg->fd >= 0)
			close(seg->fd);
		if (seg->claim_fd >= 0)
			close(seg->claim_fd);
		seg->claim_fd = -1;
		seg->base = NULL;
		seg->hdr = NULL;
		seg->fd = -1;
		seg->attached = 0;
		shmet_impl_registrants_close(seg);
		return rc;
	}
	if (!seg->attached)
		shmet_impl_forklist_add(seg);
	seg->attached = 1;
	return 0;
}

/* Not a cancellation point (docs/DESIGN.md, "Cancellation"). */
int
shmet_open(struct shmet_segment *seg, const struct shmet_options *opts)
{
	int old = shmet_impl_cancel_off();
	int ret = shmet_open_steps(seg, opts);

	shmet_impl_cancel_restore(old);
	return ret;
}

static int
shmet_unlink_steps(const char *name)
{
	struct shmet_segment tmp;
	int rc;

	memset((void *)&tmp, 0, sizeof tmp);
	rc = shmet_impl_resolve_name(&tmp, name);
	if (rc < 0)
		return rc;
	rc = shmet_name_unlink(tmp.name) < 0 ? -errno : 0;
	if (strlen(tmp.name) + sizeof SHMET_CLAIM_SUFFIX <= sizeof tmp.name) {
		strcat(tmp.name, SHMET_CLAIM_SUFFIX);
		shmet_name_unlink(tmp.name);    /* may not exist: writers make it */
	}
	return rc;
}

/* Not a cancellation point (docs/DESIGN.md, "Cancellation"). */
int
shmet_unlink(const char *name)
{
	int old = shmet_impl_cancel_off();
	int ret = shmet_unlink_steps(name);

	shmet_impl_cancel_restore(old);
	return ret;
}

/* ---------------------------------------------------------------- */
