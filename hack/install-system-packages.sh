#!/usr/bin/env bash
# Debian packages the tests and the demo need. Installs only what is missing; no-op on a second run.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
command -v go >/dev/null || need+=(golang-go)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
{ command -v prometheus && command -v promtool; } >/dev/null || need+=(prometheus) # the demo's; promtool tests monitoring/
((${#need[@]} == 0)) && exit 0
echo "[system-packages] installing ${need[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
