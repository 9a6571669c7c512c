/*
 * shmetrics-exporter: maps a shmetrics segment read-only and serves it to
 * Prometheus over HTTP (civetweb).
 *
 *   GET|HEAD /metrics          text 0.0.4, or OpenMetrics 1.0.0 when the
 *                              Accept header asks for it; gzip on request
 *   GET|HEAD /metrics/json     the specification's JSON
 *   GET|HEAD /metrics/health   200 healthy/degraded, 503 without a segment
 *   GET|HEAD /                 a landing page
 * Anything else: 404; other methods: 405 with Allow.  No file is ever
 * served (no document_root, and every handler answers).
 */
#include "config.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>
#include <shmetrics/format.h>

#include "exporter.h"

#define MAX_USERS 64

#ifdef HAVE_SSLCOMPAT
int shmetrics_sslcompat(void);
#endif

struct config {
	const char *segment;
	const char *listen;
	const char *threads;
	int request_timeout_s;
	const char *tls_cert, *tls_key;
	const char *auth_file;
};

struct user {
	char name[64];
	char hash[160];
};

static struct config cfg = {
	.listen = "127.0.0.1:5000", .threads = "8", .request_timeout_s = 10,
};
static struct user users[MAX_USERS];
static int nusers = -1;                 /* -1: no authentication */
const char *exporter_segment_name;

void
exporter_log(const char *fmt, ...)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s shmetrics-exporter: ", when);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* Basic authentication                                                */

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode base64 into out (NUL-terminated); -1 if malformed or too long. */
static int
b64_decode(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;

	for (; *in && *in != '='; in++) {
		int v = b64_value(*in);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= cap)
				return -1;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return 0;
}

/* Equal in time independent of where they differ. */
static int
const_time_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/*
 * Check "Authorization: Basic ...".  An unknown user costs the same hash
 * computation as a known one (against a fixed fake hash), so timing does
 * not tell which user names exist.
 */
static int
authorized(const struct mg_connection *conn)
{
	static const char fake[] =
		"$6$shmetricsfake$1S0ZfR2m.yH0iT5p3ZQdPvgzZ0YgxQeB8yW2uL8"
		"3qKxj1E1xYqVv7nXy6m0pG8cB8jv3GmMlgH1yD2oJ2oM2e0";
	const char *h = mg_get_header(conn, "Authorization");
	struct crypt_data *cd;
	char creds[256], *colon;
	const char *hash = fake;
	int ok = 0;

	if (nusers < 0)
		return 1;
	if (!h || strncasecmp(h, "Basic ", 6) != 0 ||
	    b64_decode(h + 6, creds, sizeof creds) < 0)
		return 0;
	colon = strchr(creds, ':');
	if (!colon)
		return 0;
	*colon = '\0';
	for (int i = 0; i < nusers; i++)
		if (const_time_equal(users[i].name, creds)) {
			hash = users[i].hash;
			ok = 1;
		}
	cd = calloc(1, sizeof *cd);
	if (!cd)
		return 0;
	{
		/* crypt_rn (libxcrypt): NULL on failure, never a "*0"
		 * string, and not intercepted by ASan (its crypt_r
		 * interceptor is broken on Debian 12). */
		const char *out = crypt_rn(colon + 1, hash, cd, sizeof *cd);

		ok = ok && out && const_time_equal(out, hash);
	}
	free(cd);
	return ok;
}

