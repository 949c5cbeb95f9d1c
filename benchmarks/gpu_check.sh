#!/usr/bin/env bash
# The GPU check of softthink: one script, under 10 minutes on one H200 (CI has no GPU).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default OUT_DIR: benchmarks/results/gpu_check
#
# 1. the CUDA equivalence tests (pytest -m cuda: softthink discrete == model.generate in bf16, soft with one kept
#    token == greedy, compile=True == eager under CUDA graphs), about two minutes;
# 2. benchmarks/decode_speed.py on random-init Qwen2.5-1.5B and Llama-3-8B shapes (no download), bf16, batch 1, 16
#    and 64: model.generate and softthink discrete / soft / gated, plus vLLM discrete when vLLM is installed; the
#    compiled variants too (--compile: model.generate with a static cache, softthink with compile=True).
# Each step has its own time limit, and each model writes its JSON + markdown table as soon as it is done, so a step
# cut short keeps what it measured. The exit status is that of the first step that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
status=0
step() {  # step NAME SECONDS COMMAND...: run COMMAND under a time limit, log it, remember the first failure
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - start))s"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

python - <<'EOF' 2>&1 | tee "$OUT/environment.txt"
import torch, transformers
assert torch.cuda.is_available(), "gpu_check.sh needs a CUDA device: torch sees none"
print("gpu", torch.cuda.get_device_name(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| transformers", transformers.__version__)
try:
    import vllm
    print("vllm", vllm.__version__)
except ImportError:
    print("vllm not installed: its rows are skipped")
EOF
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

COMPILE=()
if python -c "import dataclasses, softthink, sys; sys.exit('compile' not in {f.name for f in dataclasses.fields(softthink.DecodeConfig)})"; then
    COMPILE=(--compile)
    echo "softthink has a compile option: timing the compiled variants too"
else
    echo "softthink has no compile option yet: eager only"
fi
BENCH=(python benchmarks/decode_speed.py --device cuda --batch-sizes 1 16 64 --max-new-tokens 64 --repeats 2 "${COMPILE[@]}")

step cuda_tests 150 python -m pytest tests/equivalence/test_cuda.py -m cuda -q -rs
step bench_qwen2.5-1.5b 200 "${BENCH[@]}" --arch qwen2.5-1.5b --out "$OUT/qwen2.5-1.5b"
step bench_llama3-8b 230 "${BENCH[@]}" --arch llama3-8b --out "$OUT/llama3-8b"

echo "=== results in $OUT (total ${SECONDS}s)"
cat "$OUT"/*.md 2>/dev/null
exit $status
