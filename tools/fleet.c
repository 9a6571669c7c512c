/*
 * shmetrics-fleet: the demo fleet.  Forks campaign-engine and
 * webhook-worker processes that behave like the specification's examples
 * and record through the collectors, plus a webhook sink on 127.0.0.1
 * that the workers deliver to with real HTTP POSTs.
 *
 *   engines   poll cycles over their campaigns: pending leads, calls that
 *             fail at once (by error type) or run for a simulated duration
 *             and complete with an outcome and a cost; each completed call
 *             enqueues a webhook event
 *   workers   take due events from one shared queue, POST them to the sink
 *             (200, 4xx, 5xx, slow or dropped at configurable rates),
 *             retry with exponential backoff, dead-letter after max retries
 *   parent    restarts children (--churn kills one every N seconds with
 *             SIGKILL, as a crash would), stops all on SIGINT/SIGTERM or
 *             after --duration
 *
 * --speed N runs simulated time N times faster than real time: call
 * durations, backoffs and poll cycles shrink, HTTP latency stays real.
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

#define QUEUE_CAP 4096
#define MAX_CHILDREN 128

struct fleet_opts {
	int engines, workers;
	double speed;
	double churn_s;                 /* 0: never */
	double duration_s;              /* 0: until signalled */
	int max_retries;
	/* sink outcome rates, percent */
	int rate_4xx, rate_5xx, rate_slow, rate_drop;
	int quiet;
};

/* One webhook event in the shared queue. */
struct event {
	int state;                      /* 0 free, 1 pending, 2 in flight */
	int attempts;
	double enqueued_sim;            /* simulated seconds */
	double due_sim;
	double taken_real;              /* for reclaiming a dead worker's */
	char event_type[24];
	char partner_id[24];
};

/* The queue lives in a MAP_SHARED page set; a robust mutex guards it so
 * that a worker killed while holding it does not wedge the fleet. */
struct queue {
	pthread_mutex_t lock;
	double sim_epoch_real;          /* real time at sim time 0 */
	uint16_t sink_port;
	struct event ev[QUEUE_CAP];
};

static struct fleet_opts opt = {
	.engines = 2, .workers = 3, .speed = 60, .max_retries = 5,
	.rate_4xx = 5, .rate_5xx = 7, .rate_slow = 3, .rate_drop = 2,
};
static struct queue *q;
static volatile sig_atomic_t stopping;

static double
real_now(void)
{
	return (double)shmet_now_ns() / 1e9;
}

static double
sim_now(void)
{
	return (real_now() - q->sim_epoch_real) * opt.speed;
}

