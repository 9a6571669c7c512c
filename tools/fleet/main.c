/*
 * shmetrics-fleet: the demo fleet.  Forks campaign-engine and
 * webhook-worker processes that behave like the specification's examples
 * and record through libshmetrics-collectors, plus a webhook sink on
 * 127.0.0.1 that the workers deliver to with real HTTP POSTs.
 *
 *   engines   each owns four campaigns (disjoint from the other engines')
 *             and runs poll cycles: calls end (completed, with an outcome
 *             and a cost, and a webhook event enqueued), new calls are set
 *             up for pending leads (time_processing around the setup) up
 *             to --max-calls at once, some fail at once (by error type)
 *   workers   take due events from one shared queue, POST them to the sink
 *             (200, 4xx, 5xx, slow or dropped at configurable rates):
 *             4xx is permanent (dead letter at once), 5xx and connection
 *             errors retry with exponential backoff up to --max-retries
 *   queue     the queue's owner: publishes webhook_queue_size and
 *             webhook_queue_oldest_age_seconds, which therefore stay (and
 *             grow) when every worker is dead
 *   parent    restarts children (--churn kills one every N seconds with
 *             SIGKILL, as a crash would), applies the fault flags, writes
 *             the --status file, stops all on SIGINT/SIGTERM or after
 *             --duration
 *
 * One time base: the fleet's clock runs --speed times faster than real
 * time, and everything it reports is in fleet seconds: call durations,
 * timed work (the collectors' timers are scaled by the same factor), HTTP
 * latency (the sink sleeps fleet seconds / speed), queue ages and uptime.
 *
 * SIGUSR1 holds the fleet: engines finish their cycle, workers their
 * delivery, each publishes its gauges once more and then idles; the status
 * file then says "held": true and its gauges are exactly what the exporter
 * shows.  SIGUSR2 resumes.
 */
#include "fleet.h"

static const char usage[] =
	"usage: shmetrics-fleet [options]\n"
	"  --segment NAME        segment (default $SHMETRICS_SEGMENT or "
	"/shmetrics)\n"
	"  --engines N           campaign-engine processes (default 2)\n"
	"  --workers N           webhook-worker processes (default 3)\n"
	"  --speed X             fleet seconds per real second (default 60)\n"
	"  --churn S             SIGKILL and restart one child every S "
	"seconds\n"
	"  --duration S          stop after S seconds (default: on "
	"SIGINT/TERM)\n"
	"  --max-retries N       delivery attempts before dead letter "
	"(default 5)\n"
	"  --max-calls N         concurrent calls per engine (default 20)\n"
	"  --rate-4xx P, --rate-5xx P, --rate-slow P, --rate-drop P\n"
	"                        sink outcome rates in percent (3, 5, 3, 2)\n"
	"  --rate-retry-fail P   retried deliveries failing again, percent "
	"(default 40)\n"
	"  --slow-seconds S      fleet seconds of a slow response (default 4)\n"
	"  --rate-call-fail P    calls failing at once, percent (default 15)\n"
	"  --rate-slow-setup P   call setups taking 6-9 s, percent "
	"(default 0)\n"
	"  --kill-workers S      SIGKILL every worker after S seconds, no "
	"restart\n"
	"  --status FILE         write what the fleet knows as JSON, every "
	"second\n"
	"                        and at exit (SIGUSR1 holds, SIGUSR2 "
	"resumes)\n"
	"  --quiet               no progress lines\n"
	"  -h, --help, -V, --version\n"
	"Seconds (S) are real seconds; the fleet reports fleet seconds.\n"
	"Exit status: 0 done, 1 failed (segment, status file), 2 wrong "
	"command line.\n";

static void
bad_value(const char *flag, const char *value, const char *why)
{
	fprintf(stderr, "shmetrics-fleet: invalid value '%s' for --%s: %s "
		"(see --help)\n", value, flag, why);
	exit(CLI_EXIT_USAGE);
}

static int
int_arg(const char *flag, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0')
		bad_value(flag, s, "not an integer");
	if (v < lo || v > hi) {
		char why[64];

		snprintf(why, sizeof why, "not in %ld..%ld", lo, hi);
		bad_value(flag, s, why);
	}
	return (int)v;
}

