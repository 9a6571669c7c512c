/*
 * --web.config.file: the Prometheus exporter-toolkit web configuration
 * (the file node_exporter and the other official exporters take), parsed
 * with libyaml:
 *
 *   tls_server_config:
 *     cert_file: server.crt      # relative paths: to the file's directory
 *     key_file: server.key
 *   basic_auth_users:
 *     alice: $2y$10$...          # bcrypt, checked by libxcrypt's crypt
 *
 * Anything else is refused at start with FILE:LINE and the reason: keys
 * the toolkit knows but this exporter does not implement (client
 * certificates, TLS versions, HTTP headers...) as unsupported, any other
 * key as unknown, a missing or unreadable certificate or key, a hash
 * that is not bcrypt or costs more than AUTH_BCRYPT_MAX_COST (auth.c), a
 * second YAML document, and a NUL in any key or value.  An empty file
 * means plain HTTP without users, as in the toolkit.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "exporter.h"

/* The toolkit's other keys: named as unsupported rather than unknown. */
static const char *const unsupported_top[] = {
	"http_server_config", "rate_limit", NULL
};
static const char *const unsupported_tls[] = {
	"client_auth_type", "client_ca_file", "client_allowed_sans",
	"min_version", "max_version", "cipher_suites", "curve_preferences",
	"prefer_server_cipher_suites", "cert", "key", NULL
};

struct ctx {
	const char *path;
	yaml_document_t *doc;
	struct web_config *out;
	char *err;
	size_t errlen;
};

static int
fail(struct ctx *c, const yaml_node_t *at, const char *fmt, const char *a,
     const char *b)
{
	char what[300];

	snprintf(what, sizeof what, fmt, a, b);
	snprintf(c->err, c->errlen, "%s:%lu: %s", c->path,
		 (unsigned long)at->start_mark.line + 1, what);
	return -1;
}

static int
listed(const char *const *names, const char *s)
{
	for (; *names; names++)
		if (!strcmp(*names, s))
			return 1;
	return 0;
}

/* s[0..n) for a message: NUL as \0, other control bytes as \xNN. */
static void
escaped(const unsigned char *s, size_t n, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < len; i++) {
		if (s[i] == '\0')
			o += (size_t)snprintf(out + o, len - o, "\\0");
		else if (s[i] < 0x20 || s[i] == 0x7f)
			o += (size_t)snprintf(out + o, len - o, "\\x%02x",
					      s[i]);
		else
			out[o++] = (char)s[i];
	}
	out[o] = '\0';
}

/*
 * A scalar's value, or NULL (with err set) if node is not a scalar or
 * holds a NUL.  YAML can write one ("ali\0ce" in double quotes) and
 * libyaml keeps it, with the length; everything here reads C strings,
 * which would end at it: the user "ali" instead of "ali\0ce", a hash or
 * path cut short.  Keys go through here too (check_mapping).
 */
static const char *
scalar(struct ctx *c, const yaml_node_t *node, const char *what)
{
	const char *v;
	char shown[200];

	if (node->type != YAML_SCALAR_NODE) {
		fail(c, node, "%s: expected a value%s", what, "");
		return NULL;
	}
	v = (const char *)node->data.scalar.value;
	if (strlen(v) != node->data.scalar.length) {
		escaped(node->data.scalar.value,
			node->data.scalar.length < 100
				? node->data.scalar.length : 100,
			shown, sizeof shown);
		fail(c, node, "%s: \"%s\" contains a NUL character", what,
		     shown);
		return NULL;
	}
	return v;
}

/* Is node a mapping without duplicate keys (all scalars)? */
static int
check_mapping(struct ctx *c, const yaml_node_t *node, const char *what)
{
	const yaml_node_pair_t *p, *q;
	char key[80];

	/* basic_auth_users' keys are the user names. */
	snprintf(key, sizeof key, "%s: %s", what,
		 strcmp(what, "basic_auth_users") ? "key" : "user name");
	if (node->type == YAML_SCALAR_NODE &&
	    node->data.scalar.length == 0)
		return 0;       /* "key:" with nothing: an empty mapping */
	if (node->type != YAML_MAPPING_NODE)
		return fail(c, node, "%s: expected a mapping%s", what, "");
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);

		if (!scalar(c, k, key))
			return -1;
		for (q = node->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *k2 = yaml_document_get_node(c->doc,
								 q->key);

			if (!strcmp((char *)k->data.scalar.value,
				    (char *)k2->data.scalar.value))
				return fail(c, k, "%s: duplicate key '%s'",
					    what,
					    (char *)k->data.scalar.value);
		}
	}
	return 0;
}

/* A path from the file, relative to the file's directory, readable. */
static int
file_path(struct ctx *c, const yaml_node_t *node, const char *key,
	  char *out, size_t len)
{
	const char *v = scalar(c, node, key);
	const char *slash = strrchr(c->path, '/');
	int n;

	if (!v)
		return -1;
	if (!*v)
		return fail(c, node, "tls_server_config: %s is empty%s", key,
			    "");
	if (v[0] == '/' || !slash)
		n = snprintf(out, len, "%s", v);
	else
		n = snprintf(out, len, "%.*s/%s", (int)(slash - c->path),
			     c->path, v);
	if (n < 0 || (size_t)n >= len)
		return fail(c, node, "tls_server_config: %s: path too long%s",
			    key, "");
	if (access(out, R_OK) < 0) {
		char what[128];

		snprintf(what, sizeof what, "%s %s", key, out);
		return fail(c, node, "tls_server_config: %s: %s", what,
			    strerror(errno));
	}
	return 0;
}

