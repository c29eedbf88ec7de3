#!/usr/bin/env bash
# Data-parallel scaling of examples/mpi_cnf.rs: samples per second at 1 and N ranks (one
# thread each) for several batch sizes, rounds alternating, medians and the median of the
# paired ratios. Needs an MPI (see README, "Training on several machines").
#
#   benches/mpi_scaling.sh [ranks=2] [rounds=3] [batches="1024 4096 16384"]
set -euo pipefail
cd "$(dirname "$0")/.."
RANKS=${1:-2}
ROUNDS=${2:-3}
BATCHES=${3:-"1024 4096 16384"}
cargo build --release --features mpi --example mpi_cnf >/dev/null 2>&1
bin=target/release/examples/mpi_cnf
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
export RAYON_NUM_THREADS=1

# Samples per second, the all-reduce's share and rank 0's peak heap of one run.
run() {
    mpirun -np "$1" "${root[@]}" "$bin" --batch "$2" --iters "$3" --no-plot |
        awk '/^throughput/ { s = $2 }
             /^rank 0:/ { m = $5; r = $(NF-1) }
             END { print s, r, m }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "| batch | 1 rank (samples/s) | $RANKS ranks (samples/s) | speed-up (median of paired ratios) | all-reduce share at $RANKS ranks | peak heap per rank, 1 → $RANKS ranks (MiB) |"
echo "| --- | --- | --- | --- | --- | --- |"
for batch in $BATCHES; do
    # About 40 000 samples per run.
    iters=$(( (40000 + batch - 1) / batch ))
    one=(); many=(); ratio=(); share=(); mem1=""; memn=""
    for _ in $(seq "$ROUNDS"); do
        read -r s1 _ m1 < <(run 1 "$batch" "$iters")
        read -r sn rn mn < <(run "$RANKS" "$batch" "$iters")
        one+=("$s1"); many+=("$sn"); share+=("$rn"); mem1=$m1; memn=$mn
        ratio+=("$(awk -v a="$sn" -v b="$s1" 'BEGIN { printf "%.3f", a / b }')")
    done
    printf '| %s | %s | %s | %s (%s) | %s %% | %s → %s |\n' "$batch" \
        "$(printf '%s\n' "${one[@]}" | median)" "$(printf '%s\n' "${many[@]}" | median)" \
        "$(printf '%s\n' "${ratio[@]}" | median)" "$(printf '%s\n' "${ratio[@]}" | sort -g | tr '\n' ' ' | sed 's/ $//')" \
        "$(printf '%s\n' "${share[@]}" | median)" "$mem1" "$memn"
done
