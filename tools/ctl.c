/*
 * shmetrics-ctl: create, inspect, dump and destroy a shmetrics segment.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmetrics.h>

#include "escape.h"
#include "shmetrics-reader.h"
#include "tools/cli.h"

static const char usage[] =
	"usage: shmetrics-ctl [--segment NAME] COMMAND [options]\n"
	"\n"
	"Commands:\n"
	"  create    create the segment (options below; existing: attach)\n"
	"  info      header, capacities and fill levels\n"
	"  dump      the exposition: --format text|openmetrics|json|health\n"
	"  writers   each writer slot: pid, state, liveness\n"
	"  destroy   unlink the segment (mappings stay valid)\n"
	"  expire    expire the series idle for the segment's TTL now and\n"
	"            reclaim the family records nobody holds\n"
	"\n"
	"Options:\n"
	"  --segment NAME          segment (default $SHMETRICS_SEGMENT or "
	"/shmetrics)\n"
	"  --format FMT            dump format (default text)\n"
	"  --raw                   dump: the exposition's bytes as served,\n"
	"                          control characters included (default:\n"
	"                          escaped, e.g. \\x1b, safe on a terminal)\n"
	"  --max-families N        create: family capacity (default 1024)\n"
	"  --max-series N          create: series capacity (default 131072)\n"
	"  --max-writers N         create: writer slots (default 256)\n"
	"  --cells N               create: value cells per writer block "
	"(default 524288)\n"
	"  --string-bytes N        create: string pool bytes (default 8 MiB)\n"
	"  --max-series-per-family N  create: cardinality limit (default "
	"10000)\n"
	"  --cpu-blocks N          create: per-CPU value blocks (default: "
	"the host's\n"
	"                          possible CPUs, at most 1024)\n"
	"  --series-ttl SECONDS    create: a series no process wrote for\n"
	"                          this long expires (default 0: never)\n"
	"  --mode OCTAL            create: file mode (default 0600)\n"
	"  --group NAME|GID        create: the segment's group (with a group\n"
	"                          mode such as 0640: an unprivileged exporter\n"
	"                          of that group can read it)\n"
	"  -h, --help              this text\n"
	"  -V, --version           print the version\n"
	"\n"
	"Exit status: 0 done, 1 failed (segment, group), 2 wrong command "
	"line.\n";

struct ctl {
	const char *segment;
	const char *format;
	int raw;                        /* dump --raw */
	struct shmet_options create;
};

/* One line on stderr and the exit status (tools/cli.h): a failure of
 * the work, or a wrong command line. */
#define fail(...) cli_fail("shmetrics-ctl", __VA_ARGS__)
#define usage_error(...) cli_usage_error("shmetrics-ctl", __VA_ARGS__)

