#!/bin/sh
# Compile api.proto and the well-known types it imports (Timestamp,
# Struct/Value, the wrappers) with protoc-c into OUTDIR.  The well-known
# types' headers stay in OUTDIR/google/protobuf/ (where api.pb-c.h includes
# them from); their .c files are copied to flat names, which meson can name.
# Usage: protoc_api.sh PROTOC_C SRCDIR WKTDIR OUTDIR
set -eu
protoc_c=$1 src=$2 wkt=$3 out=$4
"$protoc_c" --proto_path="$src" --proto_path="$wkt" --c_out="$out" api.proto \
	google/protobuf/timestamp.proto google/protobuf/struct.proto google/protobuf/wrappers.proto
for t in timestamp struct wrappers; do
	cp "$out/google/protobuf/$t.pb-c.c" "$out/wkt_$t.pb-c.c"
done
