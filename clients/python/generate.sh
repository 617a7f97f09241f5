#!/usr/bin/env bash
# Generates the Python stubs of chat.v1 from proto/ with Debian's tools:
# protoc's own Python output (protobuf-compiler) and gRPC's Python plugin
# (protobuf-compiler-grpc). No pip, no grpcio-tools.
#
#   clients/python/generate.sh [OUT_DIR]     (default: clients/python/gen)
#
# The messages import google/api/annotations.proto, so its two files are
# generated too; `google` stays a namespace package, so they sit beside the
# installed google.protobuf without hiding it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto_dir=$(cd "$here/../../proto" && pwd)
out=${1:-$here/gen}

protoc=${PROTOC:-$(command -v protoc || true)}
plugin=${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || true)}
if [[ -z $protoc || -z $plugin ]]; then
  echo "generate.sh: needs protoc and grpc_python_plugin" \
    "(apt-get install protobuf-compiler protobuf-compiler-grpc)" >&2
  exit 1
fi

mkdir -p "$out"
"$protoc" -I "$proto_dir" --python_out="$out" \
  chat/v1/chat.proto google/api/annotations.proto google/api/http.proto
"$protoc" -I "$proto_dir" --grpc_out="$out" \
  --plugin=protoc-gen-grpc="$plugin" chat/v1/chat.proto
echo "generated chat.v1 stubs in $out" >&2
