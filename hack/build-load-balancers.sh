#!/usr/bin/env bash
# Builds the load balancers of the drain tests that do not come from Debian, and caches them outside the repo:
#   traefik           (github.com/traefik/traefik/v3, built from the Go module proxy)
#   Gateway API CRDs  (sigs.k8s.io/gateway-api config/crd/{standard,experimental}, copied from the module)
# HAProxy and nginx come from Debian (hack/install-system-packages.sh). Idempotent: what exists is kept.
# Usage: build-load-balancers.sh [gateway-api] [traefik]   (default: both; the CRDs take seconds, Traefik
# several minutes cold). Prints the Traefik binary's path on its last line when it built Traefik.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../devtools/webapp_scaler_dev/devcluster/versions.env
source "$here/../devtools/webapp_scaler_dev/devcluster/versions.env"

cache=${WEBAPP_SCALER_CACHE:-$HOME/.cache/webapp-scaler}
bin="$cache/bin/traefik-$TRAEFIK_VERSION"
crds="$cache/gateway-api-$GATEWAY_API_VERSION"
src="$cache/src"
mkdir -p "$bin" "$src"
export GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0

step() { printf '\033[1m[load-balancers]\033[0m %s\n' "$*" >&2; }

build_traefik() {
  if [[ -x "$bin/traefik" ]]; then step "traefik $TRAEFIK_VERSION: cached"; return; fi
  local dir="$src/traefik-$TRAEFIK_VERSION"
  if [[ ! -f "$dir/go.mod" ]]; then
    step "downloading github.com/traefik/traefik/v3@$TRAEFIK_VERSION"
    local module
    module=$(cd "$src" && GOFLAGS= go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
    rm -rf "$dir.tmp" && cp -r "$module" "$dir.tmp" && chmod -R u+w "$dir.tmp" && mv "$dir.tmp" "$dir"
  fi
  # the module's own go.mod has replace directives, so it is built as the main module, as upstream does
  step "building traefik $TRAEFIK_VERSION (several minutes cold)"
  local s=$SECONDS
  (cd "$dir" && go build -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$bin/traefik.tmp" ./cmd/traefik)
  mv "$bin/traefik.tmp" "$bin/traefik"
  step "  done in $((SECONDS - s)) s"
}

gateway_api_crds() {
  if [[ -f "$crds/experimental/gateway.networking.k8s.io_httproutes.yaml" ]]; then
    step "Gateway API CRDs $GATEWAY_API_VERSION: cached"; return
  fi
  step "Gateway API CRDs $GATEWAY_API_VERSION (standard and experimental channels)"
  local module
  module=$(cd "$src" && GOFLAGS= GOTOOLCHAIN="$GATEWAY_API_GOTOOLCHAIN" \
    go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  rm -rf "$crds.tmp" && mkdir -p "$crds.tmp"
  for channel in standard experimental; do
    mkdir -p "$crds.tmp/$channel"
    # the CRDs only: the safe-upgrade ValidatingAdmissionPolicy and the kustomization are not needed here
    cp "$module/config/crd/$channel"/gateway.networking.*_*.yaml "$crds.tmp/$channel/"
    rm -f "$crds.tmp/$channel"/*_vap_*.yaml
  done
  rm -rf "$crds" && mv "$crds.tmp" "$crds"
}

targets=("$@")
((${#targets[@]})) || targets=(gateway-api traefik)
for target in "${targets[@]}"; do
  case $target in
    gateway-api) gateway_api_crds ;;
    traefik)
      build_traefik
      "$bin/traefik" version 2>/dev/null | head -1 | sed 's/^/  /' >&2 || true
      echo "$bin/traefik"
      ;;
    *) echo "unknown target $target: gateway-api or traefik" >&2; exit 2 ;;
  esac
done
