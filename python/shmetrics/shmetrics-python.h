/*
 * The CPython extension shmetrics._shmetrics: what its files share.
 *
 *	module.c      module init, Segment (one attached segment), errors
 *	metrics.c     Family and the hot-path bases of Counter, Gauge and
 *		      Histogram (inc, dec, set, observe in C)
 *	collectors.c  the specification's collectors over
 *		      libshmetrics-collectors, and their timers
 *	render.c      text, OpenMetrics, JSON and health through the reader
 *
 * Thread safety: every hot-path method is one call of the atomic writer of
 * <shmetrics.h> (relaxed atomics on this process's block), so threads need
 * no lock of their own; the GIL orders nothing in the segment.  Fork: the
 * writer's pthread_atfork handler gives a child its own slot, so objects
 * inherited through os.fork() keep working.
 */
#ifndef SHMETRICS_PYTHON_H
#define SHMETRICS_PYTHON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <shmetrics.h>

/* A segment attached for writing; its address never moves. */
struct shmpy_segment {
	PyObject_HEAD
	struct shmet_segment seg;
	PyObject *name;                 /* str, as asked for (None: default) */
};

/* A registered family; keeps its segment alive. */
struct shmpy_family {
	PyObject_HEAD
	PyObject *segment;              /* struct shmpy_segment */
	PyObject *labelnames;           /* list of str, for errors */
	struct shmet_family fam;
};

/* The base of Counter, Gauge and Histogram: one resolved series. */
struct shmpy_metric {
	PyObject_HEAD
	PyObject *family;               /* NULL until bound */
	int observable;                 /* bound to a series */
	union {
		struct shmet_counter c;
		struct shmet_gauge g;
		struct shmet_histogram h;
	} u;
};

extern PyTypeObject shmpy_segment_type;
extern PyTypeObject shmpy_family_type;
extern PyTypeObject shmpy_counter_type;
extern PyTypeObject shmpy_gauge_type;
extern PyTypeObject shmpy_histogram_type;
extern PyTypeObject shmpy_timer_type;
extern PyTypeObject shmpy_delivery_type;
extern PyTypeObject shmpy_campaign_type;
extern PyTypeObject shmpy_webhook_type;

/* Raise for a negative errno from the writer: EINVAL and EEXIST (bad
 * input, a name taken with another shape) are ValueError, as
 * prometheus_client raises for the same mistakes; others are OSError.
 * Returns NULL. */
PyObject *
shmpy_raise_errno(int rc, const char *what);

/* Raise OSError(err, msg) (its errno subclass).  Returns NULL. */
PyObject *
shmpy_oserror(int err, const char *msg);

/*
 * Every Python string the C API takes goes through these.  The writer
 * takes NUL-terminated strings, so a NUL inside one would silently end it
 * there ('a\0b' and 'a\0c' one series, '/seg\0x' the segment '/seg'):
 * refused with ValueError("<what> contains a NUL character: ...").
 * PyArg_Parse's "s" refuses a NUL too, but without naming the argument;
 * PyUnicode_AsUTF8 does not refuse it at all.
 */

/* A str as NUL-free UTF-8, owned by o; what names it for errors
 * ("segment name").  NULL with TypeError or ValueError. */
const char *
shmpy_utf8(PyObject *o, const char *what);

/* str(o) as shmpy_utf8 does; *keep owns the result.  NULL on error. */
const char *
shmpy_str(PyObject *o, const char *what, PyObject **keep);

/* str(o) as the value of the label named label, as above. */
const char *
shmpy_label_value(PyObject *o, const char *label, PyObject **keep);

/* Label values, or with names NULL label names, as C strings: each object
 * is str()'d as prometheus_client does.  names: the family's label names
 * (a list of str) to name the value in errors.  keep receives the str
 * objects (a new list) that own the bytes.  Returns 0, or -1 with an
 * exception set. */
int
shmpy_label_values(PyObject *seq, PyObject *names, const char **out,
		   Py_ssize_t max, Py_ssize_t *count, PyObject **keep);

/* render.c's kept follower of a named segment (lib/follow.c), lent to
 * collect.c: get (GIL held; refreshed without it) and put back.  Get:
 * NULL with an exception set. */
struct shmet_follow;
struct shmet_reader;
struct shmet_index;
struct shmet_follow *
shmpy_view_get(const char *name);
void
shmpy_view_put(struct shmet_follow *f);
const struct shmet_reader *
shmpy_view_reader(const struct shmet_follow *f);
const struct shmet_index *
shmpy_view_index(const struct shmet_follow *f);
/* unhealthy(reason), content_type(format), segment_name(name=None). */
PyObject *
shmpy_unhealthy(PyObject *self, PyObject *arg);
PyObject *
shmpy_content_type(PyObject *self, PyObject *arg);
PyObject *
shmpy_segment_name(PyObject *self, PyObject *args);

/* collect(source, names=None) -> list: see collect.c. */
PyObject *
shmpy_collect(PyObject *self, PyObject *args, PyObject *kwargs);

/* The exemplar check metrics.py installs (_set_exemplar_check); NULL:
 * exemplars are accepted unchecked. */
extern PyObject *shmpy_exemplar_check;
/* exemplar.c: 1 if inc()'s or observe()'s exemplar argument is one */
int shmpy_exemplar_given(PyObject *exemplar);
/* exemplar.c: count d (counter, else observe) with the exemplar */
PyObject *shmpy_with_exemplar(struct shmpy_metric *self, int counter,
			      double d, PyObject *exemplar);

/* Label values cut to SHMET_MAX_LABEL_VALUE_LEN bytes by this process. */
extern unsigned long long shmpy_truncated_values;

/* render(name, format) -> bytes: see render.c. */
PyObject *
shmpy_render(PyObject *self, PyObject *args, PyObject *kwargs);

PyMODINIT_FUNC
PyInit__shmetrics(void);

#endif /* SHMETRICS_PYTHON_H */
