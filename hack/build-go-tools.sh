#!/usr/bin/env bash
# Builds the two Go harnesses the status tests read the operator's WebAppScalings with, and caches them
# outside the repo:
#   kstatus     (hack/kstatus: sigs.k8s.io/cli-utils pkg/kstatus/status.Compute, as Flux and kpt compute it)
#   lua-health  (hack/lua-health: github.com/yuin/gopher-lua with the library set Argo CD gives a health
#                script of argocd-cm, for manifests/argocd/resource_customizations)
# Both are small modules of this repo whose go.mod pins the versions of versions.env; their dependencies
# come from the Go module proxy. Idempotent: the cache directory is named after the pinned versions and a
# hash of the harnesses' sources, so an edit of main.go builds anew and nothing else does.
# Prints the directory holding both binaries on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../devtools/webapp_scaler_dev/devcluster/versions.env
source "$here/../devtools/webapp_scaler_dev/devcluster/versions.env"

cache=${WEBAPP_SCALER_CACHE:-$HOME/.cache/webapp-scaler}
# the same file list and order as webapp_scaler_dev.devcluster.go_tools.source_hash()
sources=$(cd "$here" && find kstatus lua-health -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort)
hash=$(cd "$here" && cat $sources | sha256sum | cut -c1-12)
bin="$cache/bin/go-tools-cli-utils-$CLI_UTILS_VERSION-gopher-lua-$GOPHER_LUA_VERSION-$hash"
mkdir -p "$bin"
export GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0

step() { printf '\033[1m[go-tools]\033[0m %s\n' "$*" >&2; }

# a go.mod that disagrees with versions.env would build another version than the one the cache names
pinned() {
  grep -qE "^[[:space:]]*(require[[:space:]]+)?$2 $3\$" "$here/$1/go.mod" ||
    { echo "hack/$1/go.mod does not require $2 $3 (versions.env)" >&2; exit 1; }
}
pinned kstatus sigs.k8s.io/cli-utils "$CLI_UTILS_VERSION"
pinned lua-health github.com/yuin/gopher-lua "$GOPHER_LUA_VERSION"

build() {
  local tool=$1 what=$2
  if [[ -x "$bin/$tool" ]]; then step "$tool ($what): cached"; return; fi
  step "building $tool ($what; a minute cold)"
  local s=$SECONDS
  (cd "$here/$tool" && go build -ldflags "-s -w" -o "$bin/$tool.tmp" .)
  mv "$bin/$tool.tmp" "$bin/$tool"
  step "  done in $((SECONDS - s)) s"
}

build kstatus "sigs.k8s.io/cli-utils $CLI_UTILS_VERSION"
build lua-health "github.com/yuin/gopher-lua $GOPHER_LUA_VERSION"
echo "$bin"
