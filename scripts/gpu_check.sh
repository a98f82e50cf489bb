#!/usr/bin/env bash
# GPU measurements of the README's performance section, in one call (a lent GPU machine has no venv; run with
# PYTHONPATH=.): the paper-setting phase 2 (HRNet-W32 + VDSR-CA 20x64 at 256x128), model step and end to end
# (data included), with the generic trainer and the real phase-2 stage:
#   1. P x K = 4 x 6 (the paper's batch): bf16+cl
#   2. P x K = 16 x 6: bf16+cl, eager
#   3. P x K = 16 x 6: bf16+cl, torch.compile
# Usage: OUT=dir scripts/gpu_check.sh     (writes bench JSONs and logs to OUT)
set -uo pipefail
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TQDM_DISABLE=1
OUT=${OUT:-outputs/gpu_check}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)" | tee -a "$OUT/device.txt"
B="python3 scripts/bench_train.py --backbone hrnet_w32 --identities 160 --images 5 --steps 10 --warmup 3"
$B --p 4 --k 6 --variants bf16+cl --epochs 2 --tag _p4k6 2>&1 | tee "$OUT/bench_p4k6.log"
$B --p 16 --k 6 --variants bf16+cl --epochs 3 --tag _p16k6 2>&1 | tee "$OUT/bench_p16k6.log"
timeout 200 $B --p 16 --k 6 --variants bf16+cl --epochs 3 --compile --tag _p16k6_compile 2>&1 | tail -30 | tee "$OUT/bench_compile.log"
cp outputs/bench/train_hrnet_w32_*.json "$OUT/" 2>/dev/null
ls "$OUT"
