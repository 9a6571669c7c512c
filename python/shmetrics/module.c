/*
 * shmetrics._shmetrics: module init, Segment and the error mapping.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shmetrics-python.h"

PyObject *
shmpy_raise_errno(int rc, const char *what)
{
	const char *msg = shmet_last_error(NULL);

	if (!msg || !*msg)
		msg = strerror(-rc);
	if (rc == -EINVAL || rc == -EEXIST) {
		PyErr_Format(PyExc_ValueError, "%s: %s", what, msg);
		return NULL;
	}
	return shmpy_oserror(-rc, msg);
}

PyObject *
shmpy_oserror(int err, const char *msg)
{
	PyObject *args = Py_BuildValue("(is)", err, msg);

	/* OSError(errno, msg) picks the subclass: FileNotFoundError... */
	if (args) {
		PyErr_SetObject(PyExc_OSError, args);
		Py_DECREF(args);
	}
	return NULL;
}

const char *
shmpy_utf8(PyObject *o, const char *what)
{
	const char *s;
	Py_ssize_t n;

	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s",
			     what, Py_TYPE(o)->tp_name);
		return NULL;
	}
	/* PyUnicode_AsUTF8 does not refuse a NUL: the length does tell. */
	s = PyUnicode_AsUTF8AndSize(o, &n);
	if (s && strlen(s) != (size_t)n) {
		PyErr_Format(PyExc_ValueError,
			     "%s contains a NUL character: %R", what, o);
		return NULL;
	}
	return s;
}

const char *
shmpy_str(PyObject *o, const char *what, PyObject **keep)
{
	const char *s;

	*keep = PyObject_Str(o);
	if (!*keep)
		return NULL;
	s = shmpy_utf8(*keep, what);
	if (!s)
		Py_CLEAR(*keep);
	return s;
}

const char *
shmpy_label_value(PyObject *o, const char *label, PyObject **keep)
{
	char what[160];

	snprintf(what, sizeof what, "label '%.100s' value", label);
	return shmpy_str(o, what, keep);
}

int
shmpy_label_values(PyObject *seq, PyObject *names, const char **out,
		   Py_ssize_t max, Py_ssize_t *count, PyObject **keep)
{
	PyObject *fast = PySequence_Fast(seq, "label values: a sequence");
	Py_ssize_t n;

	*keep = NULL;
	if (!fast)
		return -1;
	n = PySequence_Fast_GET_SIZE(fast);
	if (n > max) {
		Py_DECREF(fast);
		PyErr_SetString(PyExc_ValueError, "Incorrect label count");
		return -1;
	}
	*keep = PyList_New(n);
	if (!*keep) {
		Py_DECREF(fast);
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *o = PySequence_Fast_GET_ITEM(fast, i), *s;
		const char *label = NULL;

		/* The family's names are NUL-free already (checked here). */
		if (names && i < PyList_GET_SIZE(names))
			label = PyUnicode_AsUTF8(PyList_GET_ITEM(names, i));
		out[i] = !names ? shmpy_str(o, "label name", &s)
			 : label ? shmpy_label_value(o, label, &s)
				 : shmpy_str(o, "label value", &s);
		if (!out[i]) {
			Py_DECREF(fast);
			Py_CLEAR(*keep);
			return -1;
		}
		PyList_SET_ITEM(*keep, i, s);   /* steals s */
	}
	Py_DECREF(fast);
	*count = n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Segment                                                             */

static PyObject *
segment_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "name", "create", "thread_blocks",
				  "series_ttl", NULL };
	struct shmet_options opts;
	struct shmpy_segment *self;
	PyObject *name = Py_None, *blocks = Py_None;
	double ttl = 0;
	int create = 1, rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$pOd:Segment", kwlist,
					 &name, &create, &blocks, &ttl))
		return NULL;
	memset(&opts, 0, sizeof opts);
	/* series_ttl: seconds, on creation (writer/expire.c); 0: never */
	if (!(ttl >= 0 && ttl <= UINT32_MAX)) {
		PyErr_SetString(PyExc_ValueError,
				"series_ttl: 0 to 4294967295 seconds");
		return NULL;
	}
	opts.series_ttl_s = (uint32_t)ttl;
	if (ttl > 0 && opts.series_ttl_s == 0)
		opts.series_ttl_s = 1;
	/*
	 * thread_blocks: accepted and ignored, as the C options it sets
	 * are (threads count in per-CPU cells and take no writer slot);
	 * still checked, so a script that passes nonsense hears of it.
	 */
	if (blocks == Py_None) {
#ifndef Py_GIL_DISABLED
		opts.flags |= SHMET_OPEN_ONE_BLOCK;
#endif
	} else {
		long n = PyLong_AsLong(blocks);

		if (n == -1 && PyErr_Occurred())
			return NULL;
		if (n < 0 || n > UINT32_MAX) {
			PyErr_SetString(PyExc_ValueError,
					"thread_blocks: 0 to 4294967295, or None");
			return NULL;
		}
		if (n == 0)
			opts.flags |= SHMET_OPEN_ONE_BLOCK;
		opts.max_thread_blocks = (uint32_t)n;
	}
	if (name != Py_None) {
		opts.name = shmpy_utf8(name, "segment name");
		if (!opts.name)
			return NULL;
	}
	if (!create)
		opts.flags |= SHMET_OPEN_NO_CREATE;
	self = (struct shmpy_segment *)type->tp_alloc(type, 0);
	if (!self)
		return NULL;
	Py_INCREF(name);
	self->name = name;
	/* Attaching may wait for a concurrent creator: let threads run. */
	Py_BEGIN_ALLOW_THREADS
	rc = shmet_open(&self->seg, &opts);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		shmpy_raise_errno(rc, "shmet_open");
		Py_DECREF(self);
		return NULL;
	}
	return (PyObject *)self;
}

