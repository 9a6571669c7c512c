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
	scrape_thread_exit();
	source_thread_unregister();
}

static int
on_log(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	exporter_log("http: %s", message);
	return 1;
}

int
server_start(const struct server_config *cfg, char *err, size_t errlen)
{
	struct mg_callbacks cb;
	char ports[300], timeout_ms[24];
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
	options[n++] = "num_threads";
	options[n++] = cfg->threads;
	options[n++] = "request_timeout_ms";
	options[n++] = timeout_ms;
	options[n++] = "keep_alive_timeout_ms";
	options[n++] = "10000";
	options[n++] = "enable_keep_alive";
	options[n++] = "yes";
	options[n++] = "max_request_size";
	options[n++] = "16384";
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
	ctx = mg_start(&cb, NULL, options);
	if (!ctx) {
		snprintf(err, errlen, "cannot listen on %s (address in use, "
			 "bad TLS files, or bad options)", cfg->listen);
		mg_exit_library();
		return -1;
	}
	mg_set_request_handler(ctx, "/", http_handle, NULL);
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
