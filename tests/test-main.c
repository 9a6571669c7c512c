/*
 * Runs every suite linked into this binary.  CK_FORK=no for gdb/valgrind.
 */
#include "config.h"

#include <stdlib.h>

#include "test-common.h"

extern const struct test_suite __start_test_suite_section;
extern const struct test_suite __stop_test_suite_section;

int
main(void)
{
	SRunner *sr = srunner_create(NULL);
	int failed;

	for (const struct test_suite *t = &__start_test_suite_section;
	     t < &__stop_test_suite_section; t++)
		srunner_add_suite(sr, t->setup());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
