/*
 * The HTTP server: civetweb started with the exporter's options, its
 * threads registered for RCU reads, its log routed to ours, and a stop
 * that takes milliseconds.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>

#include "exporter.h"

static struct mg_context *ctx;
static const char *listen_addr;

static void *
on_thread_init(const struct mg_context *c, int type)
{
	(void)c;
	(void)type;
	source_thread_register();
	return NULL;
}

static void
on_thread_exit(const struct mg_context *c, int type, void *p)
{
	(void)c;
	(void)type;
	(void)p;
	source_thread_unregister();
}

/*
 * While mg_start() runs, civetweb's complaints (a port in use, a bad
 * certificate) are kept, not logged, so that a failed start is one line.
 * Release store once started, acquire load here: a thread that sees
 * "started" logs directly; before it, the message goes to start_error
 * under its lock.
 */
static atomic_int started;
static pthread_mutex_t start_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char start_error[256];

static int
on_log(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	if (atomic_load_explicit(&started, memory_order_acquire)) {
		exporter_log("http: %s", message);
		return 1;
	}
	pthread_mutex_lock(&start_error_lock);
	snprintf(start_error, sizeof start_error, "%s", message);
	start_error[strcspn(start_error, "\r\n")] = '\0';
	pthread_mutex_unlock(&start_error_lock);
	return 1;
}

static int
on_request(struct mg_connection *conn)
{
	return http_handle(conn, NULL);
}

int
server_start(const struct server_config *cfg, char *err, size_t errlen)
{
	struct mg_callbacks cb;
	char ports[300], timeout_ms[24], threads[24];
	const char *options[32];
	int n = 0;

	listen_addr = cfg->listen;
	mg_init_library(cfg->tls_pem ? MG_FEATURES_TLS : 0);
	snprintf(ports, sizeof ports, "%s%s", cfg->listen,
		 cfg->tls_pem ? "s" : "");
	snprintf(timeout_ms, sizeof timeout_ms, "%d",
		 cfg->request_timeout_s * 1000);
	options[n++] = "listening_ports";
	options[n++] = ports;
	snprintf(threads, sizeof threads, "%d", cfg->threads);
	options[n++] = "num_threads";
	options[n++] = threads;
	options[n++] = "request_timeout_ms";
	options[n++] = timeout_ms;
	/*
	 * civetweb gives each connection a worker thread for as long as it
	 * is open: idle and slow clients starve scrapes unless there are
	 * more threads than such connections (--threads, 256 by default)
	 * and each holds its thread for a bounded time: request_timeout_ms
	 * for a request's head (slowloris), keep_alive_timeout_ms between
	 * requests.  Accepted connections beyond the workers wait in a
	 * queue of 64 and the kernel's backlog of 256, which bounds the
	 * descriptors an attacker can make the exporter hold.
	 */
	options[n++] = "keep_alive_timeout_ms";
	options[n++] = "5000";
	options[n++] = "connection_queue";
	options[n++] = "64";
	options[n++] = "listen_backlog";
	options[n++] = "256";
	options[n++] = "enable_keep_alive";
	options[n++] = "yes";
	options[n++] = "max_request_size";
	options[n++] = "16384";
	/*
	 * A response is one write, or the head and then the body
	 * (respond.c).  With Nagle's algorithm the body's last partial
	 * segment would wait for the ACK of the head, which a client on a
	 * kept-alive connection delays by 40 ms: send every write at once.
	 */
	options[n++] = "tcp_nodelay";
	options[n++] = "1";
	/* Match paths as sent: "/metrics%00" is not "/metrics". */
	options[n++] = "decode_url";
	options[n++] = "no";
	if (cfg->tls_pem) {
		options[n++] = "ssl_certificate";
		options[n++] = cfg->tls_pem;
		options[n++] = "ssl_protocol_version";
		options[n++] = "4";     /* TLS 1.2 and newer */
	}
	options[n] = NULL;
	memset(&cb, 0, sizeof cb);
	cb.init_thread = on_thread_init;
	cb.exit_thread = on_thread_exit;
	cb.log_message = on_log;
	/* Every request, from the first: a handler set after mg_start
	 * left a window in which the listening port answered 404 (and
	 * without asking for credentials).  http_handle does its own
	 * authentication; civetweb's is not used. */
	cb.begin_request = on_request;
	ctx = mg_start(&cb, NULL, options);
	if (!ctx) {
		pthread_mutex_lock(&start_error_lock);
		snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen,
			 start_error[0] ? start_error
					: "address in use, bad TLS files, "
					  "or bad options");
		pthread_mutex_unlock(&start_error_lock);
		mg_exit_library();
		return -1;
	}
	/* Release: pairs with the acquire load in on_log. */
	atomic_store_explicit(&started, 1, memory_order_release);
	return 0;
}

/*
 * civetweb's master thread notices mg_stop() only when its poll() on the
 * listening sockets returns, which can take 2 s when idle.  Stop from a
 * helper thread and wake the poll with a connection of our own, so that
 * shutdown takes milliseconds.
 */
static void *
stop_thread(void *c)
{
	mg_stop(c);
	return NULL;
}

static void
wake_listener(void)
{
	struct sockaddr_in sa;
	char host[256];
	const char *colon = strrchr(listen_addr, ':');
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	snprintf(host, sizeof host, "%.*s", (int)(colon - listen_addr),
		 listen_addr);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    sa.sin_addr.s_addr == htonl(INADDR_ANY))
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	connect(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
}

void
server_stop(void)
{
	pthread_t t;

	if (!ctx)
		return;
	if (pthread_create(&t, NULL, stop_thread, ctx) != 0) {
		mg_stop(ctx);
	} else {
		for (int i = 0; i < 50 && pthread_tryjoin_np(t, NULL) == EBUSY;
		     i++) {
			struct timespec ts = { 0, 20 * 1000000L };

			wake_listener();
			nanosleep(&ts, NULL);
		}
		pthread_join(t, NULL);
	}
	ctx = NULL;
	mg_exit_library();
}
