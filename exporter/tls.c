/*
 * TLS setup: civetweb loads certificate and key from one PEM file, so a
 * separate key file is merged with the certificate into a private
 * temporary file (mkstemp: mode 0600) that main.c unlinks once civetweb
 * has loaded it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exporter.h"

int
tls_pem(const char *cert, const char *key, char *path, size_t len)
{
	const char *parts[2] = { cert, key };
	static const char *const what[2] = { "certificate", "key" };
	FILE *out, *in;
	int fd;

	/* civetweb's own message for a file it cannot open is "Error
	 * initializing SSL context": name the file here instead. */
	for (int i = 0; i < 2 && parts[i]; i++) {
		if (access(parts[i], R_OK) < 0) {
			exporter_log("cannot read the TLS %s file %s: %s",
				     what[i], parts[i], strerror(errno));
			return -1;
		}
	}
	if (!key) {
		snprintf(path, len, "%s", cert);
		return 0;
	}
	snprintf(path, len, "/tmp/shmetrics-exporter-tls-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || !(out = fdopen(fd, "w"))) {
		exporter_log("cannot create a temporary PEM file: %s",
			     strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		char buf[4096];
		size_t n;

		in = fopen(parts[i], "r");
		if (!in) {
			exporter_log("cannot read the TLS %s file %s: %s",
				     what[i], parts[i], strerror(errno));
			fclose(out);
			unlink(path);
			return -1;
		}
		while ((n = fread(buf, 1, sizeof buf, in)) > 0)
			fwrite(buf, 1, n, out);
		fclose(in);
	}
	if (fclose(out) != 0) {
		exporter_log("cannot write %s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 1;
}
