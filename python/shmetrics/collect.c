/*
 * collect(name, names=None): a segment's families and their values as
 * Python objects, for CollectorRegistry.collect() and get_sample_value()
 * (registry.py builds prometheus_client's Metric objects from them).
 *
 * source is a segment name, read as the exporter reads it, through
 * render.c's kept view: a write this process made before the call is
 * seen (the reader's data-page cache is keyed on what writers reserved,
 * lib/values.c).  names: an iterable of family names (as stored: counters
 * end in _total); None for all.
 *
 * Returns [(name, help, type, gauge_mode, labelnames, bounds, series)],
 * labelnames a tuple of str, bounds the finite bucket bounds, series
 * [(labelvalues, value)] with value by type:
 *	counter     float, integer and float cells added
 *	gauge       modes all and liveall: [(pid, value)], one per writer;
 *		    other modes: the combined float, or None if no writer
 *		    holds the series
 *	histogram   ((per-bucket counts, not cumulative, +Inf last), sum)
 * The GIL is released while the segment is read.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <shmetrics-reader.h>

#include "shmetrics-python.h"

static PyObject *
str_of(struct shmet_str s)
{
	/* Any bytes a writer stored: invalid UTF-8 replaced, not raised. */
	return PyUnicode_DecodeUTF8(s.ptr ? s.ptr : "", (Py_ssize_t)s.len,
				    "replace");
}

static PyObject *
strs_of(const struct shmet_str *s, uint32_t n)
{
	PyObject *t = PyTuple_New(n);

	for (uint32_t i = 0; t && i < n; i++) {
		PyObject *o = str_of(s[i]);

		if (!o) {
			Py_CLEAR(t);
			break;
		}
		PyTuple_SET_ITEM(t, i, o);
	}
	return t;
}

/* The per-writer samples of a gauge series (modes all, liveall); *at is
 * the cursor into the sorted samples. */
static PyObject *
gauge_samples(const struct shmet_gauge_sample *gs, size_t n, size_t *at,
	      uint32_t series)
{
	PyObject *l = PyList_New(0);

	while (*at < n && gs[*at].series < series)
		(*at)++;
	for (; l && *at < n && gs[*at].series == series; (*at)++) {
		PyObject *o = Py_BuildValue("(Ld)", (long long)gs[*at].pid,
					    gs[*at].value);

		if (!o || PyList_Append(l, o) < 0)
			Py_CLEAR(l);
		Py_XDECREF(o);
	}
	return l;
}

static PyObject *
series_value(const struct shmet_index *idx, const struct shmet_values *v,
	     const struct shmet_index_family *f, uint32_t s,
	     const struct shmet_gauge_sample *gs, size_t ngs, size_t *at)
{
	double d;

	switch (f->type) {
	case SHMET_TYPE_COUNTER:
		return PyFloat_FromDouble(shmet_values_counter(v, idx, s));
	case SHMET_TYPE_GAUGE:
		if (f->gauge_mode == SHMET_GAUGE_ALL ||
		    f->gauge_mode == SHMET_GAUGE_LIVEALL)
			return gauge_samples(gs, ngs, at, s);
		if (!shmet_values_gauge(v, s, &d))
			Py_RETURN_NONE;
		return PyFloat_FromDouble(d);
	default: {
		const double *bounds;
		uint32_t nb = shmet_index_series_bounds(idx, s, &bounds);
		PyObject *b = PyTuple_New(nb + 1);

		for (uint32_t i = 0; b && i <= nb; i++) {
			PyObject *o = PyLong_FromUnsignedLongLong(
				shmet_values_bucket(v, idx, s, i));

			if (!o) {
				Py_CLEAR(b);
				break;
			}
			PyTuple_SET_ITEM(b, i, o);
		}
		if (!b)
			return NULL;
		return Py_BuildValue("(Nd)", b,
				     shmet_values_hist_sum(v, idx, s));
	}
	}
}

static PyObject *
floats_of(const double *d, uint32_t n)
{
	PyObject *t = PyTuple_New(n);

	for (uint32_t i = 0; t && i < n; i++) {
		PyObject *o = PyFloat_FromDouble(d[i]);

		if (!o) {
			Py_CLEAR(t);
			break;
		}
		PyTuple_SET_ITEM(t, i, o);
	}
	return t;
}

