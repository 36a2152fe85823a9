#!/bin/bash
# The adapters of two trees, run in turns in one run: `compare` (srudp_tokio,
# srudp_async_std, srudp_std) and `connections`. Usage:
#   scripts/compare-before-after.sh REV   (default b1bbd1f, the tree before issue 20)
# It makes a worktree of REV in /tmp/srudp-before (with this tree's compare.rs,
# which has the srudp_std row), builds both trees' benches in release, then runs them.
set -euo pipefail
REV=${1:-b1bbd1f}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=/tmp/srudp-before
if [ ! -d "$BEFORE" ]; then
  git -C "$HERE" worktree add --detach "$BEFORE" "$REV"
  cp "$HERE/benches/Cargo.toml" "$BEFORE/benches/Cargo.toml"
  cp "$HERE/benches/src/bin/compare.rs" "$BEFORE/benches/src/bin/compare.rs"
fi
for tree in "$BEFORE" "$HERE"; do
  (cd "$tree" && cargo build --release -p srudp-benches --bin compare --bin connections)
done
B=$BEFORE/target/release
A=$HERE/target/release
for round in 1 2 3; do
  for side in before after; do
    dir=$B; [ $side = after ] && dir=$A
    echo "## round $round $side compare"
    "$dir/compare" --only srudp_tokio,srudp_async_std,srudp_std --bytes 134217728 --repeat 3
  done
done
for round in 1 2; do
  for side in before after; do
    dir=$B; [ $side = after ] && dir=$A
    echo "## round $round $side connections"
    "$dir/connections" --connections 5000 | tail -n 1
  done
done
