#include "config.h"
#include "test-common.h"
TEST_SUITE(reader)
{
	return suite_create("reader");
}
