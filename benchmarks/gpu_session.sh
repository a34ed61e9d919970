#!/usr/bin/env bash
# Every GPU measurement issue 23 asks for, prepared to run in one go on a GPU machine, each part
# under its own timeout, everything it measures written under OUT (default $OUT, else ./gpu_out):
#
#   quick (about 3 min on an H200)
#     tests      pytest of the CUDA-only tests (the graphed step, Triton kernels, the custom op)
#     kernels    benchmarks/activation_speed.py: Mila (Triton) against F.mish, F.silu, F.relu,
#                1M to 64M elements, fp32 and bf16
#     models     benchmarks/model_step.py: timm ResNet-50 and MobileNetV2 steps, Mila/Mish/ReLU,
#                fp32 and bf16 + channels_last
#     demo       the demo as a whole process (`time`), plain and with trainer.cuda_graph=true
#   packs (a few minutes; issue 24's GPU goals)
#     pack_speed benchmarks/pack_speed.py: the β sweep (105 demo runs) packed, against one run alone
#                (goal: ≤ 2×), and the ResNet-20 table's 24 runs packed for one epoch (images/s;
#                goal ≥ 67,000)
#   check (about 8 min)
#     gpu_check  benchmarks/gpu_check.py --device cuda: agreement, resume, every throughput
#                variant, Mila's accuracy; its verdict is the exit code
#
# Usage: bash benchmarks/gpu_session.sh [quick|packs|check|all]   (default all, which takes more
# than one 10-minute device call: run the parts as separate calls there, quick and check first)
# On a machine without network access that lacks packages, see ../shared/offline-gpu/README.md
# (PYTHONPATH to the bundle; pytest and its pure-Python dependencies go in the bundle too).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
part=${1:-all}
status=0

run() {  # run NAME SECONDS CMD...: the command's output in $OUT/NAME.log, its time and code in $OUT/times.txt
    local name=$1 seconds=$2
    shift 2
    echo "== $name: $*" | tee -a "$OUT/times.txt"
    local start=$(date +%s%N)
    timeout "$seconds" "$@" >"$OUT/$name.log" 2>&1
    local code=$?
    local ms=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "   $name: exit $code, $((ms / 1000)).$(printf %03d $((ms % 1000))) s" | tee -a "$OUT/times.txt"
    tail -n 25 "$OUT/$name.log"
    [ "$code" -eq 0 ] || status=1
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/device.txt" 2>&1
$PY -c "import torch, triton; print(torch.__version__, torch.version.cuda, triton.__version__)" >>"$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

if [ "$part" = quick ] || [ "$part" = all ]; then
    run tests 240 $PY -m pytest -q -p no:cacheprovider tests/test_cuda_graph.py tests/test_triton_mila.py tests/test_mila_op.py
    run kernels 120 $PY benchmarks/activation_speed.py --device cuda --sizes 1e6 4e6 1.6e7 6.4e7 \
        --dtypes float32 bfloat16 --repeats 20
    run models 120 $PY benchmarks/model_step.py --device cuda --json "$OUT/model_step.json"
    run models_amp 120 $PY benchmarks/model_step.py --device cuda --amp --json "$OUT/model_step_amp.json"
    demo="$PY demo.py --activation mila --model_initialization class results.dir=$OUT/demo/results results.markdown=$OUT/demo/Results.md"
    run demo 90 $demo trainer.progress=false
    run demo_again 90 $demo trainer.progress=false  # a second process: caches warm
    run demo_cuda_graph 90 $demo trainer.progress=false trainer.cuda_graph=true
    find "$OUT/demo" -name '*.pt' -delete 2>/dev/null  # checkpoints stay behind: only summaries and metrics come back
fi
if [ "$part" = packs ] || [ "$part" = all ]; then
    run pack_beta 300 $PY benchmarks/pack_speed.py --preset beta --device cuda --only packed --one-run \
        --json "$OUT/pack_beta.json"
    cifar=$(mktemp -d)  # CIFAR-10's files, full size, of class-coloured images (no download here)
    $PY -c "import sys; from pathlib import Path; sys.path.insert(0, 'tests'); from cifar_files import write_cifar10; write_cifar10(Path('$cifar'), 50000, 10000)"
    run pack_table 300 $PY benchmarks/pack_speed.py --preset table --device cuda --only packed --epochs 1 \
        --json "$OUT/pack_table.json" "dataset.root=$cifar" dataset.verify=false
    rm -rf "$cifar"
fi
if [ "$part" = check ] || [ "$part" = all ]; then
    run gpu_check 540 $PY benchmarks/gpu_check.py --device cuda --out "$OUT/gpu_check.json"
fi
exit $status
