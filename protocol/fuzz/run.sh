#!/usr/bin/env bash
# Bounded fuzzing campaign: protocol/fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]
#
# Installs cargo-fuzz when absent, builds TARGET with debug assertions (overflow checks on, as
# yrs' own debug_asserts), and runs it for SECONDS over the committed seed corpus
# (corpus/TARGET, read only) plus a scratch corpus for what it discovers. Exits non-zero on a
# crash, leaving the input in fuzz/artifacts/TARGET/. The toolchain is stable: cargo-fuzz needs
# RUSTC_BOOTSTRAP=1 for -Zsanitizer. CI runs `protocol/fuzz/run.sh validate_update 60`.
set -euo pipefail

target=${1:?usage: run.sh TARGET SECONDS [libFuzzer flags...]}
seconds=${2:?usage: run.sh TARGET SECONDS [libFuzzer flags...]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

seeds="$here/corpus/$target"
mkdir -p "$seeds"
scratch=${FUZZ_SCRATCH_CORPUS:-$(mktemp -d "${TMPDIR:-/tmp}/plenary-fuzz-$target.XXXXXX")}
mkdir -p "$scratch"

# -timeout: a single input running longer than 10 s is a hang (yrs loops forever on some).
# -rss_limit_mb: the 2^28-clients class of allocation is a finding, not a slow run.
exec cargo fuzz run --debug-assertions "$target" "$scratch" "$seeds" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 "$@"
