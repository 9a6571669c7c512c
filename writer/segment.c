/*
 * shmetrics writer: Segment creation, attach, close and unlink.
 */
#include "writer-private.h"

/* Creation and attach                                              */

SHMET_W int
shmet_impl_resolve_name(struct shmet_segment *seg, const char *name)
{
	size_t len;

	if (!name)
		name = getenv(SHMET_ENV_SEGMENT);
	if (!name || !*name)
		name = SHMET_DEFAULT_SEGMENT;
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
	if (ftruncate(seg->fd, (off_t)g.total_size) < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot size segment %s to %llu bytes: %s",
				       seg->name,
				       (unsigned long long)g.total_size,
				       strerror(errno));
	/*
	 * Reserve the metadata pages now: a write to a tmpfs page that cannot
	 * be allocated is SIGBUS, and the application must never see one.
	 */
	rc = posix_fallocate(seg->fd, 0, (off_t)g.values_off);
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
	/* A dead initialiser may have left anything behind. */
	memset(meta, 0, (size_t)g.values_off);
	h = (struct shmet_seg_header *)meta;
	g.magic = SHMET_MAGIC;
	g.layout_version = SHMET_LAYOUT_VERSION;
	g.header_size = SHMET_HEADER_SIZE;
	g.created_ns = shmet_impl_clock_ns(CLOCK_REALTIME);
	g.max_series_per_family = shmet_impl_opt(
		o->max_series_per_family, SHMET_DEFAULT_MAX_SERIES_PER_FAMILY);
	memcpy((void *)h, (const void *)&g, sizeof g);
	/* Pairs with the acquire load in shmet_impl_is_ready(). */
	SHMET_AT(store_explicit)(&h->init_state, SHMET_INIT_READY,
				 SHMET_MO(release));
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

SHMET_W void
shmet_impl_sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/*
 * Whoever holds the init lock while the segment is not ready initialises
 * it.  The creator usually wins the lock first; if it died mid-way its lock
 * is gone and a waiter takes over.
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
			return 0;
		if (!(o->flags & SHMET_OPEN_NO_CREATE) &&
		    shmet_seg_lock(seg->fd, SHMET_LOCK_INIT, F_WRLCK) == 0) {
			int rc = 0;

			if (!shmet_impl_is_ready(seg->fd))
				rc = shmet_impl_initialise(seg, o);
			shmet_seg_lock(seg->fd, SHMET_LOCK_INIT, F_UNLCK);
			return rc;
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

SHMET_W int
shmet_impl_map(struct shmet_segment *seg)
{
	struct stat st;
	uint64_t got, want;
	void *p;

	if (fstat(seg->fd, &st) < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot stat %s: %s", seg->name,
				       strerror(errno));
	if ((uint64_t)st.st_size < SHMET_HEADER_SIZE)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       "%s is too small to be a segment",
				       seg->name);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 seg->fd, 0);
	if (p == MAP_FAILED)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot map %s: %s", seg->name,
				       strerror(errno));
	seg->base = (unsigned char *)p;
	seg->size = (size_t)st.st_size;
	seg->hdr = (struct shmet_seg_header *)p;
	if (seg->hdr->magic != SHMET_MAGIC ||
	    seg->hdr->layout_version != SHMET_LAYOUT_VERSION ||
	    seg->hdr->header_size != SHMET_HEADER_SIZE ||
	    shmet_seg_geometry_mismatch(seg->hdr, &got, &want) ||
	    seg->hdr->total_size != (uint64_t)st.st_size) {
		uint32_t version = seg->hdr->layout_version;
		int ours = seg->hdr->magic == SHMET_MAGIC;

		munmap(p, seg->size);
		seg->base = NULL;
		seg->hdr = NULL;
		if (ours && version != SHMET_LAYOUT_VERSION)
			return shmet_impl_fail(
				seg, SHMET_IMPL_NO_REASON, -EPROTO,
				"%s has layout version %u; this writer speaks %u",
				seg->name, version, SHMET_LAYOUT_VERSION);
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       ours ? "%s has an inconsistent header"
					    : "%s is not a shmetrics segment",
				       seg->name);
	}
	return 0;
}

int
shmet_open(struct shmet_segment *seg, const struct shmet_options *opts)
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
		return rc;
	}
	if (!seg->attached)
		shmet_impl_forklist_add(seg);
	seg->attached = 1;
	return 0;
}

void
shmet_close(struct shmet_segment *seg)
{
	if (!seg->attached)
		return;
	shmet_impl_forklist_remove(seg);
	/* Only the process that took the slot releases it: a fork child
	 * whose own claim failed still points at its parent's slot. */
	if (seg->block && seg->slot < seg->hdr->max_writers &&
	    seg->owner_pid == getpid())
		/* Release: pairs with the acquire in take_slot and readers. */
		SHMET_AT(store_explicit)(
			&shmet_impl_writers(seg)[seg->slot].state,
			SHMET_WRITER_RELEASED, SHMET_MO(release));
	/*
	 * Replace both mappings with private zero pages rather than unmapping
	 * them: handles the application still holds stay safe and record
	 * nothing.
	 */
	if (seg->block)
		mmap((void *)seg->block, seg->block_size,
		     PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		     -1, 0);
	mmap(seg->base, seg->size, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	close(seg->fd);                 /* drops the liveness lock */
	if (seg->claim_fd >= 0)
		close(seg->claim_fd);   /* drops the claim */
	seg->fd = -1;
	seg->claim_fd = -1;
	seg->attached = 0;
}

int
shmet_unlink(const char *name)
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

/* ---------------------------------------------------------------- */
