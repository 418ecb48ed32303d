#!/bin/sh
# Issue 40 bench: 2 processes x 1 core (--nnodes 2 --local, RAYON_NUM_THREADS=1) against
# 1 process x 2 threads (--devices 2), paper-tiny target and GPT-Neo d=256; figures in docs/speed.md.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G="$ROOT/target/release/growlm"
cd "$ROOT"
for cfg in "configs/paper-tiny.toml --only-stage 1" "benches/d256.toml"; do
  for mode in threads procs; do
    rm -rf /tmp/dpb
    if [ $mode = threads ]; then extra="--devices 2"; env=""; else extra="--nnodes 2 --local"; env="RAYON_NUM_THREADS=1"; fi
    out=$(env $env GROWLM_COLLECTIVE_TIMEOUT=30 $G train --config $cfg --max-steps 40 --set train.eval_every=40 --set train.checkpoint_every=40 --set train.warmup_steps=5 --out /tmp/dpb $extra 2>&1 | grep "^done:")
    echo "$cfg | $mode | $out"
  done
done