static int
load_users(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int lineno = 0;

	if (!f) {
		exporter_log("cannot read --basic-auth-file %s: %s", path,
			     strerror(errno));
		return -1;
	}
	nusers = 0;
	while (fgets(line, sizeof line, f)) {
		char *colon, *end;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		end = colon ? colon + 1 : NULL;
		if (!colon || colon == line || end[0] != '$' ||
		    colon - line >= (long)sizeof users[0].name ||
		    strlen(end) >= sizeof users[0].hash || nusers == MAX_USERS) {
			exporter_log("%s:%d: expected 'user:$id$salt$hash' "
				     "(crypt(3), e.g. from 'openssl passwd -6')",
				     path, lineno);
			fclose(f);
			return -1;
		}
		*colon = '\0';
		/* Lengths checked above. */
		memcpy(users[nusers].name, line, (size_t)(colon - line) + 1);
		memcpy(users[nusers].hash, end, strlen(end) + 1);
		nusers++;
	}
	fclose(f);
	if (nusers == 0) {
		exporter_log("%s: no users", path);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                */

static void
send_simple(struct mg_connection *conn, int status, const char *type,
	    const char *body, const char *extra_name, const char *extra)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char len[24];

	snprintf(len, sizeof len, "%zu", strlen(body));
	mg_response_header_start(conn, status);
	mg_response_header_add(conn, "Content-Type", type, -1);
	mg_response_header_add(conn, "Content-Length", len, -1);
	if (extra_name)
		mg_response_header_add(conn, extra_name, extra, -1);
	mg_response_header_send(conn);
	if (strcmp(ri->request_method, "HEAD") != 0)
		mg_write(conn, body, strlen(body));
}

/* Does the header list allow token (e.g. gzip), ignoring q=0 entries? */
static int
header_allows(const char *h, const char *token)
{
	size_t n = strlen(token);

	while (h && *h) {
		const char *end = strchr(h, ',');
		size_t len = end ? (size_t)(end - h) : strlen(h);

		while (len && (*h == ' ' || *h == '\t')) {
			h++;
			len--;
		}
		if (len >= n && strncasecmp(h, token, n) == 0 &&
		    (len == n || h[n] == ';' || h[n] == ' ')) {
			const char *q = memchr(h, ';', len);

			if (!q || !strstr(q, "q=0") || strstr(q, "q=0."))
				return 1;
		}
		h = end ? end + 1 : NULL;
	}
	return 0;
}

static const char *
content_type(enum fmt fmt)
{
	switch (fmt) {
	case FMT_TEXT:
		return "text/plain; version=0.0.4; charset=utf-8";
	case FMT_OPENMETRICS:
		return "application/openmetrics-text; version=1.0.0; "
		       "charset=utf-8";
	default:
		return "application/json";
	}
}

/* Scrape deadline: Prometheus's timeout header, else the request timeout. */
static uint64_t
deadline_for(const struct mg_connection *conn, uint64_t arrival)
{
	const char *h = mg_get_header(conn, "X-Prometheus-Scrape-Timeout-Seconds");
	double s = cfg.request_timeout_s;

	if (h) {
		char *end;
		double t = strtod(h, &end);

		if (end != h && t > 0 && t < s)
			s = t;
	}
	/* Leave a little of the budget for sending. */
	return arrival + (uint64_t)(s * 0.9 * 1e9);
}

static int
serve_render(struct mg_connection *conn, enum fmt fmt)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	uint64_t arrival = exporter_clock_ns(CLOCK_MONOTONIC);
	int gzip = header_allows(mg_get_header(conn, "Accept-Encoding"),
				 "gzip");
	struct rendered *r = scrape_get(fmt, arrival,
					deadline_for(conn, arrival), gzip);
	const struct shmet_buf *body;
	char len[24];
	int status;

	if (!r) {
		send_simple(conn, 503, "text/plain",
			    "render did not finish within the scrape timeout\n",
			    NULL, NULL);
		scrape_count_request(fmt, 503);
		return 503;
	}
	gzip = gzip && r->gz_done;
	body = gzip ? &r->gz : &r->body;
	snprintf(len, sizeof len, "%zu", body->len);
	mg_response_header_start(conn, r->status);
	mg_response_header_add(conn, "Content-Type", content_type(fmt), -1);
	mg_response_header_add(conn, "Content-Length", len, -1);
	mg_response_header_add(conn, "Vary", "Accept, Accept-Encoding", -1);
	mg_response_header_add(conn, "Cache-Control", "no-store", -1);
	if (gzip)
		mg_response_header_add(conn, "Content-Encoding", "gzip", -1);
	mg_response_header_send(conn);
	if (strcmp(ri->request_method, "HEAD") != 0)
		mg_write(conn, body->data, body->len);
	status = r->status;
	scrape_count_request(fmt, status);
	rendered_put(r);        /* may free r: status was copied above */
	return status;
}

static const char landing[] =
	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	"<title>shmetrics exporter</title></head>\n<body>\n"
	"<h1>shmetrics exporter</h1>\n<ul>\n"
	"<li><a href=\"/metrics\">/metrics</a> (Prometheus text, "
	"OpenMetrics on request)</li>\n"
	"<li><a href=\"/metrics/json\">/metrics/json</a></li>\n"
	"<li><a href=\"/metrics/health\">/metrics/health</a></li>\n"
	"</ul>\n</body></html>\n";

