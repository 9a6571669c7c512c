/*
 * render(name=None, format='text'): one scrape of a segment through the
 * reader library (lib/shmetrics-reader.h), for the Flask blueprint and
 * for tests.  The GIL is released while the segment is read and rendered.
 *
 * The read-only mapping and its index are kept between calls, as the
 * exporter keeps its view: the index (most of a scrape's cost at 10k
 * series) is rebuilt only when the segment's generation moves, and the
 * mapping is reopened when the object behind the name is another one or
 * changed size (destroyed, replaced, cut short).  One cached view: a call
 * takes it out of the slot under the GIL and owns it while the GIL is
 * released; a call that finds the slot empty (another is rendering)
 * builds its own, and the last one back keeps its view.  No lock, so
 * nothing to break in a fork child.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics-reader.h>
#include <shmetrics/layout.h>
#include <shmetrics/name.h>

#include "shmetrics-python.h"

enum format { F_TEXT, F_OPENMETRICS, F_JSON, F_HEALTH };

struct view {
	char name[SHMET_NAME_MAX + 1];
	dev_t dev;
	ino_t ino;
	off_t size;
	struct shmet_reader *reader;
	struct shmet_index *index;      /* NULL: build before use */
};

static struct view *cached;             /* guarded by the GIL */

static void
view_free(struct view *v)
{
	if (!v)
		return;
	if (v->index)
		shmet_index_free(v->index);
	shmet_reader_close(v->reader);
	free(v);
}

/* Identity and size of the object now behind name; -errno if none. */
static int
identity(const char *name, dev_t *dev, ino_t *ino, off_t *size)
{
	struct stat st;
	int fd = shmet_name_open(name, O_RDONLY, 0);
	int rc;

	if (fd < 0)
		return -errno;
	rc = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	*dev = st.st_dev;
	*ino = st.st_ino;
	*size = st.st_size;
	return 0;
}

/*
 * *vp made current for name: kept if the same object of the same size
 * with an index of the current generation; else its index rebuilt, or
 * the whole view reopened.  On failure *vp is freed and NULL.
 */
static int
view_refresh(struct view **vp, const char *name, char *err, size_t errlen)
{
	struct view *v = *vp;
	dev_t dev = 0;
	ino_t ino = 0;
	off_t size = 0;
	int rc = identity(name, &dev, &ino, &size);

	if (rc < 0) {
		snprintf(err, errlen, "cannot open segment %s: %s", name,
			 strerror(-rc));
		goto fail;
	}
	if (v && (strcmp(v->name, name) != 0 || v->dev != dev ||
		  v->ino != ino || v->size != size)) {
		view_free(v);
		v = NULL;
	}
	if (!v) {
		struct stat st;

		v = calloc(1, sizeof *v);
		if (!v) {
			rc = -ENOMEM;
			goto fail;
		}

		snprintf(v->name, sizeof v->name, "%s", name);
		rc = shmet_reader_open(name, &v->reader, err, errlen);
		if (rc < 0)
			goto fail;
		/* The identity of the file mapped, not of the look at the
		 * name above: the name may have moved in between. */
		rc = shmet_reader_stat(v->reader, &st);
		if (rc < 0)
			goto fail;
		v->dev = st.st_dev;
		v->ino = st.st_ino;
		v->size = st.st_size;
	}
	if (v->index && !shmet_index_current(v->index, v->reader)) {
		shmet_index_free(v->index);
		v->index = NULL;
	}
	if (!v->index) {
		rc = shmet_index_build(v->reader, &v->index, err, errlen);
		if (rc < 0)
			goto fail;
	}
	*vp = v;
	return 0;
fail:
	view_free(v);
	*vp = NULL;
	return rc;
}

static int
scrape(struct view **vp, const char *name, enum format f,
       struct shmet_buf *b, char *err, size_t errlen)
{
	struct shmet_values *v = NULL;
	struct shmet_reader_info info;
	struct shmet_index *idx;
	struct timespec ts;
	int rc;

