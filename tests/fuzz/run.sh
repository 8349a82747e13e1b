#!/bin/sh
# Runs one libFuzzer target for a bounded time: replays every seed (and every
# input that once crashed, kept in the corpus), then explores. New inputs go
# to a scratch directory so the checked-in corpus stays as committed.
# usage: run.sh TARGET CORPUS_DIR SECONDS
set -eu
target=$1 corpus=$2 seconds=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dict=""
[ -f "$corpus.dict" ] && dict="-dict=$corpus.dict"
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 $dict "$scratch" "$corpus"
