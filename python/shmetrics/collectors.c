/*
 * The specification's collectors, CampaignMetricsCollector and
 * WebhookMetricsCollector, over libshmetrics-collectors: one C method per
 * Python method, with the specification's argument names, so keyword
 * calls (update_queue_health(queue_size=..., oldest_age_seconds=...))
 * work as written.  Label values are str()'d, as prometheus_client does.
 *
 * Timers are context managers (timers.c): time_processing() and
 * time_poll_cycle() return a Timer, time_delivery() a DeliveryTimer with
 * set_success() and set_failed(); __exit__ observes once, exceptions
 * included.
 *
 * Thread safety: a collector may be shared by threads (the C collectors
 * resolve series lock-free); a timer belongs to the thread that uses it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <shmetrics-collectors.h>

#include "shmetrics-python.h"
#include "timers.h"

struct shmpy_campaign {
	PyObject_HEAD
	PyObject *segment;
	int ready;
	struct shmet_campaign_collector c;
};

struct shmpy_webhook {
	PyObject_HEAD
	PyObject *segment;
	int ready;
	struct shmet_webhook_collector c;
};

static int
not_ready(int ready)
{
	if (ready)
		return 0;
	PyErr_SetString(PyExc_RuntimeError, "collector not initialised");
	return 1;
}

/* ------------------------------------------------------------------ */
/* Shared plumbing                                                     */

static PyObject *
collector_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
	return type->tp_alloc(type, 0);
}

/* Both collector structs start with PyObject_HEAD, segment. */
static void
collector_dealloc(PyObject *self)
{
	Py_CLEAR(((struct shmpy_campaign *)self)->segment);
	Py_TYPE(self)->tp_free(self);
}

/* Parse n label-value objects of the given names; values[i] owned by
 * keep[i].  Returns 0 or -1. */
static int
parse_strs(PyObject *args, PyObject *kwargs, const char *fmt,
	   char **kwlist, int n, const char **values, PyObject **keep)
{
	PyObject *o[3] = { NULL, NULL, NULL };

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kwlist, &o[0],
					 &o[1], &o[2]))
		return -1;
	for (int i = 0; i < n; i++) {
		values[i] = shmpy_label_value(o[i], kwlist[i], &keep[i]);
		if (!values[i]) {
			while (i-- > 0)
				Py_DECREF(keep[i]);
			return -1;
		}
	}
	return 0;
}

static void
release(PyObject **keep, int n)
{
	for (int i = 0; i < n; i++)
		Py_DECREF(keep[i]);
}

/* ------------------------------------------------------------------ */
/* Campaign                                                            */

#define CAMPAIGN(self) ((struct shmpy_campaign *)(self))

static int
campaign_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "segment", NULL };
	PyObject *segment;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!:CampaignCollector",
					 kwlist, &shmpy_segment_type,
					 &segment))
		return -1;
	if (CAMPAIGN(self)->ready) {
		PyErr_SetString(PyExc_RuntimeError, "initialised already");
		return -1;
	}
	Py_INCREF(segment);
	CAMPAIGN(self)->segment = segment;
	rc = shmet_campaign_collector_init(&CAMPAIGN(self)->c,
		&((struct shmpy_segment *)segment)->seg);
	CAMPAIGN(self)->ready = 1;
	if (rc == -EINVAL || rc == -EEXIST) {
		shmpy_raise_errno(rc, "CampaignMetricsCollector");
		return -1;
	}
	return 0;
}

static PyObject *
campaign_record_call_initiated(PyObject *self, PyObject *args,
			       PyObject *kwargs)
{
	static char *kwlist[] = { "campaign_id", "user_id", "trace_id",
				  NULL };
	PyObject *o[2], *keep[2];
	const char *v[2], *trace = NULL;

	if (not_ready(CAMPAIGN(self)->ready) ||
	    !PyArg_ParseTupleAndKeywords(args, kwargs,
					 "OO|z:record_call_initiated", kwlist,
					 &o[0], &o[1], &trace))
		return NULL;
	for (int i = 0; i < 2; i++) {
		v[i] = shmpy_label_value(o[i], kwlist[i], &keep[i]);
		if (!v[i]) {
			release(keep, i);
			return NULL;
		}
	}
	shmet_campaign_record_call_initiated_traced(&CAMPAIGN(self)->c, v[0],
						    v[1], trace);
	release(keep, 2);
	Py_RETURN_NONE;
}

