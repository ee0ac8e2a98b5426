"""A WebSocket client for tagwire's end-to-end tests, built on Python `websockets`.

Connects to URL, sends --count text messages `{"n": <i>}`, then a Ping, and prints
"PONGED <n>" on stdout once its Pong arrived (the server answered after reading every
message before it). Then it keeps reading until the server closes the connection and
prints "CLOSED <code>" (the close code the server sent, "None" without a Close frame).
"""
import argparse
import asyncio
import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def run(url, count):
    async with connect(url, ping_interval=None, compression=None) as ws:
        for i in range(count):
            await ws.send(json.dumps({"n": i}))
        pong = await ws.ping()
        await pong
        print(f"PONGED {count}", flush=True)
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            print(f"CLOSED {code}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--count", type=int, required=True)
    args = ap.parse_args()
    asyncio.run(run(args.url, args.count))


if __name__ == "__main__":
    main()