/*
 * Append family f's series to list series: (label values, value), or
 * (label values, value, label names, bounds) for a series whose names or
 * bounds are not its family tuple's: another version of the name
 * (`own`), or a histogram merged over the bounds its versions share.
 */
/* Name or value bytes of an exemplar's label blob as str (the reader
 * checked them: UTF-8). */
static PyObject *
blob_str(const unsigned char **p, const unsigned char *end)
{
	uint32_t n;

	if (end - *p < 2)
		return NULL;
	n = (uint32_t)(*p)[0] | (uint32_t)(*p)[1] << 8;
	if ((size_t)(end - *p - 2) < n)
		return NULL;
	*p += 2 + n;
	return PyUnicode_DecodeUTF8((const char *)*p - n, n, "replace");
}

/*
 * Series s's exemplars (shmet_values_exemplar) into *out as {bucket:
 * (labels dict, value, timestamp in seconds)}; *out stays NULL if it has
 * none.  Merged histograms have none.  0, or -1 with an exception.
 */
static int
exemplars_of(const struct shmet_index *idx, const struct shmet_values *v,
	     const struct shmet_index_family *f, uint32_t s, PyObject **out)
{
	uint32_t n = f->type == SHMET_TYPE_COUNTER     ? 1
		     : f->type == SHMET_TYPE_HISTOGRAM ? f->bound_count + 1
						       : 0;

	*out = NULL;
	if (shmet_index_series(idx, s)->merge != UINT32_MAX)
		return 0;
	for (uint32_t b = 0; b < n; b++) {
		struct shmet_exemplar e;
		const unsigned char *p, *end;
		PyObject *labels, *t;
		int rc = 0;

		if (!shmet_values_exemplar(v, idx, s, b, &e))
			continue;
		labels = PyDict_New();
		p = e.labels;
		end = e.labels + e.labels_len;
		for (uint32_t i = 0; labels && i < e.label_count; i++) {
			PyObject *k = blob_str(&p, end), *x = blob_str(&p, end);

			if (!k || !x || PyDict_SetItem(labels, k, x) < 0)
				Py_CLEAR(labels);
			Py_XDECREF(k);
			Py_XDECREF(x);
		}
		if (!labels || (!*out && !(*out = PyDict_New()))) {
			Py_XDECREF(labels);
			goto fail;
		}
		t = Py_BuildValue("(Ndd)", labels, e.value,
				  (double)e.ts_ns / 1e9);
		if (t) {
			PyObject *key = PyLong_FromUnsignedLong(b);

			rc = key ? PyDict_SetItem(*out, key, t) : -1;
			Py_XDECREF(key);
			Py_DECREF(t);
		}
		if (!t || rc < 0)
			goto fail;
	}
	return 0;
fail:
	if (!PyErr_Occurred())
		PyErr_SetString(PyExc_ValueError, "unreadable exemplar");
	Py_CLEAR(*out);
	return -1;
}

static int
append_series(const struct shmet_index *idx, const struct shmet_values *v,
	      const struct shmet_index_family *f, int own, PyObject *series,
	      const struct shmet_gauge_sample *gs, size_t ngs, size_t *at)
{
	for (uint32_t k = 0; k < f->series_count; k++) {
		uint32_t s = f->first_series + k;
		const struct shmet_index_series *is =
			shmet_index_series(idx, s);
		PyObject *o, *ex;

		if (exemplars_of(idx, v, f, s, &ex) < 0)
			return -1;
		if (own || is->merge != UINT32_MAX || ex) {
			const double *bounds;
			uint32_t nb = shmet_index_series_bounds(idx, s, &bounds);

			/* with exemplars: a fifth item (view.py) */
			o = Py_BuildValue(
				ex ? "(NNNNN)" : "(NNNN)",
				strs_of(is->label_values, f->label_count),
				series_value(idx, v, f, s, gs, ngs, at),
				strs_of(f->label_names, f->label_count),
				floats_of(bounds, nb), ex);
		} else {
			o = Py_BuildValue(
				"(NN)", strs_of(is->label_values, f->label_count),
				series_value(idx, v, f, s, gs, ngs, at));
		}
		if (!o || PyList_Append(series, o) < 0) {
			Py_XDECREF(o);
			return -1;
		}
		Py_DECREF(o);
	}
	return 0;
}