static PyObject *
campaign_time_processing(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "campaign_id", NULL };
	const char *v[1];
	PyObject *keep[1], *t;

	if (not_ready(CAMPAIGN(self)->ready) ||
	    parse_strs(args, kwargs, "O:time_processing", kwlist, 1, v,
		       keep) < 0)
		return NULL;
	t = timer_wrap(self, shmet_campaign_time_processing(
		&CAMPAIGN(self)->c, v[0]));
	release(keep, 1);
	return t;
}

static PyObject *
campaign_record_call_completed(PyObject *self, PyObject *args,
			       PyObject *kwargs)
{
	static char *kwlist[] = { "campaign_id", "user_id", "outcome",
				  "duration", "cost", "trace_id", NULL };
	PyObject *o[3], *keep[3];
	const char *v[3], *trace = NULL;
	double duration, cost = 0;

	if (not_ready(CAMPAIGN(self)->ready) ||
	    !PyArg_ParseTupleAndKeywords(args, kwargs,
					 "OOOd|dz:record_call_completed",
					 kwlist, &o[0], &o[1], &o[2],
					 &duration, &cost, &trace))
		return NULL;
	for (int i = 0; i < 3; i++) {
		v[i] = shmpy_label_value(o[i], kwlist[i], &keep[i]);
		if (!v[i]) {
			release(keep, i);
			return NULL;
		}
	}
	shmet_campaign_record_call_completed_traced(&CAMPAIGN(self)->c, v[0],
						    v[1], v[2], duration, cost,
						    trace);
	release(keep, 3);
	Py_RETURN_NONE;
}

static PyObject *
campaign_record_call_failed(PyObject *self, PyObject *args,
			    PyObject *kwargs)
{
	static char *kwlist[] = { "campaign_id", "user_id", "error_type",
				  NULL };
	const char *v[3];
	PyObject *keep[3];

	if (not_ready(CAMPAIGN(self)->ready) ||
	    parse_strs(args, kwargs, "OOO:record_call_failed", kwlist, 3, v,
		       keep) < 0)
		return NULL;
	shmet_campaign_record_call_failed(&CAMPAIGN(self)->c, v[0], v[1],
					  v[2]);
	release(keep, 3);
	Py_RETURN_NONE;
}

/* method(label, number) for the update_* gauges. */
static PyObject *
campaign_label_number(PyObject *self, PyObject *args, PyObject *kwargs,
		      const char *fmt, char **kwlist,
		      void (*fn)(const struct shmet_campaign_collector *,
				 const char *, double))
{
	PyObject *o, *keep;
	const char *v;
	double d;

	if (not_ready(CAMPAIGN(self)->ready) ||
	    !PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kwlist, &o, &d))
		return NULL;
	v = shmpy_label_value(o, kwlist[0], &keep);
	if (!v)
		return NULL;
	fn(&CAMPAIGN(self)->c, v, d);
	Py_DECREF(keep);
	Py_RETURN_NONE;
}

static PyObject *
campaign_update_active_campaigns(PyObject *self, PyObject *args,
				 PyObject *kwargs)
{
	static char *kwlist[] = { "user_id", "count", NULL };

	return campaign_label_number(self, args, kwargs,
				     "Od:update_active_campaigns", kwlist,
				     shmet_campaign_update_active_campaigns);
}

static PyObject *
campaign_update_pending_leads(PyObject *self, PyObject *args,
			      PyObject *kwargs)
{
	static char *kwlist[] = { "campaign_id", "count", NULL };

	return campaign_label_number(self, args, kwargs,
				     "Od:update_pending_leads", kwlist,
				     shmet_campaign_update_pending_leads);
}

