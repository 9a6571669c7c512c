/*
 * shmetrics-fleet: the campaign engine: poll cycles of calls.
 */
#include "fleet.h"

/* ------------------------------------------------------------------ */
/* Campaign engine                                                     */

struct call {
	int active;
	int campaign;
	double duration_s;              /* fleet seconds */
	uint64_t ends_ns;
	char trace_id[TRACE_ID_LEN + 1]; /* exemplars of this call */
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
int
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
 * measures, its observation carrying the call's trace id (an exemplar:
 * a slow setup on the page leads to its call).  Returns 0 when the call
 * is up, -1 when it failed at once. */
static int
setup_call(const struct shmet_campaign_collector *m,
	   struct engine_state *st, int c, unsigned *seed,
	   const char *trace_id)
{
	struct shmet_timer t = shmet_campaign_time_processing(m,
							      st->campaign[c]);
	int failed;

	if (percent(seed, opt.rate_slow_setup))
		fleet_sleep(uniform(seed, 6, 9));
	else
		fleet_sleep(uniform(seed, 0.1, 1.2));
	failed = spread_failure(opt.rate_call_fail);
	shmet_timer_stop_traced(&t, trace_id);
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
		shmet_campaign_record_call_completed_traced(
			m, next.campaign[c], next.user[c], outcome,
			call->duration_s, call->duration_s / 60 * 0.013,
			call->trace_id);
		shmet_campaign_update_success_rate(
			m, next.campaign[c],
			(double)next.succeeded[c] / next.completed[c]);
		count(&q->n.calls_completed);
		enqueue("call_ended", (n + c) % USERS, call->trace_id);
	}
	for (int s = 0; s < opt.max_calls; s++)
		if (calls[s].active)
			active++;
	for (int c = 0; c < CAMPAIGNS && !stopping; c++) {
		int launch = 1 + rand_r(seed) % 3;

		if (launch > next.pending[c])
			launch = next.pending[c];
		for (int k = 0; k < launch && active < opt.max_calls; k++) {
			char trace[TRACE_ID_LEN + 1];

			next.pending[c]--;
			new_trace_id(trace);
			shmet_campaign_record_call_initiated_traced(
				m, next.campaign[c], next.user[c], trace);
			count(&q->n.calls_initiated);
			if (setup_call(m, &next, c, seed, trace) < 0) {
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
				memcpy(calls[s].trace_id, trace,
				       sizeof trace);
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

void
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
