#!/usr/bin/env bash
# The GPU figures in one run (benchmarks/RESULTS.md, "GPU"): training images/s of the main presets in fp32, bf16
# and compiled; then the time-to-quality search's preset on the GPU. Run from the repository root on a CUDA machine:
#   bash benchmarks/gpu.sh [OUT_DIR]        # default benchmarks/gpu-<date>/; each script's output in its own file
# Needs the data under ../shared/data (or GANBENCH_DATA) and a CUDA build of torch; writes nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-benchmarks/gpu-$(date +%Y%m%d-%H%M)}
mkdir -p "$OUT"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'benchmarks/gpu.sh: no CUDA device is visible to torch; run it on a GPU machine')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
"$PY" benchmarks/gpu_speed.py --device cuda 2>&1 | tee "$OUT/gpu_speed.txt"
"$PY" benchmarks/time_to_quality.py --minutes 3 --every 200 experiment=fast_hoda device=cuda 2>&1 | tee "$OUT/time_to_quality.txt"
echo "gpu.sh: figures in $OUT"
