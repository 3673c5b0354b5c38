# Sourced by the session device scripts (bench/results/session*/run*.sh), run from the repo
# root on the GPU machine over a carried gpu_carry/ (scripts/gpu_carry.sh): unpacks dist/, points
# the library, the Python package and a fresh kernel cache at it, puts pytest on the path when
# the machine's python lacks it, and defines L (the logs under $OUT), t NAME RC (a step's status
# and seconds so far) and left SECONDS NAME (false, saying so, once SECONDS have passed).
tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
export FLEXJIT_LIBRARY=$PWD/dist/lib/libflexjit.so
python3 -c "import pytest" 2>/dev/null || export PYTHONPATH=$PWD/gpu_carry/pylib
L=$OUT/logs
mkdir -p "$L"
s=$(date +%s)
t() { echo "$1 rc=$2 $(( $(date +%s)-s )) s"; }
left() { [ $(( $(date +%s)-s )) -lt "$1" ] || { echo "skipped: $2 (time)"; return 1; }; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
