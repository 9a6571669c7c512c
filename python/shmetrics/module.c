/*
 * shmetrics._shmetrics: the module's functions and its init (Segment:
 * segment.c; errors and conversions: convert.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shmetrics-python.h"

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
