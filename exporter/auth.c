/*
 * HTTP Basic authentication against crypt(3) hashes: a file of
 * "user:crypt-hash" lines (e.g. from "openssl passwd -6"), or the
 * basic_auth_users of a web configuration file (webconfig.c, bcrypt).
 * The user table is written once, by auth_load() or auth_add_user(),
 * before the HTTP threads start, and only read afterwards.
 */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exporter.h"

#define MAX_USERS 64

struct user {
	char name[64];
	char hash[160];
	int kind;                       /* index into kind_rep */
};

static struct user users[MAX_USERS];
static int nusers = -1;                 /* -1: no authentication */
/* Per hash kind (algorithm and cost): the first user with that kind. */
static int kind_rep[MAX_USERS];
static int nkinds;

int
auth_enabled(void)
{
	return nusers >= 0;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode base64 into out (NUL-terminated): the decoded length, or -1 if
 * malformed or too long.  The decoded bytes may contain NULs. */
static int
b64_decode(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;

	for (; *in && *in != '='; in++) {
		int v = b64_value(*in);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= cap)
				return -1;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return (int)n;
}

/* Equal in full length, in time independent of where they differ. */
static int
const_time_equal(const char *a, size_t la, const char *b, size_t lb)
{
	unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/*
 * The cost class of a crypt(3) hash: its prefix without salt and digest
 * ("$6$rounds=N", "$y$j9T", "$5"), which fixes the algorithm and its
 * work factor.  bcrypt ("$2b$10$<salt+digest>") keeps its cost field.
 */
static size_t
kind_len(const char *hash)
{
	const char *last = strrchr(hash, '$');
	const char *p = last;

	if (strncmp(hash, "$2", 2) == 0)
		return (size_t)(last - hash);
	while (p > hash && *--p != '$')
		;
	return (size_t)(p - hash);
}

static int
kind_of(const char *hash)
{
	size_t len = kind_len(hash);

	for (int k = 0; k < nkinds; k++) {
		const char *rep = users[kind_rep[k]].hash;

		if (kind_len(rep) == len && memcmp(rep, hash, len) == 0)
			return k;
	}
	kind_rep[nkinds] = -1;
	return nkinds++;
}

/*
 * Credentials that passed, so that a scraper's every request does not pay
 * a bcrypt (tens of ms at cost 10, on every scrape of every target) and
 * so that requests with wrong passwords, which always pay it, cannot slow
 * the right ones down: a hit needs no crypt, and crypt runs one attempt
 * at a time (crypt_lock), so a flood of wrong passwords uses one core and
 * waits its turn.  The decoded "user:password" is kept, as Prometheus's
 * exporter-toolkit keeps it in its cache key: the process reads it in
 * every request anyway.  Compared in full and in constant time, every
 * entry; replaced round robin.
 */
#define AUTH_CACHE 16

static struct {
	char creds[256];
	int len;                        /* 0: empty */
} auth_cache[AUTH_CACHE];
static unsigned auth_cache_next;
static pthread_mutex_t auth_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t crypt_lock = PTHREAD_MUTEX_INITIALIZER;

static int
auth_cache_has(const char *creds, int n)
{
	int hit = 0;

	pthread_mutex_lock(&auth_cache_lock);
	for (int i = 0; i < AUTH_CACHE; i++)
		hit |= auth_cache[i].len > 0 &&
		       const_time_equal(auth_cache[i].creds,
					(size_t)auth_cache[i].len, creds,
					(size_t)n);
	pthread_mutex_unlock(&auth_cache_lock);
	return hit;
}

static void
auth_cache_add(const char *creds, int n)
{
	if (n <= 0 || (size_t)n > sizeof auth_cache[0].creds)
		return;
	pthread_mutex_lock(&auth_cache_lock);
	memcpy(auth_cache[auth_cache_next].creds, creds, (size_t)n);
	auth_cache[auth_cache_next].len = n;
	auth_cache_next = (auth_cache_next + 1) % AUTH_CACHE;
	pthread_mutex_unlock(&auth_cache_lock);
}

/*
 * Check "Authorization: Basic ...".  Credentials that passed before are
 * accepted from the cache above.  Every other attempt runs crypt once per
 * configured hash kind (algorithm and cost): against the named user's
 * hash for its kind and against another user's hash, result ignored, for
 * the others.  So an unknown user, and users whose hashes differ in
 * algorithm or cost, all cost the same work: timing does not tell which
 * user names exist.  User names and digests are compared in full length
 * in constant time, and a password with a NUL byte (which crypt would cut
 * short) is refused.
 */
int
auth_check(const char *h)
{
	struct crypt_data *cd;
	char creds[256];
	const char *colon, *pw;
	int n, match = -1, ok = 0, nul;

	if (nusers < 0)
		return 1;
	if (!h || strncasecmp(h, "Basic ", 6) != 0)
		return 0;
	n = b64_decode(h + 6 + strspn(h + 6, " "), creds, sizeof creds);
	if (n < 0)
		return 0;
	colon = memchr(creds, ':', (size_t)n);
	if (!colon)
		return 0;
	pw = colon + 1;
	nul = memchr(pw, '\0', (size_t)(creds + n - pw)) != NULL;
	if (!nul && auth_cache_has(creds, n))
		return 1;
	for (int i = 0; i < nusers; i++) {
		int eq = const_time_equal(users[i].name, strlen(users[i].name),
					  creds, (size_t)(colon - creds));

		match = eq ? i : match;
	}
	cd = calloc(1, sizeof *cd);
	if (!cd)
		return 0;
	pthread_mutex_lock(&crypt_lock);
	for (int k = 0; k < nkinds; k++) {
		int mine = match >= 0 && users[match].kind == k;
		const char *hash = users[mine ? match : kind_rep[k]].hash;
		/* crypt_rn (libxcrypt): NULL on failure, never a "*0"
		 * string, and not intercepted by ASan (its crypt_r
		 * interceptor is broken on Debian 12). */
		const char *out = crypt_rn(pw, hash, cd, sizeof *cd);
		int same = out && const_time_equal(out, strlen(out), hash,
						   strlen(hash));

		ok |= mine && same;
	}
	pthread_mutex_unlock(&crypt_lock);
	free(cd);
	if (ok && !nul)
		auth_cache_add(creds, n);
	return ok && !nul;
}

/*
 * The cost of a bcrypt hash ("$2b$NN$..."), or -1 if hash is not one.
 * Cost c means 2^c rounds: each step doubles a check.
 */
static int
bcrypt_cost(const char *hash)
{
	if (strncmp(hash, "$2", 2) != 0 || !hash[2] || hash[3] != '$' ||
	    hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' ||
	    hash[6] != '$')
		return -1;
	return (hash[4] - '0') * 10 + (hash[5] - '0');
}

/*
 * Can crypt use hash as a setting and give back a string of its own
 * length?  A hash it cannot use would refuse every password, silently.
 * A bcrypt hash is probed at the lowest cost, 4, with its own prefix and
 * salt: what crypt could refuse is the same, and start-up then costs
 * about a millisecond per user instead of one check at the hash's cost
 * (a second at cost 14, days at 31).  Other methods are probed as they
 * are: their cost is not parsed here.
 */
static int
hash_usable(const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof *cd);
	char setting[sizeof users[0].hash];
	const char *out;
	int ok;

	if (!cd)
		return 0;
	snprintf(setting, sizeof setting, "%s", hash);
	if (bcrypt_cost(setting) >= 0)
		memcpy(setting + 4, "04", 2);
	out = crypt_rn("probe", setting, cd, sizeof *cd);
	ok = out && strlen(out) == strlen(setting) &&
	     strncmp(out, setting, kind_len(setting)) == 0;
	free(cd);
	return ok;
}

/*
 * A bcrypt cost the exporter refuses to check (ours, not the format's:
 * bcrypt and the exporter-toolkit go up to 31).  A check at cost 12 takes
 * 0.24 s of CPU; 14 takes about 1 s, the most a scrape timeout (10 s by
 * default) and one core can bear when every wrong password pays it.
 * Cost 31 takes 2^19 times cost 12: about a day and a half per check,
 * which left the exporter hung at start with no port and no log line.
 * Below 4 libxcrypt refuses the hash itself (hash_usable).
 */
static int
bcrypt_cost_refused(const char *name, const char *hash, char *why,
		    size_t len)
{
	int cost = bcrypt_cost(hash);

	if (cost <= AUTH_BCRYPT_MAX_COST)
		return 0;
	snprintf(why, len, "user %s: bcrypt cost %d is above the maximum, "
		 "%d (each check would take 2^%d rounds; make the hash with "
		 "htpasswd -nbBC 10)", name, cost, AUTH_BCRYPT_MAX_COST, cost);
	return 1;
}

int
auth_add_user(const char *name, const char *hash, char *why, size_t len)
{
	struct user *u;

	if (nusers < 0)
		nusers = 0;
	if (!*name || strlen(name) >= sizeof users[0].name ||
	    strchr(name, ':'))
		return snprintf(why, len, "user name '%.64s' is empty, longer "
				"than %zu bytes or has a ':'", name,
				sizeof users[0].name - 1), -1;
	/* Before hash_usable: nothing runs crypt for a cost refused. */
	if (bcrypt_cost_refused(name, hash, why, len))
		return -1;
	if (hash[0] != '$' || !strchr(hash + 1, '$') ||
	    strlen(hash) >= sizeof users[0].hash || !hash_usable(hash))
		return snprintf(why, len, "user %s: '%.32s' is not a crypt(3) "
				"hash that libxcrypt can check", name, hash),
		       -1;
	if (nusers == MAX_USERS)
		return snprintf(why, len, "more than %d users", MAX_USERS),
		       -1;
	u = &users[nusers];
	/* Lengths checked above. */
	memcpy(u->name, name, strlen(name) + 1);
	memcpy(u->hash, hash, strlen(hash) + 1);
	u->kind = kind_of(hash);
	if (kind_rep[u->kind] < 0)
		kind_rep[u->kind] = nusers;
	nusers++;
	return 0;
}

int
auth_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], why[200];
	int lineno = 0;

	if (!f) {
		exporter_log("cannot read --basic-auth-file %s: %s", path,
			     strerror(errno));
		return -1;
	}
	nusers = 0;
	while (fgets(line, sizeof line, f)) {
		char *colon;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		if (!colon || colon == line || colon[1] != '$') {
			exporter_log("%s:%d: expected 'user:$id$salt$hash' "
				     "(crypt(3), e.g. from 'openssl passwd -6')",
				     path, lineno);
			fclose(f);
			return -1;
		}
		*colon = '\0';
		if (auth_add_user(line, colon + 1, why, sizeof why) < 0) {
			exporter_log("%s:%d: expected 'user:$id$salt$hash' "
				     "(crypt(3), e.g. from 'openssl passwd "
				     "-6'): %s", path, lineno, why);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (nusers == 0) {
		exporter_log("%s: no users", path);
		return -1;
	}
	return 0;
}
