/*
 * HTTP Basic authentication against a file of "user:crypt-hash" lines
 * (crypt(3) hashes, e.g. from "openssl passwd -6").  The user table is
 * written once by auth_load() before the HTTP threads start, and only
 * read afterwards.
 */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exporter.h"

#define MAX_USERS 64

struct user {
	char name[64];
	char hash[160];
};

static struct user users[MAX_USERS];
static int nusers = -1;                 /* -1: no authentication */

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

/* Decode base64 into out (NUL-terminated); -1 if malformed or too long. */
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
	return 0;
}

/* Equal in time independent of where they differ. */
static int
const_time_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/*
 * Check "Authorization: Basic ...".  An unknown user costs the same hash
 * computation as a known one (against a fixed fake hash), so timing does
 * not tell which user names exist.
 */
int
auth_check(const char *h)
{
	static const char fake[] =
		"$6$shmetricsfake$1S0ZfR2m.yH0iT5p3ZQdPvgzZ0YgxQeB8yW2uL8"
		"3qKxj1E1xYqVv7nXy6m0pG8cB8jv3GmMlgH1yD2oJ2oM2e0";
	struct crypt_data *cd;
	char creds[256], *colon;
	const char *hash = fake;
	int ok = 0;

	if (nusers < 0)
		return 1;
	if (!h || strncasecmp(h, "Basic ", 6) != 0 ||
	    b64_decode(h + 6, creds, sizeof creds) < 0)
		return 0;
	colon = strchr(creds, ':');
	if (!colon)
		return 0;
	*colon = '\0';
	for (int i = 0; i < nusers; i++)
		if (const_time_equal(users[i].name, creds)) {
			hash = users[i].hash;
			ok = 1;
		}
	cd = calloc(1, sizeof *cd);
	if (!cd)
		return 0;
	{
		/* crypt_rn (libxcrypt): NULL on failure, never a "*0"
		 * string, and not intercepted by ASan (its crypt_r
		 * interceptor is broken on Debian 12). */
		const char *out = crypt_rn(colon + 1, hash, cd, sizeof *cd);

		ok = ok && out && const_time_equal(out, hash);
	}
	free(cd);
	return ok;
}

int
auth_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int lineno = 0;

	if (!f) {
		exporter_log("cannot read --basic-auth-file %s: %s", path,
			     strerror(errno));
		return -1;
	}
	nusers = 0;
	while (fgets(line, sizeof line, f)) {
		char *colon, *end;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		end = colon ? colon + 1 : NULL;
		if (!colon || colon == line || end[0] != '$' ||
		    colon - line >= (long)sizeof users[0].name ||
		    strlen(end) >= sizeof users[0].hash || nusers == MAX_USERS) {
			exporter_log("%s:%d: expected 'user:$id$salt$hash' "
				     "(crypt(3), e.g. from 'openssl passwd -6')",
				     path, lineno);
			fclose(f);
			return -1;
		}
		*colon = '\0';
		/* Lengths checked above. */
		memcpy(users[nusers].name, line, (size_t)(colon - line) + 1);
		memcpy(users[nusers].hash, end, strlen(end) + 1);
		nusers++;
	}
	fclose(f);
	if (nusers == 0) {
		exporter_log("%s: no users", path);
		return -1;
	}
	return 0;
}
