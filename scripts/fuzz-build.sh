#!/usr/bin/env bash
# Builds every fuzz target in fuzz/ on stable Rust, instrumented for coverage-guided fuzzing
# with libFuzzer (the same SanitizerCoverage flags cargo-fuzz passes, minus the sanitizer,
# which needs nightly). This is what CI runs; see fuzz/README.md for running the targets.
#
#   scripts/fuzz-build.sh               # build all targets
#   scripts/fuzz-build.sh --smoke 20    # build, then fuzz each target for 20 s (fails on a crash)
#
# Binaries: fuzz/target/<host triple>/release/<target> (the same place `cargo fuzz build`
# puts them). Needs a C++ compiler (libfuzzer-sys compiles libFuzzer); installs g++ with
# apt-get when none is found.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

smoke=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=${2:?--smoke needs a number of seconds}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "fuzz-build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
  echo "No C++ compiler found (libfuzzer-sys needs one); installing g++ with apt-get"
  if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq g++ >/dev/null
fi

host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="$root/fuzz/target"
# Passing --target keeps these flags away from build scripts and proc macros.
export RUSTFLAGS="--cfg fuzzing \
-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth ${RUSTFLAGS:-}"
# Debug assertions and overflow checks come from fuzz/Cargo.toml's release profile (off for
# mail-parser); -C flags here would override the profile for every crate.

# fuzz/Cargo.lock is committed. When sealpost-core gains a dependency it goes stale; then say so
# and let Cargo add the new entries (the versions already pinned stay as they are).
locked=--locked
if ! cargo metadata --manifest-path fuzz/Cargo.toml --format-version 1 --locked >/dev/null 2>&1; then
  echo "warning: fuzz/Cargo.lock is out of date (did sealpost-core's dependencies change?);" >&2
  echo "warning: updating it; commit fuzz/Cargo.lock" >&2
  locked=
fi

start=$(date +%s)
cargo build --manifest-path fuzz/Cargo.toml $locked --release --target "$host" --bins
echo "Fuzz targets built in $(($(date +%s) - start)) s:"

bin_dir="$CARGO_TARGET_DIR/$host/release"
# Every [[bin]] of fuzz/Cargo.toml is a fuzz target.
targets=$(awk '/^\[\[bin\]\]/ { bin = 1; next } /^\[/ { bin = 0 } bin && /^name *=/ { gsub(/[" ]/, "", $0); sub(/^name=/, "", $0); print }' fuzz/Cargo.toml)
for t in $targets; do
  [ -x "$bin_dir/$t" ] || { echo "fuzz-build.sh: $bin_dir/$t was not built" >&2; exit 1; }
  echo "  $bin_dir/$t"
done

if [ "$smoke" -gt 0 ]; then
  for t in $targets; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" fuzz/artifacts/"$t"
    extra=()
    [ "$t" = chunked ] && extra=(-max_len=70000)
    echo "Fuzzing $t for $smoke s..."
    log="fuzz/artifacts/$t/smoke.log"
    status=0
    "$bin_dir/$t" "$corpus" -max_total_time="$smoke" -artifact_prefix="fuzz/artifacts/$t/" \
      -print_final_stats=1 "${extra[@]}" >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' "$log" || true
    if [ "$status" -ne 0 ]; then
      tail -n 40 "$log" >&2
      echo "fuzz-build.sh: $t failed (exit $status); the input is in fuzz/artifacts/$t/" >&2
      exit 1
    fi
  done
fi
