/*
 * The rules of label bytes, part of the segment's rule book (format.h,
 * which includes this where they belong): the label-blob codec both sides
 * read and write, and how a label value's invalid UTF-8 is repaired.
 */
#ifndef SHMETRICS_LABELS_H
#define SHMETRICS_LABELS_H

#include "format.h"

/* ---------------------------------------------------------------- */
/* Label blobs: n entries of {uint16 little-endian length, bytes}.  */

static inline uint32_t
shmet_seg_blob_size(uint32_t n, const size_t *lens)
{
	uint32_t size = 0;

	for (uint32_t i = 0; i < n; i++)
		size += 2 + (uint32_t)lens[i];
	return size;
}

static inline void
shmet_seg_blob_write(unsigned char *dst, uint32_t n, const char *const *strs,
		     const size_t *lens)
{
	for (uint32_t i = 0; i < n; i++) {
		dst[0] = (unsigned char)(lens[i] & 0xff);
		dst[1] = (unsigned char)(lens[i] >> 8);
		memcpy(dst + 2, strs[i], lens[i]);
		dst += 2 + lens[i];
	}
}

/*
 * Take the next entry of a blob in [*p, end): its bytes and length, and
 * advance *p.  0 if the entry is cut short or longer than
 * SHMET_MAX_LABEL_VALUE_LEN: a reader must stop there.
 */
static inline int
shmet_seg_blob_next(const unsigned char **p, const unsigned char *end,
		    const unsigned char **s, uint32_t *len)
{
	uint32_t n;

	if (end - *p < 2)
		return 0;
	n = (uint32_t)(*p)[0] | ((uint32_t)(*p)[1] << 8);
	if (n > SHMET_MAX_LABEL_VALUE_LEN || (size_t)(end - *p - 2) < n)
		return 0;
	*s = *p + 2;
	*len = n;
	*p += 2 + n;
	return 1;
}

/* ---------------------------------------------------------------- */
/* Label values as UTF-8                                            */
/*
 * Every exposition format is UTF-8, so a label value's invalid bytes are
 * shown as U+FFFD, each byte of an invalid sequence its own.  Writers
 * store values repaired so (two values that differ only in invalid bytes
 * are one series, as they look the same on a page), and readers repair
 * what they copy with the same rule (a segment from an older or hostile
 * writer), so no page ever shows one series twice.
 */

#define SHMET_UTF8_REPLACEMENT "\xef\xbf\xbd"     /* U+FFFD, 3 bytes */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if none:
 * overlong forms, surrogates and code points past U+10FFFF are invalid. */
static inline size_t
shmet_seg_utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* The length of s[0..n) repaired: n if it is valid UTF-8. */
static inline size_t
shmet_seg_utf8_repaired_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, out;

	/* ASCII, 8 bytes at a time: label values nearly always are */
	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		if (w & UINT64_C(0x8080808080808080))
			break;
	}
	while (i < n && p[i] < 0x80)
		i++;
	out = i;
	while (i < n) {
		size_t len = shmet_seg_utf8_len(p + i, n - i);

		out += len ? len : 3;
		i += len ? len : 1;
	}
	return out;
}

/* s[0..n) repaired into out (shmet_seg_utf8_repaired_len bytes). */
static inline void
shmet_seg_utf8_repair(const char *s, size_t n, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t len = shmet_seg_utf8_len(p + i, n - i);

		if (len) {
			memcpy(out, p + i, len);
			out += len;
			i += len;
		} else {
			memcpy(out, SHMET_UTF8_REPLACEMENT, 3);
			out += 3;
			i++;
		}
	}
}

#endif /* SHMETRICS_LABELS_H */