static int
parse_tls(struct ctx *c, const yaml_node_t *node)
{
	const yaml_node_pair_t *p;
	int have_cert = 0, have_key = 0;

	if (check_mapping(c, node, "tls_server_config") < 0)
		return -1;
	if (node->type != YAML_MAPPING_NODE)
		return fail(c, node, "tls_server_config: cert_file and "
			    "key_file are required%s%s", "", "");
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = (const char *)k->data.scalar.value;

		if (!strcmp(key, "cert_file")) {
			if (file_path(c, v, key, c->out->cert_file,
				      sizeof c->out->cert_file) < 0)
				return -1;
			have_cert = 1;
		} else if (!strcmp(key, "key_file")) {
			if (file_path(c, v, key, c->out->key_file,
				      sizeof c->out->key_file) < 0)
				return -1;
			have_key = 1;
		} else {
			return fail(c, k, listed(unsupported_tls, key)
				    ? "tls_server_config: '%s' is not "
				      "supported by shmetrics-exporter%s"
				    : "tls_server_config: unknown key '%s' "
				      "(expected cert_file, key_file)%s",
				    key, "");
		}
	}
	if (!have_cert || !have_key)
		return fail(c, node, "tls_server_config: %s is required%s",
			    have_cert ? "key_file" : "cert_file", "");
	c->out->tls = 1;
	return 0;
}

/* bcrypt as the toolkit takes it: $2a$, $2b$ or $2y$, cost, 53 chars. */
static int
is_bcrypt(const char *h)
{
	return strlen(h) == 60 && h[0] == '$' && h[1] == '2' &&
	       (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') && h[3] == '$' &&
	       h[6] == '$';
}

static int
parse_users(struct ctx *c, const yaml_node_t *node)
{
	const yaml_node_pair_t *p;

	if (check_mapping(c, node, "basic_auth_users") < 0)
		return -1;
	if (node->type != YAML_MAPPING_NODE)
		return 0;
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *user = (const char *)k->data.scalar.value;
		const char *hash;
		char why[200], what[120];

		snprintf(what, sizeof what, "basic_auth_users: %s: hash", user);
		hash = scalar(c, v, what);
		if (!hash)
			return -1;
		if (!is_bcrypt(hash))
			return fail(c, v, "basic_auth_users: %s: not a bcrypt "
				    "hash ($2a$, $2b$ or $2y$, 60 characters; "
				    "e.g. htpasswd -nbBC 10 %s PASSWORD)",
				    user, user);
		if (auth_add_user(user, hash, why, sizeof why) < 0)
			return fail(c, v, "basic_auth_users: %s%s", why, "");
		c->out->users++;
	}
	return 0;
}

static int
parse_root(struct ctx *c, const yaml_node_t *root)
{
	const yaml_node_pair_t *p;

	if (check_mapping(c, root, "top level") < 0)
		return -1;
	if (root->type != YAML_MAPPING_NODE)
		return 0;
	for (p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = (const char *)k->data.scalar.value;
		int rc;

		if (!strcmp(key, "tls_server_config"))
			rc = parse_tls(c, v);
		else if (!strcmp(key, "basic_auth_users"))
			rc = parse_users(c, v);
		else
			rc = fail(c, k, listed(unsupported_top, key)
				  ? "'%s' is not supported by "
				    "shmetrics-exporter%s"
				  : "unknown key '%s' (expected "
				    "tls_server_config, basic_auth_users)%s",
				  key, "");
		if (rc < 0)
			return -1;
	}
	return 0;
}

/*
 * The web configuration is one YAML document, as the toolkit reads it
 * (one yaml.Unmarshal).  A second one ("---" and more settings) would be
 * ignored silently, users or TLS the operator believes are on: refused.
 * At the end of the stream libyaml loads a document without a root.
 */
static int
no_second_document(yaml_parser_t *parser, const char *path, char *err,
		   size_t errlen)
{
	yaml_document_t doc;
	yaml_node_t *root;
	yaml_mark_t at;

	if (!yaml_parser_load(parser, &doc)) {
		snprintf(err, errlen, "%s:%lu: YAML: %s", path,
			 (unsigned long)(parser->problem_mark.line + 1),
			 parser->problem ? parser->problem : "invalid");
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	at = doc.start_mark;
	yaml_document_delete(&doc);
	if (!root)
		return 0;
	snprintf(err, errlen, "%s:%lu: a second YAML document: the web "
		 "configuration is one document (remove the '---' and what "
		 "follows, or merge it into the first)", path,
		 (unsigned long)at.line + 1);
	return -1;
}

int
webconfig_load(const char *path, struct web_config *out, char *err,
	       size_t errlen)
{
	struct ctx c = { path, NULL, out, err, errlen };
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	FILE *f;
	int rc;

	memset(out, 0, sizeof *out);
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%lu: YAML: %s%s%s", path,
			 (unsigned long)(parser.problem_mark.line + 1),
			 parser.problem ? parser.problem : "invalid",
			 parser.context ? " " : "",
			 parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		fclose(f);
		return -1;
	}
	c.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	rc = root ? parse_root(&c, root) : 0;   /* empty file: nothing */
	yaml_document_delete(&doc);
	if (rc == 0)
		rc = no_second_document(&parser, path, err, errlen);
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}
