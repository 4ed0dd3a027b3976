#!/usr/bin/env bash
# Fails when a control-plane or load-balancer process started by the test run (its files live under
# pytest's temporary directories) is still running after the run: the proof that teardown never leaks.
set -euo pipefail
leaks=$(pgrep -af 'etcd|kube-apiserver|kube-controller-manager|traefik|nginx|haproxy' | grep -E 'pytest-of-|webapp-scaler-cluster-' | grep -v pgrep || true)
if [[ -n "$leaks" ]]; then
  echo "leaked control-plane or load-balancer processes after the test run:" >&2
  echo "$leaks" >&2
  exit 1
fi
echo "no control-plane or load-balancer process left behind"
