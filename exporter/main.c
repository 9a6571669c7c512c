/*
 * shmetrics-exporter: maps a shmetrics segment read-only and serves it to
 * Prometheus over HTTP (civetweb).  This file reads the arguments and
 * starts and stops the parts in order; exporter.h lists them.
 */
#include "config.h"

#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmetrics/layout.h>

#include "exporter.h"

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
	const char *web_config;
	const char *segment_owner;
};

static struct config cfg = {
	.listen = "127.0.0.1:5000", .threads = "256", .request_timeout_s = 10,
};

static const char usage[] =
	"usage: shmetrics-exporter [options]\n"
	"  --segment NAME          segment (default $SHMETRICS_SEGMENT or "
	"/shmetrics)\n"
	"  --segment-owner USER    serve the segment only if USER (name or "
	"uid) owns it\n"
	"  --listen HOST:PORT      address (default 127.0.0.1:5000)\n"
	"  --threads N             HTTP worker threads, one per open "
	"connection (default 256)\n"
	"  --request-timeout S     seconds per request (default 10)\n"
	"  --tls-cert FILE         serve HTTPS with this PEM certificate\n"
	"  --tls-key FILE          and this PEM key (default: in the cert)\n"
	"  --basic-auth-file FILE  require HTTP Basic auth; lines "
	"'user:crypt-hash'\n"
	"  --web.config.file FILE  TLS and bcrypt basic_auth_users, in the "
	"Prometheus\n"
	"                          exporter-toolkit format (instead of the "
	"three above)\n"
	"  -h, --help, -V, --version\n";

static int
parse_args(int argc, char **argv)
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
	int o;

	opterr = 0;     /* our own one-line messages */
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (o) {
		case 's': cfg.segment = optarg; break;
		case 'o': cfg.segment_owner = optarg; break;
		case 'l': cfg.listen = optarg; break;
		case 't': cfg.threads = optarg; break;
		case 'r': cfg.request_timeout_s = atoi(optarg); break;
		case 'c': cfg.tls_cert = optarg; break;
		case 'k': cfg.tls_key = optarg; break;
		case 'a': cfg.auth_file = optarg; break;
		case 'w': cfg.web_config = optarg; break;
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
	if (cfg.web_config && (cfg.tls_cert || cfg.tls_key || cfg.auth_file)) {
		fprintf(stderr, "shmetrics-exporter: --web.config.file "
				"replaces --tls-cert, --tls-key and "
				"--basic-auth-file: give one or the other\n");
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

/* --segment-owner: a user name or a uid; -1 if neither. */
static long
owner_uid(const char *s)
{
	const struct passwd *pw = getpwnam(s);
	char *end;
	long uid;

	if (pw)
		return (long)pw->pw_uid;
	uid = strtol(s, &end, 10);
	return *s && !*end && uid >= 0 ? uid : -1;
}

int
main(int argc, char **argv)
{
	static struct web_config web;
	struct server_config scfg;
	char pem[300] = "", err[600];
	const char *segment, *env = getenv(SHMET_ENV_SEGMENT);
	long owner = -1;
	int tmp_pem = 0, sig, rc;
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
	segment = cfg.segment ? cfg.segment
		  : env && *env ? env
				: SHMET_DEFAULT_SEGMENT;
	/* Empty: the systemd unit's SHMETRICS_SEGMENT_OWNER was not set;
	 * say which setting is missing rather than "no such user". */
	if (cfg.segment_owner && !*cfg.segment_owner) {
		exporter_log("--segment-owner is empty: give the user that "
			     "creates the segment (systemd: "
			     "SHMETRICS_SEGMENT_OWNER)");
		return 2;
	}
	if (cfg.segment_owner && (owner = owner_uid(cfg.segment_owner)) < 0) {
		exporter_log("--segment-owner %s: no such user", cfg.segment_owner);
		return 2;
	}
	if (cfg.auth_file && auth_load(cfg.auth_file) < 0)
		return 1;
	if (cfg.web_config) {
		if (webconfig_load(cfg.web_config, &web, err, sizeof err) < 0) {
			exporter_log("invalid --web.config.file: %s", err);
			return 1;
		}
		if (web.tls) {
			cfg.tls_cert = web.cert_file;
			cfg.tls_key = web.key_file;
		}
	}
	if (cfg.tls_cert &&
	    (tmp_pem = tls_pem(cfg.tls_cert, cfg.tls_key, pem, sizeof pem)) < 0)
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
	own_init();
	scrape_init();
	http_init(cfg.request_timeout_s);
	if (source_start(segment, owner) < 0) {
		exporter_log("cannot start the refresher thread");
		return 1;
	}
	scfg.listen = cfg.listen;
	scfg.threads = cfg.threads;
	scfg.request_timeout_s = cfg.request_timeout_s;
	scfg.tls_pem = cfg.tls_cert ? pem : NULL;
	rc = server_start(&scfg, err, sizeof err);
	if (tmp_pem == 1)
		unlink(pem);
	if (rc < 0) {
		exporter_log("%s", err);
		source_stop();
		return 1;
	}
	/* Only now, bound and serving, does the exporter say what it
	 * serves ("serving segment", "waiting for segment ..."). */
	source_announce();
	exporter_log("started: segment %s, %s://%s, %s threads%s", segment,
		     cfg.tls_cert ? "https" : "http", cfg.listen, cfg.threads,
		     auth_enabled() ? ", basic auth" : "");
	while (sigwait(&set, &sig) != 0)
		;
	exporter_log("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	server_stop();
	source_stop();
	scrape_fini();
	exporter_log("stopped");
	return 0;
}
