/*
 * shmetrics-fleet: the demo fleet.  Forks campaign-engine and
 * webhook-worker processes that behave like the specification's examples
 * and record through libshmetrics-collectors, plus a webhook sink on
 * 127.0.0.1 that the workers deliver to with real HTTP POSTs.
 *
 *   engines   each owns four campaigns (disjoint from the other engines')
 *             and runs poll cycles: calls end (completed, with an outcome
 *             and a cost, and a webhook event enqueued), new calls are set
 *             up for pending leads (time_processing around the setup) up
 *             to --max-calls at once, some fail at once (by error type)
 *   workers   take due events from one shared queue, POST them to the sink
 *             (200, 4xx, 5xx, slow or dropped at configurable rates):
 *             4xx is permanent (dead letter at once), 5xx and connection
 *             errors retry with exponential backoff up to --max-retries
 *   queue     the queue's owner: publishes webhook_queue_size and
 *             webhook_queue_oldest_age_seconds, which therefore stay (and
 *             grow) when every worker is dead
 *   parent    restarts children (--churn kills one every N seconds with
 *             SIGKILL, as a crash would), applies the fault flags, writes
 *             the --status file, stops all on SIGINT/SIGTERM or after
 *             --duration
 *
 * One time base: the fleet's clock runs --speed times faster than real
 * time, and everything it reports is in fleet seconds: call durations,
 * timed work (the collectors' timers are scaled by the same factor), HTTP
 * latency (the sink sleeps fleet seconds / speed), queue ages and uptime.
 *
 * SIGUSR1 holds the fleet: engines finish their cycle, workers their
 * delivery, each publishes its gauges once more and then idles; the status
 * file then says "held": true and its gauges are exactly what the exporter
 * shows.  SIGUSR2 resumes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics.h>
#include <shmetrics-collectors.h>
#include <shmetrics/layout.h>

#include "tools/cli.h"

#define QUEUE_CAP 4096
#define MAX_ENGINES 32
#define MAX_WORKERS 64
#define MAX_CHILDREN (2 + MAX_ENGINES + MAX_WORKERS)
#define CAMPAIGNS 4                     /* per engine */
#define USERS 3
#define MAX_CALLS 256                   /* per engine */

struct fleet_opts {
	int engines, workers;
	double speed;
	double churn_s;                 /* 0: never */
	double duration_s;              /* 0: until signalled */
	int max_retries;
	int max_calls;                  /* concurrent calls per engine */
	/* sink outcome rates, percent */
	int rate_4xx, rate_5xx, rate_slow, rate_drop;
	int rate_retry_fail;            /* a retry fails again, percent */
	double slow_s;                  /* fleet seconds of a slow response */
	/* engine fault rates, percent */
	int rate_call_fail, rate_slow_setup;
	double kill_workers_s;          /* 0: never */
	const char *status_path;
	int quiet;
};

/* One webhook event in the shared queue. */
struct event {
	int state;                      /* 0 free, 1 pending, 2 in flight */
	int attempts;
	uint64_t enqueued_ns;           /* shmet_now_ns() */
	uint64_t due_ns;
	uint64_t taken_ns;              /* for reclaiming a dead worker's */
	char event_type[24];
	char partner_id[24];
};

/* What an engine knows; written by the engine at the end of each cycle,
 * equal to the gauges it has just set. */
struct engine_state {
	pid_t pid;
	int ack;                        /* held, gauges published */
	int valid;
	char campaign[CAMPAIGNS][24];
	char user[CAMPAIGNS][24];
	int pending[CAMPAIGNS];
	int completed[CAMPAIGNS], succeeded[CAMPAIGNS];
	int active_by_user[USERS];
	int concurrent;
};

struct worker_state {
	pid_t pid;
	int ack;
	double uptime_s;                /* the value last set */
};

/* Counts of what happened, fleet-wide (under the queue lock). */
struct counts {
	long calls_initiated, calls_failed, calls_completed;
	long events_enqueued, events_dropped;
	long deliveries, delivered, failed_attempts, retries;
	long dead_letters;              /* after failures */
};

/* Everything shared lives in one MAP_SHARED mapping; a robust mutex
 * guards the queue and the counts, so that a worker killed while holding
 * it does not wedge the fleet. */
struct shared {
	pthread_mutex_t lock;
	uint16_t sink_port;
	int hold;                       /* 0 run, 1 engines stop, 2 all */
	uint64_t hold_ns;               /* the instant gauges describe */
	int dropped_unreported[USERS];  /* drops not yet dead-lettered */
	struct counts n;
	struct engine_state engine[MAX_ENGINES];
	struct worker_state worker[MAX_WORKERS];
	struct worker_state queue_owner;        /* uptime_s unused */
	struct event ev[QUEUE_CAP];
};

static struct fleet_opts opt = {
	.engines = 2, .workers = 3, .speed = 60, .max_retries = 5,
	.max_calls = 20,
	.rate_4xx = 3, .rate_5xx = 5, .rate_slow = 3, .rate_drop = 2,
	.rate_retry_fail = 40,
	.slow_s = 4, .rate_call_fail = 15,
};
static struct shared *q;
static volatile sig_atomic_t stopping, hold_requested, resume_requested;

static const char *const users[USERS] = { "user-0", "user-1", "user-2" };

/* ------------------------------------------------------------------ */
/* Time                                                                */

/* Fleet seconds between two shmet_now_ns() instants. */
static double
fleet_s(uint64_t from_ns, uint64_t to_ns)
{
	if (to_ns <= from_ns)
		return 0;
	return (double)(to_ns - from_ns) / 1e9 * opt.speed;
}

