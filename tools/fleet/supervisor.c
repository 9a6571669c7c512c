/*
 * shmetrics-fleet: the parent: start, restart, churn, faults, hold, status, stop.
 */
#include "fleet.h"

/* ------------------------------------------------------------------ */
/* Parent: start, restart, churn, faults, status, stop                 */

struct child children[MAX_CHILDREN];
static int nchildren;
int sink_fd = -1;

void
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

void
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
void
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

void
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

/* Hold: engines settle, then workers publish; at most 30 s (a child on a
 * busy machine may wait seconds for a CPU, and a status written before
 * every child answered would not describe one instant). */
int
hold_fleet(void)
{
	uint64_t deadline = shmet_now_ns() + 30000000000ull;
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

void
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
void
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

void
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
