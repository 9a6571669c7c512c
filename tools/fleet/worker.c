/*
 * shmetrics-fleet: the webhook worker (deliveries with retries) and the queue owner.
 */
#include "fleet.h"

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
		int status;

		/* the call's trace: latency, queue time, delivered count */
		shmet_delivery_set_trace(&t, e->trace_id);
		status = http_post(e->partner_id, e->event_type, e->attempts);

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

void
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
void
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
