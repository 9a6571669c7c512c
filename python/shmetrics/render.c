/*
 * render(name=None, format='text'): one scrape of a segment through the
 * reader library (lib/shmetrics-reader.h), for the Flask blueprint and
 * for tests.  The segment is mapped read-only for the call; the GIL is
 * released while it is read and rendered.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <shmetrics-reader.h>

#include "shmetrics-python.h"

enum format { F_TEXT, F_OPENMETRICS, F_JSON, F_HEALTH };

static int
scrape(const char *name, enum format f, struct shmet_buf *b, char *err,
       size_t errlen)
{
	struct shmet_reader *r = NULL;
	struct shmet_index *idx = NULL;
	struct shmet_values *v = NULL;
	struct shmet_reader_info info;
	struct timespec ts;
	int rc;

	rc = shmet_reader_open(name, &r, err, errlen);
	if (rc < 0)
		return rc;
	v = shmet_values_new();
	if (!v) {
		rc = -ENOMEM;
		goto out;
	}
	rc = shmet_index_build(r, &idx, err, errlen);
	if (rc < 0)
		goto out;
	if (f == F_HEALTH) {
		rc = shmet_reader_info(r, &info);
		if (rc == 0)
			rc = shmet_render_health(idx, &info, b);
		goto out;
	}
	rc = shmet_values_collect(r, idx, v);
	if (rc < 0) {
		snprintf(err, errlen, "collecting values failed");
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
	if (idx)
		shmet_index_free(idx);
	shmet_reader_close(r);
	return rc;
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
	enum format f = F_TEXT;
	PyObject *out;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|zs:render", kwlist,
					 &name, &fmt))
		return NULL;
	while (f <= F_HEALTH && strcmp(names[f], fmt) != 0)
		f++;
	if (f > F_HEALTH) {
		PyErr_Format(PyExc_ValueError, "unknown format '%s'", fmt);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	rc = scrape(name, f, &b, err, sizeof err);
	Py_END_ALLOW_THREADS
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
