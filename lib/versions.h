/*
 * lib/versions.c: versions of a name in an index.  Internal to lib/.
 */
#ifndef SHMETRICS_VERSIONS_H
#define SHMETRICS_VERSIONS_H

#include "reader-private.h"

/* The prefix every global of the library has (tests/check-symbols.sh). */
#define join_versions shmet_priv_join_versions

/*
 * With idx's series linked to their families: hide gauge series that a
 * newer version of their name has, merge histogram series across
 * versions (idx->merges).  0 or -ENOMEM.
 */
int join_versions(struct shmet_index *idx);

#endif /* SHMETRICS_VERSIONS_H */
