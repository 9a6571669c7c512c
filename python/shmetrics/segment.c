/*
 * shmetrics.Segment: a segment this process writes, opened or created by
 * name.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shmetrics-python.h"

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
