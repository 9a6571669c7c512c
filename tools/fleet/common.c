/*
 * shmetrics-fleet: the fleet-wide state (options, the shared mapping, signal flags),
 * its clock (fleet seconds), randomness, messages and the shared queue of
 * webhook events.
 */
#include "fleet.h"

struct fleet_opts opt = {
	.engines = 2, .workers = 3, .speed = 60, .max_retries = 5,
	.max_calls = 20,
	.rate_4xx = 3, .rate_5xx = 5, .rate_slow = 3, .rate_drop = 2,
	.rate_retry_fail = 40,
	.slow_s = 4, .rate_call_fail = 15,
};
struct shared *q;
volatile sig_atomic_t stopping, hold_requested, resume_requested;

const char *const users[USERS] = { "user-0", "user-1", "user-2" };

/* ------------------------------------------------------------------ */
/* Time                                                                */

/* Fleet seconds between two shmet_now_ns() instants. */
double
fleet_s(uint64_t from_ns, uint64_t to_ns)
{
	if (to_ns <= from_ns)
		return 0;
	return (double)(to_ns - from_ns) / 1e9 * opt.speed;
}

/* shmet_now_ns() after fleet_seconds more. */
uint64_t
fleet_after(double fleet_seconds)
{
	return shmet_now_ns() + (uint64_t)(fleet_seconds / opt.speed * 1e9);
}

void
real_sleep(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stopping)
		;
}

void
fleet_sleep(double fleet_seconds)
{
	real_sleep(fleet_seconds / opt.speed);
}

double
uniform(unsigned *seed, double lo, double hi)
{
	return lo + (hi - lo) * ((double)rand_r(seed) / RAND_MAX);
}

int
percent(unsigned *seed, int p)
{
	return (int)(rand_r(seed) % 100) < p;
}

void
say(const char *fmt, ...)
{
	va_list ap;

	if (opt.quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "shmetrics-fleet[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* The shared queue                                                    */

void
queue_lock(void)
{
	if (pthread_mutex_lock(&q->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&q->lock);
}

void
queue_unlock(void)
{
	pthread_mutex_unlock(&q->lock);
}

/* Enqueue an event; a full queue drops it, and the drop is counted (the
 * workers record it as a dead letter). */
void
new_trace_id(char out[TRACE_ID_LEN + 1])
{
	static uint64_t n;
	uint64_t a = shmet_now_ns() ^ ((uint64_t)getpid() << 40);
	uint64_t b = ++n * UINT64_C(0x9e3779b97f4a7c15) ^ a;

	/* mixed so that ids of one process do not share a prefix */
	a = (a ^ (a >> 31)) * UINT64_C(0xbf58476d1ce4e5b9);
	snprintf(out, TRACE_ID_LEN + 1, "%016llx%016llx",
		 (unsigned long long)(a ^ (a >> 29)),
		 (unsigned long long)(b ^ (b >> 32)));
}

void
enqueue(const char *event_type, int user, const char *trace_id)
{
	int i;

	queue_lock();
	for (i = 0; i < QUEUE_CAP; i++) {
		struct event *e = &q->ev[i];

		if (e->state != 0)
			continue;
		memset(e, 0, sizeof *e);
		e->state = 1;
		e->enqueued_ns = shmet_now_ns();
		e->due_ns = e->enqueued_ns;
		snprintf(e->event_type, sizeof e->event_type, "%s", event_type);
		snprintf(e->partner_id, sizeof e->partner_id, "%s",
			 users[user]);
		snprintf(e->trace_id, sizeof e->trace_id, "%s",
			 trace_id ? trace_id : "");
		q->n.events_enqueued++;
		break;
	}
	if (i == QUEUE_CAP) {
		q->n.events_dropped++;
		q->dropped_unreported[user]++;
	}
	queue_unlock();
}

/* Size and oldest age (fleet seconds) at now_ns; also reclaims events that
 * a dead worker held for more than 30 real seconds. */
void
queue_stats(uint64_t now_ns, double *size, double *oldest_age)
{
	uint64_t oldest = now_ns;
	int n = 0;

	queue_lock();
	for (int i = 0; i < QUEUE_CAP; i++) {
		struct event *e = &q->ev[i];

		if (e->state == 2 && now_ns > e->taken_ns &&
		    now_ns - e->taken_ns > 30000000000ull)
			e->state = 1;
		if (e->state == 0)
			continue;
		n++;
		if (e->enqueued_ns < oldest)
			oldest = e->enqueued_ns;
	}
	queue_unlock();
	*size = n;
	*oldest_age = fleet_s(oldest, now_ns);
}

int
take_due(struct event *out)
{
	uint64_t now = shmet_now_ns();
	int best = -1;

	queue_lock();
	for (int i = 0; i < QUEUE_CAP; i++) {
		struct event *e = &q->ev[i];

		if (e->state == 1 && e->due_ns <= now &&
		    (best < 0 || e->due_ns < q->ev[best].due_ns))
			best = i;
	}
	if (best >= 0) {
		q->ev[best].state = 2;
		q->ev[best].attempts++;
		q->ev[best].taken_ns = now;
		*out = q->ev[best];
	}
	queue_unlock();
	return best;
}

/* Remove event i (delivered or dead), or schedule its retry. */
void
finish(int i, int done, double retry_in_fleet_s)
{
	queue_lock();
	if (done) {
		q->ev[i].state = 0;
	} else {
		q->ev[i].state = 1;
		q->ev[i].due_ns = fleet_after(retry_in_fleet_s);
	}
	queue_unlock();
}

void
count(long *counter)
{
	queue_lock();
	(*counter)++;
	queue_unlock();
}
