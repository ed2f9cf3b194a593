#!/bin/sh
# static_archive.sh OUT.a IN.a OBJCOPY AR CC...
# Builds the installed static library OUT.a from the archive of the library's
# objects IN.a: all objects are linked into one relocatable object (CC -r), in
# which every hidden symbol (everything not marked HG_API, since the library is
# compiled with -fvisibility=hidden) is made local, so only the public API is
# global in OUT.a. Run by src/meson.build.
set -eu
out=$1 in=$2 objcopy=$3 ar=$4
shift 4
obj="${out%.a}.o"
rm -f "$out" "$obj"
"$@" -r -nostdlib -o "$obj" -Wl,--whole-archive "$in" -Wl,--no-whole-archive
"$objcopy" --localize-hidden "$obj"
"$ar" rcs "$out" "$obj"
rm -f "$obj"
