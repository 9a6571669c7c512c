/*
 * The collectors' timers (timers.c), for the collectors (collectors.c)
 * that hand them out.
 */
#ifndef SHMETRICS_PYTHON_TIMERS_H
#define SHMETRICS_PYTHON_TIMERS_H

#include <shmetrics-collectors.h>

#include "shmetrics-python.h"

struct shmpy_timer {
	PyObject_HEAD
	PyObject *owner;                /* the collector: keeps it mapped */
	struct shmet_timer t;
	/* set_trace(): the exemplar's trace id at the stop, "" for none */
	char trace_id[4 * SHMET_EXEMPLAR_MAX_CHARS + 1];
};

struct shmpy_delivery {
	PyObject_HEAD
	PyObject *owner;
	struct shmet_delivery_timer d;
};

/* A Timer of owner (a collector, kept alive while it runs) for t. */
PyObject *timer_wrap(PyObject *owner, struct shmet_timer t);

#endif /* SHMETRICS_PYTHON_TIMERS_H */
