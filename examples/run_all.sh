#!/usr/bin/env bash
# Runs every flexjit example found in a bin directory; exits nonzero if any
# fails (or none is found). Usage: run_all.sh [BIN_DIR]  (default: this script's dir)
set -uo pipefail
bin_dir="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
shopt -s nullglob
examples=("$bin_dir"/flexjit_example_*)
if [ ${#examples[@]} -eq 0 ]; then
  echo "run_all.sh: no flexjit_example_* programs in $bin_dir" >&2
  exit 1
fi
failed=()
for example in "${examples[@]}"; do
  [ -x "$example" ] || continue
  echo "################ $(basename "$example")"
  if ! "$example"; then
    failed+=("$(basename "$example")")
  fi
done
echo "################ ${#examples[@]} examples run, ${#failed[@]} failed"
if [ ${#failed[@]} -ne 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