	rc = view_refresh(vp, name, err, errlen);
	if (rc < 0)
		return rc;
	idx = (*vp)->index;
	if (f == F_HEALTH) {
		rc = shmet_reader_info((*vp)->reader, &info);
		if (rc == 0)
			rc = shmet_render_health(idx, &info, b);
		goto out;
	}
	v = shmet_values_new();
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	rc = shmet_values_collect((*vp)->reader, idx, v);
	if (rc < 0) {
		/* -ESTALE: the file shrank under us; reopen next time */
		view_free(*vp);
		*vp = NULL;
		snprintf(err, errlen, "collecting values failed: %s",
			 strerror(-rc));
		goto out;
	}
	switch (f) {
	case F_TEXT:
		rc = shmet_render_text(idx, v, b);
		break;
	case F_OPENMETRICS:
		rc = shmet_render_openmetrics(idx, v, b);
		break;
	default:
		clock_gettime(CLOCK_REALTIME, &ts);
		rc = shmet_render_json(idx, v,
				       (uint64_t)ts.tv_sec * 1000000000u +
				       (uint64_t)ts.tv_nsec, b);
		break;
	}
out:
	if (rc == -1)
		rc = -ENOMEM;
	if (rc < 0 && !err[0])
		snprintf(err, errlen, "%s", strerror(-rc));
	shmet_values_free(v);
	return rc;
}

/*
 * The cached view, current for name, for collect.c: taken out of the slot
 * under the GIL (the caller owns it until shmpy_view_put), refreshed
 * without it.  NULL with an exception set on failure.
 */
struct view *
shmpy_view_get(const char *name)
{
	char err[SHMET_READER_ERRLEN] = "";
	struct view *mine = cached;
	int rc;

	cached = NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = view_refresh(&mine, name, err, sizeof err);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		if (rc == -ENOMEM && !err[0])
			return PyErr_NoMemory(), NULL;
		shmpy_oserror(-rc, err[0] ? err : strerror(-rc));
		return NULL;
	}
	return mine;
}

/* Give a view back (the GIL held): kept if the slot is empty. */
void
shmpy_view_put(struct view *v)
{
	if (!cached)
		cached = v;
	else
		view_free(v);
}

const struct shmet_reader *
shmpy_view_reader(const struct view *v)
{
	return v->reader;
}

const struct shmet_index *
shmpy_view_index(const struct view *v)
{
	return v->index;
}

PyObject *
shmpy_render(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "name", "format", NULL };
	static const char *const names[] = { "text", "openmetrics", "json",
					     "health" };
	char err[SHMET_READER_ERRLEN] = "";
	const char *name = NULL, *fmt = "text";
	struct shmet_buf b = { NULL, 0, 0, 0 };
	PyObject *oname = Py_None, *ofmt = NULL, *out;
	enum format f = F_TEXT;
	struct view *mine;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:render", kwlist,
					 &oname, &ofmt))
		return NULL;
	if ((oname != Py_None &&
	     !(name = shmpy_utf8(oname, "segment name"))) ||
	    (ofmt && !(fmt = shmpy_utf8(ofmt, "format"))))
		return NULL;
	while (f <= F_HEALTH && strcmp(names[f], fmt) != 0)
		f++;
	if (f > F_HEALTH) {
		PyErr_Format(PyExc_ValueError, "unknown format '%s'", fmt);
		return NULL;
	}
	if (!name || !*name)
		name = getenv(SHMET_ENV_SEGMENT);
	if (!name || !*name)
		name = SHMET_DEFAULT_SEGMENT;
	if (shmet_name_check(name) < 0) {
		PyErr_Format(PyExc_ValueError, "invalid segment name '%.200s'",
			     name);
		return NULL;
	}
	mine = cached;          /* ours alone while the GIL is released */
	cached = NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = scrape(&mine, name, f, &b, err, sizeof err);
	Py_END_ALLOW_THREADS
	if (!cached) {
		cached = mine;
	} else {
		view_free(mine);
	}
	if (rc < 0 || b.failed) {
		shmet_buf_free(&b);
		if (rc == -ENOMEM || b.failed)
			return PyErr_NoMemory();
		return shmpy_oserror(-rc, err);
	}
	out = PyBytes_FromStringAndSize(b.data ? b.data : "",
					(Py_ssize_t)b.len);
	shmet_buf_free(&b);
	return out;
}