/* Sleep sim_s simulated seconds (at least 1 ms real). */
static void
sim_sleep(double sim_s)
{
	double real = sim_s / opt.speed;
	struct timespec ts;

	if (real < 0.001)
		real = 0.001;
	ts.tv_sec = (time_t)real;
	ts.tv_nsec = (long)((real - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
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

static void
enqueue(const char *event_type, const char *partner_id)
{
	queue_lock();
	for (int i = 0; i < QUEUE_CAP; i++) {
		struct event *e = &q->ev[i];

		if (e->state != 0)
			continue;
		memset(e, 0, sizeof *e);
		e->state = 1;
		e->enqueued_sim = sim_now();
		e->due_sim = e->enqueued_sim;
		snprintf(e->event_type, sizeof e->event_type, "%s", event_type);
		snprintf(e->partner_id, sizeof e->partner_id, "%s", partner_id);
		break;
	}
	queue_unlock();
}

/* Size and oldest age; also reclaims events a dead worker held. */
static void
queue_stats(double *size, double *oldest_age)
{
	double now = sim_now(), oldest = now, real = real_now();
	int n = 0;

	queue_lock();
	for (int i = 0; i < QUEUE_CAP; i++) {
		struct event *e = &q->ev[i];

		if (e->state == 2 && real - e->taken_real > 30)
			e->state = 1;
		if (e->state == 0)
			continue;
		n++;
		if (e->enqueued_sim < oldest)
			oldest = e->enqueued_sim;
	}
	queue_unlock();
	*size = n;
	*oldest_age = now - oldest;
}

static int
take_due(struct event *out)
{
	double now = sim_now();
	int best = -1;

	queue_lock();
	for (int i = 0; i < QUEUE_CAP; i++) {
		struct event *e = &q->ev[i];

		if (e->state == 1 && e->due_sim <= now &&
		    (best < 0 || e->due_sim < q->ev[best].due_sim))
			best = i;
	}
	if (best >= 0) {
		q->ev[best].state = 2;
		q->ev[best].attempts++;
		q->ev[best].taken_real = real_now();
		*out = q->ev[best];
	}
	queue_unlock();
	return best;
}

static void
finish(int i, int delivered_or_dead, double retry_in_sim)
{
	queue_lock();
	if (delivered_or_dead) {
		q->ev[i].state = 0;
	} else {
		q->ev[i].state = 1;
		q->ev[i].due_sim = sim_now() + retry_in_sim;
	}
	queue_unlock();
}

/* ------------------------------------------------------------------ */
/* Campaign engine                                                     */

struct call {
	int active;
	int campaign;
	double duration_sim;
	double ends_sim;
};

static const char *const outcomes[] = { "success", "success", "success",
					"no_answer", "busy", "voicemail" };
static const char *const error_types[] = { "timeout", "invalid_number",
					   "sip_error", "rate_limited" };

static void
campaign_engine(int n)
{
	struct shmet_segment seg;
	struct shmet_campaign_collector m;
	struct call calls[256];
	char campaign[4][32], user[4][32];
	int pending[4], completed[4], succeeded[4];
	unsigned seed = (unsigned)getpid() * 2654435761u;

	if (shmet_open(&seg, NULL) < 0) {
		say("engine: %s", shmet_last_error(&seg));
		exit(1);
	}
	if (shmet_campaign_collector_init(&m, &seg) < 0)
		say("engine: %s", shmet_last_error(&seg));
	memset(calls, 0, sizeof calls);
	for (int c = 0; c < 4; c++) {
		snprintf(campaign[c], sizeof campaign[c], "cmp-%d%02d", n, c);
		snprintf(user[c], sizeof user[c], "user-%d", (n + c) % 3);
		pending[c] = 50 + rand_r(&seed) % 200;
		completed[c] = succeeded[c] = 0;
	}
	while (!stopping) {
		uint64_t t0 = shmet_now_ns();
		struct shmet_histogram poll;
		int active = 0, per_user[3] = { 0 };

		for (int c = 0; c < 4; c++) {
			struct shmet_histogram lat;
			int launch = pending[c] > 0 ? 1 + rand_r(&seed) % 3 : 0;

			per_user[(n + c) % 3]++;
			shmet_campaign_update_pending_leads(&m, campaign[c],
							    pending[c]);
			for (int k = 0; k < launch; k++) {
				double work = uniform(&seed, 0.05, 3.0);

				pending[c]--;
				shmet_campaign_record_call_initiated(
					&m, campaign[c], user[c]);
				sim_sleep(work / 20);
				shmet_histogram_labels(&m.processing_latency,
						       &lat, 1,
						       (const char *[]){ campaign[c] });
				shmet_histogram_observe(&lat, work);
				if (percent(&seed, 15)) {
					shmet_campaign_record_call_failed(
						&m, campaign[c], user[c],
						error_types[rand_r(&seed) % 4]);
					continue;
				}
				for (int s = 0; s < 256; s++) {
					if (calls[s].active)
						continue;
					/* 10 s plus an exponential tail,
					 * mean 3 minutes, cut at 30. */
					calls[s].active = 1;
					calls[s].campaign = c;
					calls[s].duration_sim = fmin(
						10 - log(uniform(&seed, 0.001,
								 1)) * 180,
						1799);
					calls[s].ends_sim =
						sim_now() + calls[s].duration_sim;
					break;
				}
			}
			if (pending[c] <= 0 && percent(&seed, 5))
				pending[c] = 100 + rand_r(&seed) % 200;
		}
		for (int s = 0; s < 256; s++) {
			struct call *call = &calls[s];
			const char *outcome;
			double duration = call->duration_sim;
			int c = call->campaign;

			if (!call->active)
				continue;
			if (call->ends_sim > sim_now()) {
				active++;
				continue;
			}
			call->active = 0;
			outcome = outcomes[rand_r(&seed) % 6];
			completed[c]++;
			succeeded[c] += !strcmp(outcome, "success");
			shmet_campaign_record_call_completed(
				&m, campaign[c], user[c], outcome, duration,
				duration / 60 * 0.013);
			shmet_campaign_update_success_rate(
				&m, campaign[c],
				(double)succeeded[c] / completed[c]);
			enqueue("call_ended", user[c]);
		}
		for (int u = 0; u < 3; u++) {
			char uid[16];

			snprintf(uid, sizeof uid, "user-%d", u);
			if (per_user[u])
				shmet_campaign_update_active_campaigns(
					&m, uid, per_user[u]);
		}
		shmet_campaign_update_concurrent_calls(&m, active);
		sim_sleep(uniform(&seed, 0.3, 4));
		/* The cycle's simulated duration. */
		shmet_histogram_labels(&m.poll_cycle, &poll, 0, NULL);
		shmet_histogram_observe(&poll, (double)(shmet_now_ns() - t0) /
						       1e9 * opt.speed);
		sim_sleep(5);
	}
	shmet_close(&seg);
}

/* ------------------------------------------------------------------ */
/* Webhook worker                                                      */

/* POST to the sink; the HTTP status, or 0 for a connection error. */
static int
http_post(const char *partner, const char *event_type)
{
	struct sockaddr_in sa;
	struct timeval tv = { 5, 0 };
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
		     "Connection: close\r\n\r\n%s",
		     partner, len, body);
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

static void
webhook_worker(int n)
{
	struct shmet_segment seg;
	struct shmet_webhook_collector m;
	char worker_id[32];

	snprintf(worker_id, sizeof worker_id, "worker-%d", n);
	if (shmet_open(&seg, NULL) < 0) {
		say("worker: %s", shmet_last_error(&seg));
		exit(1);
	}
	if (shmet_webhook_collector_init(&m, &seg, worker_id) < 0)
		say("worker: %s", shmet_last_error(&seg));
	while (!stopping) {
		struct event e;
		double size, age;
		int i;

		shmet_webhook_update_worker_uptime(&m);
		queue_stats(&size, &age);
		shmet_webhook_update_queue_health(&m, size, age);
		i = take_due(&e);
		if (i < 0) {
			usleep(20000);
			continue;
		}
		if (e.attempts == 1)
			shmet_webhook_record_queued(&m, e.event_type,
						    e.partner_id);
		if (e.attempts > 1)
			shmet_webhook_record_retry(&m, e.partner_id, e.attempts);
		SHMET_DELIVERY(t, shmet_webhook_time_delivery(&m, e.partner_id)) {
			int status = http_post(e.partner_id, e.event_type);

			if (status == 200) {
				shmet_delivery_set_success(&t, e.event_type);
				finish(i, 1, 0);
			} else {
				shmet_delivery_set_failed(&t, e.event_type,
							  status);
				if (e.attempts >= opt.max_retries) {
					shmet_webhook_record_dead_letter(
						&m, e.event_type, e.partner_id);
					finish(i, 1, 0);
				} else {
					finish(i, 0,
					       10.0 * (1 << e.attempts));
				}
			}
		}
		shmet_webhook_record_processed(&m);
	}
	shmet_close(&seg);
}

/* ------------------------------------------------------------------ */
/* Sink: a tiny HTTP server on 127.0.0.1                              */

static void *
sink_connection(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[2048];
	size_t have = 0;
	unsigned seed = (unsigned)(uintptr_t)&buf ^ (unsigned)time(NULL);
	const char *status = "200 OK";
	int r = (int)(rand_r(&seed) % 100);
	ssize_t n;

	/* Read the headers (bodies are small and come with them). */
	while (have < sizeof buf - 1 &&
	       (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	usleep(20000 + rand_r(&seed) % 150000);
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
		usleep(800000 + rand_r(&seed) % 2000000);
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
/* Parent: start, restart, churn, stop                                 */

enum role { ROLE_SINK, ROLE_ENGINE, ROLE_WORKER };

struct child {
	pid_t pid;
	enum role role;
	int n;
};

static struct child children[MAX_CHILDREN];
static int nchildren;
static int sink_fd = -1;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static pid_t
spawn(enum role role, int n)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	signal(SIGINT, SIG_IGN);        /* the parent stops us with TERM */
	signal(SIGTERM, on_signal);
	if (role == ROLE_SINK)
		sink(sink_fd);
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
						0 };
	for (int i = 0; i < opt.engines; i++)
		children[nchildren++] = (struct child){
			spawn(ROLE_ENGINE, i), ROLE_ENGINE, i };
	for (int i = 0; i < opt.workers; i++)
		children[nchildren++] = (struct child){
			spawn(ROLE_WORKER, i), ROLE_WORKER, i };
}

/* Restart whatever exited; returns how many were restarted. */
static int
reap_and_restart(void)
{
	int status, restarted = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < nchildren; i++) {
			if (children[i].pid != pid)
				continue;
			if (!stopping) {
				children[i].pid = spawn(children[i].role,
							children[i].n);
				restarted++;
			} else {
				children[i].pid = 0;
			}
		}
	}
	return restarted;
}

static void
stop_all(void)
{
	double deadline = real_now() + 3;

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
		if (real_now() > deadline) {
			for (int i = 0; i < nchildren; i++)
				if (children[i].pid > 0)
					kill(children[i].pid, SIGKILL);
			deadline = real_now() + 60;
		}
		usleep(20000);
	}
}

static const char usage[] =
	"usage: shmetrics-fleet [options]\n"
	"  --segment NAME     segment (default $SHMETRICS_SEGMENT or "
	"/shmetrics)\n"
	"  --engines N        campaign-engine processes (default 2)\n"
	"  --workers N        webhook-worker processes (default 3)\n"
	"  --speed X          simulated seconds per real second (default 60)\n"
	"  --churn S          SIGKILL and restart one child every S seconds\n"
	"  --duration S       stop after S seconds (default: on SIGINT/TERM)\n"
	"  --max-retries N    deliveries before dead letter (default 5)\n"
	"  --rate-4xx P, --rate-5xx P, --rate-slow P, --rate-drop P\n"
	"                     sink outcome rates in percent (5, 7, 3, 2)\n"
	"  --quiet            no progress lines\n"
	"  -h, --help\n";

static int
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
		{ "rate-4xx", required_argument, NULL, '4' },
		{ "rate-5xx", required_argument, NULL, '5' },
		{ "rate-slow", required_argument, NULL, 'S' },
		{ "rate-drop", required_argument, NULL, 'D' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	opterr = 0;     /* our own one-line messages */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 's': setenv(SHMET_ENV_SEGMENT, optarg, 1); break;
		case 'e': opt.engines = atoi(optarg); break;
		case 'w': opt.workers = atoi(optarg); break;
		case 'x': opt.speed = atof(optarg); break;
		case 'c': opt.churn_s = atof(optarg); break;
		case 'd': opt.duration_s = atof(optarg); break;
		case 'r': opt.max_retries = atoi(optarg); break;
		case '4': opt.rate_4xx = atoi(optarg); break;
		case '5': opt.rate_5xx = atoi(optarg); break;
		case 'S': opt.rate_slow = atoi(optarg); break;
		case 'D': opt.rate_drop = atoi(optarg); break;
		case 'q': opt.quiet = 1; break;
		case 'h': fputs(usage, stdout); exit(0);
		default:
			fprintf(stderr, "shmetrics-fleet: unknown option or "
				"missing value: '%s' (see --help)\n",
				argv[optind - 1]);
			exit(1);
		}
	}
	if (optind != argc || opt.engines < 0 || opt.workers < 0 ||
	    opt.engines + opt.workers + 1 > MAX_CHILDREN || opt.speed <= 0 ||
	    opt.churn_s < 0 || opt.duration_s < 0 || opt.max_retries < 1 ||
	    opt.rate_4xx < 0 || opt.rate_5xx < 0 || opt.rate_slow < 0 ||
	    opt.rate_drop < 0 ||
	    opt.rate_4xx + opt.rate_5xx + opt.rate_slow + opt.rate_drop > 100)
		return -1;
	return 0;
}

