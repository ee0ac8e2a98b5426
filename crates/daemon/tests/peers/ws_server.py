"""A WebSocket server for tagwire's end-to-end tests, built on Python `websockets`.

Writes one line per event to --out:  "C <path>" for each connection (the request path
and query), "B <payload>" / "T <payload>" for each binary / text message, "X <code>"
when a connection ends (the close code received, "None" without a Close frame),
"P <path> <CN>" for each connection that presented a client certificate (the subject CN
the server verified), "S <subprotocol>" after "C" when one was negotiated, "E <extensions>"
when an extension was (permessage-deflate; the library compresses and decompresses).
Prints "READY <port>" on stdout once listening. Pings are answered by the library.

--expect-auth VALUE answers 401 to an upgrade whose Authorization header is not exactly
VALUE (and writes "R <status>" for it); --subprotocols a,b lists the subprotocols the
server supports (it picks the first the client offers, and refuses clients offering none).
--close-after N closes each connection (code 1011) after its Nth message: a server
that accepts and then fails every connection.
--host picks the address to listen on (127.0.0.1 by default; ::1 for IPv6 tests).
"""
import argparse
import asyncio
import logging
import signal
import ssl
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


class _OneLine(logging.Formatter):
    """Library log records on one line each, without the traceback: the tests provoke
    failed handshakes and cut connections on purpose, and a passing test's output should
    not be full of tracebacks."""

    def format(self, record):
        record.exc_info = None
        record.exc_text = None
        return super().format(record)


def quiet_library_logs():
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine("python peer: %(name)s: %(message)s"))
    for name in ("websockets", "asyncio"):
        log = logging.getLogger(name)
        log.addHandler(handler)
        log.propagate = False
    # asyncio's "socket.send() raised exception." repeats for every write to a peer the
    # test cut; real problems are errors.
    logging.getLogger("asyncio").setLevel(logging.ERROR)


def main():
    quiet_library_logs()
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca")
    ap.add_argument("--expect-auth")
    ap.add_argument("--subprotocols")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--delay-ms", type=float, default=0,
                    help="sleep this long after each message: a slow reader")
    ap.add_argument("--close-after", type=int, default=0,
                    help="close each connection with 1011 after this many messages")
    args = ap.parse_args()
    out = open(args.out, "a", encoding="utf-8")

    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)

    def check_auth(connection, request):
        if args.expect_auth is None:
            return None
        if request.headers.get("Authorization") == args.expect_auth:
            return None
        out.write("R 401\n")
        out.flush()
        return connection.respond(401, "missing or wrong Authorization\n")

    async def handler(ws):
        out.write(f"C {ws.request.path}\n")
        peercert = ws.transport.get_extra_info("peercert") if ws.transport else None
        if peercert:
            cn = next((v for rdn in peercert.get("subject", ()) for k, v in rdn
                       if k == "commonName"), "")
            out.write(f"P {ws.request.path} {cn}\n")
        if ws.subprotocol:
            out.write(f"S {ws.subprotocol}\n")
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
        if extensions:
            out.write(f"E {extensions}\n")
        out.flush()
        received = 0
        try:
            async for msg in ws:
                if isinstance(msg, str):
                    out.write(f"T {msg}\n")
                else:
                    out.write("B " + msg.decode("utf-8", "replace") + "\n")
                out.flush()
                if args.delay_ms:
                    await asyncio.sleep(args.delay_ms / 1000)
                received += 1
                if args.close_after and received >= args.close_after:
                    await ws.close(1011, "failing on purpose")
                    break
        except ConnectionClosed:
            pass  # a connection cut without a Close frame: recorded as "X None"
        out.write(f"X {ws.close_code}\n")
        out.flush()

    async def run():
        # SIGTERM/SIGINT stop the server gracefully: connections get a Close frame and
        # every message already received is still written out before the handler ends.
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        protocols = args.subprotocols.split(",") if args.subprotocols else None
        async with serve(handler, args.host, args.port, ssl=ctx, max_size=None,
                         ping_interval=None, reuse_address=True,
                         process_request=check_auth, subprotocols=protocols) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"READY {port}", flush=True)
            await stop

    asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
