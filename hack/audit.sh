#!/usr/bin/env bash
# `npm audit` of production dependencies, failing on high/critical advisories. Where the registry
# offers no audit endpoint (the development machines' registry answers 405), say so and go on:
# an unreachable advisory database is not a vulnerability, and hiding the warning would be worse.
set -uo pipefail
out="$(npm audit --omit=dev --audit-level=high 2>&1)"
code=$?
if [[ $code -ne 0 ]] && grep -q "audit endpoint returned an error" <<<"$out"; then
  echo "npm audit: the registry has no audit endpoint here ($(grep -o '[0-9]\{3\} [A-Za-z ]*' <<<"$out" | head -1)); skipped, not passed" >&2
  exit 0
fi
echo "$out"
exit $code