static double
num_arg(const char *flag, const char *s, double lo, double hi, int open_lo)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v))
		bad_value(flag, s, "not a number");
	if (v < lo || v > hi || (open_lo && v == lo)) {
		char why[64];

		if (open_lo)
			snprintf(why, sizeof why, "not above %g and at most %g",
				 lo, hi);
		else
			snprintf(why, sizeof why, "not in %g..%g", lo, hi);
		bad_value(flag, s, why);
	}
	return v;
}

static void
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, 's' },
		{ "engines", required_argument, NULL, 'e' },
		{ "workers", required_argument, NULL, 'w' },
		{ "speed", required_argument, NULL, 'x' },
		{ "churn", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "max-retries", required_argument, NULL, 'r' },
		{ "max-calls", required_argument, NULL, 'M' },
		{ "rate-4xx", required_argument, NULL, '4' },
		{ "rate-5xx", required_argument, NULL, '5' },
		{ "rate-slow", required_argument, NULL, 'S' },
		{ "rate-drop", required_argument, NULL, 'D' },
		{ "rate-retry-fail", required_argument, NULL, 'R' },
		{ "slow-seconds", required_argument, NULL, 'W' },
		{ "rate-call-fail", required_argument, NULL, 'F' },
		{ "rate-slow-setup", required_argument, NULL, 'P' },
		{ "kill-workers", required_argument, NULL, 'K' },
		{ "status", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name, *why;
	int o, idx;

	opterr = 0;     /* our own one-line messages */
	while ((o = getopt_long(argc, argv, "hV", opts, &idx)) != -1) {
		name = NULL;
		for (int k = 0; opts[k].name; k++)
			if (opts[k].val == o)
				name = opts[k].name;
		switch (o) {
		case 's':
			if ((why = cli_segment_why(optarg)))
				bad_value(name, optarg, why);
			setenv(SHMET_ENV_SEGMENT, optarg, 1);
			break;
		case 'e':
			opt.engines = int_arg(name, optarg, 0, MAX_ENGINES);
			break;
		case 'w':
			opt.workers = int_arg(name, optarg, 0, MAX_WORKERS);
			break;
		case 'x':
			opt.speed = num_arg(name, optarg, 0, 100000, 1);
			break;
		case 'c':
			opt.churn_s = num_arg(name, optarg, 0, 1e9, 0);
			break;
		case 'd':
			opt.duration_s = num_arg(name, optarg, 0, 1e9, 0);
			break;
		case 'r':
			opt.max_retries = int_arg(name, optarg, 1, 20);
			break;
		case 'M':
			opt.max_calls = int_arg(name, optarg, 1, MAX_CALLS);
			break;
		case '4':
			opt.rate_4xx = int_arg(name, optarg, 0, 100);
			break;
		case '5':
			opt.rate_5xx = int_arg(name, optarg, 0, 100);
			break;
		case 'S':
			opt.rate_slow = int_arg(name, optarg, 0, 100);
			break;
		case 'D':
			opt.rate_drop = int_arg(name, optarg, 0, 100);
			break;
		case 'R':
			opt.rate_retry_fail = int_arg(name, optarg, 0, 100);
			break;
		case 'W':
			opt.slow_s = num_arg(name, optarg, 0, 86400, 0);
			break;
		case 'F':
			opt.rate_call_fail = int_arg(name, optarg, 0, 100);
			break;
		case 'P':
			opt.rate_slow_setup = int_arg(name, optarg, 0, 100);
			break;
		case 'K':
			opt.kill_workers_s = num_arg(name, optarg, 0, 1e9, 1);
			break;
		case 'T':
			opt.status_path = optarg;
			break;
		case 'q':
			opt.quiet = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case 'V':
			exit(cli_version("shmetrics-fleet"));
		default:
			exit(cli_unknown_option("shmetrics-fleet",
						argv[optind - 1]));
		}
	}
	if (optind != argc) {
		fprintf(stderr, "shmetrics-fleet: unexpected argument '%s' "
			"(see --help)\n", argv[optind]);
		exit(CLI_EXIT_USAGE);
	}
	if (opt.rate_4xx + opt.rate_5xx + opt.rate_slow + opt.rate_drop > 100) {
		fprintf(stderr, "shmetrics-fleet: --rate-4xx, --rate-5xx, "
			"--rate-slow and --rate-drop add up to more than 100 "
			"(see --help)\n");
		exit(CLI_EXIT_USAGE);
	}
}

