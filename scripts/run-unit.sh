#!/usr/bin/env bash
# Run each unit test binary and print one tally line for all of them.
set -u
pass=0 fail=0 status=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | tail -n 1)
  p=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
  f=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
  if [ "$rc" -ne 0 ] || [ -z "$p" ]; then
    printf '%s\n' "$out" >&2
    echo "unit: $(basename "$t") FAILED (exit $rc)" >&2
    status=1; fail=$((fail + ${f:-1}))
  else
    echo "unit: $(basename "$t"): $line"
  fi
  pass=$((pass + ${p:-0}))
done
echo "unit: $pass passed, $fail failed"
exit $status
