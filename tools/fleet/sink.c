/*
 * shmetrics-fleet: the webhook sink: a tiny HTTP server on 127.0.0.1.
 */
#include "fleet.h"

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

void
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

int
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
