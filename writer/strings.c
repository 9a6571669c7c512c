/*
 * shmetrics writer: names and label bytes in the segment's string pool:
 * measuring them, storing a blob of them and comparing a stored one with
 * a caller's.  Families, series and reuses all store through here.
 */
#include "writer-private.h"

SHMET_W int
shmet_impl_label_lens(uint32_t n, const char *const *strs, size_t *lens)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!strs[i])
			return -1;
		lens[i] = strlen(strs[i]);
		if (lens[i] > SHMET_MAX_LABEL_VALUE_LEN)
			return -1;
	}
	return 0;
}

SHMET_W int
shmet_impl_blob_equals(const struct shmet_segment *seg, struct shmet_seg_str s,
		       uint32_t n, const char *const *strs, const size_t *lens)
{
	const unsigned char *p = shmet_impl_str(seg, s), *end, *v;
	uint32_t len;

	if (!p || s.len != shmet_seg_blob_size(n, lens))
		return 0;
	end = p + s.len;
	for (uint32_t i = 0; i < n; i++)
		if (!shmet_seg_blob_next(&p, end, &v, &len) ||
		    len != lens[i] || memcmp(v, strs[i], len) != 0)
			return 0;
	return 1;
}

/*
 * Copy a blob into the pool; -1 if the pool is full.  Series blobs take
 * a multiple of 16 bytes (*cap), so that a record reused for another
 * series (reuse.c) mostly finds room for its values in place.
 */
SHMET_W int
shmet_impl_put_blob(struct shmet_segment *seg, uint32_t n,
		    const char *const *strs, const size_t *lens,
		    struct shmet_seg_str *out, uint32_t *cap)
{
	uint32_t size = shmet_seg_blob_size(n, lens), off = 0;

	*cap = (uint32_t)shmet_seg_align(size, 16);
	if (size > 0 && shmet_impl_alloc(&seg->hdr->strings_used,
					 seg->hdr->string_bytes, *cap, 1,
					 &off) < 0)
		return -1;
	shmet_seg_blob_write(shmet_impl_pool(seg) + off, n, strs, lens);
	out->off = off;
	out->len = size;
	return 0;
}

SHMET_W int
shmet_impl_str_equals(const struct shmet_segment *seg, struct shmet_seg_str s,
		      const void *b, size_t len)
{
	const unsigned char *p = shmet_impl_str(seg, s);

	return p && s.len == len && memcmp(p, b, len) == 0;
}
