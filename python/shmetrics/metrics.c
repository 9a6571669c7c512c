/*
 * Family, and the C bases of Counter, Gauge and Histogram.  The Python
 * classes of metrics.py subclass these bases, so inc, dec, set and observe
 * are one C method call each: no Python frame, no lock.
 *
 * Ordering guarantees: those of the writer's hot path (relaxed atomics on
 * this process's block; see <shmetrics.h>).  Progress guarantees: the
 * hot path is wait-free (integer adds, set) or lock-free (float adds).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "shmetrics-python.h"

/* ------------------------------------------------------------------ */
/* Family                                                              */

static PyObject *
family_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "segment", "type", "name", "help",
				  "labelnames", "gauge_mode", "buckets",
				  NULL };
	const char *labels[SHMET_MAX_LABELS];
	double bounds[SHMET_MAX_BOUNDS];
	struct shmet_family_desc desc;
	struct shmpy_family *self;
	PyObject *segment, *labelnames, *buckets = NULL, *keep = NULL;
	PyObject *oname, *ohelp;
	unsigned int ftype, mode = 0;
	Py_ssize_t nlabels = 0, nbounds = 0;
	const char *name, *help;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!IOOO|IO:Family",
					 kwlist, &shmpy_segment_type,
					 &segment, &ftype, &oname, &ohelp,
					 &labelnames, &mode, &buckets))
		return NULL;
	if (!(name = shmpy_utf8(oname, "metric name")) ||
	    !(help = shmpy_utf8(ohelp, "help")))
		return NULL;
	if (shmpy_label_values(labelnames, NULL, labels, SHMET_MAX_LABELS,
			       &nlabels, &keep) < 0)
		return NULL;
	if (buckets && buckets != Py_None) {
		PyObject *fast = PySequence_Fast(buckets, "buckets");

		if (!fast)
			goto fail;
		nbounds = PySequence_Fast_GET_SIZE(fast);
		if (nbounds > (Py_ssize_t)SHMET_MAX_BOUNDS) {
			Py_DECREF(fast);
			PyErr_Format(PyExc_ValueError,
				     "at most %u buckets", SHMET_MAX_BOUNDS);
			goto fail;
		}
		for (Py_ssize_t i = 0; i < nbounds; i++) {
			bounds[i] = PyFloat_AsDouble(
				PySequence_Fast_GET_ITEM(fast, i));
			if (bounds[i] == -1.0 && PyErr_Occurred()) {
				Py_DECREF(fast);
				goto fail;
			}
		}
		Py_DECREF(fast);
	}
	memset(&desc, 0, sizeof desc);
	desc.name = name;
	desc.help = help;
	desc.type = ftype;
	desc.gauge_mode = mode;
	desc.label_count = (uint32_t)nlabels;
	desc.label_names = labels;
	desc.bound_count = (uint32_t)nbounds;
	desc.bounds = bounds;
	self = (struct shmpy_family *)type->tp_alloc(type, 0);
	if (!self)
		goto fail;
	Py_INCREF(segment);
	self->segment = segment;
	rc = shmet_family_register(
		&((struct shmpy_segment *)segment)->seg, &desc, &self->fam);
	self->labelnames = keep;        /* names the label of a bad value */
	if (rc < 0) {
		Py_DECREF(self);
		return shmpy_raise_errno(rc, name);
	}
	return (PyObject *)self;
fail:
	Py_XDECREF(keep);
	return NULL;
}

