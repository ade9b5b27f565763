#!/usr/bin/env bash
# Run every Go fuzz target in the module for FUZZTIME each (default 10s).
# Usage: hack/fuzz.sh [FUZZTIME]      e.g. hack/fuzz.sh 2m
# Targets are discovered with `go test -list`, so new Fuzz* functions are
# picked up without editing this script. The seed corpus of each target also
# runs in every plain `go test`.
set -euo pipefail
FUZZTIME="${1:-${FUZZTIME:-10s}}"
fail=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  ls "$dir"/*_test.go >/dev/null 2>&1 || continue
  grep -qs '^func Fuzz' "$dir"/*_test.go || continue
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "==> $pkg $target ($FUZZTIME)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"; then
      echo "FAIL: $pkg $target"; fail=1
    fi
  done
done
exit $fail
