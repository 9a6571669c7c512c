/*
 * The exporter's content negotiation (exporter/negotiate.c): RFC 9110
 * q-values in Accept and Accept-Encoding, one tokenizer for both.
 */
#include "config.h"

#include <string.h>

#include "test-common.h"
#include "negotiate.h"

struct case_ {
	const char *header;
	int want;
};

START_TEST(test_negotiate_gzip_table)
{
	static const struct case_ cases[] = {
		{ NULL, 0 },
		{ "", 0 },
		{ "gzip", 1 },
		{ "GZIP", 1 },
		{ "x-gzip", 1 },
		{ "deflate, gzip, br, zstd", 1 },
		{ "gzip;q=0", 0 },
		{ "gzip; q=0.000", 0 },
		{ "gzip;q=0.001", 1 },
		{ "gzip ; Q = 0", 0 },
		{ "gzip;level=1, br;q=0", 1 },
		{ "br;q=0, gzip;level=\"a,b;q=0\"", 1 },
		{ "*;q=0", 0 },
		{ "*", 1 },
		{ "*;q=0, gzip", 1 },
		{ "gzip;q=0, *", 0 },
		{ "identity;q=0", 0 },
		{ "identity;q=0, gzip;q=0.5", 1 },
		{ "gzip;q=0.5, identity", 0 },
		{ "gzip;q=0.5, identity;q=0.5", 1 },     /* tie: gzip */
		{ "gzip;q=0.5", 1 },
		{ "gzip;q=1.5", 0 },                     /* malformed: 0 */
		{ "gzip;q=abc", 0 },
		{ "gzip;q=0.5, gzip;q=0", 1 },           /* highest repeat */
		{ "gzipx, xgzip", 0 },
		{ ",,gzip,,", 1 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(negotiate_gzip(cases[i].header) == cases[i].want,
			      "Accept-Encoding: %s: want %d", cases[i].header,
			      cases[i].want);
}
END_TEST

START_TEST(test_negotiate_openmetrics_table)
{
	static const struct case_ cases[] = {
		{ NULL, 0 },
		{ "*/*", 0 },
		{ "text/plain", 0 },
		{ "application/openmetrics-text", 1 },
		{ "application/openmetrics-text; version=1.0.0; "
		  "charset=utf-8", 1 },
		/* Prometheus 2.x */
		{ "application/openmetrics-text;version=1.0.0,"
		  "application/openmetrics-text;version=0.0.1;q=0.75,"
		  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", 1 },
		{ "application/openmetrics-text;q=0.1, text/plain;q=1", 0 },
		{ "application/openmetrics-text;q=0", 0 },
		{ "application/openmetrics-text;q=0.5, text/plain;q=0.5", 1 },
		{ "application/openmetrics-text;q=0.5, */*", 0 },
		{ "application/openmetrics-text;q=0.5, text/*;q=0.2, */*", 1 },
		{ "application/json", 0 },
		{ "application/openmetrics-textual", 0 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(negotiate_openmetrics(cases[i].header) ==
				      cases[i].want,
			      "Accept: %s: want %d", cases[i].header,
			      cases[i].want);
}
END_TEST

START_TEST(test_negotiate_tokenizer)
{
	const char *p = " a ;x=\"1,2\" ; q=0.25 ,b;q=1.000, c;q";
	struct hv_item it;

	ck_assert_int_eq(hv_next(&p, &it), 1);
	ck_assert_uint_eq(it.len, 1);
	ck_assert(it.name[0] == 'a');
	ck_assert_int_eq(it.q, 250);
	ck_assert_int_eq(hv_next(&p, &it), 1);
	ck_assert(it.name[0] == 'b');
	ck_assert_int_eq(it.q, 1000);
	ck_assert_int_eq(hv_next(&p, &it), 1);
	ck_assert(it.name[0] == 'c');
	ck_assert_int_eq(it.q, 1000);
	ck_assert_int_eq(hv_next(&p, &it), 0);
}
END_TEST

TEST_SUITE(negotiate)
{
	Suite *s = suite_create("negotiate");
	TCase *tc = tcase_create("Accept and Accept-Encoding");

	tcase_add_test(tc, test_negotiate_gzip_table);
	tcase_add_test(tc, test_negotiate_openmetrics_table);
	tcase_add_test(tc, test_negotiate_tokenizer);
	suite_add_tcase(s, tc);
	return s;
}