/* shmet_now_ns() after fleet_seconds more. */
static uint64_t
fleet_after(double fleet_seconds)
{
	return shmet_now_ns() + (uint64_t)(fleet_seconds / opt.speed * 1e9);
}

static void
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

static void
fleet_sleep(double fleet_seconds)
{
	real_sleep(fleet_seconds / opt.speed);
}

static double
uniform(unsigned *seed, double lo, double hi)
{
	return lo + (hi - lo) * ((double)rand_r(seed) / RAND_MAX);
}

static int
percent(unsigned *seed, int p)
{
	return (int)(rand_r(seed) % 100) < p;
}

static void
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

static void
queue_lock(void)
{
	if (pthread_mutex_lock(&q->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&q->lock);
}

static void
queue_unlock(void)
{
	pthread_mutex_unlock(&q->lock);
}

/* Enqueue an event; a full queue drops it, and the drop is counted (the
 * workers record it as a dead letter). */
static void
enqueue(const char *event_type, int user)
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
static void
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

static int
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
static void
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

static void
count(long *counter)
{
	queue_lock();
	(*counter)++;
	queue_unlock();
}

/* ------------------------------------------------------------------ */
/* Campaign engine                                                     */

struct call {
	int active;
	int campaign;
	double duration_s;              /* fleet seconds */
	uint64_t ends_ns;
};

static const char *const outcomes[] = { "success", "success", "success",
					"no_answer", "busy", "voicemail" };
static const char *const error_types[] = { "timeout", "invalid_number",
					   "sip_error", "rate_limited" };

/*
 * Whether this call fails, for a failure rate of p percent, spread evenly
 * (error diffusion) rather than drawn: after n calls exactly floor(n p /
 * 100) have failed.  A random draw let the first few calls of a short run
 * fail at twice the rate, and HighCampaignFailureRate (> 30%) went
 * pending in a default demo that asked for no fault.  Per engine process.
 */
static int
spread_failure(int p)
{
	static int owed;

	owed += p;
	if (owed < 100)
		return 0;
	owed -= 100;
	return 1;
}

/* Set up one call for campaign c: the real work that time_processing
 * measures.  Returns 0 when the call is up, -1 when it failed at once. */
static int
setup_call(const struct shmet_campaign_collector *m,
	   struct engine_state *st, int c, unsigned *seed)
{
	int failed;

	SHMET_TIMED(shmet_campaign_time_processing(m, st->campaign[c])) {
		if (percent(seed, opt.rate_slow_setup))
			fleet_sleep(uniform(seed, 6, 9));
		else
			fleet_sleep(uniform(seed, 0.1, 1.2));
		failed = spread_failure(opt.rate_call_fail);
	}
	return failed ? -1 : 0;
}

/* One poll cycle: calls that ended, new calls, gauges. */
static void
engine_cycle(const struct shmet_campaign_collector *m, struct engine_state *st,
	     struct call *calls, int n, unsigned *seed)
{
	struct engine_state next = *st;
	int active = 0, calls_of[CAMPAIGNS] = { 0 };
	uint64_t now = shmet_now_ns();

	for (int s = 0; s < opt.max_calls; s++) {
		struct call *call = &calls[s];
		const char *outcome;
		int c = call->campaign;

		if (!call->active)
			continue;
		if (call->ends_ns > now)
			continue;
		call->active = 0;
		outcome = outcomes[rand_r(seed) % 6];
		next.completed[c]++;
		next.succeeded[c] += !strcmp(outcome, "success");
		shmet_campaign_record_call_completed(
			m, next.campaign[c], next.user[c], outcome,
			call->duration_s, call->duration_s / 60 * 0.013);
		shmet_campaign_update_success_rate(
			m, next.campaign[c],
			(double)next.succeeded[c] / next.completed[c]);
		count(&q->n.calls_completed);
		enqueue("call_ended", (n + c) % USERS);
	}
	for (int s = 0; s < opt.max_calls; s++)
		if (calls[s].active)
			active++;
	for (int c = 0; c < CAMPAIGNS && !stopping; c++) {
		int launch = 1 + rand_r(seed) % 3;

		if (launch > next.pending[c])
			launch = next.pending[c];
		for (int k = 0; k < launch && active < opt.max_calls; k++) {
			next.pending[c]--;
			shmet_campaign_record_call_initiated(
				m, next.campaign[c], next.user[c]);
			count(&q->n.calls_initiated);
			if (setup_call(m, &next, c, seed) < 0) {
				shmet_campaign_record_call_failed(
					m, next.campaign[c], next.user[c],
					error_types[rand_r(seed) % 4]);
				count(&q->n.calls_failed);
				continue;
			}
			for (int s = 0; s < opt.max_calls; s++) {
				if (calls[s].active)
					continue;
				/* 10 s plus an exponential tail, mean 3
				 * minutes, cut below 30 minutes. */
				calls[s].active = 1;
				calls[s].campaign = c;
				calls[s].duration_s = fmin(
					10 - log(uniform(seed, 0.001, 1)) * 180,
					1799);
				calls[s].ends_ns =
					fleet_after(calls[s].duration_s);
				active++;
				break;
			}
		}
	}
	for (int s = 0; s < opt.max_calls; s++)
		if (calls[s].active)
			calls_of[calls[s].campaign]++;
	memset(next.active_by_user, 0, sizeof next.active_by_user);
	for (int c = 0; c < CAMPAIGNS; c++) {
		/* A campaign with nothing left to do sometimes gets a new
		 * batch of leads. */
		if (next.pending[c] == 0 && calls_of[c] == 0 &&
		    percent(seed, 5))
			next.pending[c] = 50 + rand_r(seed) % 150;
		if (next.pending[c] > 0 || calls_of[c] > 0)
			next.active_by_user[(n + c) % USERS]++;
		shmet_campaign_update_pending_leads(m, next.campaign[c],
						    next.pending[c]);
	}
	for (int u = 0; u < USERS; u++)
		shmet_campaign_update_active_campaigns(m, users[u],
						       next.active_by_user[u]);
	shmet_campaign_update_concurrent_calls(m, active);
	next.concurrent = active;
	next.valid = 1;
	*st = next;
}

static void
campaign_engine(int n)
{
	struct shmet_segment seg;
	struct shmet_campaign_collector m;
	struct engine_state *st = &q->engine[n];
	struct call calls[MAX_CALLS];
	unsigned seed = (unsigned)getpid() * 2654435761u;

	if (shmet_open(&seg, NULL) < 0) {
		say("engine: %s", shmet_last_error(&seg));
		exit(1);
	}
	if (shmet_campaign_collector_init(&m, &seg) < 0)
		say("engine: %s", shmet_last_error(&seg));
	shmet_campaign_collector_set_time_scale(&m, opt.speed);
	memset(calls, 0, sizeof calls);
	memset(st, 0, sizeof *st);
	for (int c = 0; c < CAMPAIGNS; c++) {
		snprintf(st->campaign[c], sizeof st->campaign[c], "cmp-%d%02d",
			 n, c);
		snprintf(st->user[c], sizeof st->user[c], "%s",
			 users[(n + c) % USERS]);
		st->pending[c] = 50 + rand_r(&seed) % 200;
	}
	st->pid = getpid();
	while (!stopping) {
		uint64_t next_poll;

		if (__atomic_load_n(&q->hold, __ATOMIC_ACQUIRE)) {
			/* The gauges were set at the end of the last cycle
			 * from exactly *st. */
			__atomic_store_n(&st->ack, 1, __ATOMIC_RELEASE);
			real_sleep(0.01);
			continue;
		}
		__atomic_store_n(&st->ack, 0, __ATOMIC_RELEASE);
		SHMET_TIMED(shmet_campaign_time_poll_cycle(&m)) {
			engine_cycle(&m, st, calls, n, &seed);
		}
		/* Poll every 5 fleet seconds. */
		next_poll = fleet_after(5);
		while (!stopping && shmet_now_ns() < next_poll &&
		       !__atomic_load_n(&q->hold, __ATOMIC_ACQUIRE))
			real_sleep(0.005);
	}
	shmet_close(&seg);
}

/* ------------------------------------------------------------------ */
/* Webhook worker                                                      */

/* POST to the sink; the HTTP status, or 0 for a connection error. */
static int
http_post(const char *partner, const char *event_type, int attempt)
{
	struct sockaddr_in sa;
	double limit = 5 + opt.slow_s / opt.speed;
	struct timeval tv = { (time_t)limit, 0 };
	char req[512], body[160], resp[256];
	int fd, status = 0, n, len;
	ssize_t got;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(q->sink_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		goto out;
	len = snprintf(body, sizeof body,
		       "{\"event\":\"%s\",\"partner\":\"%s\"}", event_type,
		       partner);
	n = snprintf(req, sizeof req,
		     "POST /webhooks/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Content-Type: application/json\r\nContent-Length: %d\r\n"
		     "X-Attempt: %d\r\nConnection: close\r\n\r\n%s",
		     partner, len, attempt, body);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		goto out;
	got = recv(fd, resp, sizeof resp - 1, 0);
	if (got > 12) {
		resp[got] = '\0';
		if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
			status = 0;
	}
out:
	close(fd);
	return status;
}

/* Dead-letter the drops of a full queue, which nobody recorded yet. */
static void
report_drops(const struct shmet_webhook_collector *m)
{
	int drops[USERS];

	queue_lock();
	memcpy(drops, q->dropped_unreported, sizeof drops);
	memset(q->dropped_unreported, 0, sizeof q->dropped_unreported);
	queue_unlock();
	for (int u = 0; u < USERS; u++)
		for (int k = 0; k < drops[u]; k++)
			shmet_webhook_record_dead_letter(m, "call_ended",
							 users[u]);
}

/* Deliver one event (attempt e->attempts). */
static void
deliver(const struct shmet_webhook_collector *m, int i,
	const struct event *e)
{
	if (e->attempts == 1)
		shmet_webhook_record_queued(m, e->event_type, e->partner_id);
	else
		shmet_webhook_record_retry(m, e->partner_id, e->attempts);
	SHMET_DELIVERY(t, shmet_webhook_time_delivery_queued(m, e->partner_id,
							     e->enqueued_ns)) {
		int status = http_post(e->partner_id, e->event_type,
				       e->attempts);

		queue_lock();
		q->n.deliveries++;
		q->n.retries += e->attempts > 1;
		if (status == 200)
			q->n.delivered++;
		else
			q->n.failed_attempts++;
		queue_unlock();
		if (status == 200) {
			shmet_delivery_set_success(&t, e->event_type);
			finish(i, 1, 0);
			break;
		}
		shmet_delivery_set_failed(&t, e->event_type, status);
		/* 4xx is permanent; 5xx and connection errors are retried
		 * with exponential backoff up to max_retries attempts. */
		if ((status >= 400 && status < 500) ||
		    e->attempts >= opt.max_retries) {
			shmet_webhook_record_dead_letter(m, e->event_type,
							 e->partner_id);
			count(&q->n.dead_letters);
			finish(i, 1, 0);
		} else {
			finish(i, 0, 10.0 * (1 << (e->attempts - 1)));
		}
	}
	shmet_webhook_record_processed(m);
}

static void
webhook_worker(int n)
{
	struct shmet_segment seg;
	struct shmet_webhook_collector m;
	struct worker_state *st = &q->worker[n];
	char worker_id[32];

	snprintf(worker_id, sizeof worker_id, "worker-%d", n);
	if (shmet_open(&seg, NULL) < 0) {
		say("worker: %s", shmet_last_error(&seg));
		exit(1);
	}
	if (shmet_webhook_collector_init(&m, &seg, worker_id) < 0)
		say("worker: %s", shmet_last_error(&seg));
	shmet_webhook_collector_set_time_scale(&m, opt.speed);
	st->uptime_s = 0;
	st->ack = 0;
	st->pid = getpid();
	while (!stopping) {
		struct event e;
		int i, hold = __atomic_load_n(&q->hold, __ATOMIC_ACQUIRE);

		if (hold == 1) {        /* engines settle first */
			real_sleep(0.005);
			continue;
		}
		if (hold == 2) {
			if (!__atomic_load_n(&st->ack, __ATOMIC_ACQUIRE)) {
				report_drops(&m);
				st->uptime_s =
					shmet_webhook_update_worker_uptime(&m);
				__atomic_store_n(&st->ack, 1,
						 __ATOMIC_RELEASE);
			}
			real_sleep(0.01);
			continue;
		}
		__atomic_store_n(&st->ack, 0, __ATOMIC_RELEASE);
		st->uptime_s = shmet_webhook_update_worker_uptime(&m);
		report_drops(&m);
		i = take_due(&e);
		if (i < 0) {
			real_sleep(0.02);
			continue;
		}
		deliver(&m, i, &e);
	}
	shmet_close(&seg);
}

/* ------------------------------------------------------------------ */
/* Queue owner                                                         */

/*
 * The queue's gauges are the queue's facts, not a worker's: published by
 * the workers, they left the page with the last worker (livemostrecent
 * shows live writers only), so a backlog was invisible exactly while no
 * worker drained it.  This process owns them: every 50 ms (real), and once
 * more at the hold instant when the fleet is held.  Churn and
 * --kill-workers never kill it.
 */
static void
queue_owner(void)
{
	struct shmet_segment seg;
	struct shmet_webhook_queue m;
	struct worker_state *st = &q->queue_owner;
	double size, age;

	if (shmet_open(&seg, NULL) < 0) {
		say("queue: %s", shmet_last_error(&seg));
		exit(1);
	}
	if (shmet_webhook_queue_init(&m, &seg) < 0)
		say("queue: %s", shmet_last_error(&seg));
	st->ack = 0;
	st->pid = getpid();
	while (!stopping) {
		if (__atomic_load_n(&q->hold, __ATOMIC_ACQUIRE) == 2) {
			if (!__atomic_load_n(&st->ack, __ATOMIC_ACQUIRE)) {
				queue_stats(q->hold_ns, &size, &age);
				shmet_webhook_queue_update(&m, size, age);
				__atomic_store_n(&st->ack, 1, __ATOMIC_RELEASE);
			}
			real_sleep(0.01);
			continue;
		}
		__atomic_store_n(&st->ack, 0, __ATOMIC_RELEASE);
		queue_stats(shmet_now_ns(), &size, &age);
		shmet_webhook_queue_update(&m, size, age);
		real_sleep(0.05);
	}
	shmet_close(&seg);
}

/* ------------------------------------------------------------------ */
/* Sink: a tiny HTTP server on 127.0.0.1                              */

/*
 * The partner's answer to one delivery, as a number r in [0, 100) read
 * against the fault rates as a percentage draw was: drop, then 4xx, then
 * 5xx, then slow, then fine.  Spread evenly (error diffusion, as
 * spread_failure() does for calls) rather than drawn: after n deliveries
 * floor(n f / 100) have failed, f the sum of the failure rates.  A random
 * draw let the first deliveries of a short run fail at twice the rate, and
 * HighWebhookFailureRate (> 20%) went pending in a default demo (CI).
 *
 * A retry (attempt > 1) is a partner that failed this event already: it
 * fails again at --rate-retry-fail (40 %), spread the same way for each
 * attempt number, with the retried kind of failure (5xx, else a drop).  Spread over first attempts
 * only, a retry failed again only when it happened to land on a failing
 * slot, so a default demo showed attempt_number="2" and almost never 3 to
 * 5; now each attempt number has 40 % of the previous one's retries.
 * At the default rates 10 % of first attempts fail and 7 % are retried,
 * so failed attempts are 10 + 7 (.4 + .16 + .064 + .0256) = 14.5 % of
 * queued events, a margin below HighWebhookFailureRate's 20 % that a slow
 * machine's retries, arriving late against the queued count, do not eat
 * (at 50 %, 16.6 %, an ASan build's default demo went pending in CI).
 */
static int
sink_outcome(int attempt)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int owed_fail, owed_slow, owed_retry[21];
	static unsigned kind;
	int fail = opt.rate_drop + opt.rate_4xx + opt.rate_5xx, r = 99;

	pthread_mutex_lock(&lock);
	if (attempt > 1) {
		/* per attempt number: the retries of one event follow each
		 * other, and one spread over all would fail every second
		 * attempt and pass every third */
		int *owed = &owed_retry[attempt < 20 ? attempt : 20];

		*owed += opt.rate_retry_fail;
		if (*owed >= 100) {
			*owed -= 100;
			/* the first 5xx value, or a drop without 5xx */
			r = opt.rate_5xx ? opt.rate_drop + opt.rate_4xx : 0;
		}
		pthread_mutex_unlock(&lock);
		return r;
	}
	owed_fail += fail;
	owed_slow += opt.rate_slow;
	if (owed_fail >= 100) {
		owed_fail -= 100;
		/* which failure, in proportion to the rates */
		r = fail ? (int)(kind++ * 37u % (unsigned)fail) : 0;
	} else if (owed_slow >= 100) {
		owed_slow -= 100;
		r = fail;               /* the first "slow" value */
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static void *
sink_connection(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[2048];
	size_t have = 0;
	unsigned seed = (unsigned)(uintptr_t)&buf ^ (unsigned)shmet_now_ns();
	const char *status = "200 OK", *attempt;
	int r;
	ssize_t n;

	/* Read the headers (bodies are small and come with them). */
	buf[0] = '\0';
	while (have < sizeof buf - 1 &&
	       (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	attempt = strstr(buf, "\r\nX-Attempt: ");
	r = sink_outcome(attempt ? atoi(attempt + 13) : 1);
	/* A partner answers in 30 to 250 ms (fleet time). */
	fleet_sleep(uniform(&seed, 0.03, 0.25));
	if (r < opt.rate_drop)
		goto out;               /* connection error for the worker */
	r -= opt.rate_drop;
	if (r < opt.rate_4xx)
		status = (const char *[]){ "400 Bad Request", "404 Not Found",
					   "410 Gone" }[rand_r(&seed) % 3];
	else if (r < opt.rate_4xx + opt.rate_5xx)
		status = (const char *[]){ "500 Internal Server Error",
					   "502 Bad Gateway",
					   "503 Service Unavailable" }
			[rand_r(&seed) % 3];
	else if (r < opt.rate_4xx + opt.rate_5xx + opt.rate_slow)
		fleet_sleep(opt.slow_s);
	n = snprintf(buf, sizeof buf,
		     "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close"
		     "\r\n\r\n", status);
	send(fd, buf, (size_t)n, MSG_NOSIGNAL);
out:
	close(fd);
	return NULL;
}

static void
sink(int listener)
{
	while (!stopping) {
		struct pollfd p = { listener, POLLIN, 0 };
		pthread_t t;
		int fd;

		if (poll(&p, 1, 200) <= 0)
			continue;
		fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (pthread_create(&t, NULL, sink_connection,
				   (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else
			close(fd);
	}
}

static int
open_sink(uint16_t *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, 256) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* ------------------------------------------------------------------ */
/* Parent: start, restart, churn, faults, status, stop                 */

enum role { ROLE_SINK, ROLE_QUEUE, ROLE_ENGINE, ROLE_WORKER };

struct child {
	pid_t pid;                      /* 0: gone */
	enum role role;
	int n;
	int no_restart;                 /* killed by a fault flag */
};

static struct child children[MAX_CHILDREN];
static int nchildren;
static int sink_fd = -1;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		hold_requested = 1;
	else if (sig == SIGUSR2)
		resume_requested = 1;
	else
		stopping = 1;
}

static pid_t
spawn(enum role role, int n)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	signal(SIGINT, SIG_IGN);        /* the parent stops us with TERM */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGTERM, on_signal);
	if (role == ROLE_SINK)
		sink(sink_fd);
	else if (role == ROLE_QUEUE)
		queue_owner();
	else if (role == ROLE_ENGINE)
		campaign_engine(n);
	else
		webhook_worker(n);
	_exit(0);
}

static void
start_all(void)
{
	children[nchildren++] = (struct child){ spawn(ROLE_SINK, 0), ROLE_SINK,
						0, 0 };
	children[nchildren++] = (struct child){ spawn(ROLE_QUEUE, 0),
						ROLE_QUEUE, 0, 0 };
	for (int i = 0; i < opt.engines; i++)
		children[nchildren++] = (struct child){
			spawn(ROLE_ENGINE, i), ROLE_ENGINE, i, 0 };
	for (int i = 0; i < opt.workers; i++)
		children[nchildren++] = (struct child){
			spawn(ROLE_WORKER, i), ROLE_WORKER, i, 0 };
}

/* Restart whatever exited (unless stopping or killed for good). */
static void
reap_and_restart(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < nchildren; i++) {
			if (children[i].pid != pid)
				continue;
			if (!stopping && !children[i].no_restart)
				children[i].pid = spawn(children[i].role,
							children[i].n);
			else
				children[i].pid = 0;
		}
	}
}

static void
stop_all(void)
{
	uint64_t deadline = shmet_now_ns() + 3000000000ull;

	for (int i = 0; i < nchildren; i++)
		if (children[i].pid > 0)
			kill(children[i].pid, SIGTERM);
	for (;;) {
		int alive = 0;

		reap_and_restart();
		for (int i = 0; i < nchildren; i++)
			alive += children[i].pid > 0;
		if (!alive)
			break;
		if (shmet_now_ns() > deadline) {
			for (int i = 0; i < nchildren; i++)
				if (children[i].pid > 0)
					kill(children[i].pid, SIGKILL);
			deadline = shmet_now_ns() + 60000000000ull;
		}
		real_sleep(0.02);
	}
}

/* Is child i alive and is its shared state its own? */
static int
child_live(const struct child *c)
{
	if (c->pid <= 0 || kill(c->pid, 0) < 0)
		return 0;
	if (c->role == ROLE_ENGINE)
		return q->engine[c->n].pid == c->pid && q->engine[c->n].valid;
	if (c->role == ROLE_WORKER)
		return q->worker[c->n].pid == c->pid;
	if (c->role == ROLE_QUEUE)
		return q->queue_owner.pid == c->pid;
	return 1;
}

/* Hold: engines settle, then workers publish; at most 5 s. */
static int
hold_fleet(void)
{
	uint64_t deadline = shmet_now_ns() + 5000000000ull;
	int phase;

	for (phase = 1; phase <= 2; phase++) {
		if (phase == 2)
			q->hold_ns = shmet_now_ns();
		__atomic_store_n(&q->hold, phase, __ATOMIC_RELEASE);
		for (;;) {
			int waiting = 0;

			reap_and_restart();
			for (int i = 0; i < nchildren; i++) {
				const struct child *c = &children[i];
				/* phase 2: the workers and the queue owner
				 * publish at the hold instant */
				int want = phase == 1
					? c->role == ROLE_ENGINE
					: c->role == ROLE_WORKER ||
						  c->role == ROLE_QUEUE;
				int ack;

				if (!want || !child_live(c))
					continue;
				ack = c->role == ROLE_ENGINE ?
					__atomic_load_n(&q->engine[c->n].ack,
							__ATOMIC_ACQUIRE) :
				      c->role == ROLE_QUEUE ?
					__atomic_load_n(&q->queue_owner.ack,
							__ATOMIC_ACQUIRE) :
					__atomic_load_n(&q->worker[c->n].ack,
							__ATOMIC_ACQUIRE);
				waiting += !ack;
			}
			if (!waiting)
				break;
			if (shmet_now_ns() > deadline)
				return -1;
			real_sleep(0.005);
		}
	}
	return 0;
}

static void
resume_fleet(void)
{
	__atomic_store_n(&q->hold, 0, __ATOMIC_RELEASE);
}

/* A per-campaign gauge of the status file, over the live engines: fn gives
 * campaign c's value, or returns 0 when the gauge has none (a success rate
 * before any call completed), as the exporter shows no series then. */
static void
put_campaign_map(FILE *f, const char *name,
		 int (*fn)(const struct engine_state *, int, double *))
{
	int sep = 0;
	double v;

	fprintf(f, "    \"%s\": {", name);
	for (int i = 0; i < nchildren; i++) {
		const struct engine_state *e = &q->engine[children[i].n];

		if (children[i].role != ROLE_ENGINE ||
		    !child_live(&children[i]))
			continue;
		for (int c = 0; c < CAMPAIGNS; c++) {
			if (!fn(e, c, &v))
				continue;
			fprintf(f, "%s\"%s\": %.17g", sep ? ", " : "",
				e->campaign[c], v);
			sep = 1;
		}
	}
	fprintf(f, "}");
}

static int
pending_leads(const struct engine_state *e, int c, double *v)
{
	*v = e->pending[c];
	return 1;
}

static int
success_rate(const struct engine_state *e, int c, double *v)
{
	if (!e->completed[c])
		return 0;
	*v = (double)e->succeeded[c] / e->completed[c];
	return 1;
}

/* The status file: what the fleet knows, as JSON, replaced atomically. */
static void
write_status(uint64_t started_ns, int held, int final)
{
	char tmp[4096];
	FILE *f;
	double size, age;
	int engines = 0, workers = 0, concurrent = 0, sep;
	int by_user[USERS] = { 0 };
	struct counts n;

	if (!opt.status_path)
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp", opt.status_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	queue_stats(held ? q->hold_ns : shmet_now_ns(), &size, &age);
	queue_lock();
	n = q->n;
	queue_unlock();
	for (int i = 0; i < nchildren; i++) {
		const struct child *c = &children[i];

		if (!child_live(c))
			continue;
		if (c->role == ROLE_WORKER) {
			workers++;
		} else if (c->role == ROLE_ENGINE) {
			engines++;
			concurrent += q->engine[c->n].concurrent;
			for (int u = 0; u < USERS; u++)
				by_user[u] += q->engine[c->n].active_by_user[u];
		}
	}
	fprintf(f, "{\n  \"pid\": %d,\n  \"uptime_seconds\": %.3f,\n"
		"  \"speed\": %.17g,\n  \"held\": %s,\n  \"final\": %s,\n"
		"  \"engines_alive\": %d,\n  \"workers_alive\": %d,\n"
		"  \"queue_cap\": %d,\n",
		(int)getpid(), fleet_s(started_ns, shmet_now_ns()), opt.speed,
		held ? "true" : "false", final ? "true" : "false", engines,
		workers, QUEUE_CAP);
	fprintf(f, "  \"gauges\": {\n"
		"    \"webhook_queue_size\": %.17g,\n"
		"    \"webhook_queue_oldest_age_seconds\": %.17g,\n"
		"    \"webhook_active_workers\": %d,\n"
		"    \"campaign_concurrent_calls\": %d,\n",
		size, age, workers, concurrent);
	fprintf(f, "    \"campaign_active_campaigns\": {");
	sep = 0;
	for (int u = 0; u < USERS && engines; u++) {
		fprintf(f, "%s\"%s\": %d", sep ? ", " : "", users[u],
			by_user[u]);
		sep = 1;
	}
	fprintf(f, "},\n");
	put_campaign_map(f, "campaign_pending_leads", pending_leads);
	fprintf(f, ",\n");
	put_campaign_map(f, "campaign_success_rate", success_rate);
	fprintf(f, ",\n    \"webhook_worker_uptime_seconds\": {");
	sep = 0;
	for (int i = 0; i < nchildren; i++) {
		const struct child *c = &children[i];

		if (c->role != ROLE_WORKER || !child_live(c))
			continue;
		fprintf(f, "%s\"worker-%d\": %.17g", sep ? ", " : "", c->n,
			q->worker[c->n].uptime_s);
		sep = 1;
	}
	fprintf(f, "}\n  },\n  \"counts\": {\n"
		"    \"calls_initiated\": %ld,\n    \"calls_failed\": %ld,\n"
		"    \"calls_completed\": %ld,\n    \"events_enqueued\": %ld,\n"
		"    \"events_dropped\": %ld,\n    \"deliveries\": %ld,\n"
		"    \"delivered\": %ld,\n    \"failed_attempts\": %ld,\n"
		"    \"retries\": %ld,\n    \"dead_letters\": %ld\n  }\n}\n",
		n.calls_initiated, n.calls_failed, n.calls_completed,
		n.events_enqueued, n.events_dropped, n.deliveries, n.delivered,
		n.failed_attempts, n.retries, n.dead_letters);
	if (fclose(f) == 0)
		rename(tmp, opt.status_path);
	else
		unlink(tmp);
}

static const char usage[] =
	"usage: shmetrics-fleet [options]\n"
	"  --segment NAME        segment (default $SHMETRICS_SEGMENT or "
	"/shmetrics)\n"
	"  --engines N           campaign-engine processes (default 2)\n"
	"  --workers N           webhook-worker processes (default 3)\n"
	"  --speed X             fleet seconds per real second (default 60)\n"
	"  --churn S             SIGKILL and restart one child every S "
	"seconds\n"
	"  --duration S          stop after S seconds (default: on "
	"SIGINT/TERM)\n"
	"  --max-retries N       delivery attempts before dead letter "
	"(default 5)\n"
	"  --max-calls N         concurrent calls per engine (default 20)\n"
	"  --rate-4xx P, --rate-5xx P, --rate-slow P, --rate-drop P\n"
	"                        sink outcome rates in percent (3, 5, 3, 2)\n"
	"  --rate-retry-fail P   retried deliveries failing again, percent "
	"(default 40)\n"
	"  --slow-seconds S      fleet seconds of a slow response (default 4)\n"
	"  --rate-call-fail P    calls failing at once, percent (default 15)\n"
	"  --rate-slow-setup P   call setups taking 6-9 s, percent "
	"(default 0)\n"
	"  --kill-workers S      SIGKILL every worker after S seconds, no "
	"restart\n"
	"  --status FILE         write what the fleet knows as JSON, every "
	"second\n"
	"                        and at exit (SIGUSR1 holds, SIGUSR2 "
	"resumes)\n"
	"  --quiet               no progress lines\n"
	"  -h, --help, -V, --version\n"
	"Seconds (S) are real seconds; the fleet reports fleet seconds.\n"
	"Exit status: 0 done, 1 failed (segment, status file), 2 wrong "
	"command line.\n";

static void
bad_value(const char *flag, const char *value, const char *why)
{
	fprintf(stderr, "shmetrics-fleet: invalid value '%s' for --%s: %s "
		"(see --help)\n", value, flag, why);
	exit(CLI_EXIT_USAGE);
}

static int
int_arg(const char *flag, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0')
		bad_value(flag, s, "not an integer");
	if (v < lo || v > hi) {
		char why[64];

		snprintf(why, sizeof why, "not in %ld..%ld", lo, hi);
		bad_value(flag, s, why);
	}
	return (int)v;
}

static double
num_arg(const char *flag, const char *s, double lo, double hi, int open_lo)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v))
		bad_value(flag, s, "not a number");
	if (v < lo || v > hi || (open_lo && v == lo)) {
		char why[64];

		if (open_lo)
			snprintf(why, sizeof why, "not above %g and at most %g",
				 lo, hi);
		else
			snprintf(why, sizeof why, "not in %g..%g", lo, hi);
		bad_value(flag, s, why);
	}
	return v;
}

