/*
 * shmetrics-exporter internals: one section per source file, in the order
 * they depend on each other (a file calls only the sections above its
 * own, never one below, so no two files call each other).
 *
 *   log.c          timestamped lines on stderr
 *   args.c         the command line: options and their checks
 *   negotiate.c    Accept and Accept-Encoding with q-values (RFC 9110)
 *   auth.c         HTTP Basic authentication against crypt(3) hashes
 *   tls.c          certificate and key merged into the PEM civetweb wants
 *   webconfig.c    --web.config.file (exporter-toolkit YAML, libyaml)
 *   source.c       the RCU-published view of the segment and its refresher
 *   own-metrics.c  the exporter's own figures, as described families
 *   render.c       one page of one format from the current view
 *   scrape.c       single-flight renders shared by scrapes, and gzip
 *   respond.c      one response's head and body in as few writes as possible
 *   http.c         routing, content negotiation and responses
 *   server.c       civetweb start, options, threads and stop
 *   main.c         arguments, start and stop order, signals
 */
#ifndef SHMETRICS_EXPORTER_H
#define SHMETRICS_EXPORTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "shmetrics-reader.h"

static inline uint64_t
exporter_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* Formats served from the segment: the render entry's (lib/page.c). */
enum fmt {
	FMT_TEXT = SHMET_FORMAT_TEXT,
	FMT_OPENMETRICS = SHMET_FORMAT_OPENMETRICS,
	FMT_JSON = SHMET_FORMAT_JSON,
	FMT_HEALTH = SHMET_FORMAT_HEALTH,
	FMT_COUNT = SHMET_FORMAT_COUNT
};

static inline const char *
fmt_name(enum fmt fmt)
{
	return shmet_format_name((enum shmet_format)fmt);
}

static inline uint64_t
clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* log.c */
void exporter_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* args.c: the options; a wrong command line exits 2 with one line
 * naming the option and the value (tools/cli.h). */
struct exporter_args {
	const char *segment;
	const char *listen;
	int threads;
	int request_timeout_s;
	const char *tls_cert, *tls_key;
	const char *auth_file;
	const char *web_config;
	const char *segment_owner;
};
void args_parse(int argc, char **argv, struct exporter_args *a);

#include "negotiate.h"

/* auth.c */
/* Load "user:crypt-hash" lines; 0 or -1 (logged). */
int auth_load(const char *path);
int auth_enabled(void);
/* The highest bcrypt cost auth_add_user takes (auth.c says why). */
#define AUTH_BCRYPT_MAX_COST 14
/* Add one user (turns authentication on); -1 with the reason in why if
 * the name or hash is unusable (crypt cannot check it), too long, or a
 * bcrypt above AUTH_BCRYPT_MAX_COST.  Runs crypt only at bcrypt's lowest
 * cost, whatever the hash's. */
int auth_add_user(const char *name, const char *hash, char *why, size_t len);
/* Does this Authorization header value (NULL: absent) name a configured
 * user and the right password?  1 if authentication is off. */
int auth_check(const char *authorization);

/* tls.c: the PEM file civetweb loads into path: cert itself (returns 0)
 * or a temporary merge of cert and key (returns 1: unlink it once
 * loaded); -1 (logged) on error. */
int tls_pem(const char *cert, const char *key, char *path, size_t len);

/* webconfig.c: the exporter-toolkit web configuration file. */
struct web_config {
	int tls;                        /* cert_file and key_file given */
	char cert_file[4096];
	char key_file[4096];
	int users;                      /* basic_auth_users added to auth.c */
};
/* Parse path, add its users to auth.c; 0, or -1 with "FILE:LINE: reason"
 * in err. */
int webconfig_load(const char *path, struct web_config *out, char *err,
		   size_t errlen);

/* source.c: the RCU-published view and the thread that refreshes it. */

/*
 * The published view of the segment is a struct shmet_view of the
 * follower (lib/follow.c): a read-only mapping and an index built at one
 * generation, published through an RCU pointer; readers hold
 * source_read_lock() while they use it.
 */
/* Looks for the segment once, then starts the refresher; status changes
 * are kept quiet until source_announce() logs the current one. */
/* owner: the uid the segment must belong to (--segment-owner), or -1. */
int source_start(const char *segment, long owner);
void source_announce(void);
void source_stop(void);
/* Every thread that calls source_read_lock() registers first. */
void source_thread_register(void);
void source_thread_unregister(void);
/* A read-side critical section (liburcu): the view stays valid in it. */
void source_read_lock(void);
void source_read_unlock(void);
/* Between source_read_lock/unlock: the current view or NULL. */
struct shmet_view *source_view(void);
/* Why there is no view ("waiting for segment /x: ..."). */
void source_status(char *out, size_t len);

/* own-metrics.c: the exporter's own figures. */
void own_init(void);
void own_count_request(enum fmt fmt, int status);
void own_count_render(enum fmt fmt, uint64_t ns, size_t bytes);
void own_count_gzip(void);
/* Bytes of the latest render of fmt (0 before the first). */
size_t own_last_render_bytes(enum fmt fmt);
/* The segment (view NULL without one) and the own figures it does not
 * have, as text or OpenMetrics; 0 or a negative errno. */
int own_render(struct shmet_buf *b, enum fmt fmt,
	       const struct shmet_view *view, struct shmet_values *vals);

/* render.c: a finished render, shared by every scrape that asked for it. */
struct rendered {
	/* Acq_rel decrements in rendered_put; see there. */
	atomic_int refs;
	uint64_t done_ns;               /* CLOCK_MONOTONIC when finished */
	int status;                     /* HTTP status */
	struct shmet_buf body;
	struct shmet_buf gz;            /* gzip of body, if anyone asked */
	int gz_done;
	size_t accounted;               /* bytes counted in renders_bytes() */
};
/* Render fmt from the current view: one reference, or NULL (logged) if
 * memory ran out. */
struct rendered *render_page(enum fmt fmt);
void rendered_put(struct rendered *r);
/* Count r's buffers (after they grew) in renders_bytes(); the caller has
 * r to itself or holds its flight's lock. */
void rendered_account(struct rendered *r);
/* Bytes of every render still alive: the latest of each format and those
 * that responses still send. */
size_t renders_bytes(void);

/* scrape.c: single-flight rendering. */
int scrape_init(void);
void scrape_fini(void);
/*
 * A render of fmt finished after arrival_ns, shared with concurrent
 * callers; waits at most until deadline_ns for one in progress.  NULL on
 * timeout or out of memory.  Release with rendered_put().
 */
struct rendered *scrape_get(enum fmt fmt, uint64_t arrival_ns,
			    uint64_t deadline_ns, int want_gzip);

/* respond.c: status, Content-Length (added here), headers, Date and
 * Connection, then the body unless send_body is 0 (HEAD): one write when
 * it all fits in 8 KiB, else the head and then the body. */
struct mg_connection;
struct resp_header {
	const char *name, *value;
};
void respond(struct mg_connection *conn, int status,
	     const struct resp_header *headers, int nheaders, const void *body,
	     size_t len, int send_body);

/* http.c */
void http_init(int request_timeout_s);
/* civetweb's request handler for every path. */
int http_handle(struct mg_connection *conn, void *cbdata);

/* server.c */
struct server_config {
	const char *listen;             /* HOST:PORT */
	int threads;
	int request_timeout_s;
	const char *tls_pem;            /* NULL: plain HTTP */
};
/* Bind and start serving; 0, or -1 with a one-line reason in err. */
int server_start(const struct server_config *cfg, char *err, size_t errlen);
void server_stop(void);

#endif
