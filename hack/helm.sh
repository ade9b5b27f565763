#!/usr/bin/env bash
# Build a pinned helm from the Go module proxy and cache it outside the clone.
#
# Usage:  hack/helm.sh [BIN_DIR]      (default: $HOME/.cache/tollgate/bin)
# Prints the path of the helm binary on stdout; progress goes to stderr.
# Idempotent: with the pinned version already cached it returns in
# milliseconds, so tests and CI on the same machine pay the ~75 s build once.
#
# Env knobs:
#   HELM_VERSION=v3.22.0   helm.sh/helm/v3 tag
#   HELM_KUBE_MINOR=37     Kubernetes 1.<minor> that helm template assumes by default
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
BIN_DIR="${1:-${HELM_BIN_DIR:-$HOME/.cache/tollgate/bin}}"
mkdir -p "$BIN_DIR"
BIN_DIR="$(cd "$BIN_DIR" && pwd)"
# The Kubernetes version `helm template` assumes without --kube-version; a
# plain `go install` leaves it at 1.20, release builds stamp a current one.
KUBE_MINOR="${HELM_KUBE_MINOR:-37}"
HELM="$BIN_DIR/helm-${HELM_VERSION}-k8s1.${KUBE_MINOR}"
log() { echo "[helm $(date +%T)] $*" >&2; }

if [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q -- "^${HELM_VERSION}"; then
  echo "$HELM"; exit 0
fi

log "building helm ${HELM_VERSION} (~75 s on 2 cores)"
# Outside the project module: helm's dependencies must not touch go.mod.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/helm-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# Stamp the version so `helm version` reports it (and the check above
# works), and the default Kubernetes version.
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
LDFLAGS="$LDFLAGS -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${KUBE_MINOR}"
GOBIN="$WORK/bin" go install -trimpath -ldflags "$LDFLAGS" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
mv -f "$WORK/bin/helm" "$HELM.tmp"
mv -f "$HELM.tmp" "$HELM"
ln -sf "$(basename "$HELM")" "$BIN_DIR/helm"
"$HELM" version --short 2>/dev/null | grep -q -- "^${HELM_VERSION}" \
  || { log "built helm does not report ${HELM_VERSION}: $("$HELM" version --short 2>&1)"; exit 1; }
log "ready: $HELM"
echo "$HELM"
