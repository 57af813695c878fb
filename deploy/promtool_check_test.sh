#!/bin/bash
# promtool accepts deploy/alerts.yml and deploy/prometheus.yml (which loads alerts.yml), and the
# alerts fire (and stay silent) as deploy/alerts_test.yml says.
set -euo pipefail
if ! command -v promtool > /dev/null; then
  echo "skipped: promtool is not installed (Debian package prometheus)"
  exit 1  # never pass without checking: quickstart.sh installs it
fi
cd deploy
promtool check rules alerts.yml
promtool check config prometheus.yml
promtool test rules alerts_test.yml
echo "promtool: rules, config and rule tests OK"
