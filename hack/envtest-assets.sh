#!/usr/bin/env bash
# Build real kube-apiserver + etcd (and optionally kubectl) from the Go module
# proxy and cache them as controller-runtime envtest assets.
#
# Usage:  hack/envtest-assets.sh [BIN_DIR]      (default: $HOME/.cache/tollgate/k8s)
# Prints the assets directory (use it as KUBEBUILDER_ASSETS) on stdout;
# all progress goes to stderr. Idempotent: a second run with the binaries
# present and reporting the pinned versions returns immediately.
#
# Env knobs (pinned defaults):
#   K8S_VERSION=1.37.2   k8s.io/kubernetes tag to build kube-apiserver from
#   ETCD_VERSION=3.7.3   go.etcd.io/etcd/server/v3 tag (3.6.16 also works)
#   WITH_KUBECTL=0       1 = also build kubectl of the same version
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
WITH_KUBECTL="${WITH_KUBECTL:-0}"
BIN_DIR="${1:-${ENVTEST_BIN_DIR:-$HOME/.cache/tollgate/k8s}}"

mkdir -p "$BIN_DIR"
BIN_DIR="$(cd "$BIN_DIR" && pwd)"
ASSETS="$BIN_DIR/k8s-v${K8S_VERSION}-etcd-v${ETCD_VERSION}-$(go env GOOS)-$(go env GOARCH)"
log() { echo "[envtest-assets $(date +%T)] $*" >&2; }

have() {  # have <binary> <expected substring of its version output>
  [ -x "$ASSETS/$1" ] && "$ASSETS/$1" --version 2>/dev/null | grep -q -- "$2"
}
need_kubectl() { [ "$WITH_KUBECTL" = 1 ] && ! { [ -x "$ASSETS/kubectl" ] && "$ASSETS/kubectl" version --client 2>/dev/null | grep -q "v${K8S_VERSION}"; }; }

if have kube-apiserver "Kubernetes v${K8S_VERSION}" && have etcd "etcd Version: ${ETCD_VERSION}" && ! need_kubectl; then
  echo "$ASSETS"; exit 0
fi

# Build outside any project module / workspace, with static binaries.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/envtest-assets.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$ASSETS"
MINOR="${K8S_VERSION#*.}"; MINOR="${MINOR%%.*}"          # 1.37.2 -> 37
STAGING_VERSION="v0.${K8S_VERSION#1.}"                  # 1.37.2 -> v0.37.2

if ! have kube-apiserver "Kubernetes v${K8S_VERSION}" || need_kubectl; then
  log "kube-apiserver v${K8S_VERSION}: resolving modules"
  mkdir -p "$WORK/k8s" && cd "$WORK/k8s"
  KMOD="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$KMOD" ] || { log "cannot download k8s.io/kubernetes@v${K8S_VERSION}"; exit 1; }
  # Staging modules that kubernetes requires as v0.0.0 and replaces with ./staging/...;
  # point each at its published v0.X.Y tag instead.
  STAGING="$(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$KMOD" | sort -u)"
  REQUIRED="$(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) v0\.0\.0\([[:space:]].*\)\{0,1\}$#\1#p' "$KMOD" | sort -u)"
  go mod init envtestassets/k8s 2>/dev/null
  for m in $(comm -12 <(echo "$STAGING") <(echo "$REQUIRED")); do
    go mod edit -replace "$m=$m@${STAGING_VERSION}"
  done
  go mod edit -require "k8s.io/kubernetes@v${K8S_VERSION}"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v${K8S_VERSION}" >&2
  V=k8s.io/component-base/version
  LDFLAGS="-s -w -X $V.gitVersion=v${K8S_VERSION} -X $V.gitMajor=1 -X $V.gitMinor=${MINOR}"
  LDFLAGS="$LDFLAGS -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
  if ! have kube-apiserver "Kubernetes v${K8S_VERSION}"; then
    log "kube-apiserver v${K8S_VERSION}: building (~5 min cold on 2 cores)"
    go build -trimpath -ldflags "$LDFLAGS" -o "$ASSETS/.kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    mv -f "$ASSETS/.kube-apiserver.tmp" "$ASSETS/kube-apiserver"
  fi
  if need_kubectl; then
    log "kubectl v${K8S_VERSION}: building"
    go get "k8s.io/kubernetes/cmd/kubectl@v${K8S_VERSION}" >&2
    go build -trimpath -ldflags "$LDFLAGS" -o "$ASSETS/.kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
    mv -f "$ASSETS/.kubectl.tmp" "$ASSETS/kubectl"
  fi
fi

if ! have etcd "etcd Version: ${ETCD_VERSION}"; then
  log "etcd v${ETCD_VERSION}: building"
  mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
  go mod init envtestassets/etcd 2>/dev/null
  go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
  go build -trimpath -ldflags "-s -w" -o "$ASSETS/.etcd.tmp" go.etcd.io/etcd/server/v3
  mv -f "$ASSETS/.etcd.tmp" "$ASSETS/etcd"
fi

have kube-apiserver "Kubernetes v${K8S_VERSION}" && have etcd "etcd Version: ${ETCD_VERSION}" \
  || { log "built binaries do not report the pinned versions"; exit 1; }
log "ready: $ASSETS"
echo "$ASSETS"
