/*
 * One HTTP/1.x response, head and body, in as few writes as possible.
 *
 * Why not civetweb's mg_response_header_start/add/send: in civetweb 1.15
 * mg_response_header_send() sends the status line, every header, Date,
 * Connection and the blank line with one send() each, and the body is one
 * more.  With Nagle's algorithm on (civetweb's tcp_nodelay defaults to 0)
 * each small segment after the first waits until the peer has ACKed the
 * first, and a peer past the quick-ACK phase that starts every TCP
 * connection delays that ACK (40 ms minimum on Linux).  So the first
 * request of a connection was fast and every later one on the same
 * kept-alive connection waited about 44 ms: every Prometheus scrape.
 *
 * Here the head is formatted into one buffer and, when the body fits in
 * it too, both go in one write: one segment.  A larger body is a second
 * write, which server.c's tcp_nodelay sends at once instead of holding its
 * last partial segment until the head is ACKed.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <civetweb.h>

#include "exporter.h"

/* Head and body up to this size are one write. */
#define ONE_WRITE_MAX 8192

/*
 * Does the connection stay open after this response?  The rule civetweb
 * applies after the handler returns (should_keep_alive(); server.c turns
 * enable_keep_alive on): the client's Connection header if it sent one,
 * else HTTP/1.1 keeps alive and 1.0 closes.  Saying it here as civetweb
 * will do it keeps the Connection header true.
 */
static int
keep_alive(const struct mg_connection *conn)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *h = mg_get_header(conn, "Connection");

	if (h) {
		struct hv_item it;

		while (hv_next(&h, &it))
			if (it.len == 10 && !strncasecmp(it.name, "keep-alive", 10))
				return 1;
		return 0;
	}
	return ri->http_version && !strcmp(ri->http_version, "1.1");
}

/* An IMF-fixdate (RFC 9110), without the locale strftime would use. */
static void
http_date(char *out, size_t len)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
					 "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
					    "Jun", "Jul", "Aug", "Sep", "Oct",
					    "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
respond(struct mg_connection *conn, int status,
	const struct resp_header *headers, int nheaders, const void *body,
	size_t len, int send_body)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *version = ri->http_version ? ri->http_version : "1.0";
	char buf[ONE_WRITE_MAX], date[40];
	size_t n;
	int k;

	http_date(date, sizeof date);
	k = snprintf(buf, sizeof buf, "HTTP/%s %d %s\r\nContent-Length: %zu\r\n",
		     version, status, mg_get_response_code_text(conn, status),
		     len);
	n = k > 0 ? (size_t)k : 0;
	for (int i = 0; i < nheaders && n < sizeof buf; i++) {
		k = snprintf(buf + n, sizeof buf - n, "%s: %s\r\n",
			     headers[i].name, headers[i].value);
		n += k > 0 ? (size_t)k : 0;
	}
	if (n < sizeof buf) {
		k = snprintf(buf + n, sizeof buf - n,
			     "Date: %s\r\nConnection: %s\r\n\r\n", date,
			     keep_alive(conn) ? "keep-alive" : "close");
		n += k > 0 ? (size_t)k : 0;
	}
	if (n >= sizeof buf) {
		/* Our own headers are short: this is a bug, not a client's
		 * doing.  An answer that says so beats a cut head. */
		static const char err[] = "HTTP/1.1 500 Internal Server Error\r\n"
					  "Content-Length: 0\r\n"
					  "Connection: close\r\n\r\n";

		mg_write(conn, err, sizeof err - 1);
		return;
	}
	if (!send_body || len == 0) {
		mg_write(conn, buf, n);
	} else if (len <= sizeof buf - n) {
		memcpy(buf + n, body, len);
		mg_write(conn, buf, n + len);
	} else {
		mg_write(conn, buf, n);
		mg_write(conn, body, len);
	}
}