static PyObject *
campaign_update_success_rate(PyObject *self, PyObject *args,
			     PyObject *kwargs)
{
	static char *kwlist[] = { "campaign_id", "rate", NULL };

	return campaign_label_number(self, args, kwargs,
				     "Od:update_success_rate", kwlist,
				     shmet_campaign_update_success_rate);
}

static PyObject *
campaign_update_concurrent_calls(PyObject *self, PyObject *args,
				 PyObject *kwargs)
{
	static char *kwlist[] = { "count", NULL };
	double d;

	if (not_ready(CAMPAIGN(self)->ready) ||
	    !PyArg_ParseTupleAndKeywords(args, kwargs,
					 "d:update_concurrent_calls", kwlist,
					 &d))
		return NULL;
	shmet_campaign_update_concurrent_calls(&CAMPAIGN(self)->c, d);
	Py_RETURN_NONE;
}

static PyObject *
campaign_time_poll_cycle(PyObject *self, PyObject *unused)
{
	if (not_ready(CAMPAIGN(self)->ready))
		return NULL;
	return timer_wrap(self,
			  shmet_campaign_time_poll_cycle(&CAMPAIGN(self)->c));
}

static PyObject *
campaign_set_time_scale(PyObject *self, PyObject *args)
{
	double scale;

	if (not_ready(CAMPAIGN(self)->ready) ||
	    !PyArg_ParseTuple(args, "d:set_time_scale", &scale))
		return NULL;
	shmet_campaign_collector_set_time_scale(&CAMPAIGN(self)->c, scale);
	Py_RETURN_NONE;
}

#define KW(fn) (PyCFunction)(void (*)(void))(fn), \
	METH_VARARGS | METH_KEYWORDS

static PyMethodDef campaign_methods[] = {
	{ "record_call_initiated", KW(campaign_record_call_initiated),
	  "record_call_initiated(campaign_id, user_id, trace_id=None)" },
	{ "time_processing", KW(campaign_time_processing),
	  "with time_processing(campaign_id): ..." },
	{ "record_call_completed", KW(campaign_record_call_completed),
	  "record_call_completed(campaign_id, user_id, outcome, duration, "
	  "cost=0, trace_id=None)" },
	{ "record_call_failed", KW(campaign_record_call_failed),
	  "record_call_failed(campaign_id, user_id, error_type)" },
	{ "update_active_campaigns", KW(campaign_update_active_campaigns),
	  "update_active_campaigns(user_id, count): this engine's" },
	{ "update_pending_leads", KW(campaign_update_pending_leads),
	  "update_pending_leads(campaign_id, count)" },
	{ "update_concurrent_calls", KW(campaign_update_concurrent_calls),
	  "update_concurrent_calls(count): this engine's" },
	{ "update_success_rate", KW(campaign_update_success_rate),
	  "update_success_rate(campaign_id, rate)" },
	{ "time_poll_cycle", (PyCFunction)campaign_time_poll_cycle,
	  METH_NOARGS, "with time_poll_cycle(): ..." },
	{ "set_time_scale", (PyCFunction)campaign_set_time_scale,
	  METH_VARARGS, "set_time_scale(n): timers report n s per real s" },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject shmpy_campaign_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmetrics._shmetrics.CampaignCollector",
	.tp_doc = "CampaignCollector(segment): the campaign engine's "
		  "families.",
	.tp_basicsize = sizeof(struct shmpy_campaign),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = collector_new,
	.tp_init = campaign_init,
	.tp_dealloc = (destructor)collector_dealloc,
	.tp_methods = campaign_methods,
};

/* ------------------------------------------------------------------ */
/* Webhook                                                             */

#define WEBHOOK(self) ((struct shmpy_webhook *)(self))