static void
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, 's' },
		{ "engines", required_argument, NULL, 'e' },
		{ "workers", required_argument, NULL, 'w' },
		{ "speed", required_argument, NULL, 'x' },
		{ "churn", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "max-retries", required_argument, NULL, 'r' },
		{ "max-calls", required_argument, NULL, 'M' },
		{ "rate-4xx", required_argument, NULL, '4' },
		{ "rate-5xx", required_argument, NULL, '5' },
		{ "rate-slow", required_argument, NULL, 'S' },
		{ "rate-drop", required_argument, NULL, 'D' },
		{ "rate-retry-fail", required_argument, NULL, 'R' },
		{ "slow-seconds", required_argument, NULL, 'W' },
		{ "rate-call-fail", required_argument, NULL, 'F' },
		{ "rate-slow-setup", required_argument, NULL, 'P' },
		{ "kill-workers", required_argument, NULL, 'K' },
		{ "status", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name, *why;
	int o, idx;

	opterr = 0;     /* our own one-line messages */
	while ((o = getopt_long(argc, argv, "hV", opts, &idx)) != -1) {
		name = NULL;
		for (int k = 0; opts[k].name; k++)
			if (opts[k].val == o)
				name = opts[k].name;
		switch (o) {
		case 's':
			if ((why = cli_segment_why(optarg)))
				bad_value(name, optarg, why);
			setenv(SHMET_ENV_SEGMENT, optarg, 1);
			break;
		case 'e':
			opt.engines = int_arg(name, optarg, 0, MAX_ENGINES);
			break;
		case 'w':
			opt.workers = int_arg(name, optarg, 0, MAX_WORKERS);
			break;
		case 'x':
			opt.speed = num_arg(name, optarg, 0, 100000, 1);
			break;
		case 'c':
			opt.churn_s = num_arg(name, optarg, 0, 1e9, 0);
			break;
		case 'd':
			opt.duration_s = num_arg(name, optarg, 0, 1e9, 0);
			break;
		case 'r':
			opt.max_retries = int_arg(name, optarg, 1, 20);
			break;
		case 'M':
			opt.max_calls = int_arg(name, optarg, 1, MAX_CALLS);
			break;
		case '4':
			opt.rate_4xx = int_arg(name, optarg, 0, 100);
			break;
		case '5':
			opt.rate_5xx = int_arg(name, optarg, 0, 100);
			break;
		case 'S':
			opt.rate_slow = int_arg(name, optarg, 0, 100);
			break;
		case 'D':
			opt.rate_drop = int_arg(name, optarg, 0, 100);
			break;
		case 'R':
			opt.rate_retry_fail = int_arg(name, optarg, 0, 100);
			break;
		case 'W':
			opt.slow_s = num_arg(name, optarg, 0, 86400, 0);
			break;
		case 'F':
			opt.rate_call_fail = int_arg(name, optarg, 0, 100);
			break;
		case 'P':
			opt.rate_slow_setup = int_arg(name, optarg, 0, 100);
			break;
		case 'K':
			opt.kill_workers_s = num_arg(name, optarg, 0, 1e9, 1);
			break;
		case 'T':
			opt.status_path = optarg;
			break;
		case 'q':
			opt.quiet = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case 'V':
			printf("shmetrics-fleet %s (layout %u)\n",
			       SHMETRICS_VERSION, SHMET_LAYOUT_VERSION);
			exit(0);
		default:
			fprintf(stderr, "shmetrics-fleet: unknown option or "
				"missing value: '%s' (see --help)\n",
				argv[optind - 1]);
			exit(CLI_EXIT_USAGE);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "shmetrics-fleet: unexpected argument '%s' "
			"(see --help)\n", argv[optind]);
		exit(CLI_EXIT_USAGE);
	}
	if (opt.rate_4xx + opt.rate_5xx + opt.rate_slow + opt.rate_drop > 100) {
		fprintf(stderr, "shmetrics-fleet: --rate-4xx, --rate-5xx, "
			"--rate-slow and --rate-drop add up to more than 100 "
			"(see --help)\n");
		exit(CLI_EXIT_USAGE);
	}
}

