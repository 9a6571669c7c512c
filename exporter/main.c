/*
 * shmetrics-exporter: maps a shmetrics segment read-only and serves it to
 * Prometheus over HTTP (civetweb).  This file reads the arguments and
 * starts and stops the parts in order; exporter.h lists them.
 */
#include "config.h"

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
#include "tools/cli.h"

#ifdef HAVE_SSLCOMPAT
int shmetrics_sslcompat(void);
#endif

static struct exporter_args cfg = {
	.listen = "127.0.0.1:5000", .threads = 256, .request_timeout_s = 10,
};

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
	const char *segment;
	long owner = -1;
	int tmp_pem = 0, sig, rc;
	sigset_t set;

	args_parse(argc, argv, &cfg);
	/*
	 * Renders are large buffers made by whichever HTTP thread leads and
	 * freed by whichever sends last.  Two arenas keep RSS from growing
	 * with the thread count, and a fixed mmap threshold (glibc raises it
	 * on every free of a large block otherwise) returns every render's
	 * memory to the system when it is freed, so RSS stays flat.
	 */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	segment = shmet_name_resolve(cfg.segment);
	if (cfg.segment_owner && (owner = owner_uid(cfg.segment_owner)) < 0) {
		exporter_log("--segment-owner %s: no such user", cfg.segment_owner);
		return CLI_EXIT_FAILURE;
	}
	if (cfg.auth_file && auth_load(cfg.auth_file) < 0)
		return CLI_EXIT_FAILURE;
	if (cfg.web_config) {
		if (webconfig_load(cfg.web_config, &web, err, sizeof err) < 0) {
			exporter_log("invalid --web.config.file: %s", err);
			return CLI_EXIT_FAILURE;
		}
		if (web.tls) {
			cfg.tls_cert = web.cert_file;
			cfg.tls_key = web.key_file;
		}
	}
	if (cfg.tls_cert &&
	    (tmp_pem = tls_pem(cfg.tls_cert, cfg.tls_key, pem, sizeof pem)) < 0)
		return CLI_EXIT_FAILURE;
	/* Signals go to sigwait() below, not to civetweb's threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

#ifdef HAVE_SSLCOMPAT
	/* Keeps sslcompat loaded, whose SONAME civetweb's dlopen finds. */
	if (cfg.tls_cert && !shmetrics_sslcompat())
		return CLI_EXIT_FAILURE;
#endif
	own_init();
	scrape_init();
	http_init(cfg.request_timeout_s);
	if (source_start(segment, owner) < 0) {
		exporter_log("cannot start the refresher thread");
		return CLI_EXIT_FAILURE;
	}
	scfg.listen = cfg.listen;
	scfg.threads = cfg.threads;
	scfg.request_timeout_s = cfg.request_timeout_s;
	scfg.tls_pem = cfg.tls_cert ? pem : NULL;
	rc = server_start(&scfg, err, sizeof err);
	if (tmp_pem == 1)
		unlink(pem);
	if (rc < 0) {
		/* civetweb names no file ("Error initializing SSL context"),
		 * and with a separate key it loaded a temporary merge. */
		if (cfg.tls_cert)
			exporter_log("%s (TLS certificate file %s%s%s)", err,
				     cfg.tls_cert, cfg.tls_key ? ", key file " : "",
				     cfg.tls_key ? cfg.tls_key : "");
		else
			exporter_log("%s", err);
		source_stop();
		return CLI_EXIT_FAILURE;
	}
	/* Only now, bound and serving, does the exporter say what it
	 * serves ("serving segment", "waiting for segment ..."). */
	source_announce();
	exporter_log("started: segment %s, %s://%s, %d threads%s", segment,
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
