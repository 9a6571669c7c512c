/*
 * One page of one format: the render entry every consumer serves through
 * (the exporter, the Python extension's render(), shmetrics-ctl dump).
 * The formats' names, their content types and the document that says a
 * segment is unhealthy are decided here and nowhere else, so that the
 * exporter and the Flask blueprint answer alike.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "reader-private.h"

static const struct {
	const char *name;
	const char *content_type;
} formats[SHMET_FORMAT_COUNT] = {
	[SHMET_FORMAT_TEXT] = { "text",
				"text/plain; version=0.0.4; charset=utf-8" },
	[SHMET_FORMAT_OPENMETRICS] = { "openmetrics",
				       "application/openmetrics-text; "
				       "version=1.0.0; charset=utf-8" },
	[SHMET_FORMAT_JSON] = { "json", "application/json" },
	[SHMET_FORMAT_HEALTH] = { "health", "application/json" },
};

SHMET_EXPORT int
shmet_format_parse(const char *name)
{
	for (int f = 0; f < SHMET_FORMAT_COUNT; f++)
		if (name && strcmp(formats[f].name, name) == 0)
			return f;
	return -EINVAL;
}

SHMET_EXPORT const char *
shmet_format_name(enum shmet_format f)
{
	return (unsigned)f < SHMET_FORMAT_COUNT ? formats[f].name : "unknown";
}

SHMET_EXPORT const char *
shmet_format_content_type(enum shmet_format f)
{
	return (unsigned)f < SHMET_FORMAT_COUNT ? formats[f].content_type
						: "application/octet-stream";
}

SHMET_EXPORT int
shmet_render_unhealthy(const char *reason, struct shmet_buf *b)
{
	shmet_buf_printf(b, "{\n  \"status\": \"unhealthy\",\n  "
			    "\"registry\": \"application\",\n  "
			    "\"reason\": \"");
	shmet_buf_put_json_escaped(b, reason ? reason : "");
	shmet_buf_printf(b, "\"\n}\n");
	return b->failed ? -ENOMEM : 0;
}

static uint64_t
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) +
	       (uint64_t)ts.tv_nsec;
}

SHMET_EXPORT int
shmet_render_page(const struct shmet_view *view, enum shmet_format f,
		  const struct shmet_extra_family *fams, size_t nfams,
		  struct shmet_values *vals, struct shmet_buf *b)
{
	const struct shmet_reader *r = view ? shmet_view_reader(view) : NULL;
	const struct shmet_index *idx = view ? shmet_view_index(view) : NULL;
	struct shmet_reader_info in;
	int rc;

	if ((unsigned)f >= SHMET_FORMAT_COUNT)
		return -EINVAL;
	if (!view && f != SHMET_FORMAT_TEXT && f != SHMET_FORMAT_OPENMETRICS)
		return -ENOENT;
	if (f == SHMET_FORMAT_HEALTH) {
		rc = shmet_reader_info(r, &in);
		if (rc == 0)
			rc = shmet_render_health(idx, &in, b);
		goto out;
	}
	if (view) {
		rc = shmet_values_collect(r, idx, vals);
		if (rc < 0)
			return rc;
	}
	if (f == SHMET_FORMAT_TEXT)
		rc = shmet_render_families_text(idx, view ? vals : NULL, fams,
						nfams, b);
	else if (f == SHMET_FORMAT_OPENMETRICS)
		rc = shmet_render_families_openmetrics(idx, view ? vals : NULL,
						       fams, nfams, b);
	else
		rc = shmet_render_json(idx, vals, realtime_ns(), b);
out:
	if (rc == -1 || b->failed)
		rc = -ENOMEM;
	return rc;
}