/*
 * The status file is written every second as FILE.tmp renamed over FILE,
 * and a write that fails is skipped (the fleet goes on).  A directory that
 * does not exist or cannot be written would make every write fail, so the
 * file would never appear: try the temporary file once before starting,
 * and say so then.
 */
static int
check_status_path(void)
{
	char tmp[4096];
	FILE *f;

	if (!opt.status_path)
		return 0;
	snprintf(tmp, sizeof tmp, "%s.tmp", opt.status_path);
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "shmetrics-fleet: cannot write --status %s: "
			"%s: %s\n", opt.status_path, tmp, strerror(errno));
		return -1;
	}
	fclose(f);
	unlink(tmp);
	return 0;
}

static int
setup_shared(void)
{
	pthread_mutexattr_t a;

	q = mmap(NULL, sizeof *q, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED)
		return -1;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&q->lock, &a);
	return 0;
}

static void
kill_workers(void)
{
	for (int i = 0; i < nchildren; i++) {
		if (children[i].role != ROLE_WORKER || children[i].pid <= 0)
			continue;
		say("fault: SIGKILL worker %d (pid %d), not restarted",
		    children[i].n, (int)children[i].pid);
		children[i].no_restart = 1;
		kill(children[i].pid, SIGKILL);
	}
}

