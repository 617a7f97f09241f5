#!/usr/bin/env python3
"""Talks to chat-server over gRPC with stubs generated from proto/chat/v1.

One session, three calls: Chat (the whole reply at once), ChatStream (the
reply printed piece by piece as it arrives) and GetHistory (the stored turns).

    clients/python/generate.sh                  # the stubs, into gen/
    python3 clients/python/example.py --server localhost:50051 "Hello"

The server comes from --server, else CHAT_SERVER, else localhost:50051. An
API key in CHAT_API_KEY (or --api_key) is sent as `authorization: Bearer
KEY`. Exit status: 0 when every call succeeded, 1 when one failed (its gRPC
status is printed on stderr), 2 for bad usage.
"""

import argparse
import os
import sys
import uuid
from pathlib import Path

# The stubs generate.sh writes by default. Appended, so a PYTHONPATH that
# names another copy is searched first.
sys.path.append(str(Path(__file__).resolve().parent / "gen"))

import grpc  # noqa: E402  (Debian: python3-grpcio)

try:
    from chat.v1 import chat_pb2, chat_pb2_grpc  # noqa: E402
except ImportError as e:
    sys.exit(f"example.py: no chat.v1 stubs ({e}); run clients/python/generate.sh first")

# Every call gives up after this long rather than waiting on a dead server.
TIMEOUT_SECONDS = 30


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("CHAT_SERVER", "localhost:50051"),
        help="HOST:PORT of chat-server (env CHAT_SERVER)",
    )
    parser.add_argument(
        "--api_key",
        default=os.environ.get("CHAT_API_KEY", ""),
        help="API key, sent as a Bearer token (env CHAT_API_KEY; prefer the "
        "variable: a flag shows in the process list)",
    )
    parser.add_argument(
        "--session",
        default=f"example-{uuid.uuid4().hex[:12]}",
        help="session id (default: a new one)",
    )
    parser.add_argument("message", nargs="?", default="Hello from Python!")
    parser.add_argument("follow_up", nargs="?", default="Now say it as a stream.")
    return parser.parse_args()


def main():
    args = parse_args()
    # Metadata travels with each call; the server reads the key from it.
    metadata = [("authorization", f"Bearer {args.api_key}")] if args.api_key else []

    # Plain text: for a server behind TLS use grpc.secure_channel(args.server,
    # grpc.ssl_channel_credentials(root_certificates=...)) instead.
    with grpc.insecure_channel(args.server) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        print(f"session {args.session}")

        # 1. Unary: the reply arrives whole, after the turn was stored.
        print(f"> {args.message}")
        reply = stub.Chat(
            chat_pb2.ChatRequest(message=args.message, session_id=args.session),
            metadata=metadata,
            timeout=TIMEOUT_SECONDS,
        )
        print(f"chat: {reply.response}")
        print(
            f"  model={reply.model} stop_reason={reply.stop_reason} "
            f"turn={reply.turn_count} tokens in={reply.usage.input_tokens} "
            f"out={reply.usage.output_tokens}"
        )

        # 2. Server streaming: deltas as the model writes them, then one
        # `done` carrying what ChatResponse carries.
        print(f"> {args.follow_up}")
        print("stream: ", end="", flush=True)
        deltas = 0
        done = None
        events = stub.ChatStream(
            chat_pb2.ChatStreamRequest(message=args.follow_up, session_id=args.session),
            metadata=metadata,
            timeout=TIMEOUT_SECONDS,
        )
        for event in events:
            kind = event.WhichOneof("event")
            if kind == "delta":
                deltas += 1
                print(event.delta.text, end="", flush=True)
            elif kind == "done":
                done = event.done
        print()
        if done is None:
            sys.exit("example.py: the stream ended without its `done` event")
        print(
            f"  deltas={deltas} model={done.model} stop_reason={done.stop_reason} "
            f"turn={done.turn_count} tokens in={done.usage.input_tokens} "
            f"out={done.usage.output_tokens}"
        )

        # 3. The stored history: both turns, oldest first.
        history = stub.GetHistory(
            chat_pb2.GetHistoryRequest(session_id=args.session),
            metadata=metadata,
            timeout=TIMEOUT_SECONDS,
        )
        print(f'history: {history.turn_count} turns, system prompt "{history.system_prompt}"')
        for m in history.messages:
            print(f"  {m.role}: {m.content}")


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as e:
        # The status of the call that failed, e.g. UNAVAILABLE when nothing
        # listens, UNAUTHENTICATED without a valid key.
        print(f"\nexample.py: {e.code().name}: {e.details()}", file=sys.stderr)
        sys.exit(1)
