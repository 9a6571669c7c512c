/*
 * The segment as the exporter sees it: a view (mapping + index, from the
 * follower of lib/follow.c) behind an RCU pointer.  One refresher thread
 * refreshes the follower (which opens the segment, rebuilds the index
 * when the generation moves, and notices a destroyed, replaced or resized
 * segment), publishes each new view and drops old ones after a grace
 * period.  HTTP threads only take
 * urcu_memb_read_lock(): they never block the refresher, nor it them.
 *
 * Ordering: rcu_xchg_pointer publishes a fully built view (it implies the
 * barrier that orders the view's initialisation before the pointer);
 * rcu_dereference in readers pairs with it.  synchronize_rcu orders every
 * reader's accesses to the old view before its free.
 *
 * ThreadSanitizer cannot see liburcu's barriers (inline assembly and
 * membarrier), so the happens-before edges that liburcu guarantees are
 * stated to it explicitly (TSAN_RELEASE/TSAN_ACQUIRE, no-ops otherwise).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <urcu/urcu-memb.h>
#include <urcu/pointer.h>

#include "exporter.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define TSAN_RELEASE(p) __tsan_release(p)
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define TSAN_RELEASE(p) ((void)(p))
#define TSAN_ACQUIRE(p) ((void)(p))
#endif

/* What readers release when they leave a read-side critical section and
 * the refresher acquires after a grace period (TSan annotation only). */
static int grace_token;

#define REFRESH_MS 100
#define IDENTITY_CHECK_MS 1000

static struct shmet_view *current_view;
static pthread_t refresher;
static atomic_int refresher_stop;
static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static char status_text[320] = "waiting for segment";
static int status_announced;            /* under status_lock */
static const char *segment_name;

/* Changes are logged once source_announce() has been called: a start
 * that fails to bind its port never says "serving segment". */
static void
set_status(const char *fmt, const char *detail)
{
	char text[sizeof status_text];

	snprintf(text, sizeof text, fmt, segment_name, detail);
	pthread_mutex_lock(&status_lock);
	if (strcmp(text, status_text) != 0) {
		memcpy(status_text, text, sizeof text);
		if (status_announced)
			exporter_log("%s", text);
	}
	pthread_mutex_unlock(&status_lock);
}

void
source_announce(void)
{
	pthread_mutex_lock(&status_lock);
	status_announced = 1;
	exporter_log("%s", status_text);
	pthread_mutex_unlock(&status_lock);
}

void
source_status(char *out, size_t len)
{
	pthread_mutex_lock(&status_lock);
	snprintf(out, len, "%s", status_text);
	pthread_mutex_unlock(&status_lock);
}

void
source_thread_register(void)
{
	urcu_memb_register_thread();
}

void
source_thread_unregister(void)
{
	urcu_memb_unregister_thread();
}

void
source_read_lock(void)
{
	urcu_memb_read_lock();
}

void
source_read_unlock(void)
{
	TSAN_RELEASE(&grace_token);
	urcu_memb_read_unlock();
}

struct shmet_view *
source_view(void)
{
	struct shmet_view *v = rcu_dereference(current_view);

	if (v)
		TSAN_ACQUIRE(v);        /* pairs with the release in publish */
	return v;
}

/* The view readers see holds one reference of its own, dropped after a
 * grace period: no reader can still hold it then. */
static void
publish(struct shmet_view *v)
{
	struct shmet_view *old;

	if (v)
		TSAN_RELEASE(v);
	old = rcu_xchg_pointer(&current_view, v);
	if (old) {
		urcu_memb_synchronize_rcu();
		TSAN_ACQUIRE(&grace_token);
		shmet_view_unref(old);
	}
}

/* The segment followed (lib/follow.c); only the refresher uses it. */
static struct shmet_follow *follower;

/* What the exporter says of a follower's failure, as it logs it. */
static void
report(int rc, const char *err)
{
	switch (rc) {
	case -ENOENT:
		set_status("waiting for segment %s%s", "");
		break;
	case -EAGAIN:
		set_status("waiting for segment %s%s", " (being created)");
		break;
	case -EPERM:            /* err names the segment and the uids */
		set_status("segment %.0s%s (--segment-owner)", err);
		break;
	default:
		set_status("segment %s is not usable: %s", err);
		break;
	}
}

/* One refresher step; *since_identity counts ms since the last check of
 * the object behind the name. */
static void
refresh(int *since_identity)
{
	char err[SHMET_READER_ERRLEN];
	unsigned flags = 0;
	int rc;

	if ((*since_identity += REFRESH_MS) >= IDENTITY_CHECK_MS) {
		*since_identity = 0;
		flags |= SHMET_FOLLOW_CHECK_NAME;
	}
	rc = shmet_follow_refresh(follower, flags, err, sizeof err);
	if (rc < 0) {
		report(rc, err);
		/* Only a view the follower let go of is unpublished: after a
		 * failed rebuild the earlier one is still good. */
		if (!shmet_follow_view(follower))
			publish(NULL);
		return;
	}
	if (rc == SHMET_FOLLOW_SAME && current_view)    /* only we write it */
		return;
	set_status("serving segment %s%s", "");
	publish(shmet_view_ref(shmet_follow_view(follower)));
}

static void *
refresher_main(void *arg)
{
	int since_identity = 0;

	(void)arg;
	urcu_memb_register_thread();
	/* Relaxed: a flag polled every 100 ms; pthread_join orders the rest. */
	while (!atomic_load_explicit(&refresher_stop, memory_order_relaxed)) {
		struct timespec ts = { 0, REFRESH_MS * 1000000L };

		refresh(&since_identity);
		nanosleep(&ts, NULL);
	}
	publish(NULL);
	urcu_memb_unregister_thread();
	return NULL;
}

int
source_start(const char *segment, long owner)
{
	int since_identity = IDENTITY_CHECK_MS;
	int rc;

	segment_name = segment;
	rc = shmet_follow_new(segment, owner, &follower);
	if (rc < 0)
		return rc;
	/* The first look in the caller's thread: a segment that exists is
	 * served from the first request on.  pthread_create orders it
	 * before everything the refresher does. */
	refresh(&since_identity);
	return -pthread_create(&refresher, NULL, refresher_main, NULL);
}

void
source_stop(void)
{
	atomic_store_explicit(&refresher_stop, 1, memory_order_relaxed);
	pthread_join(refresher, NULL);
	shmet_follow_free(follower);
	follower = NULL;
}
