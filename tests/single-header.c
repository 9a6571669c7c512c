/*
 * The writer's slow path compiled into the test program itself, the way a
 * program with nothing to link gets it: test-writer-single-header runs
 * the same writer tests against this copy (the executable's definitions
 * take precedence over libshmetrics', which the reader side links).
 */
#define SHMETRICS_IMPLEMENTATION
#include <shmetrics.h>
