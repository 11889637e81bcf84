#!/usr/bin/env bash
#! The GPU check: one short run on a GPU machine that measures what has never been measured on one.
#! Needs only the release binary and a torch 2.11.0 (its python, for synthetic data and the
#! benchmark's model; its lib folder, for the binary). At most 12.5 minutes (its steps' limits), less on an H200.
#!
#!   scripts/gpu-check.sh [--device cuda:0|cpu] [--quick] [--bin PATH] [--python PATH] [--out DIR]
#!
#! It prints, with the machine: `iscp bench --model` (a TorchScript 3-conv BatchNorm CNN trained by
#! scripts/reference_search.py on synthetic Fashion-MNIST-shaped data: seconds per search one by one
#! and batched, and end to end through `iscp run`, in fp32 and in every reduced precision the device
#! has: bf16 and fp16 on CUDA, bf16 on CPUs with bf16 instructions; each with its time and agreement
#! with fp32: selected pixels, PW, argmax decisions changed); on CUDA also `iscp bench --resnets` (ResNet-18/50
#! batched searches per minute at K = 32, 64, 128, 256, device memory taken beside memory.rs's
#! estimate; one small-CNN training epoch in fp32 and one with mixed precision); a smoke sweep
#! through `iscp run --device DEVICE` end to end, its tables checked; and a 4-model population
#! audit on the device (every detector, batched over the classes: its seconds a model).
#! --device defaults to cuda:0 when nvidia-smi sees a GPU, else cpu; --quick shrinks the data (the
#! CPU-side run `make test` does). Exit 2: bad arguments or a missing binary/python.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
usage() { echo "usage: scripts/gpu-check.sh [--device cuda:0|cpu] [--quick] [--bin PATH] [--python PATH] [--out DIR]" >&2; }

device="" quick=0 bin="" python="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="${2:?--device needs a value}"; shift 2 ;;
    --quick) quick=1; shift ;;
    --bin) bin="${2:?--bin needs a path}"; shift 2 ;;
    --python) python="${2:?--python needs a path}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument $1" >&2; usage; exit 2 ;;
  esac
done
if [ -z "$bin" ]; then
  for b in "$here/target/release/iscp" "$here/iscp"; do [ -x "$b" ] && bin="$b" && break; done
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "gpu-check: no iscp binary (build target/release/iscp or pass --bin)" >&2; exit 2
fi
if [ -z "$python" ]; then
  for p in /opt/torch/.venv/bin/python3 "${ISCP_TORCH_VENV:-/nonexistent}/bin/python3" python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c "import torch" 2>/dev/null; then python="$p"; break; fi
  done
fi
if [ -z "$python" ] || ! "$python" -c "import torch" 2>/dev/null; then
  echo "gpu-check: no python with torch (pass --python)" >&2; exit 2
fi
if [ -z "$device" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then device=cuda:0; else device=cpu; fi
fi
case "$device" in cpu|cuda|cuda:[0-9]*) ;; *) echo "gpu-check: unknown device $device" >&2; exit 2 ;; esac
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out="${out:-$(mktemp -d)}"
mkdir -p "$out"
ref() { "$python" "$here/scripts/reference_search.py" "$@" 2> >(grep -v -i numpy >&2); }
step() { echo; echo "== $* ($(date +%T))"; }
# A step that fails (or runs past its limit) is reported and the next one still runs.
failed=()
try() {
  local name="$1" limit="$2"; shift 2
  local rc=0
  timeout "$limit" "$@" || rc=$?
  if [ "$rc" != 0 ]; then echo "!! $name failed (exit $rc)"; failed+=("$name"); fi
}

step "machine"
echo "device $device; binary $bin; torch from $torch_lib"
nproc; (nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true)

if [ "$quick" = 1 ]; then train=1000 test=200 epochs=8; else train=10000 test=10000 epochs=2; fi
step "data and model: $train/$test synthetic 28x28 images, a 3-conv BatchNorm CNN ($epochs epochs)"
ref synth --out "$out/data" --train "$train" --test "$test"
ref train --data "$out/data" --out "$out/model.pt" --epochs "$epochs"

step "iscp bench --model on $device"
try "bench --model" 360 "$bin" bench --model "$out/model.pt" --data "$out/data" --device "$device"

case "$device" in
  cuda*)
    step "iscp bench --resnets on $device (K = 32, 64, 128, 256; fp32 and mixed-precision training)"
    try "bench --resnets" 180 "$bin" bench --device "$device" --data "$out/data" --canvases 4 --resnets \
      --resnet-k 32,64,128,256 --resnet-steps 20
    ;;
esac

step "smoke sweep: iscp run --device $device"
spec="$here/experiments/smoke.toml"
if [ "$quick" = 1 ]; then
  # The CPU-side run: the smoke spec without its variants and baselines, so that it stays short.
  spec="$out/smoke-quick.toml"
  sed -e 's/^tv_betas = .*/tv_betas = [0.0]/' -e 's/^learned_canvas = .*/learned_canvas = [false]/' \
      -e 's/^uap_eps = .*/uap_eps = []/' -e 's/^gradcam = .*/gradcam = false/' \
      "$here/experiments/smoke.toml" > "$spec"
fi
try "smoke sweep" 180 "$bin" run "$spec" --results "$out/smoke" --device "$device" --quiet
try "smoke tables" 30 "$python" - "$out/smoke/smoke" <<'EOF'
import glob, sys  # the GPU machine's python may lack pyarrow: count parts only
root = sys.argv[1]
for table in ("models", "searches", "patterns"):
    parts = glob.glob(f"{root}/{table}/*.parquet")
    print(f"{table}: {len(parts)} parts")
    if not parts:
        sys.exit(f"gpu-check: the smoke sweep wrote no {table}")
EOF
step "population audit: iscp run --device $device (4 models, every detector batched over the classes)"
# Two clean and two BadNets small CNNs on synthetic data; ISCP, Neural Cleanse, MM-BD and the UAP
# scan on each: the audit table's last column is each detector's seconds a model on this device.
pop="$out/population.toml"
cat > "$pop" <<'SPEC'
name = "gpu-population"
seed = 7

[data]
kind = "synthetic"
classes = 5
size = 24
channels = 1
train = 2000
test = 1000

[population]
clean = 2
badnets = 2
trigger_sizes = [3, 4]
poison_rates = [0.08, 0.10]
train = { epochs = 3, batch = 64, lr = 0.05 }
cleanse = { epochs = 10 }

[search]
canvases = [{ kind = "positive", n = 1 }, { kind = "white" }]
alphas = [0.2]
sizes = [0.01]
SPEC
try "population audit" 240 "$bin" run "$pop" --results "$out/population" --device "$device" --quiet 2>&1

if [ ${#failed[@]} -gt 0 ]; then
  step "gpu-check finished with failures: ${failed[*]}"
  exit 1
fi
step "gpu-check finished"