static void
family_dealloc(struct shmpy_family *self)
{
	Py_XDECREF(self->segment);
	Py_XDECREF(self->labelnames);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
family_get_label_count(struct shmpy_family *self, void *closure)
{
	return PyLong_FromUnsignedLong(self->fam.label_count);
}

/* remove(values): 1 if a series was removed, 0 if it had none. */
static PyObject *
family_remove(struct shmpy_family *self, PyObject *seq)
{
	const char *values[SHMET_MAX_LABELS];
	PyObject *keep;
	Py_ssize_t n = 0;
	int rc;

	if (shmpy_label_values(seq, self->labelnames, values,
			       SHMET_MAX_LABELS, &n, &keep) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = shmet_family_remove(&self->fam, (uint32_t)n, values);
	Py_END_ALLOW_THREADS
	Py_DECREF(keep);
	if (rc == -ENOENT)
		Py_RETURN_FALSE;
	if (rc < 0)
		return shmpy_raise_errno(rc, "remove");
	Py_RETURN_TRUE;
}

static PyObject *
family_clear(struct shmpy_family *self, PyObject *unused)
{
	int rc;

	Py_BEGIN_ALLOW_THREADS
	rc = shmet_family_clear(&self->fam);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return shmpy_raise_errno(rc, "clear");
	Py_RETURN_NONE;
}

static PyMethodDef family_methods[] = {
	{ "remove", (PyCFunction)family_remove, METH_O,
	  "remove(values): remove the series of these label values from the "
	  "segment; True if there was one." },
	{ "clear", (PyCFunction)family_clear, METH_NOARGS,
	  "clear(): remove every series of the family from the segment." },
	{ NULL, NULL, 0, NULL },
};

static PyObject *
family_get_removals(struct shmpy_family *self, void *closure)
{
	return PyLong_FromUnsignedLong(shmet_family_removals(&self->fam));
}

static PyGetSetDef family_getset[] = {
	{ "label_count", (getter)family_get_label_count, NULL, NULL, NULL },
	{ "removals", (getter)family_get_removals, NULL,
	  "series removed from the family so far, by any process", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject shmpy_family_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmetrics._shmetrics.Family",
	.tp_doc = "Family(segment, type, name, help, labelnames, gauge_mode=0, "
		  "buckets=()): find or register a family.",
	.tp_basicsize = sizeof(struct shmpy_family),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_new = family_new,
	.tp_dealloc = (destructor)family_dealloc,
	.tp_getset = family_getset,
	.tp_methods = family_methods,
};

/* ------------------------------------------------------------------ */
/* Metric bases                                                        */

static PyObject *
metric_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
	/* Arguments are the Python subclass's __init__'s business. */
	return type->tp_alloc(type, 0);
}

/*
 * Python subclasses: subtype_dealloc clears __dict__, calls this and drops
 * the reference to the heap type; subtype_traverse visits both.
 */
static void
metric_dealloc(struct shmpy_metric *self)
{
	PyObject_GC_UnTrack(self);
	Py_CLEAR(self->family);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
metric_traverse(struct shmpy_metric *self, visitproc visit, void *arg)
{
	Py_VISIT(self->family);
	return 0;
}

static int
metric_clear(struct shmpy_metric *self)
{
	Py_CLEAR(self->family);
	return 0;
}

static const char *
metric_kind(struct shmpy_metric *self)
{
	if (PyObject_TypeCheck(self, &shmpy_counter_type))
		return "counter";
	if (PyObject_TypeCheck(self, &shmpy_gauge_type))
		return "gauge";
	return "histogram";
}

/* prometheus_client's message, with the Python class's _type (a Summary
 * is a histogram here, a summary there); the C base's kind without one. */
static PyObject *
raise_not_observable(struct shmpy_metric *self)
{
	PyObject *t = PyObject_GetAttrString((PyObject *)self, "_type");

	if (t && PyUnicode_Check(t))
		PyErr_Format(PyExc_ValueError,
			     "%U metric is missing label values", t);
	else
		PyErr_Format(PyExc_ValueError,
			     "%s metric is missing label values",
			     metric_kind(self));
	Py_XDECREF(t);
	return NULL;
}

unsigned long long shmpy_truncated_values;

/*
 * Label values longer than the segment keeps (SHMET_MAX_LABEL_VALUE_LEN
 * bytes) are cut there, at a UTF-8 character boundary, into buf, and
 * counted: labels() runs on request paths, where prometheus_client has no
 * limit and raising would break the request.  Values that share the kept
 * prefix share a series.
 */
static void
truncate_values(const char **values, Py_ssize_t n,
		char (*buf)[SHMET_MAX_LABEL_VALUE_LEN + 1])
{
	for (Py_ssize_t i = 0; i < n; i++) {
		size_t len = strlen(values[i]), cut;

		if (len <= SHMET_MAX_LABEL_VALUE_LEN)
			continue;
		cut = SHMET_MAX_LABEL_VALUE_LEN;
		/* back over continuation bytes to a character's start */
		while (cut > 0 && ((unsigned char)values[i][cut] & 0xc0) == 0x80)
			cut--;
		memcpy(buf[i], values[i], cut);
		buf[i][cut] = '\0';
		values[i] = buf[i];
		shmpy_truncated_values++;
	}
}

/*
 * A gauge series this process never wrote reads as absent; in
 * prometheus_client (both modes) a child reads 0 from its creation.  So
 * binding writes 0 with the oldest stamp (1) into this process's own cells
 * unless it wrote them already: every mode then shows the 0 as
 * prometheus_client's multiprocess files do (max and min over it, all with
 * this pid), and any later write in another process wins mostrecent.  The
 * GIL orders this against this process's Python writers of the series.
 */
static void
gauge_init(struct shmet_gauge *g)
{
	double zero = 0.0;
	uint64_t bits;

	if (atomic_load_explicit(&g->cell[shmet_seg_cell_gauge_stamp(0)],
				 memory_order_relaxed) != 0)
		return;
	memcpy(&bits, &zero, sizeof bits);
	atomic_store_explicit(&g->cell[shmet_seg_cell_gauge_value(0)], bits,
			      memory_order_relaxed);
	atomic_store_explicit(&g->cell[shmet_seg_cell_gauge_stamp(0)], 1,
			      memory_order_relaxed);
}

/*
 * _bind(family, labelvalues): resolve the series.  Bad input raises
 * ValueError; a full segment or the cardinality limit leaves a scratch
 * handle (counted in the segment, shown by health), as in C: recording
 * never breaks the application.
 */
static PyObject *
metric_bind(struct shmpy_metric *self, PyObject *args)
{
	const char *values[SHMET_MAX_LABELS];
	/* 16 KiB, on the stack: no lock, also without a GIL */
	char cut[SHMET_MAX_LABELS][SHMET_MAX_LABEL_VALUE_LEN + 1];
	struct shmpy_family *fam;
	PyObject *seq, *keep;
	Py_ssize_t n = 0;
	int rc;

	if (!PyArg_ParseTuple(args, "O!O:_bind", &shmpy_family_type, &fam,
			      &seq))
		return NULL;
	if (shmpy_label_values(seq, fam->labelnames, values,
			       SHMET_MAX_LABELS, &n, &keep) < 0)
		return NULL;
	truncate_values(values, n, cut);
	if (PyObject_TypeCheck(self, &shmpy_counter_type)) {
		if (fam->fam.type != SHMET_TYPE_COUNTER)
			goto clash;
		rc = shmet_counter_labels(&fam->fam, &self->u.c, (uint32_t)n,
					  values);
	} else if (PyObject_TypeCheck(self, &shmpy_gauge_type)) {
		if (fam->fam.type != SHMET_TYPE_GAUGE)
			goto clash;
		rc = shmet_gauge_labels(&fam->fam, &self->u.g, (uint32_t)n,
					values);
		if (rc == 0)
			gauge_init(&self->u.g);
	} else {
		if (fam->fam.type != SHMET_TYPE_HISTOGRAM)
			goto clash;
		rc = shmet_histogram_labels(&fam->fam, &self->u.h,
					    (uint32_t)n, values);
	}
	Py_DECREF(keep);
	if (rc == -EINVAL)
		return shmpy_raise_errno(rc, "labels");
	Py_INCREF(fam);
	Py_XSETREF(self->family, (PyObject *)fam);
	self->observable = 1;
	Py_RETURN_NONE;
clash:
	Py_DECREF(keep);
	PyErr_SetString(PyExc_ValueError, "family of another type");
	return NULL;
}

/*
 * The optional argument `name` at position pos of a vectorcall; *out is
 * left alone when it is absent.  Other keywords are errors.
 */
static int
one_arg(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
	const char *const *names, PyObject **out)
{
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;

	for (Py_ssize_t i = 0; i < nargs; i++) {
		if (!names[i]) {
			PyErr_SetString(PyExc_TypeError,
					"too many positional arguments");
			return -1;
		}
		out[i] = args[i];
	}
	for (Py_ssize_t k = 0; k < nkw; k++) {
		Py_ssize_t i = 0, len;
		const char *kw = PyUnicode_AsUTF8AndSize(
			PyTuple_GET_ITEM(kwnames, k), &len);

		if (!kw)
			return -1;
		/* In full length: "amount\0x" is not "amount". */
		while (names[i] && (strlen(names[i]) != (size_t)len ||
				    memcmp(names[i], kw, (size_t)len) != 0))
			i++;
		if (!names[i] || i < nargs) {
			PyErr_Format(PyExc_TypeError,
				     "unexpected keyword argument %R",
				     PyTuple_GET_ITEM(kwnames, k));
			return -1;
		}
		out[i] = args[nargs + k];
	}
	return 0;
}

/* inc()'s and observe()'s arguments: (amount=None, exemplar=None).
 * *amount NULL if not given; *exemplar NULL unless a non-empty one. */
static int
amount_arg(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
	   PyObject **amount, PyObject **exemplar)
{
	static const char *const names[] = { "amount", "exemplar", NULL };
	PyObject *a[2] = { NULL, NULL };

	if (one_arg(args, nargs, kwnames, names, a) < 0)
		return -1;
	*amount = a[0];
	*exemplar = shmpy_exemplar_given(a[1]) ? a[1] : NULL;
	return 0;
}

/* An amount as a double (prometheus_client takes any number). */
static int
as_double(PyObject *o, double *out)
{
	if (PyFloat_CheckExact(o)) {
		*out = PyFloat_AS_DOUBLE(o);
		return 0;
	}
	*out = PyFloat_AsDouble(o);
	return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *
counter_inc(struct shmpy_metric *self, PyObject *const *args,
	    Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[1] = { NULL }, *ex = NULL;
	double d;

	if (!self->observable)
		return raise_not_observable(self);
	if (nargs == 0 && !kwnames) {
		shmet_counter_inc(&self->u.c);
		Py_RETURN_NONE;
	}
	if (amount_arg(args, nargs, kwnames, a, &ex) < 0)
		return NULL;
	if (!a[0] && ex)
		return shmpy_with_exemplar(self, 1, 1.0, ex);
	if (!a[0]) {
		shmet_counter_inc(&self->u.c);
		Py_RETURN_NONE;
	}
	if (PyLong_CheckExact(a[0]) && !ex) {
		int overflow;
		long long v = PyLong_AsLongLongAndOverflow(a[0], &overflow);

		if (v == -1 && PyErr_Occurred())
			return NULL;
		if (!overflow && v >= 0) {
			shmet_counter_add(&self->u.c, (uint64_t)v);
			Py_RETURN_NONE;
		}
	}
	if (as_double(a[0], &d) < 0)
		return NULL;
	if (d < 0) {
		PyErr_SetString(PyExc_ValueError, "Counters can only be "
				"incremented by non-negative amounts.");
		return NULL;
	}
	if (ex)
		return shmpy_with_exemplar(self, 1, d, ex);
	/* Whole amounts stay exact in the integer cell. */
	if (d == floor(d) && d < 9007199254740992.0)
		shmet_counter_add(&self->u.c, (uint64_t)d);
	else
		shmet_counter_add_double(&self->u.c, d);
	Py_RETURN_NONE;
}

static PyObject *
gauge_add_arg(struct shmpy_metric *self, PyObject *const *args,
	      Py_ssize_t nargs, PyObject *kwnames, double sign)
{
	static const char *const names[] = { "amount", NULL };
	PyObject *a[1] = { NULL };
	double d = 1;

	if (!self->observable)
		return raise_not_observable(self);
	if ((nargs || kwnames) &&
	    (one_arg(args, nargs, kwnames, names, a) < 0 ||
	     (a[0] && as_double(a[0], &d) < 0)))
		return NULL;
	shmet_gauge_add(&self->u.g, sign * d);
	Py_RETURN_NONE;
}

static PyObject *
gauge_inc(struct shmpy_metric *self, PyObject *const *args,
	  Py_ssize_t nargs, PyObject *kwnames)
{
	return gauge_add_arg(self, args, nargs, kwnames, 1);
}

static PyObject *
gauge_dec(struct shmpy_metric *self, PyObject *const *args,
	  Py_ssize_t nargs, PyObject *kwnames)
{
	return gauge_add_arg(self, args, nargs, kwnames, -1);
}

static PyObject *
gauge_set(struct shmpy_metric *self, PyObject *const *args,
	  Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "value", NULL };
	PyObject *a[1] = { NULL };
	double d;

	if (!self->observable)
		return raise_not_observable(self);
	if (one_arg(args, nargs, kwnames, names, a) < 0)
		return NULL;
	if (!a[0]) {
		PyErr_SetString(PyExc_TypeError, "set() missing 'value'");
		return NULL;
	}
	if (as_double(a[0], &d) < 0)
		return NULL;
	shmet_gauge_set(&self->u.g, d);
	Py_RETURN_NONE;
}

static PyObject *
gauge_set_to_current_time(struct shmpy_metric *self, PyObject *unused)
{
	if (!self->observable)
		return raise_not_observable(self);
	shmet_gauge_set_to_current_time(&self->u.g);
	Py_RETURN_NONE;
}

static PyObject *
histogram_observe(struct shmpy_metric *self, PyObject *const *args,
		  Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[1] = { NULL }, *ex = NULL;
	double d;

	if (!self->observable)
		return raise_not_observable(self);
	if (nargs == 1 && !kwnames)
		a[0] = args[0];
	else if (amount_arg(args, nargs, kwnames, a, &ex) < 0)
		return NULL;
	if (!a[0]) {
		PyErr_SetString(PyExc_TypeError, "observe() missing 'amount'");
		return NULL;
	}
	if (as_double(a[0], &d) < 0)
		return NULL;
	if (ex)
		return shmpy_with_exemplar(self, 0, d, ex);
	shmet_histogram_observe(&self->u.h, d);
	Py_RETURN_NONE;
}

#define FASTCALL(fn) (PyCFunction)(void (*)(void))(fn), \
	METH_FASTCALL | METH_KEYWORDS
#define BIND_METHOD { "_bind", (PyCFunction)metric_bind, METH_VARARGS, \
	"_bind(family, labelvalues): resolve this object's series" }

static PyMethodDef counter_methods[] = {
	{ "inc", FASTCALL(counter_inc),
	  "inc(amount=1, exemplar=None): increment by a non-negative "
	  "amount, with an exemplar's labels" },
	BIND_METHOD,
	{ NULL, NULL, 0, NULL },
};

static PyMethodDef gauge_methods[] = {
	{ "inc", FASTCALL(gauge_inc), "inc(amount=1)" },
	{ "dec", FASTCALL(gauge_dec), "dec(amount=1)" },
	{ "set", FASTCALL(gauge_set), "set(value)" },
	{ "set_to_current_time", (PyCFunction)gauge_set_to_current_time,
	  METH_NOARGS, "set to the current Unix time" },
	BIND_METHOD,
	{ NULL, NULL, 0, NULL },
};

static PyMethodDef histogram_methods[] = {
	{ "observe", FASTCALL(histogram_observe),
	  "observe(amount, exemplar=None)" },
	BIND_METHOD,
	{ NULL, NULL, 0, NULL },
};

#define METRIC_TYPE(cname, pyname, methods) \
	PyTypeObject cname = { \
		PyVarObject_HEAD_INIT(NULL, 0) \
		.tp_name = "shmetrics._shmetrics." pyname, \
		.tp_doc = "The C hot path of shmetrics." pyname, \
		.tp_basicsize = sizeof(struct shmpy_metric), \
		.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | \
			    Py_TPFLAGS_HAVE_GC, \
		.tp_new = metric_new, \
		.tp_dealloc = (destructor)metric_dealloc, \
		.tp_traverse = (traverseproc)metric_traverse, \
		.tp_clear = (inquiry)metric_clear, \
		.tp_methods = methods, \
	}

METRIC_TYPE(shmpy_counter_type, "CounterBase", counter_methods);
METRIC_TYPE(shmpy_gauge_type, "GaugeBase", gauge_methods);
METRIC_TYPE(shmpy_histogram_type, "HistogramBase", histogram_methods);
