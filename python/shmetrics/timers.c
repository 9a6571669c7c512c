/*
 * The collectors' timers: Timer (time_processing, time_poll_cycle) and
 * DeliveryTimer (time_delivery), context managers whose __exit__ observes
 * once, exceptions included.  A timer belongs to the thread that uses it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <shmetrics-collectors.h>

#include "shmetrics-python.h"
#include "timers.h"

/* ------------------------------------------------------------------ */
/* Timers                                                              */

PyObject *
timer_wrap(PyObject *owner, struct shmet_timer t)
{
	struct shmpy_timer *self = PyObject_New(struct shmpy_timer,
						&shmpy_timer_type);

	if (!self)
		return NULL;
	Py_INCREF(owner);
	self->owner = owner;
	self->t = t;
	self->trace_id[0] = 0;
	return (PyObject *)self;
}

static void
timer_dealloc(struct shmpy_timer *self)
{
	Py_XDECREF(self->owner);
	PyObject_Free(self);
}

static PyObject *
timer_enter(PyObject *self, PyObject *unused)
{
	Py_INCREF(self);
	return self;
}

static PyObject *
timer_exit(struct shmpy_timer *self, PyObject *args)
{
	shmet_timer_stop_traced(&self->t, self->trace_id);
	Py_RETURN_FALSE;
}

static PyObject *
timer_stop(struct shmpy_timer *self, PyObject *unused)
{
	return PyFloat_FromDouble(shmet_timer_stop_traced(&self->t,
							  self->trace_id));
}

/* The trace id of a set_trace() argument (None: ""), into buf. */
static int
trace_arg(PyObject *arg, char *buf, size_t len)
{
	const char *s;

	if (arg == Py_None) {
		buf[0] = 0;
		return 0;
	}
	s = PyUnicode_AsUTF8(arg);
	if (!s)
		return -1;
	/* a longer one fails the exemplar's check anyway: none */
	snprintf(buf, len, "%s", strlen(s) < len ? s : "");
	return 0;
}

static PyObject *
timer_set_trace(struct shmpy_timer *self, PyObject *arg)
{
	if (trace_arg(arg, self->trace_id, sizeof self->trace_id) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyMethodDef timer_methods[] = {
	{ "__enter__", timer_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)timer_exit, METH_VARARGS, NULL },
	{ "stop", (PyCFunction)timer_stop, METH_NOARGS,
	  "observe once; returns the seconds, or -1 if already stopped" },
	{ "set_trace", (PyCFunction)timer_set_trace, METH_O,
	  "set_trace(trace_id): the observation's exemplar (None: none)" },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject shmpy_timer_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmetrics._shmetrics.Timer",
	.tp_doc = "A running timer: 'with' observes its duration once.",
	.tp_basicsize = sizeof(struct shmpy_timer),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_dealloc = (destructor)timer_dealloc,
	.tp_methods = timer_methods,
};

static void
delivery_dealloc(struct shmpy_delivery *self)
{
	Py_XDECREF(self->owner);
	PyObject_Free(self);
}

static PyObject *
delivery_exit(struct shmpy_delivery *self, PyObject *args)
{
	shmet_delivery_end(&self->d);
	Py_RETURN_FALSE;
}

static PyObject *
delivery_end(struct shmpy_delivery *self, PyObject *unused)
{
	return PyFloat_FromDouble(shmet_delivery_end(&self->d));
}

static PyObject *
delivery_set_trace(struct shmpy_delivery *self, PyObject *arg)
{
	char buf[sizeof self->d.trace_id];

	if (trace_arg(arg, buf, sizeof buf) < 0)
		return NULL;
	shmet_delivery_set_trace(&self->d, buf);
	Py_RETURN_NONE;
}

static PyObject *
delivery_set_success(struct shmpy_delivery *self, PyObject *args,
		     PyObject *kwargs)
{
	static char *kwlist[] = { "event_type", NULL };
	PyObject *event, *keep;
	const char *s;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:set_success",
					 kwlist, &event))
		return NULL;
	s = shmpy_label_value(event, "event_type", &keep);
	if (!s)
		return NULL;
	shmet_delivery_set_success(&self->d, s);
	Py_DECREF(keep);
	Py_RETURN_NONE;
}

static PyObject *
delivery_set_failed(struct shmpy_delivery *self, PyObject *args,
		    PyObject *kwargs)
{
	static char *kwlist[] = { "event_type", "status_code", NULL };
	PyObject *event, *keep;
	const char *s;
	int status;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oi:set_failed",
					 kwlist, &event, &status))
		return NULL;
	s = shmpy_label_value(event, "event_type", &keep);
	if (!s)
		return NULL;
	shmet_delivery_set_failed(&self->d, s, status);
	Py_DECREF(keep);
	Py_RETURN_NONE;
}

static PyMethodDef delivery_methods[] = {
	{ "__enter__", timer_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)delivery_exit, METH_VARARGS, NULL },
	{ "set_success", (PyCFunction)(void (*)(void))delivery_set_success,
	  METH_VARARGS | METH_KEYWORDS,
	  "set_success(event_type): count a delivery" },
	{ "set_failed", (PyCFunction)(void (*)(void))delivery_set_failed,
	  METH_VARARGS | METH_KEYWORDS,
	  "set_failed(event_type, status_code): count a failure "
	  "(0: connection error)" },
	{ "set_trace", (PyCFunction)delivery_set_trace, METH_O,
	  "set_trace(trace_id): the delivery's exemplars (None: none); "
	  "before set_success and the end" },
	{ "end", (PyCFunction)delivery_end, METH_NOARGS,
	  "observe the latency once; returns it, or -1 if ended already" },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject shmpy_delivery_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmetrics._shmetrics.DeliveryTimer",
	.tp_doc = "The timer of 'with time_delivery(partner_id) as timer'.",
	.tp_basicsize = sizeof(struct shmpy_delivery),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_dealloc = (destructor)delivery_dealloc,
	.tp_methods = delivery_methods,
};
