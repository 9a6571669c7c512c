/*
 * shmetrics._shmetrics: exemplars of inc() and observe() (metrics.c
 * parses the arguments): checked by prometheus_client's rules
 * (metrics.py's check), then stored through the C API (writer/
 * exemplar.c), which the OpenMetrics page shows.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "shmetrics-python.h"

PyObject *shmpy_exemplar_check;

/*
 * An exemplar is checked as prometheus_client checks it (metrics.py's
 * check raises its ValueError for a bad label name or more than 128
 * characters), after the amount was counted, as prometheus_client's
 * inc() and observe() do.  Off the common path: only when one is passed.
 * An empty one is none (prometheus_client's "if exemplar").
 */
int
shmpy_exemplar_given(PyObject *exemplar)
{
	return exemplar && exemplar != Py_None && PyObject_IsTrue(exemplar) > 0;
}

static int
check_exemplar(PyObject *exemplar)
{
	PyObject *r;

	if (!shmpy_exemplar_check)
		return 0;
	r = PyObject_CallOneArg(shmpy_exemplar_check, exemplar);
	Py_XDECREF(r);
	return r ? 0 : -1;
}

/* At most this many pairs: each name is a character of the 128. */
#define EXEMPLAR_PAIRS 128

/*
 * The checked exemplar's labels as UTF-8 C strings (borrowed from the
 * dict's str objects, or from the new references in keep, which the
 * caller releases): the pair count, or -1 if they cannot be passed on
 * (a value that is not str is shown as str() of it; a NUL or a lone
 * surrogate, which no page could show, drops the exemplar: -1 with no
 * error set).
 */
static Py_ssize_t
exemplar_strings(PyObject *exemplar, const char **names, const char **values,
		 PyObject **keep)
{
	PyObject *k, *v;
	Py_ssize_t pos = 0, n = 0;

	if (!PyDict_Check(exemplar) || PyDict_GET_SIZE(exemplar) > EXEMPLAR_PAIRS)
		return -1;
	while (PyDict_Next(exemplar, &pos, &k, &v)) {
		const char *cs[2];
		Py_ssize_t len[2];
		PyObject *o[2] = { k, v };

		for (int i = 0; i < 2; i++) {
			if (!PyUnicode_Check(o[i])) {
				o[i] = keep[2 * n + i] = PyObject_Str(o[i]);
				if (!o[i]) {
					PyErr_Clear();
					return -1;
				}
			}
			cs[i] = PyUnicode_AsUTF8AndSize(o[i], &len[i]);
			if (!cs[i] || (size_t)len[i] != strlen(cs[i])) {
				PyErr_Clear();
				return -1;
			}
		}
		names[n] = cs[0];
		values[n] = cs[1];
		n++;
	}
	return n;
}

/* Count d without an exemplar (whole amounts in the integer cell). */
static void
count_only(struct shmpy_metric *self, int counter, double d)
{
	if (!counter)
		shmet_histogram_observe(&self->u.h, d);
	else if (d < 9007199254740992.0 && d == floor(d))
		shmet_counter_add(&self->u.c, (uint64_t)d);
	else
		shmet_counter_add_double(&self->u.c, d);
}

/*
 * Count amount d with the exemplar (counter c, else histogram h), or
 * without it if the check refuses it (then raise, as prometheus_client).
 */
PyObject *
shmpy_with_exemplar(struct shmpy_metric *self, int counter, double d,
	      PyObject *exemplar)
{
	const char *names[EXEMPLAR_PAIRS], *values[EXEMPLAR_PAIRS];
	PyObject *keep[2 * EXEMPLAR_PAIRS] = { NULL };
	Py_ssize_t n;

	if (check_exemplar(exemplar) < 0) {
		count_only(self, counter, d);
		return NULL;
	}
	n = exemplar_strings(exemplar, names, values, keep);
	/* The exemplar's fate (stored, a concurrent one kept instead) is
	 * not the caller's concern, as in prometheus_client. */
	if (n < 0)
		count_only(self, counter, d);
	else if (counter)
		shmet_counter_add_exemplar(&self->u.c, d, (uint32_t)n, names,
					   values);
	else
		shmet_histogram_observe_exemplar(&self->u.h, d, (uint32_t)n,
						 names, values);
	for (size_t i = 0; i < 2 * EXEMPLAR_PAIRS; i++)
		Py_XDECREF(keep[i]);
	Py_RETURN_NONE;
}

