#!/usr/bin/env bash
# Compares Sealpost's streaming payload encryption with OpenSSL's AES-256-GCM on one core.
#
#   bench/throughput.sh            # 3 rounds of: openssl 3 s, then 64 MiB x 5 repetitions
#   ROUNDS=1 REPS=3 SIZE_MIB=16 OPENSSL_SECONDS=1 bench/throughput.sh   # quicker
#
# (a) `openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3` (raw AES-256-GCM on 16 KiB
#     buffers, the size of one Sealpost chunk);
# (b) the `throughput` example: Encryptor/Decryptor of a 64 MiB message fed in 64 KiB pieces,
#     best of a few runs;
# both pinned to core 0 with `taskset` when it exists, alternated for a few rounds (best of
# each). Prints a table and whether the target (ours >= 50 % of OpenSSL, one core, 16 KiB
# blocks) is met. Exits 0 either way; exits non-zero
# only when something could not be run or parsed. MB = 10^6 bytes throughout.
set -euo pipefail

cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-64}
REPS=${REPS:-5}
OPENSSL_SECONDS=${OPENSSL_SECONDS:-3}
ROUNDS=${ROUNDS:-3}
CORE=${CORE:-0}
TARGET_PERCENT=50

say() { printf '%s\n' "$*"; }
die() { say "throughput.sh: $*" >&2; exit 1; }

if ! command -v openssl >/dev/null 2>&1; then
  say "openssl is missing; installing it with apt-get"
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null \
    || die "could not install openssl"
fi

pin=()
if command -v taskset >/dev/null 2>&1; then
  pin=(taskset -c "$CORE")
  pinned="core $CORE (taskset -c $CORE)"
else
  pinned="not pinned (taskset not found)"
fi

say "Building the throughput example (release)..."
cargo build --quiet --release --example throughput -p sealpost-core
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="${target_dir:-target}/release/examples/throughput"
[ -x "$bin" ] || die "built binary not found at $bin"

# (a) OpenSSL. `-mr` prints a machine-readable "+F:<n>:AES-256-GCM:<bytes per second>" line;
# the human-readable "AES-256-GCM  1234.56k" line (1000s of bytes per second) is the fallback.
run_openssl() {
  local out mbps
  out=$("${pin[@]}" openssl speed -mr -evp aes-256-gcm -bytes 16384 -seconds "$OPENSSL_SECONDS" 2>&1) \
    || die "openssl speed failed: $out"
  mbps=$(printf '%s\n' "$out" | awk -F: '/^\+F:/ && toupper($3) ~ /AES-256-GCM/ { printf "%.1f", $4 / 1e6; exit }')
  if [ -z "$mbps" ]; then
    out=$("${pin[@]}" openssl speed -evp aes-256-gcm -bytes 16384 -seconds "$OPENSSL_SECONDS" 2>&1) \
      || die "openssl speed failed: $out"
    mbps=$(printf '%s\n' "$out" | awk 'toupper($1) ~ /^AES-256-GCM$/ && $2 ~ /k$/ { sub(/k$/, "", $2); printf "%.1f", $2 / 1000; exit }')
  fi
  [ -n "$mbps" ] || die "could not parse the output of openssl speed:
$out"
  printf '%s' "$mbps"
}

# (b) Ours, on the same core: prints "<encrypt MB/s> <decrypt MB/s>".
run_ours() {
  local out enc dec
  out=$("${pin[@]}" "$bin" --size-mib "$SIZE_MIB" --reps "$REPS") || die "throughput example failed"
  enc=$(printf '%s\n' "$out" | sed -n 's/^encrypt_MBps=//p')
  dec=$(printf '%s\n' "$out" | sed -n 's/^decrypt_MBps=//p')
  [ -n "$enc" ] && [ -n "$dec" ] || die "could not parse the example's output:
$out"
  printf '%s %s' "$enc" "$dec"
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? a : b }'; }

# Alternate the two a few times and keep the best of each, so that a burst of other work on
# a shared machine does not decide the ratio.
say "Measuring on $pinned: $ROUNDS rounds of openssl speed (${OPENSSL_SECONDS} s, 16384-byte blocks)"
say "and the throughput example (${SIZE_MIB} MiB in 64 KiB pieces, best of ${REPS})..."
openssl_mbps=0 enc_mbps=0 dec_mbps=0
for round in $(seq 1 "$ROUNDS"); do
  o=$(run_openssl)
  r=$(run_ours)
  read -r e d <<<"$r"
  say "  round $round: openssl $o MB/s, encrypt $e MB/s, decrypt $d MB/s"
  openssl_mbps=$(max "$openssl_mbps" "$o")
  enc_mbps=$(max "$enc_mbps" "$e")
  dec_mbps=$(max "$dec_mbps" "$d")
done

percent() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
enc_pct=$(percent "$enc_mbps" "$openssl_mbps")
dec_pct=$(percent "$dec_mbps" "$openssl_mbps")

say ""
say "Machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) logical CPUs; $(openssl version)"
say "Pinning: $pinned"
say ""
printf '| %-52s | %10s | %10s |\n' "measurement" "MB/s" "vs openssl"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})"
printf '| %-52s | %10s | %10s |\n' "openssl speed -evp aes-256-gcm, 16 KiB blocks" "$openssl_mbps" "100.0 %"
printf '| %-52s | %10s | %10s |\n' "sealpost Encryptor, ${SIZE_MIB} MiB in 64 KiB pieces" "$enc_mbps" "$enc_pct %"
printf '| %-52s | %10s | %10s |\n' "sealpost Decryptor, ${SIZE_MIB} MiB in 64 KiB pieces" "$dec_mbps" "$dec_pct %"
say ""

met() { awk -v p="$1" -v t="$TARGET_PERCENT" 'BEGIN { exit !(p >= t) }'; }
if met "$enc_pct" && met "$dec_pct"; then
  say "TARGET MET: encryption ($enc_pct %) and decryption ($dec_pct %) are both >= ${TARGET_PERCENT} % of OpenSSL (one core, 16 KiB blocks)."
else
  say "TARGET NOT MET: encryption $enc_pct %, decryption $dec_pct % of OpenSSL; the target is >= ${TARGET_PERCENT} % for both (one core, 16 KiB blocks)."
fi
exit 0
