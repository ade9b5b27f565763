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
    for try in 1 2; do
      log=$(mktemp)
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
        rm -f "$log"; break
      fi
      # Go's fuzzing engine sometimes ends a short run with a bare "context
      # deadline exceeded" when -fuzztime runs out while a worker is busy on
      # a loaded machine; that is no finding (no input is written). Such a
      # run is repeated once; a real failure names its input and fails.
      if [ "$try" -eq 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "(fuzzing engine timed out without a finding; running $target again)"
        rm -f "$log"; continue
      fi
      rm -f "$log"; echo "FAIL: $pkg $target"; fail=1; break
    done
  done
done
exit $fail
