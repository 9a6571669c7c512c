/*
 * A SIGBUS guard around reads of a segment mapping.
 *
 * A reader maps the segment read-only, and the file can change under the
 * mapping: another process may ftruncate() it smaller between our size
 * check and our reads, and a read past the new end raises SIGBUS.  The
 * guarded API calls (index build, value collection, info) check the size
 * first and run their reads inside a guard: a SIGBUS whose address lies
 * in the guarded mapping jumps back to the call, which returns -ESTALE.
 * Any other SIGBUS goes to the handler that was installed before ours,
 * or takes the default action, as if we were not there.
 *
 * Holes are the other way a mapping read goes wrong (on tmpfs a read of a
 * never-reserved page allocates it, or raises SIGBUS when tmpfs is full):
 * values.c reads only pages that hold data (SEEK_DATA), so that never
 * happens; the guard is the backstop.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "reader-private.h"

static _Thread_local struct shmet_priv_guard *current;
static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct shmet_priv_guard *g = current;
	const unsigned char *addr = si->si_addr;

	if (g && addr >= g->lo && addr < g->hi) {
		current = g->prev;
		siglongjmp(g->jb, 1);
	}
	/* Not a read of ours: behave as if we were not installed. */
	if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
		previous.sa_sigaction(sig, si, uc);
	} else if (previous.sa_handler != SIG_DFL &&
		   previous.sa_handler != SIG_IGN) {
		previous.sa_handler(sig);
	} else {
		/* Returning re-runs the faulting access under the default
		 * action: the process dies of SIGBUS, as it would have. */
		sigaction(SIGBUS, &previous, NULL);
	}
}

static void
install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	/* NODEFER: we leave the handler by siglongjmp without restoring a
	 * mask, so SIGBUS must not stay blocked. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &previous);
}

void
shmet_priv_guard_install(void)
{
	pthread_once(&installed, install);
}

void
shmet_priv_guard_enter(struct shmet_priv_guard *g,
		       const struct shmet_reader *r)
{
	g->lo = r->base;
	g->hi = r->base + r->size;
	g->prev = current;
	current = g;
}

void
shmet_priv_guard_leave(struct shmet_priv_guard *g)
{
	if (current == g)
		current = g->prev;
}
