#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy and caches it outside the repo:
#   kube-apiserver, kube-controller-manager, kubectl  (k8s.io/kubernetes, staging modules pinned to v0.Y.Z)
#   etcd                                                (go.etcd.io/etcd/server/v3)
#   helm                                                (helm.sh/helm/v3/cmd/helm)
# Idempotent: a binary that already exists for the pinned version is not rebuilt.
# Before building a tool it looks for one the user already has, and copies it into the cache when its
# version fits (Kubernetes and etcd: the pinned minor release; helm: the pinned major):
#   $WEBAPP_SCALER_BINARIES  a directory the user names (any of the five tools)
#   $KUBEBUILDER_ASSETS      controller-runtime's envtest assets (etcd, kube-apiserver, kubectl)
# Prints the directory holding the binaries on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../devtools/webapp_scaler_dev/devcluster/versions.env
source "$here/../devtools/webapp_scaler_dev/devcluster/versions.env"

cache=${WEBAPP_SCALER_CACHE:-$HOME/.cache/webapp-scaler}
bin="$cache/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
src="$cache/src"
mkdir -p "$bin" "$src"
export GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0

step() { printf '\033[1m[control-plane]\033[0m %s\n' "$*" >&2; }
have() { [[ -x "$bin/$1" ]]; }
elapsed() { local s=$SECONDS; "$@"; step "  done in $((SECONDS - s)) s"; }

# the version a binary reports, as vMAJOR.MINOR.PATCH (empty when it reports none)
version_of() {
  local out
  case "$1" in
    kubectl) out=$("$2" version --client 2>/dev/null) ;;
    helm) out=$("$2" version --short 2>/dev/null) ;;
    *) out=$("$2" --version 2>/dev/null) ;;
  esac
  printf '%s' "$out" | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1 | sed 's/^/v/'
}

# the part of the pinned version a borrowed binary must match
wanted_prefix() {
  case "$1" in
    etcd) echo "${ETCD_VERSION%.*}." ;;
    helm) echo "${HELM_VERSION%%.*}." ;;
    *) echo "${KUBERNETES_VERSION%.*}." ;;
  esac
}

borrow() {
  local tool=$1 dir found want
  want=$(wanted_prefix "$tool")
  for dir in ${WEBAPP_SCALER_BINARIES:-} ${KUBEBUILDER_ASSETS:-}; do
    [[ -x "$dir/$tool" ]] || continue
    found=$(version_of "$tool" "$dir/$tool")
    if [[ -n "$found" && "$found" == "$want"* ]]; then
      cp "$dir/$tool" "$bin/$tool.tmp" && mv "$bin/$tool.tmp" "$bin/$tool"
      echo "$tool $found from $dir/$tool" >>"$bin/BORROWED"
      step "$tool: using $dir/$tool ($found; ${want}x wanted), no build"
      return 0
    fi
    step "$tool: $dir/$tool is ${found:-of unknown version}, ${want}x wanted: not used"
  done
  return 1
}

for tool in etcd kube-apiserver kube-controller-manager kubectl helm; do
  have "$tool" || borrow "$tool" || true
done

build_kubernetes() {
  if have kube-apiserver && have kube-controller-manager && have kubectl; then
    step "kube-apiserver, kube-controller-manager, kubectl $KUBERNETES_VERSION: cached"; return
  fi
  local dir="$src/kubernetes-$KUBERNETES_VERSION" staging_version="v0.${KUBERNETES_VERSION#v1.}"
  mkdir -p "$dir"
  if [[ ! -f "$dir/go.sum" ]]; then
    step "resolving k8s.io/kubernetes $KUBERNETES_VERSION (staging modules pinned to $staging_version)"
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    {
      echo "module webapp-scaler.local/control-plane"
      echo
      echo "go $(sed -n 's/^go //p' "$gomod")"
      echo
      echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
      echo
      echo "replace ("
      # every "k8s.io/x => ./staging/src/k8s.io/x" line of kubernetes' own go.mod becomes a real version
      sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod"
      echo ")"
    } >"$dir/go.mod"
    printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >"$dir/tools.go"
    (cd "$dir" && go mod tidy 2>&1 | sed 's/^/  /' >&2) || { rm -f "$dir/go.sum"; return 1; }
  fi
  local major=${KUBERNETES_VERSION#v} ; major=${major%%.*}
  local minor=${KUBERNETES_VERSION#v*.} ; minor=${minor%%.*}
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    have "$cmd" && { step "$cmd $KUBERNETES_VERSION: cached"; continue; }
    step "building $cmd $KUBERNETES_VERSION (several minutes cold)"
    (cd "$dir" && elapsed go build -ldflags "-s -w $ld" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$bin/$cmd.tmp" "$bin/$cmd"
  done
}

build_etcd() {
  have etcd && { step "etcd $ETCD_VERSION: cached"; return; }
  local dir="$src/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  step "building etcd $ETCD_VERSION"
  if [[ ! -f "$dir/go.sum" ]]; then
    printf 'module webapp-scaler.local/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
    printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$dir/tools.go"
    (cd "$dir" && go mod tidy 2>&1 | sed 's/^/  /' >&2) || { rm -f "$dir/go.sum"; return 1; }
  fi
  (cd "$dir" && elapsed go build -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/etcd.tmp" "$bin/etcd"
}

build_helm() {
  have helm && { step "helm $HELM_VERSION: cached"; return; }
  step "building helm $HELM_VERSION"
  local gobin="$src/helm-$HELM_VERSION"
  mkdir -p "$gobin"
  elapsed env GOBIN="$gobin" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  cp "$gobin/helm" "$bin/helm.tmp" && mv "$bin/helm.tmp" "$bin/helm"
}

build_etcd
build_kubernetes
build_helm
"$bin/kubectl" version --client 2>/dev/null | head -1 | sed 's/^/  /' >&2 || true
echo "$bin"
