/*
 * Following a segment by name: the one place that opens a segment for a
 * consumer (the exporter, the Python extension, shmetrics-top, ctl) and
 * keeps it current.
 *
 * A follower holds one view: a read-only mapping and an index of it.  A
 * refresh
 *   - with SHMET_FOLLOW_CHECK_NAME, looks at the object now behind the
 *     name: another object (destroyed and recreated, renamed over) or
 *     another size (cut short or grown under the mapping) lets the view
 *     go, and the name is opened again;
 *   - opens the name when there is no view: the identity, owner and size
 *     recorded are those of the file the reader mapped (fstat of its
 *     descriptor), never of a second look at the name, which can be
 *     swapped in between; a segment whose creator has not finished is
 *     -EAGAIN, so that callers wait for it quietly;
 *   - rebuilds the index when the segment's generation moved
 *     (shmet_index_current).
 *
 * Views are reference counted so that a consumer can keep serving an old
 * one (the exporter's RCU readers) while the follower moves on.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmetrics/layout.h>
#include <shmetrics/name.h>

#include "reader-private.h"

/* A reader shared by the views of one mapped object. */
struct mapping {
	struct shmet_reader *reader;
	atomic_uint refs;
};

struct shmet_view {
	struct mapping *map;
	struct shmet_index *index;
	atomic_uint refs;
};

struct shmet_follow {
	char name[SHMET_NAME_MAX + 1];
	long owner;                     /* required uid, or -1 */
	struct shmet_view *view;        /* NULL: open before use */
	dev_t dev;                      /* of the mapped file */
	ino_t ino;
	off_t size;
};

static void
mapping_put(struct mapping *m)
{
	/* Release: this holder's reads of the mapping happen before the
	 * decrement; acquire: the last holder sees them all before it
	 * unmaps. */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) ==
	    1) {
		shmet_reader_close(m->reader);
		free(m);
	}
}

SHMET_EXPORT struct shmet_view *
shmet_view_ref(struct shmet_view *v)
{
	/* Relaxed: the caller already holds a reference, so the view is
	 * alive and nothing is published by the increment. */
	if (v)
		atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	return v;
}

SHMET_EXPORT void
shmet_view_unref(struct shmet_view *v)
{
	/* acq_rel as in mapping_put: every holder's reads of the index
	 * happen before the last one frees it. */
	if (v && atomic_fetch_sub_explicit(&v->refs, 1,
					   memory_order_acq_rel) == 1) {
		shmet_index_free(v->index);
		mapping_put(v->map);
		free(v);
	}
}

SHMET_EXPORT const struct shmet_reader *
shmet_view_reader(const struct shmet_view *v)
{
	return v->map->reader;
}

SHMET_EXPORT const struct shmet_index *
shmet_view_index(const struct shmet_view *v)
{
	return v->index;
}

SHMET_EXPORT int
shmet_follow_new(const char *name, long owner, struct shmet_follow **out)
{
	struct shmet_follow *f;

	*out = NULL;
	name = shmet_name_resolve(name);
	if (shmet_name_check(name) < 0)
		return -EINVAL;
	f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	snprintf(f->name, sizeof f->name, "%s", name);
	f->owner = owner;
	*out = f;
	return 0;
}

SHMET_EXPORT void
shmet_follow_reset(struct shmet_follow *f)
{
	shmet_view_unref(f->view);
	f->view = NULL;
}

SHMET_EXPORT void
shmet_follow_free(struct shmet_follow *f)
{
	if (!f)
		return;
	shmet_follow_reset(f);
	free(f);
}

SHMET_EXPORT const char *
shmet_follow_name(const struct shmet_follow *f)
{
	return f->name;
}

SHMET_EXPORT struct shmet_view *
shmet_follow_view(const struct shmet_follow *f)
{
	return f->view;
}

/* 1 if the object now behind the name is the one mapped, same size. */
static int
still_there(const struct shmet_follow *f)
{
	struct stat st;
	int fd = shmet_name_open(f->name, O_RDONLY, 0);
	int ok;

	if (fd < 0)
		return 0;
	ok = fstat(fd, &st) == 0 && st.st_dev == f->dev &&
	     st.st_ino == f->ino && st.st_size == f->size;
	close(fd);
	return ok;
}

