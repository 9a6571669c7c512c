/*
 * The segment as the exporter sees it: a view (mapping + index) behind an
 * RCU pointer.  One refresher thread opens the segment (it may not exist
 * yet), rebuilds the index when the generation moves, notices when the
 * segment is destroyed or replaced by a new object of the same name, and
 * frees old views after a grace period.  HTTP threads only take
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
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics/layout.h>
#include <shmetrics/name.h>
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

static struct view *current_view;
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

struct view *
source_view(void)
{
	struct view *v = rcu_dereference(current_view);

	if (v)
		TSAN_ACQUIRE(v);        /* pairs with the release in publish */
	return v;
}

static void
mapping_put(struct mapping *m)
{
	if (m && --m->refs == 0) {
		shmet_reader_close(m->reader);
		free(m);
	}
}

static void
view_free(struct view *v)
{
	if (!v)
		return;
	shmet_index_free(v->index);
	mapping_put(v->map);
	free(v);
}

/* Publish v (may be NULL) and free the previous view after a grace
 * period: no reader can still hold it then. */
static void
publish(struct view *v)
{
	struct view *old;

	if (v)
		TSAN_RELEASE(v);
	old = rcu_xchg_pointer(&current_view, v);
	if (old) {
		urcu_memb_synchronize_rcu();
		TSAN_ACQUIRE(&grace_token);
		view_free(old);
	}
}

/* --segment-owner: the uid the segment must belong to; -1: any. */
static long segment_owner = -1;

/* Identity (and size) of the object now behind the name; -errno if none. */
static int
segment_identity(dev_t *dev, ino_t *ino, off_t *size)
{
	struct stat st;
	int fd = shmet_name_open(segment_name, O_RDONLY, 0);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	*dev = st.st_dev;
	*ino = st.st_ino;
	*size = st.st_size;
	return 0;
}

/*
 * Is the object behind the name a segment whose creator has not finished
 * (too short for a header yet, magic still 0, or init_state not ready)?
 * Such a segment is waited for quietly rather than reported as foreign.
 */
static int
segment_being_created(void)
{
	struct shmet_seg_header hdr;
	uint32_t init_state;
	int fd = shmet_name_open(segment_name, O_RDONLY, 0);
	ssize_t n;

	if (fd < 0)
		return 0;
	memset(&hdr, 0, sizeof hdr);
	n = pread(fd, &hdr, offsetof(struct shmet_seg_header, padding0), 0);
	close(fd);
	if (n < (ssize_t)offsetof(struct shmet_seg_header, padding0))
		return 1;
	/* A plain read of the atomic's bytes: this is a one-off peek at
	 * another process's memory through read(2), not a synchronising
	 * load; shmet_reader_open() does the acquire load that counts. */
	memcpy(&init_state, (const char *)&hdr +
			    offsetof(struct shmet_seg_header, init_state),
	       sizeof init_state);
	return hdr.magic == 0 ||
	       (hdr.magic == SHMET_MAGIC && init_state != SHMET_INIT_READY);
}

static struct mapping *
open_mapping(void)
{
	char err[SHMET_READER_ERRLEN];
	struct mapping *m = calloc(1, sizeof *m);
	struct stat st;
	int rc;

	if (!m)
		return NULL;
	rc = segment_identity(&m->dev, &m->ino, &m->size);
	if (rc < 0) {
		if (rc == -ENOENT)
			set_status("waiting for segment %s%s", "");
		else
			set_status("waiting for segment %s: %s", strerror(-rc));
		free(m);
		return NULL;
	}
	if (shmet_reader_open(segment_name, &m->reader, err, sizeof err) < 0) {
		if (segment_being_created())
			set_status("waiting for segment %s%s",
				   " (being created)");
		else
			set_status("segment %s is not usable: %s", err);
		free(m);
		return NULL;
	}
	/*
	 * Identity and owner of the file the reader mapped, not of a second
	 * look at the name: the name can be swapped in between (a rename in
	 * a shared directory), and the checked file must be the served one.
	 * /dev/shm is world-writable: without --segment-owner, anyone can
	 * create the name before the application does.
	 */
	rc = shmet_reader_stat(m->reader, &st);
	if (rc == 0 && segment_owner >= 0 && st.st_uid != (uid_t)segment_owner)
		rc = -EPERM;
	if (rc < 0) {
		char why[80];

		snprintf(why, sizeof why, " belongs to uid %u, not the "
			 "--segment-owner %ld", (unsigned)st.st_uid,
			 segment_owner);
		if (rc == -EPERM)
			set_status("segment %s%s", why);
		else
			set_status("segment %s: %s", strerror(-rc));
		shmet_reader_close(m->reader);
		free(m);
		return NULL;
	}
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->size = st.st_size;
	return m;
}

static struct view *
build_view(struct mapping *m)
{
	char err[SHMET_READER_ERRLEN];
	struct view *v = calloc(1, sizeof *v);

	if (!v)
		return NULL;
	if (shmet_index_build(m->reader, &v->index, err, sizeof err) < 0) {
		set_status("segment %s: %s", err);
		free(v);
		return NULL;
	}
	v->map = m;
	v->generation = shmet_index_generation(v->index);
	m->refs++;
	return v;
}

/* One refresher step; *since_identity counts ms since the last check. */
static void
refresh(int *since_identity)
{
	struct view *cur = current_view;        /* only we write it */
	struct mapping *m;
	struct view *v;
	dev_t dev;
	ino_t ino;
	off_t size;

	if (cur && (*since_identity += REFRESH_MS) >= IDENTITY_CHECK_MS) {
		*since_identity = 0;
		/* A size change is a replacement too: a file cut short
		 * under the mapping is reopened (and refused if broken). */
		if (segment_identity(&dev, &ino, &size) < 0 ||
		    dev != cur->map->dev || ino != cur->map->ino ||
		    size != cur->map->size) {
			set_status("segment %s was destroyed, replaced or "
				   "resized%s", "");
			publish(NULL);
			cur = NULL;
		}
	}
	if (!cur) {
		m = open_mapping();
		if (!m)
			return;
		v = build_view(m);
		if (!v) {
			mapping_put(m);
			return;
		}
		set_status("serving segment %s%s", "");
		publish(v);
		return;
	}
	if (shmet_index_current(cur->index, cur->map->reader))
		return;
	v = build_view(cur->map);
	if (v)
		publish(v);
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
	int since_identity = 0;

	segment_name = segment;
	segment_owner = owner;
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
}
