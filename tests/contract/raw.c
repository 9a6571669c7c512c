/* The raw segment reads of the contract tests: see raw.h. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics/layout.h>

#include "raw.h"

struct raw_map {
	const unsigned char *p;
	size_t size;
};

static struct raw_map
raw_map(const char *segname)
{
	char path[256];
	struct stat st;
	struct raw_map m;
	int fd;

	snprintf(path, sizeof path, "/dev/shm%s", segname);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	m.size = (size_t)st.st_size;
	m.p = mmap(NULL, m.size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m.p == MAP_FAILED) {
		fprintf(stderr, "cannot map %s\n", path);
		exit(1);
	}
	return m;
}

struct raw_family
raw_family(const char *segname, const char *family)
{
	struct raw_map m = raw_map(segname);
	const struct shmet_seg_header *h = (const void *)m.p;
	const struct shmet_seg_family *fams =
		(const void *)(m.p + h->families_off);
	struct raw_family out = { 0, 0, 0, 0 };
	uint32_t used = atomic_load(&h->families_used);

	for (uint32_t i = 0; i < used && i < h->max_families; i++) {
		const struct shmet_seg_family *f = &fams[i];
		const char *name = (const char *)m.p + h->strings_off +
				   f->name.off;
		uint32_t n = atomic_load(&f->series_count);

		if (f->name.len != strlen(family) ||
		    memcmp(name, family, f->name.len) || n < out.series_count)
			continue;
		out.series_count = n;
		out.pending = atomic_load(&f->gate_series) != 0;
		out.removing = (atomic_load(&f->gate_series) &
				SHMET_GATE_REMOVING) != 0;
		out.gate_count = atomic_load(&f->gate_count);
	}
	munmap((void *)m.p, m.size);
	return out;
}

uint32_t
raw_series_in(const char *segname, uint32_t state)
{
	struct raw_map m = raw_map(segname);
	const struct shmet_seg_header *h = (const void *)m.p;
	const struct shmet_seg_series *t = (const void *)(m.p + h->series_off);
	uint32_t used = atomic_load(&h->series_used), n = 0;

	for (uint32_t i = 0; i < used && i < h->max_series; i++)
		n += (atomic_load(&t[i].state) & 0xff) == state;
	munmap((void *)m.p, m.size);
	return n;
}

struct raw_families
raw_families(const char *segname, const char *name)
{
	struct raw_map m = raw_map(segname);
	const struct shmet_seg_header *h = (const void *)m.p;
	const struct shmet_seg_family *fams =
		(const void *)(m.p + h->families_off);
	const _Atomic uint32_t *index =
		(const void *)(m.p + h->family_index_off);
	struct raw_families out;

	memset(&out, 0, sizeof out);
	out.used = atomic_load(&h->families_used);
	out.strings_used = atomic_load(&h->strings_used);
	for (uint32_t i = 0; i < out.used && i < h->max_families; i++) {
		uint32_t st = atomic_load(&fams[i].state);
		uint32_t inc = atomic_load(&fams[i].incarnation);

		out.freed += st == SHMET_FAMILY_FREE;
		out.reclaiming += st == SHMET_FAMILY_RECLAIMING;
		out.claimed += st == SHMET_FAMILY_CLAIMED;
		out.torn += st != SHMET_FAMILY_FREE && (inc & 1);
		out.reclaims += (inc + 1) / 2;
		out.family_strings += fams[i].strings_cap;
	}
	for (uint32_t i = 0; i < h->family_index_slots; i++) {
		uint32_t v = atomic_load(&index[i]);
		const struct shmet_seg_family *f;

		if (v == SHMET_INDEX_TOMB) {
			out.tombs++;
			continue;
		}
		if (v == 0 || v - 1 >= h->max_families)
			continue;
		out.indexed++;
		f = &fams[v - 1];
		if (name && f->name.len == strlen(name) &&
		    !memcmp(m.p + h->strings_off + f->name.off, name,
			    f->name.len))
			out.named++;
	}
	munmap((void *)m.p, m.size);
	return out;
}

uint64_t
raw_failures(const char *segname, uint32_t reason)
{
	struct raw_map m = raw_map(segname);
	const struct shmet_seg_header *h = (const void *)m.p;
	uint64_t n = atomic_load(&h->failures[reason]);

	munmap((void *)m.p, m.size);
	return n;
}

int
wait_exit(int pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status)
				 : 128 + WTERMSIG(status);
}