static int
webhook_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "worker_id", "segment", NULL };
	PyObject *segment, *worker, *keep;
	const char *w;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!:WebhookCollector",
					 kwlist, &worker, &shmpy_segment_type,
					 &segment))
		return -1;
	if (WEBHOOK(self)->ready) {
		PyErr_SetString(PyExc_RuntimeError, "initialised already");
		return -1;
	}
	w = shmpy_label_value(worker, "worker_id", &keep);
	if (!w)
		return -1;
	Py_INCREF(segment);
	WEBHOOK(self)->segment = segment;
	rc = shmet_webhook_collector_init(&WEBHOOK(self)->c,
		&((struct shmpy_segment *)segment)->seg, w);
	Py_DECREF(keep);
	WEBHOOK(self)->ready = 1;
	if (rc == -EINVAL || rc == -EEXIST) {
		shmpy_raise_errno(rc, "WebhookMetricsCollector");
		return -1;
	}
	return 0;
}

static PyObject *
webhook_event_partner(PyObject *self, PyObject *args, PyObject *kwargs,
		      const char *fmt,
		      void (*fn)(const struct shmet_webhook_collector *,
				 const char *, const char *))
{
	static char *kwlist[] = { "event_type", "partner_id", NULL };
	const char *v[2];
	PyObject *keep[2];

	if (not_ready(WEBHOOK(self)->ready) ||
	    parse_strs(args, kwargs, fmt, kwlist, 2, v, keep) < 0)
		return NULL;
	fn(&WEBHOOK(self)->c, v[0], v[1]);
	release(keep, 2);
	Py_RETURN_NONE;
}

static PyObject *
webhook_record_queued(PyObject *self, PyObject *args, PyObject *kwargs)
{
	return webhook_event_partner(self, args, kwargs, "OO:record_queued",
				     shmet_webhook_record_queued);
}

static PyObject *
webhook_record_dead_letter(PyObject *self, PyObject *args, PyObject *kwargs)
{
	return webhook_event_partner(self, args, kwargs,
				     "OO:record_dead_letter",
				     shmet_webhook_record_dead_letter);
}

/* (partner_id, enqueued_ns=0): enqueued_ns from now_ns() at enqueue. */
static const char *
parse_partner(PyObject *args, PyObject *kwargs, const char *fmt,
	      unsigned long long *enq, PyObject **keep)
{
	static char *kwlist[] = { "partner_id", "enqueued_ns", NULL };
	PyObject *o;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kwlist, &o, enq))
		return NULL;
	return shmpy_label_value(o, kwlist[0], keep);
}

static PyObject *
webhook_time_delivery(PyObject *self, PyObject *args, PyObject *kwargs)
{
	unsigned long long enq = 0;
	struct shmpy_delivery *t;
	PyObject *keep;
	const char *p;

	if (not_ready(WEBHOOK(self)->ready))
		return NULL;
	p = parse_partner(args, kwargs, "O|K:time_delivery", &enq, &keep);
	if (!p)
		return NULL;
	t = PyObject_New(struct shmpy_delivery, &shmpy_delivery_type);
	if (t) {
		Py_INCREF(self);
		t->owner = self;
		t->d = enq ? shmet_webhook_time_delivery_queued(
				     &WEBHOOK(self)->c, p, enq)
			   : shmet_webhook_time_delivery(&WEBHOOK(self)->c, p);
	}
	Py_DECREF(keep);
	return (PyObject *)t;
}

static PyObject *
webhook_time_processing(PyObject *self, PyObject *args, PyObject *kwargs)
{
	unsigned long long enq = 0;
	PyObject *keep, *t;
	const char *p;

	if (not_ready(WEBHOOK(self)->ready))
		return NULL;
	p = parse_partner(args, kwargs, "O|K:time_processing", &enq, &keep);
	if (!p)
		return NULL;
	t = timer_wrap(self, shmet_webhook_time_processing(&WEBHOOK(self)->c,
							   p, enq));
	Py_DECREF(keep);
	return t;
}

