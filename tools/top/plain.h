/*
 * shmetrics-top: output without a terminal (--once, --json), and the
 * summary line the interactive view shares.
 */
#ifndef SHMETRICS_TOP_PLAIN_H
#define SHMETRICS_TOP_PLAIN_H

#include <stdio.h>

#include "model.h"

/* "series 12/131072 cells ... writers 3 live 0 dead failures 0" */
void top_summary(const struct top_model *m, char *out, size_t len);

/* A figure in at most width columns ("-" for NaN), for tables. */
void top_format_number(double x, int width, char *out, size_t len);

/* The table as plain text, or as JSON; 0 or -ENOMEM / -EIO. */
int top_print_text(const struct top_model *m, FILE *out);
int top_print_json(const struct top_model *m, FILE *out);

#endif /* SHMETRICS_TOP_PLAIN_H */