/*
 * The status file is written every second as FILE.tmp renamed over FILE,
 * and a write that fails is skipped (the fleet goes on).  A directory that
 * does not exist or cannot be written would make every write fail, so the
 * file would never appear: try the temporary file once before starting,
 * and say so then.
 */
static int
check_status_path(void)
{
	char tmp[4096];
	FILE *f;

	if (!opt.status_path)
		return 0;
	snprintf(tmp, sizeof tmp, "%s.tmp", opt.status_path);
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "shmetrics-fleet: cannot write --status %s: "
			"%s: %s\n", opt.status_path, tmp, strerror(errno));
		return -1;
	}
	fclose(f);
	unlink(tmp);
	return 0;
}

static int
setup_shared(void)
{
	pthread_mutexattr_t a;

	q = mmap(NULL, sizeof *q, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED)
		return -1;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&q->lock, &a);
	return 0;
}

int
main(int argc, char **argv)
{
	struct shmet_options so;
	struct shmet_segment seg;
	struct sigaction sa;
	uint64_t started, next_churn, next_status;
	unsigned seed = (unsigned)getpid();
	int held = 0, killed = 0;

	parse_args(argc, argv);
	if (check_status_path() < 0)
		return CLI_EXIT_FAILURE;
	/* Create the segment up front, holding no writer slot ourselves. */
	memset(&so, 0, sizeof so);
	so.flags = SHMET_OPEN_NO_WRITER;
	if (shmet_open(&seg, &so) < 0) {
		fprintf(stderr, "shmetrics-fleet: %s\n",
			shmet_last_error(&seg));
		return 1;
	}
	if (setup_shared() < 0 || (sink_fd = open_sink(&q->sink_port)) < 0) {
		fprintf(stderr, "shmetrics-fleet: cannot set up: %s\n",
			strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	say("segment %s, %d engines, %d workers, sink 127.0.0.1:%u, speed %gx",
	    seg.name, opt.engines, opt.workers, q->sink_port, opt.speed);
	start_all();
	started = shmet_now_ns();
	next_churn = started + (uint64_t)(opt.churn_s * 1e9);
	next_status = started;
	while (!stopping) {
		uint64_t now;

		real_sleep(0.05);
		reap_and_restart();
		now = shmet_now_ns();
		if (opt.duration_s > 0 &&
		    now - started >= (uint64_t)(opt.duration_s * 1e9))
			break;
		if (hold_requested) {
			hold_requested = 0;
			/* held only once every child answered: a status
			 * that says held is one instant of the fleet */
			held = 1;
			if (hold_fleet() < 0)
				say("hold: not every child answered");
			else
				write_status(started, 1, 0);
		}
		if (resume_requested) {
			resume_requested = 0;
			resume_fleet();
			held = 0;
		}
		if (!killed && opt.kill_workers_s > 0 &&
		    now - started >= (uint64_t)(opt.kill_workers_s * 1e9)) {
			kill_workers();
			killed = 1;
		}
		if (!held && opt.churn_s > 0 && now >= next_churn &&
		    opt.engines + opt.workers > 0) {
			unsigned kids = (unsigned)(opt.engines + opt.workers);
			/* after the sink and the queue owner */
			int i = 2 + (int)(rand_r(&seed) % kids);

			if (children[i].pid > 0 && !children[i].no_restart) {
				say("churn: SIGKILL %s %d (pid %d)",
				    children[i].role == ROLE_ENGINE ? "engine"
								     : "worker",
				    children[i].n, (int)children[i].pid);
				kill(children[i].pid, SIGKILL);
			}
			next_churn += (uint64_t)(opt.churn_s * 1e9);
		}
		if (!held && now >= next_status) {
			write_status(started, 0, 0);
			next_status = now + 1000000000ull;
		}
	}
	stopping = 1;
	stop_all();
	write_status(started, 0, 1);
	say("stopped");
	shmet_close(&seg);
	return 0;
}
