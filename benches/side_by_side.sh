#!/bin/sh
# The Speed table of docs/results.md: for paper-tiny's target and d=256, growlm's default
# beside PyTorch eager (`bench --against-torch`), the decomposed path (GROWLM_FUSED=off) and
# `--devices 2`, in two alternating rounds. Run from the repository root after
# `cargo build --release -p xtask`; PYTHON is a Python with torch.
#   PYTHON=.venv/bin/python sh benches/side_by_side.sh
set -e
XTASK=${XTASK:-target/release/xtask}
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-30}
for round in 1 2; do
  for cfg in "configs/paper-tiny.toml --stage 1" "benches/d256.toml"; do
    echo "== round $round: $cfg, default, then PyTorch"
    $XTASK bench --config $cfg --steps "$STEPS" --against-torch --python "$PYTHON"
    echo "== round $round: $cfg, GROWLM_FUSED=off"
    GROWLM_FUSED=off $XTASK bench --config $cfg --steps "$STEPS"
    echo "== round $round: $cfg, --devices 2"
    $XTASK bench --config $cfg --steps "$STEPS" --devices 2
  done
done
