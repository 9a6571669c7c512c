/*
 * For the trust-boundary tests: a segment file that is all hole but its
 * header, at the format's largest capacities (about 10 GiB of metadata,
 * none of it written), as a hostile local user could leave at a name.
 * The header is what a writer would make (shmet_seg_geometry, the one
 * rule readers check it against), ready and empty.
 *
 *   sparse-segment PATH
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmetrics/format.h>

int
main(int argc, char **argv)
{
	struct shmet_seg_header h;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: sparse-segment PATH\n");
		return 2;
	}
	memset(&h, 0, sizeof h);
	if (shmet_seg_geometry(&h, 1u << 20, 1u << 26, 4, 16, 1u << 31,
			       SHMET_MAX_CPU_BLOCKS) < 0)
		return 1;
	h.magic = SHMET_MAGIC;
	h.layout_version = SHMET_LAYOUT_VERSION;
	h.header_size = SHMET_HEADER_SIZE;
	h.init_state = SHMET_INIT_READY;
	h.max_series_per_family = 10000;
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)h.total_size) < 0 ||
	    pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
		perror(argv[1]);
		return 1;
	}
	printf("%llu bytes, %llu of metadata\n",
	       (unsigned long long)h.total_size,
	       (unsigned long long)h.values_off);
	close(fd);
	return 0;
}