static int
setup_queue(void)
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
	q->sim_epoch_real = real_now();
	return 0;
}

int
main(int argc, char **argv)
{
	struct shmet_options so;
	struct shmet_segment seg;
	struct sigaction sa;
	double started, next_churn;
	unsigned seed = (unsigned)getpid();

	if (parse_args(argc, argv) < 0) {
		fprintf(stderr, "shmetrics-fleet: invalid arguments (see "
				"--help)\n");
		return 1;
	}
	/* Create the segment up front, holding no writer slot ourselves. */
	memset(&so, 0, sizeof so);
	so.flags = SHMET_OPEN_NO_WRITER;
	if (shmet_open(&seg, &so) < 0) {
		fprintf(stderr, "shmetrics-fleet: %s\n",
			shmet_last_error(&seg));
		return 1;
	}
	if (setup_queue() < 0 || (sink_fd = open_sink(&q->sink_port)) < 0) {
		fprintf(stderr, "shmetrics-fleet: cannot set up: %s\n",
			strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	say("segment %s, %d engines, %d workers, sink 127.0.0.1:%u, speed %gx",
	    seg.name, opt.engines, opt.workers, q->sink_port, opt.speed);
	start_all();
	started = real_now();
	next_churn = started + opt.churn_s;
	while (!stopping) {
		usleep(50000);
		reap_and_restart();
		if (opt.duration_s > 0 && real_now() - started >= opt.duration_s)
			break;
		if (opt.churn_s > 0 && real_now() >= next_churn &&
		    opt.engines + opt.workers > 0) {
			int i = 1 + (int)(rand_r(&seed) %
					  (unsigned)(opt.engines + opt.workers));

			say("churn: SIGKILL %s %d (pid %d)",
			    children[i].role == ROLE_ENGINE ? "engine"
							     : "worker",
			    children[i].n, (int)children[i].pid);
			kill(children[i].pid, SIGKILL);
			next_churn += opt.churn_s;
		}
	}
	stopping = 1;
	stop_all();
	say("stopped");
	shmet_close(&seg);
	return 0;
}