static int
handle(struct mg_connection *conn, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *path = ri->local_uri_raw ? ri->local_uri_raw : "";

	(void)cbdata;
	if (strcmp(ri->request_method, "GET") != 0 &&
	    strcmp(ri->request_method, "HEAD") != 0) {
		send_simple(conn, 405, "text/plain", "method not allowed\n",
			    "Allow", "GET, HEAD");
		return 405;
	}
	if (!authorized(conn)) {
		send_simple(conn, 401, "text/plain", "unauthorized\n",
			    "WWW-Authenticate",
			    "Basic realm=\"shmetrics\", charset=\"UTF-8\"");
		return 401;
	}
	if (!strcmp(path, "/metrics")) {
		const char *accept = mg_get_header(conn, "Accept");

		return serve_render(conn, header_allows(accept,
						"application/openmetrics-text")
						  ? FMT_OPENMETRICS
						  : FMT_TEXT);
	}
	if (!strcmp(path, "/metrics/json"))
		return serve_render(conn, FMT_JSON);
	if (!strcmp(path, "/metrics/health"))
		return serve_render(conn, FMT_HEALTH);
	if (!strcmp(path, "/")) {
		send_simple(conn, 200, "text/html; charset=utf-8", landing,
			    NULL, NULL);
		return 200;
	}
	send_simple(conn, 404, "text/plain", "not found\n", NULL, NULL);
	return 404;
}

static void *
on_thread_init(const struct mg_context *ctx, int type)
{
	(void)ctx;
	(void)type;
	exporter_thread_init();
	return NULL;
}

static void
on_thread_exit(const struct mg_context *ctx, int type, void *p)
{
	(void)ctx;
	(void)type;
	(void)p;
	exporter_thread_exit();
}

