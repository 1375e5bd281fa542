#!/usr/bin/env bash
# Cargo runner (see .cargo/config.toml): run.sh <core0 ELF> [ignored args...]
#
# Cargo builds and passes only core 0's ELF. This script builds core 1's ELF
# next to it (same target dir, target and profile; a no-op when up to date),
# then boots the QEMU machine the images were built for (mps2-an521, or
# mps3-an524 with the an524 feature) with both and exits with QEMU's status,
# which is the code the firmware passed to semihosting exit (124 on timeout).
#
# Environment:
#   QEMU_ACCEL    value for -accel (default tcg,thread=multi; also
#                 tcg,thread=single for round-robin scheduling of the cores)
#   QEMU_TIMEOUT  seconds before the run is killed (default 300)
#   QEMU          QEMU binary (default qemu-system-arm)
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 <path/to/core0 ELF>" >&2
    exit 2
fi
core0="$1"
if [ "$(basename "$core0")" != core0 ]; then
    echo "run.sh: expected the core0 binary, got $core0 (use: cargo run --bin core0)" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bindir="$(cd "$(dirname "$core0")" && pwd)"   # <target-dir>/<triple>/<profile>
profile="$(basename "$bindir")"
triple="$(basename "$(dirname "$bindir")")"
target_dir="$(dirname "$(dirname "$bindir")")"
case "$profile" in
    debug) profile_args=() ;;
    *) profile_args=(--profile "$profile") ;;
esac

# The board core 0's image was built for (src/board/memory_map.rs embeds
# "SHM_QEMU_MACHINE=<machine>"); core 1's is built for the same board, and
# both must say so.
machine_of() {
    { grep -a -o 'SHM_QEMU_MACHINE=[a-z0-9-]*' "$1" || true; } | head -n 1 | cut -d= -f2
}
machine="$(machine_of "$core0")"
case "$machine" in
    mps2-an521) board_args=() ;;
    mps3-an524) board_args=(--features an524) ;;
    *) echo "run.sh: $core0 names no board this script knows (got '$machine')" >&2; exit 2 ;;
esac

"${CARGO:-cargo}" build --quiet --manifest-path "$here/Cargo.toml" \
    --target "$triple" --target-dir "$target_dir" "${profile_args[@]}" "${board_args[@]}" --bin core1
core1="$bindir/core1"
if [ "$(machine_of "$core1")" != "$machine" ]; then
    echo "run.sh: $core1 is not built for $machine" >&2
    exit 2
fi

accel="${QEMU_ACCEL:-tcg,thread=multi}"
echo "run.sh: ${QEMU:-qemu-system-arm} -M $machine -accel $accel (timeout ${QEMU_TIMEOUT:-300}s)" >&2
exec timeout "${QEMU_TIMEOUT:-300}" "${QEMU:-qemu-system-arm}" \
    -M "$machine" -nographic -monitor none \
    -semihosting-config enable=on,target=native \
    -accel "$accel" \
    -kernel "$core0" \
    -device loader,file="$core1"