int
main(int argc, char **argv)
{
	struct shmet_options so;
	struct shmet_segment seg;
	struct sigaction sa;
	uint64_t started, next_churn, next_status;
	unsigned seed = (unsigned)getpid();
	int held = 0, killed = 0;

	parse_args(argc, argv);
	if (check_status_path() < 0)
		return CLI_EXIT_FAILURE;
	/* Create the segment up front, holding no writer slot ourselves. */
	memset(&so, 0, sizeof so);
	so.flags = SHMET_OPEN_NO_WRITER;
	if (shmet_open(&seg, &so) < 0) {
		fprintf(stderr, "shmetrics-fleet: %s\n",
			shmet_last_error(&seg));
		return 1;
	}
	if (setup_shared() < 0 || (sink_fd = open_sink(&q->sink_port)) < 0) {
		fprintf(stderr, "shmetrics-fleet: cannot set up: %s\n",
			strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	say("segment %s, %d engines, %d workers, sink 127.0.0.1:%u, speed %gx",
	    seg.name, opt.engines, opt.workers, q->sink_port, opt.speed);
	start_all();
	started = shmet_now_ns();
	next_churn = started + (uint64_t)(opt.churn_s * 1e9);
	next_status = started;
	while (!stopping) {
		uint64_t now;

		real_sleep(0.05);
		reap_and_restart();
		now = shmet_now_ns();
		if (opt.duration_s > 0 &&
		    now - started >= (uint64_t)(opt.duration_s * 1e9))
			break;
		if (hold_requested) {
			hold_requested = 0;
			if (hold_fleet() < 0)
				say("hold: not every child answered");
			held = 1;
			write_status(started, 1, 0);
		}
		if (resume_requested) {
			resume_requested = 0;
			resume_fleet();
			held = 0;
		}
		if (!killed && opt.kill_workers_s > 0 &&
		    now - started >= (uint64_t)(opt.kill_workers_s * 1e9)) {
			kill_workers();
			killed = 1;
		}
		if (!held && opt.churn_s > 0 && now >= next_churn &&
		    opt.engines + opt.workers > 0) {
			unsigned kids = (unsigned)(opt.engines + opt.workers);
			/* after the sink and the queue owner */
			int i = 2 + (int)(rand_r(&seed) % kids);

			if (children[i].pid > 0 && !children[i].no_restart) {
				say("churn: SIGKILL %s %d (pid %d)",
				    children[i].role == ROLE_ENGINE ? "engine"
								     : "worker",
				    children[i].n, (int)children[i].pid);
				kill(children[i].pid, SIGKILL);
			}
			next_churn += (uint64_t)(opt.churn_s * 1e9);
		}
		if (!held && now >= next_status) {
			write_status(started, 0, 0);
			next_status = now + 1000000000ull;
		}
	}
	stopping = 1;
	stop_all();
	write_status(started, 0, 1);
	say("stopped");
	shmet_close(&seg);
	return 0;
}