static PyObject *
webhook_record_retry(PyObject *self, PyObject *args, PyObject *kwargs)
{
	static char *kwlist[] = { "partner_id", "attempt_number", NULL };
	PyObject *o, *keep;
	const char *p;
	int attempt;

	if (not_ready(WEBHOOK(self)->ready) ||
	    !PyArg_ParseTupleAndKeywords(args, kwargs, "Oi:record_retry",
					 kwlist, &o, &attempt))
		return NULL;
	p = shmpy_label_value(o, kwlist[0], &keep);
	if (!p)
		return NULL;
	shmet_webhook_record_retry(&WEBHOOK(self)->c, p, attempt);
	Py_DECREF(keep);
	Py_RETURN_NONE;
}

static PyObject *
webhook_update_queue_health(PyObject *self, PyObject *args,
			    PyObject *kwargs)
{
	static char *kwlist[] = { "queue_size", "oldest_age_seconds", NULL };
	double size, age;

	if (not_ready(WEBHOOK(self)->ready) ||
	    !PyArg_ParseTupleAndKeywords(args, kwargs,
					 "dd:update_queue_health", kwlist,
					 &size, &age))
		return NULL;
	shmet_webhook_update_queue_health(&WEBHOOK(self)->c, size, age);
	Py_RETURN_NONE;
}

static PyObject *
webhook_update_worker_uptime(PyObject *self, PyObject *unused)
{
	if (not_ready(WEBHOOK(self)->ready))
		return NULL;
	return PyFloat_FromDouble(
		shmet_webhook_update_worker_uptime(&WEBHOOK(self)->c));
}

static PyObject *
webhook_record_processed(PyObject *self, PyObject *unused)
{
	if (not_ready(WEBHOOK(self)->ready))
		return NULL;
	shmet_webhook_record_processed(&WEBHOOK(self)->c);
	Py_RETURN_NONE;
}

static PyObject *
webhook_set_time_scale(PyObject *self, PyObject *args)
{
	double scale;

	if (not_ready(WEBHOOK(self)->ready) ||
	    !PyArg_ParseTuple(args, "d:set_time_scale", &scale))
		return NULL;
	shmet_webhook_collector_set_time_scale(&WEBHOOK(self)->c, scale);
	Py_RETURN_NONE;
}

static PyMethodDef webhook_methods[] = {
	{ "record_queued", KW(webhook_record_queued),
	  "record_queued(event_type, partner_id)" },
	{ "time_delivery", KW(webhook_time_delivery),
	  "with time_delivery(partner_id, enqueued_ns=0) as timer: "
	  "timer.set_success(event_type) / set_failed(event_type, status)" },
	{ "time_processing", KW(webhook_time_processing),
	  "with time_processing(partner_id, enqueued_ns=0): queue to "
	  "delivery time" },
	{ "record_retry", KW(webhook_record_retry),
	  "record_retry(partner_id, attempt_number)" },
	{ "record_dead_letter", KW(webhook_record_dead_letter),
	  "record_dead_letter(event_type, partner_id)" },
	{ "update_queue_health", KW(webhook_update_queue_health),
	  "update_queue_health(queue_size, oldest_age_seconds)" },
	{ "update_worker_uptime", (PyCFunction)webhook_update_worker_uptime,
	  METH_NOARGS, "update_worker_uptime(): seconds since init" },
	{ "record_processed", (PyCFunction)webhook_record_processed,
	  METH_NOARGS, "one webhook processed by this worker" },
	{ "set_time_scale", (PyCFunction)webhook_set_time_scale,
	  METH_VARARGS, "set_time_scale(n): timers report n s per real s" },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject shmpy_webhook_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmetrics._shmetrics.WebhookCollector",
	.tp_doc = "WebhookCollector(worker_id, segment): the webhook "
		  "worker's families.",
	.tp_basicsize = sizeof(struct shmpy_webhook),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = collector_new,
	.tp_init = webhook_init,
	.tp_dealloc = (destructor)collector_dealloc,
	.tp_methods = webhook_methods,
};
