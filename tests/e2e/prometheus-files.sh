#!/bin/sh
# The shipped Prometheus files: config, rules and the Alertmanager config
# valid, alert unit tests (each alert fires after its `for` on its
# condition, and not below it).
set -eu
dir=$1/tools/prometheus
promtool check config "$dir/prometheus.yml"
promtool check config "$dir/prometheus-file-sd.yml"
promtool check rules "$dir/alerts.yml" "$dir/recording.yml"
amtool check-config "$dir/alertmanager.yml"
cd "$dir" && promtool test rules alerts_test.yml
