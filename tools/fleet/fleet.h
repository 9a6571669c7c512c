/*
 * shmetrics-fleet, the demo fleet (see main.c): what its files share.
 */
#ifndef SHMETRICS_FLEET_H
#define SHMETRICS_FLEET_H

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics.h>
#include <shmetrics-collectors.h>
#include <shmetrics/layout.h>

#include "tools/cli.h"

#define QUEUE_CAP 4096
#define MAX_ENGINES 32
#define MAX_WORKERS 64
#define MAX_CHILDREN (2 + MAX_ENGINES + MAX_WORKERS)
#define CAMPAIGNS 4                     /* per engine */
#define USERS 3
#define MAX_CALLS 256                   /* per engine */

struct fleet_opts {
	int engines, workers;
	double speed;
	double churn_s;                 /* 0: never */
	double duration_s;              /* 0: until signalled */
	int max_retries;
	int max_calls;                  /* concurrent calls per engine */
	/* sink outcome rates, percent */
	int rate_4xx, rate_5xx, rate_slow, rate_drop;
	int rate_retry_fail;            /* a retry fails again, percent */
	double slow_s;                  /* fleet seconds of a slow response */
	/* engine fault rates, percent */
	int rate_call_fail, rate_slow_setup;
	double kill_workers_s;          /* 0: never */
	const char *status_path;
	int quiet;
};

/* One webhook event in the shared queue. */
/* A W3C trace id: 32 lower-case hex digits. */
#define TRACE_ID_LEN 32

struct event {
	int state;                      /* 0 free, 1 pending, 2 in flight */
	int attempts;
	uint64_t enqueued_ns;           /* shmet_now_ns() */
	uint64_t due_ns;
	uint64_t taken_ns;              /* for reclaiming a dead worker's */
	char event_type[24];
	char partner_id[24];
	char trace_id[TRACE_ID_LEN + 1]; /* the call's, as an exemplar */
};

/* What an engine knows; written by the engine at the end of each cycle,
 * equal to the gauges it has just set. */
struct engine_state {
	pid_t pid;
	int ack;                        /* held, gauges published */
	int valid;
	char campaign[CAMPAIGNS][24];
	char user[CAMPAIGNS][24];
	int pending[CAMPAIGNS];
	int completed[CAMPAIGNS], succeeded[CAMPAIGNS];
	int active_by_user[USERS];
	int concurrent;
};

struct worker_state {
	pid_t pid;
	int ack;
	double uptime_s;                /* the value last set */
};

/* Counts of what happened, fleet-wide (under the queue lock). */
struct counts {
	long calls_initiated, calls_failed, calls_completed;
	long events_enqueued, events_dropped;
	long deliveries, delivered, failed_attempts, retries;
	long dead_letters;              /* after failures */
};

/* Everything shared lives in one MAP_SHARED mapping; a robust mutex
 * guards the queue and the counts, so that a worker killed while holding
 * it does not wedge the fleet. */
struct shared {
	pthread_mutex_t lock;
	uint16_t sink_port;
	int hold;                       /* 0 run, 1 engines stop, 2 all */
	uint64_t hold_ns;               /* the instant gauges describe */
	int dropped_unreported[USERS];  /* drops not yet dead-lettered */
	struct counts n;
	struct engine_state engine[MAX_ENGINES];
	struct worker_state worker[MAX_WORKERS];
	struct worker_state queue_owner;        /* uptime_s unused */
	struct event ev[QUEUE_CAP];
};

enum role { ROLE_SINK, ROLE_QUEUE, ROLE_ENGINE, ROLE_WORKER };

struct child {
	pid_t pid;                      /* 0: gone */
	enum role role;
	int n;
	int no_restart;                 /* killed by a fault flag */
};

/* common.c */
extern struct fleet_opts opt;
extern struct shared *q;
extern const char *const users[USERS];
extern volatile sig_atomic_t stopping, hold_requested, resume_requested;
double fleet_s(uint64_t from_ns, uint64_t to_ns);
uint64_t fleet_after(double fleet_seconds);
void real_sleep(double s);
void fleet_sleep(double fleet_seconds);
double uniform(unsigned *seed, double lo, double hi);
int percent(unsigned *seed, int p);
void say(const char *fmt, ...);
void queue_lock(void);
void queue_unlock(void);
void enqueue(const char *event_type, int user, const char *trace_id);
/* A new trace id for a call (unique in the fleet: pid, clock, count). */
void new_trace_id(char out[TRACE_ID_LEN + 1]);
void queue_stats(uint64_t now_ns, double *size, double *oldest_age);
int take_due(struct event *out);
void finish(int i, int done, double retry_in_fleet_s);
void count(long *counter);

/* engine.c */
int spread_failure(int p);
void campaign_engine(int n);

/* worker.c */
void webhook_worker(int n);
void queue_owner(void);

/* sink.c */
void sink(int listener);
int open_sink(uint16_t *port);

/* supervisor.c */
extern struct child children[MAX_CHILDREN];
extern int sink_fd;
void on_signal(int sig);
void start_all(void);
void reap_and_restart(void);
void stop_all(void);
int hold_fleet(void);
void resume_fleet(void);
void write_status(uint64_t started_ns, int held, int final);
void kill_workers(void);

#endif /* SHMETRICS_FLEET_H */
