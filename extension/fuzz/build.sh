#!/usr/bin/env bash
# Build the reply-parser fuzzer: with clang's libFuzzer when it links, else
# a deterministic randomized driver, both with ASan and UBSan. Prints the binary's path.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG_CONFIG="${PG_CONFIG:-$(cat "$HERE/../../.steadytext/pg_config" 2>/dev/null || command -v pg_config)}"
INC="$("$PG_CONFIG" --includedir-server)"
LIB="$("$PG_CONFIG" --libdir)"
PKGLIB="$("$PG_CONFIG" --pkglibdir)"
OUT="${FUZZ_OUT:-$HERE/out}"
mkdir -p "$OUT"
SRC=("$HERE/reply_fuzz.c" "$HERE/../src/st_reply.c")
FLAGS=(-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -DFRONTEND
       -I"$HERE/shim" -I"$HERE/../src" -I"$INC")
LIBS=()
for dir in "$LIB" "$PKGLIB" "$(dirname "$PKGLIB")"; do
  [ -f "$dir/libpgcommon.a" ] && LIBS=("$dir/libpgcommon.a" "$dir/libpgport.a") && break
done
[ ${#LIBS[@]} -gt 0 ] || { echo "libpgcommon.a not found (postgresql-server-dev)" >&2; exit 1; }
if command -v clang >/dev/null 2>&1 && clang "${FLAGS[@]}" -fsanitize=fuzzer "${SRC[@]}" "${LIBS[@]}" -lm -o "$OUT/reply-fuzzer-libfuzzer" 2>/dev/null; then
  echo "$OUT/reply-fuzzer-libfuzzer"
else
  ${CC:-gcc} "${FLAGS[@]}" -DST_STANDALONE "${SRC[@]}" "${LIBS[@]}" -lm -o "$OUT/reply-fuzzer"
  echo "$OUT/reply-fuzzer"
fi
