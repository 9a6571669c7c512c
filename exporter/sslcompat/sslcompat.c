/*
 * Make Debian's civetweb 1.15 work with OpenSSL 3.
 *
 * civetweb loads libssl at run time with dlopen("libssl.so") and dlsym()s
 * its functions, among them SSL_get_peer_certificate, which OpenSSL 3 only
 * has as a macro for SSL_get1_peer_certificate.  The lookup yields NULL and
 * civetweb calls it on every TLS connection: a crash.
 *
 * This library's SONAME is "libssl.so" and the exporter links it, so it is
 * loaded at start; civetweb's dlopen("libssl.so") then returns it (glibc
 * matches already loaded objects by SONAME), dlsym finds the function
 * below here and every other one in libssl.so.3, which this library
 * depends on.
 */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *s);

/* Same reference semantics: OpenSSL 1.1's function already returned a
 * reference the caller frees; 3.0 only renamed it. */
__attribute__((visibility("default"))) X509 *
SSL_get_peer_certificate(const SSL *s)
{
	return SSL_get1_peer_certificate(s);
}

/* Referenced by the exporter so that the linker keeps this library. */
__attribute__((visibility("default"))) int shmetrics_sslcompat(void);

int
shmetrics_sslcompat(void)
{
	return 1;
}
