/*
 * The writer's slow path, compiled once into libshmetrics: the same code a
 * program gets by defining SHMETRICS_IMPLEMENTATION in one of its files.
 */
#include "config.h"

#define SHMETRICS_IMPLEMENTATION
#include <shmetrics.h>
