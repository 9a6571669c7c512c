#include "config.h"
#include "test-common.h"
TEST_SUITE(multiproc)
{
	return suite_create("multiproc");
}