static int
parse_u32(const char *s, const char *what, uint32_t *out, int base)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *s == '\0' || *end != '\0' || v > UINT32_MAX || v == 0) {
		usage_error("invalid value '%s' for %s: not a positive number",
			    s, what);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int
parse_group(const char *s, struct shmet_options *o)
{
	struct group *g = getgrnam(s);
	char *end;
	unsigned long gid;

	if (g) {
		gid = g->gr_gid;
	} else {
		errno = 0;
		gid = strtoul(s, &end, 10);
		if (errno || *s == '\0' || *end != '\0' || gid > UINT32_MAX) {
			fail("--group: no group '%s'", s);
			return -1;
		}
	}
	o->group = (uint32_t)gid;
	o->flags |= SHMET_OPEN_SET_GROUP;
	return 0;
}

static int
cmd_create(struct ctl *c)
{
	struct shmet_segment seg;
	int rc;

	c->create.name = c->segment;
	c->create.flags |= SHMET_OPEN_NO_WRITER;
	rc = shmet_open(&seg, &c->create);
	if (rc < 0)
		return fail("create: %s", shmet_last_error(&seg));
	printf("segment %s: %llu bytes, %u series, %u writers, %u cpu blocks\n",
	       seg.name, (unsigned long long)seg.hdr->total_size, seg.hdr->max_series,
	       seg.hdr->max_writers, seg.hdr->cpu_blocks);
	shmet_close(&seg);
	return 0;
}

/* A sweep of idle series (writer/expire.c) and of family records nobody
 * holds (writer/reclaim.c), as a writer without a slot. */
static int
cmd_expire(struct ctl *c)
{
	struct shmet_options o = { .name = c->segment,
				   .flags = SHMET_OPEN_NO_CREATE |
					    SHMET_OPEN_NO_WRITER };
	struct shmet_segment seg;
	int rc = shmet_open(&seg, &o);

	if (rc < 0)
		return fail("expire: %s", shmet_last_error(&seg));
	rc = shmet_expire(&seg);
	if (rc < 0) {
		shmet_close(&seg);
		return fail("expire: %s", strerror(-rc));
	}
	printf("%d series expired (ttl %u s)\n", rc, seg.hdr->series_ttl_s);
	shmet_close(&seg);
	return 0;
}

static int
open_reader(struct ctl *c, struct shmet_reader **r)
{
	char err[SHMET_READER_ERRLEN];

	if (shmet_reader_open(c->segment, r, err, sizeof err) < 0)
		return fail("%s", err);
	return 0;
}

static void
print_fill(const char *what, uint64_t used, uint64_t cap)
{
	printf("  %-16s %10llu / %-10llu (%.1f%%)\n", what,
	       (unsigned long long)used, (unsigned long long)cap,
	       cap ? 100.0 * (double)used / (double)cap : 0.0);
}

static int
cmd_info(struct ctl *c)
{
	struct shmet_reader *r;
	struct shmet_reader_info in;
	time_t created;
	char when[64];

	if (open_reader(c, &r))
		return 1;
	shmet_reader_info(r, &in);
	created = (time_t)(in.created_ns / 1000000000u);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&created));
	printf("layout version   %u\n", in.layout_version);
	printf("size             %llu bytes\n",
	       (unsigned long long)in.total_size);
	printf("created          %s\n", when);
	printf("generation       %llu\n", (unsigned long long)in.generation);
	printf("cardinality      %u series per family\n",
	       in.max_series_per_family);
	printf("fill:\n");
	/* handed out (a high-water mark: removed, expired and reclaimed
	 * records are reused) and linked in the index now */
	print_fill("families", in.families_used, in.max_families);
	print_fill("families in use", in.families_in_use, in.max_families);
	print_fill("series", in.series_used, in.max_series);
	print_fill("series in use", in.series_in_use, in.max_series);
	print_fill("cells", in.cells_used, in.cells_per_block);
	print_fill("string bytes", in.strings_used, in.string_bytes);
	print_fill("live writers", in.writers_live, in.max_writers);
	printf("writers          %u live, %u dead, %u never used\n",
	       in.writers_live, in.writers_dead, in.writers_unused);
	printf("cpu blocks       %u\n", in.cpu_blocks);
	if (in.series_ttl_s)
		printf("series ttl       %u s (%llu expired)\n", in.series_ttl_s,
		       (unsigned long long)in.series_expired);
	else
		printf("series ttl       none (series never expire)\n");
	printf("stale writes     %llu (handles of removed series)\n",
	       (unsigned long long)in.stale_writes);
	printf("registration failures:\n");
	for (uint32_t i = 0; i < SHMET_FAIL_COUNT; i++)
		printf("  %-18s %llu\n", shmet_failure_name(i),
		       (unsigned long long)in.failures[i]);
	shmet_reader_close(r);
	return 0;
}

/*
 * The rendered page, with what a terminal would act on in help texts and
 * label values escaped (escape.h): a dump is read on terminals, and a
 * label value can hold ESC or C1 sequences from request data.  The
 * formats already escape their backslashes (and, in JSON, C0), so each
 * backslash added here starts an escape; JSON stays JSON.
 */
