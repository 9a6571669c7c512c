/*
 * render(name=None, format='text'): one scrape of a segment through the
 * reader library's follower and render entry (lib/shmetrics-reader.h),
 * for the Flask blueprint and for tests.  The GIL is released while the
 * segment is read and rendered.
 *
 * The follower (its mapping and index) is kept between calls, as the
 * exporter keeps its own: the index (most of a scrape's cost at 10k
 * series) is rebuilt only when the segment's generation moves, and the
 * mapping is reopened when the object behind the name is another one or
 * changed size.  One cached follower: a call takes it out of the slot
 * under the GIL and owns it while the GIL is released; a call that finds
 * the slot empty (another is rendering), or a follower of another name,
 * makes its own, and the last one back keeps its follower.  No lock, so
 * nothing to break in a fork child.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics-reader.h>
#include <shmetrics/name.h>

#include "shmetrics-python.h"

static struct shmet_follow *cached;     /* guarded by the GIL */

/* The cached follower if it follows name, else a new one (GIL held). */
static int
follower_take(const char *name, struct shmet_follow **out)
{
	struct shmet_follow *f = cached;

	cached = NULL;
	if (f && strcmp(shmet_follow_name(f), name) == 0) {
		*out = f;
		return 0;
	}
	shmet_follow_free(f);
	return shmet_follow_new(name, SHMET_FOLLOW_ANY_OWNER, out);
}

/* Give a follower back (the GIL held): kept if the slot is empty. */
void
shmpy_view_put(struct shmet_follow *f)
{
	if (!cached)
		cached = f;
	else
		shmet_follow_free(f);
}

/* A follower of name, current, the GIL held on entry and exit; NULL with
 * an exception set on failure. */
struct shmet_follow *
shmpy_view_get(const char *name)
{
	char err[SHMET_READER_ERRLEN] = "";
	struct shmet_follow *f;
	int rc;

	name = shmet_name_resolve(name);
	if (shmet_name_check(name) < 0) {
		PyErr_Format(PyExc_ValueError, "invalid segment name '%.200s'",
			     name);
		return NULL;
	}
	rc = follower_take(name, &f);
	if (rc < 0)
		return PyErr_NoMemory(), NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = shmet_follow_refresh(f, SHMET_FOLLOW_CHECK_NAME, err, sizeof err);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		shmpy_view_put(f);
		if (rc == -ENOMEM && !err[0])
			return PyErr_NoMemory(), NULL;
		shmpy_oserror(-rc, err[0] ? err : strerror(-rc));
		return NULL;
	}
	return f;
}

const struct shmet_reader *
shmpy_view_reader(const struct shmet_follow *f)
{
	return shmet_view_reader(shmet_follow_view(f));
}

const struct shmet_index *
shmpy_view_index(const struct shmet_follow *f)
{
	return shmet_view_index(shmet_follow_view(f));
}

PyObject *
shmpy_render(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "name", "format", NULL };
	const char *name = NULL, *fmt = "text";
	struct shmet_buf b = { NULL, 0, 0, 0 };
	PyObject *oname = Py_None, *ofmt = NULL, *out;
	struct shmet_values *vals;
	struct shmet_follow *f;
	int format, rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:render", kwlist,
					 &oname, &ofmt))
		return NULL;
	if ((oname != Py_None &&
	     !(name = shmpy_utf8(oname, "segment name"))) ||
	    (ofmt && !(fmt = shmpy_utf8(ofmt, "format"))))
		return NULL;
	format = shmet_format_parse(fmt);
	if (format < 0) {
		PyErr_Format(PyExc_ValueError, "unknown format '%s'", fmt);
		return NULL;
	}
	f = shmpy_view_get(name);
	if (!f)
		return NULL;
	vals = shmet_values_new();
	if (!vals) {
		shmpy_view_put(f);
		return PyErr_NoMemory();
	}
	Py_BEGIN_ALLOW_THREADS
	rc = shmet_render_page(shmet_follow_view(f), (enum shmet_format)format,
			       NULL, 0, vals, &b);
	/* -ESTALE: the file shrank under the read; reopen next time */
	if (rc < 0 && rc != -ENOMEM)
		shmet_follow_reset(f);
	Py_END_ALLOW_THREADS
	shmet_values_free(vals);
	shmpy_view_put(f);
	if (rc < 0) {
		shmet_buf_free(&b);
		if (rc == -ENOMEM)
			return PyErr_NoMemory();
		return shmpy_oserror(-rc, rc == -ESTALE
				     ? "collecting values failed: the segment "
				       "shrank while it was read"
				     : strerror(-rc));
	}
	out = PyBytes_FromStringAndSize(b.data ? b.data : "",
					(Py_ssize_t)b.len);
	shmet_buf_free(&b);
	return out;
}

/* unhealthy(reason) -> bytes: the health document of no usable segment,
 * the exporter's (lib/page.c). */
PyObject *
shmpy_unhealthy(PyObject *self, PyObject *arg)
{
	struct shmet_buf b = { NULL, 0, 0, 0 };
	const char *reason = shmpy_utf8(arg, "reason");
	PyObject *out;

	if (!reason)
		return NULL;
	if (shmet_render_unhealthy(reason, &b) < 0) {
		shmet_buf_free(&b);
		return PyErr_NoMemory();
	}
	out = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.len);
	shmet_buf_free(&b);
	return out;
}

/* content_type(format) -> str: the render entry's (lib/page.c). */
PyObject *
shmpy_content_type(PyObject *self, PyObject *arg)
{
	const char *fmt = shmpy_utf8(arg, "format");
	int format;

	if (!fmt)
		return NULL;
	format = shmet_format_parse(fmt);
	if (format < 0)
		return PyErr_Format(PyExc_ValueError, "unknown format '%s'",
				    fmt);
	return PyUnicode_FromString(
		shmet_format_content_type((enum shmet_format)format));
}

/* segment_name(name=None) -> str: the segment a name means (NULL or
 * empty: $SHMETRICS_SEGMENT or "/shmetrics"), shmetrics/name.h's rule. */
PyObject *
shmpy_segment_name(PyObject *self, PyObject *args)
{
	PyObject *oname = Py_None;
	const char *name = NULL;

	if (!PyArg_ParseTuple(args, "|O:segment_name", &oname))
		return NULL;
	if (oname != Py_None && !(name = shmpy_utf8(oname, "segment name")))
		return NULL;
	return PyUnicode_FromString(shmet_name_resolve(name));
}