static int
on_log(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	exporter_log("http: %s", message);
	return 1;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                      */

static const char usage[] =
	"usage: shmetrics-exporter [options]\n"
	"  --segment NAME          segment (default $SHMETRICS_SEGMENT or "
	"/shmetrics)\n"
	"  --listen HOST:PORT      address (default 127.0.0.1:5000)\n"
	"  --threads N             HTTP worker threads (default 8)\n"
	"  --request-timeout S     seconds per request (default 10)\n"
	"  --tls-cert FILE         serve HTTPS with this PEM certificate\n"
	"  --tls-key FILE          and this PEM key (default: in the cert)\n"
	"  --basic-auth-file FILE  require HTTP Basic auth; lines "
	"'user:crypt-hash'\n"
	"  -h, --help, -V, --version\n";

static int
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "request-timeout", required_argument, NULL, 'r' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "basic-auth-file", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	opterr = 0;     /* our own one-line messages */
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (o) {
		case 's': cfg.segment = optarg; break;
		case 'l': cfg.listen = optarg; break;
		case 't': cfg.threads = optarg; break;
		case 'r': cfg.request_timeout_s = atoi(optarg); break;
		case 'c': cfg.tls_cert = optarg; break;
		case 'k': cfg.tls_key = optarg; break;
		case 'a': cfg.auth_file = optarg; break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'V':
			printf("shmetrics-exporter %s (layout %u)\n",
			       SHMETRICS_VERSION, SHMET_LAYOUT_VERSION);
			exit(0);
		default:
			fprintf(stderr, "shmetrics-exporter: unknown option or "
				"missing value: '%s' (see --help)\n",
				argv[optind - 1]);
			exit(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "shmetrics-exporter: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	if (cfg.request_timeout_s < 1 || atoi(cfg.threads) < 1 ||
	    atoi(cfg.threads) > 1024 || !strchr(cfg.listen, ':') ||
	    (cfg.tls_key && !cfg.tls_cert)) {
		fprintf(stderr, "shmetrics-exporter: invalid option value "
				"(see --help)\n");
		return -1;
	}
	return 0;
}

/* civetweb wants certificate and key in one PEM file. */
static int
tls_pem(char *path, size_t len)
{
	FILE *out, *in;
	const char *parts[2] = { cfg.tls_cert, cfg.tls_key };
	int fd;

	if (!cfg.tls_key) {
		snprintf(path, len, "%s", cfg.tls_cert);
		return 0;
	}
	snprintf(path, len, "/tmp/shmetrics-exporter-tls-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || !(out = fdopen(fd, "w")))
		return -1;
	for (int i = 0; i < 2; i++) {
		char buf[4096];
		size_t n;

		in = fopen(parts[i], "r");
		if (!in) {
			exporter_log("cannot read %s: %s", parts[i],
				     strerror(errno));
			fclose(out);
			unlink(path);
			return -1;
		}
		while ((n = fread(buf, 1, sizeof buf, in)) > 0)
			fwrite(buf, 1, n, out);
		fclose(in);
	}
	fclose(out);
	return 1;       /* a temporary file to unlink once loaded */
}

/*
 * civetweb's master thread notices mg_stop() only when its poll() on the
 * listening sockets returns, which can take 2 s when idle.  Stop from a
 * helper thread and wake the poll with a connection of our own, so that
 * shutdown takes milliseconds.
 */
static void *
stop_thread(void *ctx)
{
	mg_stop(ctx);
	return NULL;
}

static void
wake_listener(void)
{
	struct sockaddr_in sa;
	char host[256];
	const char *colon = strrchr(cfg.listen, ':');
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	snprintf(host, sizeof host, "%.*s", (int)(colon - cfg.listen),
		 cfg.listen);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    sa.sin_addr.s_addr == htonl(INADDR_ANY))
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	connect(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
}

static void
stop_server(struct mg_context *ctx)
{
	pthread_t t;

	if (pthread_create(&t, NULL, stop_thread, ctx) != 0) {
		mg_stop(ctx);
		return;
	}
	for (int i = 0; i < 50 && pthread_tryjoin_np(t, NULL) == EBUSY; i++) {
		struct timespec ts = { 0, 20 * 1000000L };

		wake_listener();
		nanosleep(&ts, NULL);
	}
	pthread_join(t, NULL);
}

int
main(int argc, char **argv)
{
	struct mg_callbacks cb;
	struct mg_context *ctx;
	char ports[300], timeout_ms[24], pem[300] = "";
	const char *options[32];
	int n = 0, tmp_pem = 0, sig;
	sigset_t set;

	if (parse_args(argc, argv) < 0)
		return 2;
	/*
	 * Renders are large buffers made by whichever HTTP thread leads and
	 * freed by whichever sends last.  Two arenas keep RSS from growing
	 * with the thread count, and a fixed mmap threshold (glibc raises it
	 * on every free of a large block otherwise) returns every render's
	 * memory to the system when it is freed, so RSS stays flat.
	 */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	exporter_segment_name = cfg.segment ? cfg.segment
			       : getenv(SHMET_ENV_SEGMENT) && *getenv(SHMET_ENV_SEGMENT)
				       ? getenv(SHMET_ENV_SEGMENT)
				       : SHMET_DEFAULT_SEGMENT;
	if (cfg.auth_file && load_users(cfg.auth_file) < 0)
		return 1;
	if (cfg.tls_cert && (tmp_pem = tls_pem(pem, sizeof pem)) < 0)
		return 1;
	/* Signals go to sigwait() below, not to civetweb's threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

#ifdef HAVE_SSLCOMPAT
	/* Keeps sslcompat loaded, whose SONAME civetweb's dlopen finds. */
	if (cfg.tls_cert && !shmetrics_sslcompat())
		return 1;
#endif
	mg_init_library(cfg.tls_cert ? MG_FEATURES_TLS : 0);
	scrape_init();
	if (source_start(exporter_segment_name) < 0) {
		exporter_log("cannot start the refresher thread");
		return 1;
	}
	snprintf(ports, sizeof ports, "%s%s", cfg.listen,
		 cfg.tls_cert ? "s" : "");
	snprintf(timeout_ms, sizeof timeout_ms, "%d",
		 cfg.request_timeout_s * 1000);
	options[n++] = "listening_ports";
	options[n++] = ports;
	options[n++] = "num_threads";
	options[n++] = cfg.threads;
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
	if (cfg.tls_cert) {
		options[n++] = "ssl_certificate";
		options[n++] = pem;
		options[n++] = "ssl_protocol_version";
		options[n++] = "4";     /* TLS 1.2 and newer */
	}
	options[n] = NULL;
	memset(&cb, 0, sizeof cb);
	cb.init_thread = on_thread_init;
	cb.exit_thread = on_thread_exit;
	cb.log_message = on_log;
	ctx = mg_start(&cb, NULL, options);
	if (tmp_pem == 1)
		unlink(pem);
	if (!ctx) {
		exporter_log("cannot listen on %s (address in use, bad TLS "
			     "files, or bad options)", cfg.listen);
		source_stop();
		return 1;
	}
	mg_set_request_handler(ctx, "/", handle, NULL);
	exporter_log("started: segment %s, %s://%s, %s threads%s",
		     exporter_segment_name, cfg.tls_cert ? "https" : "http",
		     cfg.listen, cfg.threads,
		     nusers >= 0 ? ", basic auth" : "");
	while (sigwait(&set, &sig) != 0)
		;
	exporter_log("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	stop_server(ctx);
	source_stop();
	scrape_fini();
	mg_exit_library();
	exporter_log("stopped");
	return 0;
}
