/*
 * libFuzzer target: arbitrary bytes as a segment, through validation,
 * index build, aggregation and every renderer.  Finding nothing means no
 * crash, no sanitizer report, no hang.
 *
 * Inputs that start with the segment magic are the segment as given
 * (header validation is the target).  Others get a repaired header
 * (magic, version, geometry from small capacities taken from the input)
 * so that the fuzzer reaches record validation and rendering.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics/format.h>

#include "shmetrics-reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
render_all(const struct shmet_reader *r)
{
	struct shmet_index *idx;
	struct shmet_values *v = shmet_values_new();
	struct shmet_reader_info info;
	struct shmet_writer_info w[4];
	struct shmet_buf b = { 0 };
	char err[SHMET_READER_ERRLEN];
	shmet_reader_info(r, &info);
	shmet_reader_writers(r, w, 4);
	if (shmet_index_build(r, &idx, err, sizeof err) < 0) {
		shmet_values_free(v);
		return;
	}
	if (shmet_values_collect(r, idx, v) == 0) {
		shmet_render_text(idx, v, &b);
		shmet_buf_reset(&b);
		shmet_render_openmetrics(idx, v, &b);
		shmet_buf_reset(&b);
		shmet_render_json(idx, v, 0, &b);
		shmet_buf_reset(&b);
		shmet_render_health(idx, &info, &b);
	}
	shmet_buf_free(&b);
	shmet_values_free(v);
	shmet_index_free(idx);
}

static uint32_t
small(const uint8_t *p, uint32_t lo, uint32_t hi)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return lo + v % (hi - lo + 1);
}

/* Build a segment with a valid header around the input's bytes. */
static unsigned char *
repaired(const uint8_t *data, size_t size, size_t *out_size)
{
	struct shmet_seg_header g, *h;
	unsigned char *seg;

	if (size < 24)
		return NULL;
	memset(&g, 0, sizeof g);
	if (shmet_seg_geometry(&g, small(data + 1, 1, 8),
				small(data + 5, 1, 32), small(data + 9, 1, 3),
				small(data + 13, 16, 512),
				small(data + 17, 4096, 8192), 2) < 0)
		return NULL;
	seg = calloc(1, g.total_size);
	if (!seg)
		return NULL;
	memcpy(seg + SHMET_HEADER_SIZE, data + 21,
	       size - 21 < g.total_size - SHMET_HEADER_SIZE
		       ? size - 21
		       : g.total_size - SHMET_HEADER_SIZE);
	h = (struct shmet_seg_header *)seg;
	memcpy((void *)h, &g, offsetof(struct shmet_seg_header, init_state));
	memcpy(&h->max_families, &g.max_families,
	       offsetof(struct shmet_seg_header, families_used) -
		       offsetof(struct shmet_seg_header, max_families));
	/* line 8 (layout 6): the exemplar regions */
	h->exemplar_map_off = g.exemplar_map_off;
	h->exemplars_off = g.exemplars_off;
	h->magic = SHMET_MAGIC;
	h->layout_version = SHMET_LAYOUT_VERSION;
	h->header_size = SHMET_HEADER_SIZE;
	h->max_series_per_family = 100;
	atomic_store(&h->init_state, SHMET_INIT_READY);
	/* The cursors and failure counters stay as the input says. */
	memcpy(&h->families_used, data + 1, 16);
	*out_size = g.total_size;
	return seg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shmet_reader *r;
	unsigned char *seg;
	size_t seg_size = size;
	char err[SHMET_READER_ERRLEN];
	uint64_t magic = 0;

	if (size == 0)
		return 0;

	if (size >= 8)
		memcpy(&magic, data, 8);
	if (magic != SHMET_MAGIC) {
		seg = repaired(data, size, &seg_size);
	} else {
		/* aligned copy: the reader does 8-byte atomic loads */
		seg = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
		if (seg)
			memcpy(seg, data, size);
	}
	if (!seg)
		return 0;
	if (shmet_reader_open_memory(seg, seg_size, &r, err, sizeof err) == 0) {
		render_all(r);
		shmet_reader_close(r);
	}
	free(seg);
	return 0;
}