static int
escape_page(const char *format, struct shmet_buf *page)
{
	struct shmet_buf out = { 0 };
	int json = !strcmp(format, "json") || !strcmp(format, "health");

	tool_escape(&out, page->data ? page->data : "", page->len,
		    TOOL_ESCAPE_LINES | (json ? TOOL_ESCAPE_JSON : 0));
	if (out.failed) {
		shmet_buf_free(&out);
		return -ENOMEM;
	}
	shmet_buf_free(page);
	*page = out;
	return 0;
}

static int
cmd_dump(struct ctl *c)
{
	int format = shmet_format_parse(c->format);
	struct shmet_follow *f = NULL;
	struct shmet_values *v = NULL;
	struct shmet_buf b = { 0 };
	char err[SHMET_READER_ERRLEN];
	int rc;

	if (format < 0)
		return usage_error("invalid value '%s' for --format: not "
				   "text, openmetrics, json or health",
				   c->format);
	/* One look through the follower (lib/follow.c): what it opens and
	 * how it judges it are the exporter's. */
	rc = shmet_follow_new(c->segment, SHMET_FOLLOW_ANY_OWNER, &f);
	if (rc == 0)
		rc = shmet_follow_refresh(f, 0, err, sizeof err);
	else
		snprintf(err, sizeof err, "%s", strerror(-rc));
	if (rc < 0) {
		shmet_follow_free(f);
		return fail("%s", err);
	}
	v = shmet_values_new();
	rc = v ? shmet_render_page(shmet_follow_view(f),
				   (enum shmet_format)format, NULL, 0, v, &b)
	       : -ENOMEM;
	if (rc == 0 && !c->raw)
		rc = escape_page(c->format, &b);
	if (rc == 0 && b.len)
		fwrite(b.data, 1, b.len, stdout);
	shmet_buf_free(&b);
	shmet_values_free(v);
	shmet_follow_free(f);
	if (rc == -ESTALE)
		return fail("dump: the segment shrank while it was read");
	return rc == 0 ? 0 : fail("dump: %s", strerror(rc < 0 ? -rc : ENOMEM));
}

static const char *
state_name(uint32_t state)
{
	return state == SHMET_WRITER_UNUSED   ? "unused" :
	       state == SHMET_WRITER_ACTIVE   ? "active" :
	       state == SHMET_WRITER_RELEASED ? "released" :
						"corrupt";
}

static int
cmd_writers(struct ctl *c)
{
	struct shmet_reader *r;
	struct shmet_reader_info in;
	struct shmet_writer_info *w;
	int n;

	if (open_reader(c, &r))
		return 1;
	shmet_reader_info(r, &in);
	w = calloc(in.max_writers, sizeof *w);
	if (!w) {
		shmet_reader_close(r);
		return fail("out of memory");
	}
	n = shmet_reader_writers(r, w, in.max_writers);
	printf("%-6s %-9s %-5s %-10s %-9s %s\n", "slot", "state", "live", "pid",
	       "takeovers", "claimed");
	for (int i = 0; i < n; i++) {
		time_t t = (time_t)(w[i].claimed_ns / 1000000000u);
		char when[64] = "-";

		if (w[i].state == SHMET_WRITER_UNUSED)
			continue;
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		printf("%-6u %-9s %-5s %-10lld %-9llu %s\n", w[i].slot,
		       state_name(w[i].state), w[i].live ? "yes" : "no",
		       (long long)w[i].pid, (unsigned long long)w[i].takeovers,
		       when);
	}
	free(w);
	shmet_reader_close(r);
	return 0;
}

static int
cmd_destroy(struct ctl *c)
{
	int rc = shmet_unlink(c->segment);

	if (rc < 0)
		return fail("destroy %s: %s",
			    c->segment ? c->segment : "(default segment)",
			    strerror(-rc));
	return 0;
}

