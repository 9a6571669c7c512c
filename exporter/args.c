/*
 * The exporter's command line: its options, each checked on its own so
 * that an error names the option and the value (tools/cli.h), and exits 2.
 * Whether the files, user and port it names exist and work is found out
 * by main.c and the parts it starts, and exits 1.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics/layout.h>

#include "exporter.h"
#include "tools/cli.h"

static const char usage[] =
	"usage: shmetrics-exporter [options]\n"
	"  --segment NAME          segment (default $SHMETRICS_SEGMENT or "
	"/shmetrics)\n"
	"  --segment-owner USER    serve the segment only if USER (name or "
	"uid) owns it\n"
	"  --listen HOST:PORT      address (default 127.0.0.1:5000)\n"
	"  --threads N             HTTP worker threads, one per open "
	"connection,\n"
	"                          1 to 1024 (default 256)\n"
	"  --request-timeout S     seconds per request, 1 to 3600 (default "
	"10)\n"
	"  --tls-cert FILE         serve HTTPS with this PEM certificate\n"
	"  --tls-key FILE          and this PEM key (default: in the cert)\n"
	"  --basic-auth-file FILE  require HTTP Basic auth; lines "
	"'user:crypt-hash'\n"
	"  --web.config.file FILE  TLS and bcrypt basic_auth_users, in the "
	"Prometheus\n"
	"                          exporter-toolkit format (instead of the "
	"three above)\n"
	"  -h, --help, -V, --version\n"
	"Exit status: 0 done, 1 failed (segment, files, port), 2 wrong "
	"command line.\n";

static void __attribute__((noreturn))
bad_value(const char *option, const char *value, const char *why)
{
	fprintf(stderr, "shmetrics-exporter: invalid value '%s' for --%s: %s "
		"(see --help)\n", value, option, why);
	exit(CLI_EXIT_USAGE);
}

static void __attribute__((noreturn))
usage_error(const char *message)
{
	fprintf(stderr, "shmetrics-exporter: %s (see --help)\n", message);
	exit(CLI_EXIT_USAGE);
}

/* A decimal integer in lo..hi, all of s; else a usage error. */
static int
int_value(const char *option, const char *s, long lo, long hi)
{
	char *end, why[64];
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE || end == s || *end != '\0' || v < lo || v > hi) {
		if (errno != ERANGE && end != s && *end == '\0')
			snprintf(why, sizeof why, "not in %ld..%ld", lo, hi);
		else
			snprintf(why, sizeof why, "not an integer in %ld..%ld",
				 lo, hi);
		bad_value(option, s, why);
	}
	return (int)v;
}

/* HOST:PORT, as civetweb's listening_ports takes one address: a port
 * after the last ':' in 1..65535 and a host before it. */
static void
check_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon)
		bad_value("listen", s, "expected HOST:PORT");
	if (colon == s)
		bad_value("listen", s, "no host before the port");
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno)
		bad_value("listen", s, "the port is not a number");
	if (port < 1 || port > 65535)
		bad_value("listen", s, "port not in 1..65535");
}

void
args_parse(int argc, char **argv, struct exporter_args *a)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, 's' },
		{ "segment-owner", required_argument, NULL, 'o' },
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "request-timeout", required_argument, NULL, 'r' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "basic-auth-file", required_argument, NULL, 'a' },
		{ "web.config.file", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
	int o;

	opterr = 0;     /* our own one-line messages */
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			if ((why = cli_segment_why(optarg)))
				bad_value("segment", optarg, why);
			a->segment = optarg;
			break;
		case 'o':
			/* Empty: the systemd unit's SHMETRICS_SEGMENT_OWNER
			 * was not set; say which setting is missing. */
			if (!*optarg)
				usage_error("--segment-owner is empty: give the "
					    "user that creates the segment "
					    "(systemd: SHMETRICS_SEGMENT_OWNER)");
			a->segment_owner = optarg;
			break;
		case 'l':
			check_listen(optarg);
			a->listen = optarg;
			break;
		case 't':
			a->threads = int_value("threads", optarg, 1, 1024);
			break;
		case 'r':
			a->request_timeout_s =
				int_value("request-timeout", optarg, 1, 3600);
			break;
		case 'c': a->tls_cert = optarg; break;
		case 'k': a->tls_key = optarg; break;
		case 'a': a->auth_file = optarg; break;
		case 'w': a->web_config = optarg; break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'V':
			exit(cli_version("shmetrics-exporter"));
		default:
			exit(cli_unknown_option("shmetrics-exporter",
						argv[optind - 1]));
		}
	}
	if (optind != argc) {
		fprintf(stderr, "shmetrics-exporter: unexpected argument '%s' "
			"(see --help)\n", argv[optind]);
		exit(CLI_EXIT_USAGE);
	}
	if (a->web_config && (a->tls_cert || a->tls_key || a->auth_file))
		usage_error("--web.config.file replaces --tls-cert, --tls-key "
			    "and --basic-auth-file: give one or the other");
	if (a->tls_key && !a->tls_cert)
		usage_error("--tls-key needs --tls-cert");
}
