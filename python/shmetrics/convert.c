/*
 * Errors and conversions shared by the extension's files: a negative
 * errno as an OSError, str objects as UTF-8 C strings, label values as
 * prometheus_client str()s them.
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