/*
 * Is the object behind the name a segment whose creator has not finished
 * (too short for a header yet, or magic still 0)?  shmet_reader_open
 * already says -EAGAIN for a header with the magic but not READY; before
 * the magic is written the file is all zeros, or shorter than a header,
 * and is waited for the same way rather than reported as foreign.
 */
static int
being_created(const char *name)
{
	uint64_t magic = 0;
	int fd = shmet_name_open(name, O_RDONLY, 0);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = pread(fd, &magic, sizeof magic,
		  offsetof(struct shmet_seg_header, magic));
	close(fd);
	return n < (ssize_t)sizeof magic || magic == 0;
}

static int
open_view(struct shmet_follow *f, char *err, size_t errlen)
{
	struct shmet_reader *r;
	struct mapping *m;
	struct stat st;
	int rc;

	rc = shmet_reader_open(f->name, &r, err, errlen);
	if (rc < 0) {
		/* err keeps the reader's words ("bad magic"): a one-off
		 * look (ctl, top --once) reports them; a follower that waits
		 * (the exporter) says "being created" by the code. */
		if (rc != -ENOENT && rc != -EAGAIN && being_created(f->name))
			rc = -EAGAIN;
		return rc;
	}
	/*
	 * The identity and owner of the file the reader mapped, not of a
	 * second look at the name: the name can be swapped in between (a
	 * rename in a shared directory), and the checked file must be the
	 * served one.  /dev/shm is world-writable: without an owner, anyone
	 * can create the name before the application does.
	 */
	rc = shmet_reader_stat(r, &st);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", f->name, strerror(-rc));
		goto fail;
	}
	if (f->owner >= 0 && st.st_uid != (uid_t)f->owner) {
		snprintf(err, errlen, "%s belongs to uid %u, not the owner "
			 "%ld", f->name, (unsigned)st.st_uid, f->owner);
		rc = -EPERM;
		goto fail;
	}
	m = calloc(1, sizeof *m);
	f->view = calloc(1, sizeof *f->view);
	if (!m || !f->view) {
		free(m);
		free(f->view);
		f->view = NULL;
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	m->reader = r;
	atomic_init(&m->refs, 1);
	f->view->map = m;
	atomic_init(&f->view->refs, 1);
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	return 0;
fail:
	shmet_reader_close(r);
	return rc;
}

/* A new view of the same mapping with an index of its generation now. */
static int
rebuild(struct shmet_follow *f, char *err, size_t errlen)
{
	struct shmet_view *old = f->view, *v;
	struct shmet_index *idx;
	int rc;

	rc = shmet_index_build(old->map->reader, &idx, err, errlen);
	if (rc < 0)
		return rc;
	if (!old->index) {              /* just opened: nobody holds it */
		old->index = idx;
		return 0;
	}
	v = calloc(1, sizeof *v);
	if (!v) {
		shmet_index_free(idx);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v->map = old->map;
	/* Relaxed: the follower holds old, so the mapping is alive. */
	atomic_fetch_add_explicit(&v->map->refs, 1, memory_order_relaxed);
	v->index = idx;
	atomic_init(&v->refs, 1);
	f->view = v;
	shmet_view_unref(old);
	return 0;
}

SHMET_EXPORT int
shmet_follow_refresh(struct shmet_follow *f, unsigned flags, char *err,
		     size_t errlen)
{
	int reopened = 0, rc;

	if (err && errlen)
		err[0] = '\0';
	if (f->view && (flags & SHMET_FOLLOW_CHECK_NAME) && !still_there(f))
		shmet_follow_reset(f);
	if (!f->view) {
		rc = open_view(f, err, errlen);
		if (rc < 0)
			return rc;
		reopened = 1;
	}
	if (f->view->index &&
	    shmet_index_current(f->view->index, f->view->map->reader))
		return SHMET_FOLLOW_SAME;
	rc = rebuild(f, err, errlen);
	if (rc < 0) {
		/* A view without an index is of no use to anyone: the next
		 * refresh opens again.  An older view stays served. */
		if (reopened)
			shmet_follow_reset(f);
		return rc;
	}
	return reopened ? SHMET_FOLLOW_REOPENED : SHMET_FOLLOW_REBUILT;
}
