#!/bin/sh
# The speed tables of docs/speed.md: for GPT-Neo (paper-tiny's target, d=256) and Llama
# (d=128, d=256), growlm's default beside PyTorch in each of its modes — eager, sdpa and
# sdpa under torch.compile (`bench --against-torch`) — and the decomposed path
# (GROWLM_FUSED=off), in two alternating rounds. With BASE set to another build of growlm
# (the build before a change), that build is timed first in each round. Run from the
# repository root after `cargo build --release --bin growlm`; PYTHON is a Python with torch
# and transformers.
#   PYTHON=.venv/bin/python [BASE=/tmp/xtask-before] sh benches/side_by_side.sh
set -e
XTASK=${XTASK:-target/release/growlm}
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-30}
for round in 1 2; do
  for cfg in "configs/paper-tiny.toml --stage 1" "benches/d256.toml" "benches/llama-d128.toml" "benches/llama-d256.toml"; do
    if [ -n "${BASE:-}" ]; then
      echo "== round $round: $cfg, the build before ($BASE)"
      $BASE bench --config $cfg --steps "$STEPS"
    fi
    echo "== round $round: $cfg, default, then PyTorch eager, sdpa and compile"
    $XTASK bench --config $cfg --steps "$STEPS" --against-torch --python "$PYTHON"
    echo "== round $round: $cfg, GROWLM_FUSED=off"
    GROWLM_FUSED=off $XTASK bench --config $cfg --steps "$STEPS"
  done
done