static PyObject *
family_tuple(const struct shmet_index *idx, const struct shmet_values *v,
	     const struct shmet_index_family *f,
	     const struct shmet_gauge_sample *gs, size_t ngs, size_t *at)
{
	PyObject *bounds = floats_of(f->bounds, f->bound_count), *series;

	series = bounds ? PyList_New(0) : NULL;
	if (series && append_series(idx, v, f, 0, series, gs, ngs, at) < 0)
		Py_CLEAR(series);
	if (!series) {
		Py_XDECREF(bounds);
		return NULL;
	}
	return Py_BuildValue("(NNIINNN)", str_of(f->name), str_of(f->help),
			     f->type, f->gauge_mode,
			     strs_of(f->label_names, f->label_count), bounds,
			     series);
}

/* names (a set of str, or NULL) wants family f. */
static int
wanted(PyObject *names, const struct shmet_index_family *f)
{
	PyObject *o;
	int rc;

	if (!names)
		return 1;
	o = str_of(f->name);
	if (!o)
		return -1;
	rc = PySet_Contains(names, o);
	Py_DECREF(o);
	return rc;
}

static PyObject *
families(const struct shmet_index *idx, const struct shmet_values *v,
	 PyObject *names)
{
	const struct shmet_gauge_sample *gs;
	size_t ngs = shmet_values_samples(v, &gs), at = 0;
	PyObject *out = PyList_New(0);

	for (uint32_t i = 0; out && i < shmet_index_family_count(idx); i++) {
		const struct shmet_index_family *f =
			shmet_index_family(idx, i);
		PyObject *t;
		int w = wanted(names, f);

		if (w <= 0) {
			if (w < 0)
				Py_CLEAR(out);
			continue;
		}
		if (f->continues && PyList_GET_SIZE(out) > 0) {
			/* another version of the name (shmetrics-reader.h):
			 * its series join the newest version's family */
			PyObject *head = PyList_GET_ITEM(
				out, PyList_GET_SIZE(out) - 1);

			if (append_series(idx, v, f, 1,
					  PyTuple_GET_ITEM(head, 6), gs, ngs,
					  &at) < 0)
				Py_CLEAR(out);
			continue;
		}
		t = family_tuple(idx, v, f, gs, ngs, &at);
		if (!t || PyList_Append(out, t) < 0)
			Py_CLEAR(out);
		Py_XDECREF(t);
	}
	return out;
}

/* Values of idx read from r, GIL released; an exception on failure. */
static struct shmet_values *
read_values(const struct shmet_reader *r, const struct shmet_index *idx)
{
	struct shmet_values *v = shmet_values_new();
	int rc = -ENOMEM;

	if (!v)
		return PyErr_NoMemory(), NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = shmet_values_collect(r, idx, v);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		shmet_values_free(v);
		if (rc == -ENOMEM)
			return PyErr_NoMemory(), NULL;
		shmpy_oserror(-rc, "collecting values failed");
		return NULL;
	}
	return v;
}

/* A segment by name, as the exporter reads it (render.c's kept view). */
static PyObject *
collect_named(const char *name, PyObject *names)
{
	struct shmet_follow *view = shmpy_view_get(name);
	struct shmet_values *v;
	PyObject *out = NULL;

	if (!view)
		return NULL;
	v = read_values(shmpy_view_reader(view), shmpy_view_index(view));
	if (v) {
		out = families(shmpy_view_index(view), v, names);
		shmet_values_free(v);
	}
	shmpy_view_put(view);
	return out;
}

PyObject *
shmpy_collect(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "name", "names", NULL };
	PyObject *source, *onames = Py_None, *names = NULL, *out;
	const char *name;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:collect", kwlist,
					 &source, &onames))
		return NULL;
	if (onames != Py_None && !(names = PySet_New(onames)))
		return NULL;
	name = shmpy_utf8(source, "segment name");
	out = name ? collect_named(name, names) : NULL;
	Py_XDECREF(names);
	return out;
}