static void
segment_dealloc(struct shmpy_segment *self)
{
	/* Every handle holds a reference: none is left to write here. */
	if (self->seg.attached)
		shmet_close(&self->seg);
	Py_XDECREF(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
segment_get_name(struct shmpy_segment *self, void *closure)
{
	return PyUnicode_FromString(self->seg.name);
}

static PyObject *
segment_get_slot(struct shmpy_segment *self, void *closure)
{
	return PyLong_FromUnsignedLong(self->seg.slot);
}

static PyObject *
segment_get_series_ttl(struct shmpy_segment *self, void *closure)
{
	return PyLong_FromUnsignedLong(self->seg.attached
					       ? self->seg.hdr->series_ttl_s
					       : 0);
}

/* expire(): shmet_expire(), the number of series expired. */
static PyObject *
segment_expire(struct shmpy_segment *self, PyObject *unused)
{
	int rc;

	Py_BEGIN_ALLOW_THREADS
	rc = shmet_expire(&self->seg);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return shmpy_raise_errno(rc, "shmet_expire");
	return PyLong_FromLong(rc);
}

static PyMethodDef segment_methods[] = {
	{ "expire", (PyCFunction)segment_expire, METH_NOARGS,
	  "expire(): expire now the series no process wrote for the "
	  "segment's series_ttl; returns how many." },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef segment_getset[] = {
	{ "series_ttl", (getter)segment_get_series_ttl, NULL,
	  "seconds after which an unwritten series expires; 0: never "
	  "(fixed when the segment was created)", NULL },
	{ "name", (getter)segment_get_name, NULL,
	  "the segment's name, as shm_open sees it", NULL },
	{ "slot", (getter)segment_get_slot, NULL,
	  "this process's writer slot (changes in a forked child)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject shmpy_segment_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmetrics._shmetrics.Segment",
	.tp_doc = "Segment(name=None, *, create=True, thread_blocks=None, "
		  "series_ttl=0): attach a shmetrics segment for writing "
		  "(name None: $SHMETRICS_SEGMENT or /shmetrics).  "
		  "series_ttl: on creation, seconds after which a series no "
		  "process wrote expires (0: never).  thread_blocks: "
		  "accepted and ignored (threads count in per-CPU cells and "
		  "take no writer slot).",
	.tp_basicsize = sizeof(struct shmpy_segment),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_new = segment_new,
	.tp_dealloc = (destructor)segment_dealloc,
	.tp_getset = segment_getset,
	.tp_methods = segment_methods,
};

static PyObject *
mod_unlink(PyObject *self, PyObject *args)
{
	const char *name;
	PyObject *o;
	int rc;

	if (!PyArg_ParseTuple(args, "O:unlink", &o) ||
	    !(name = shmpy_utf8(o, "segment name")))
		return NULL;
	rc = shmet_unlink(name);
	if (rc < 0)
		return shmpy_raise_errno(rc, "shmet_unlink");
	Py_RETURN_NONE;
}

static PyObject *
mod_now_ns(PyObject *self, PyObject *unused)
{
	return PyLong_FromUnsignedLongLong(shmet_now_ns());
}

static PyObject *
mod_set_exemplar_check(PyObject *self, PyObject *fn)
{
	Py_INCREF(fn);
	Py_XSETREF(shmpy_exemplar_check, fn == Py_None ? NULL : fn);
	if (fn == Py_None)
		Py_DECREF(fn);
	Py_RETURN_NONE;
}

static PyObject *
mod_truncated(PyObject *self, PyObject *unused)
{
	return PyLong_FromUnsignedLongLong(shmpy_truncated_values);
}

static PyMethodDef module_methods[] = {
	{ "collect", (PyCFunction)(void (*)(void))shmpy_collect,
	  METH_VARARGS | METH_KEYWORDS,
	  "collect(name, names=None) -> list: a segment's families and "
	  "values (collect.c)" },
	{ "_set_exemplar_check", mod_set_exemplar_check, METH_O,
	  "_set_exemplar_check(fn): fn(exemplar) runs for every exemplar "
	  "passed to inc() or observe() (metrics.py installs it)" },
	{ "truncated_label_values", mod_truncated, METH_NOARGS,
	  "truncated_label_values(): label values this process cut to "
	  "the segment's 1,024 bytes" },
	{ "unlink", mod_unlink, METH_VARARGS,
	  "unlink(name): remove a segment's name (mappings stay valid)" },
	{ "now_ns", mod_now_ns, METH_NOARGS,
	  "now_ns(): CLOCK_MONOTONIC in nanoseconds, the timers' clock" },
	{ "render", (PyCFunction)(void (*)(void))shmpy_render,
	  METH_VARARGS | METH_KEYWORDS,
	  "render(name=None, format='text') -> bytes: the segment as text, "
	  "openmetrics, json or health, through the reader library" },
	{ "unhealthy", shmpy_unhealthy, METH_O,
	  "unhealthy(reason) -> bytes: the health document of no usable "
	  "segment (served with 503)" },
	{ "content_type", shmpy_content_type, METH_O,
	  "content_type(format) -> str: the Content-Type of a format" },
	{ "segment_name", shmpy_segment_name, METH_VARARGS,
	  "segment_name(name=None) -> str: the segment a name means "
	  "(None or empty: $SHMETRICS_SEGMENT or /shmetrics)" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "shmetrics._shmetrics",
	.m_doc = "The C core of shmetrics: segment, metrics, collectors.",
	.m_size = -1,
	.m_methods = module_methods,
};

static int
add_type(PyObject *m, PyTypeObject *t, const char *name)
{
	if (PyType_Ready(t) < 0)
		return -1;
	Py_INCREF(t);
	if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
		Py_DECREF(t);
		return -1;
	}
	return 0;
}

PyMODINIT_FUNC
PyInit__shmetrics(void)
{
	PyObject *m = PyModule_Create(&module_def);

	if (!m)
		return NULL;
	if (add_type(m, &shmpy_segment_type, "Segment") < 0 ||
	    add_type(m, &shmpy_family_type, "Family") < 0 ||
	    add_type(m, &shmpy_counter_type, "CounterBase") < 0 ||
	    add_type(m, &shmpy_gauge_type, "GaugeBase") < 0 ||
	    add_type(m, &shmpy_histogram_type, "HistogramBase") < 0 ||
	    add_type(m, &shmpy_timer_type, "Timer") < 0 ||
	    add_type(m, &shmpy_delivery_type, "DeliveryTimer") < 0 ||
	    add_type(m, &shmpy_campaign_type, "CampaignCollector") < 0 ||
	    add_type(m, &shmpy_webhook_type, "WebhookCollector") < 0 ||
	    PyModule_AddIntConstant(m, "TYPE_COUNTER", SHMET_TYPE_COUNTER) ||
	    PyModule_AddIntConstant(m, "TYPE_GAUGE", SHMET_TYPE_GAUGE) ||
	    PyModule_AddIntConstant(m, "TYPE_HISTOGRAM",
				    SHMET_TYPE_HISTOGRAM) ||
	    PyModule_AddIntConstant(m, "GAUGE_ALL", SHMET_GAUGE_ALL) ||
	    PyModule_AddIntConstant(m, "GAUGE_LIVEALL", SHMET_GAUGE_LIVEALL) ||
	    PyModule_AddIntConstant(m, "GAUGE_SUM", SHMET_GAUGE_SUM) ||
	    PyModule_AddIntConstant(m, "GAUGE_LIVESUM", SHMET_GAUGE_LIVESUM) ||
	    PyModule_AddIntConstant(m, "GAUGE_MAX", SHMET_GAUGE_MAX) ||
	    PyModule_AddIntConstant(m, "GAUGE_MIN", SHMET_GAUGE_MIN) ||
	    PyModule_AddIntConstant(m, "GAUGE_MOSTRECENT",
				    SHMET_GAUGE_MOSTRECENT) ||
	    PyModule_AddIntConstant(m, "GAUGE_LIVEMOSTRECENT",
				    SHMET_GAUGE_LIVEMOSTRECENT) ||
	    PyModule_AddIntConstant(m, "MAX_LABELS", SHMET_MAX_LABELS) ||
	    PyModule_AddIntConstant(m, "MAX_BOUNDS", SHMET_MAX_BOUNDS)) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