enum {
	OPT_SEGMENT = 256,
	OPT_FORMAT,
	OPT_FAMILIES,
	OPT_SERIES,
	OPT_WRITERS,
	OPT_CELLS,
	OPT_STRINGS,
	OPT_CARDINALITY,
	OPT_MODE,
	OPT_GROUP,
	OPT_RAW,
	OPT_CPUS,
	OPT_TTL,
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segment", required_argument, NULL, OPT_SEGMENT },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "max-families", required_argument, NULL, OPT_FAMILIES },
		{ "max-series", required_argument, NULL, OPT_SERIES },
		{ "max-writers", required_argument, NULL, OPT_WRITERS },
		{ "cells", required_argument, NULL, OPT_CELLS },
		{ "string-bytes", required_argument, NULL, OPT_STRINGS },
		{ "max-series-per-family", required_argument, NULL,
		  OPT_CARDINALITY },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "cpu-blocks", required_argument, NULL, OPT_CPUS },
		{ "series-ttl", required_argument, NULL, OPT_TTL },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c;
	const char *cmd, *why;
	int o, bad = 0, no_group = 0;

	memset(&c, 0, sizeof c);
	c.format = "text";
	opterr = 0;     /* our own one-line messages */
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (o) {
		case OPT_SEGMENT:
			if ((why = cli_segment_why(optarg)))
				return usage_error("invalid value '%s' for "
						   "--segment: %s", optarg, why);
			c.segment = optarg;
			break;
		case OPT_FORMAT: c.format = optarg; break;
		case OPT_RAW: c.raw = 1; break;
		case OPT_FAMILIES:
			bad |= parse_u32(optarg, "--max-families",
					 &c.create.max_families, 10);
			break;
		case OPT_SERIES:
			bad |= parse_u32(optarg, "--max-series",
					 &c.create.max_series, 10);
			break;
		case OPT_WRITERS:
			bad |= parse_u32(optarg, "--max-writers",
					 &c.create.max_writers, 10);
			break;
		case OPT_CELLS:
			bad |= parse_u32(optarg, "--cells",
					 &c.create.cells_per_block, 10);
			break;
		case OPT_STRINGS:
			bad |= parse_u32(optarg, "--string-bytes",
					 &c.create.string_bytes, 10);
			break;
		case OPT_CARDINALITY:
			bad |= parse_u32(optarg, "--max-series-per-family",
					 &c.create.max_series_per_family, 10);
			break;
		case OPT_MODE:
			bad |= parse_u32(optarg, "--mode", &c.create.mode, 8);
			break;
		case OPT_CPUS:
			bad |= parse_u32(optarg, "--cpu-blocks",
					 &c.create.cpu_blocks, 10);
			break;
		case OPT_TTL:
			bad |= parse_u32(optarg, "--series-ttl",
					 &c.create.series_ttl_s, 10);
			break;
		case OPT_GROUP:
			/* a group this system lacks: not a usage error */
			no_group |= parse_group(optarg, &c.create);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			return cli_version("shmetrics-ctl");
		default:
			return cli_unknown_option("shmetrics-ctl",
						  argv[optind - 1]);
		}
	}
	if (bad)
		return CLI_EXIT_USAGE;
	if (optind != argc - 1)
		return usage_error(optind == argc ? "no command given"
						  : "one command expected");
	if (no_group)
		return CLI_EXIT_FAILURE;
	cmd = argv[optind];
	if (!strcmp(cmd, "create"))
		return cmd_create(&c);
	if (!strcmp(cmd, "info"))
		return cmd_info(&c);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(&c);
	if (!strcmp(cmd, "writers"))
		return cmd_writers(&c);
	if (!strcmp(cmd, "destroy"))
		return cmd_destroy(&c);
	if (!strcmp(cmd, "expire"))
		return cmd_expire(&c);
	return usage_error("unknown command '%s'", cmd);
}
