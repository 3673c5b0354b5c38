#!/usr/bin/env bash
# The main job: set up and build (scripts/setup.sh), then run every example.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FLEXJIT_BUILD_DIR:-$repo/build}"
bash "$repo/scripts/setup.sh"
bash "$repo/examples/run_all.sh" "$build_dir/examples"
