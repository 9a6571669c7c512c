/*
 * HTTP: routing, content negotiation and responses.
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <civetweb.h>

#include "exporter.h"

/* Set by http_init() before the HTTP threads start; read-only after. */
static int request_timeout_s = 10;

void
http_init(int timeout_s)
{
	request_timeout_s = timeout_s;
}

static void
send_simple(struct mg_connection *conn, int status, const char *type,
	    const char *body, const char *extra_name, const char *extra)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct resp_header h[2] = { { "Content-Type", type },
				    { extra_name, extra } };

	respond(conn, status, h, extra_name ? 2 : 1, body, strlen(body),
		strcmp(ri->request_method, "HEAD") != 0);
}

/* Scrape deadline: Prometheus's timeout header, else the request timeout. */
static uint64_t
deadline_for(const struct mg_connection *conn, uint64_t arrival)
{
	const char *h = mg_get_header(conn, "X-Prometheus-Scrape-Timeout-Seconds");
	double s = request_timeout_s;

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
	uint64_t arrival = mono_ns();
	int gzip = negotiate_gzip(mg_get_header(conn, "Accept-Encoding"));
	struct rendered *r = scrape_get(fmt, arrival,
					deadline_for(conn, arrival), gzip);
	const struct shmet_buf *body;
	struct resp_header h[4];
	int status, n = 0;

	if (!r) {
		send_simple(conn, 503, "text/plain",
			    "render did not finish within the scrape timeout\n",
			    NULL, NULL);
		own_count_request(fmt, 503);
		return 503;
	}
	gzip = gzip && r->gz_done;
	body = gzip ? &r->gz : &r->body;
	h[n++] = (struct resp_header){ "Content-Type", shmet_format_content_type((enum shmet_format)fmt) };
	h[n++] = (struct resp_header){ "Vary", "Accept, Accept-Encoding" };
	h[n++] = (struct resp_header){ "Cache-Control", "no-store" };
	if (gzip)
		h[n++] = (struct resp_header){ "Content-Encoding", "gzip" };
	respond(conn, r->status, h, n, body->data, body->len,
		strcmp(ri->request_method, "HEAD") != 0);
	status = r->status;
	own_count_request(fmt, status);
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

int
http_handle(struct mg_connection *conn, void *cbdata)
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
	if (!auth_check(mg_get_header(conn, "Authorization"))) {
		send_simple(conn, 401, "text/plain", "unauthorized\n",
			    "WWW-Authenticate",
			    "Basic realm=\"shmetrics\", charset=\"UTF-8\"");
		return 401;
	}
	if (!strcmp(path, "/metrics")) {
		const char *accept = mg_get_header(conn, "Accept");

		return serve_render(conn, negotiate_openmetrics(accept)
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
