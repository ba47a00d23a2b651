#!/usr/bin/env python3
"""Python's ssl and asyncio as the other end of tulip's TLS interoperability tests.

  python_peer.py server --cert C --key K [--max-version 1.2] [--alpn P ...]
      An asyncio TLS echo server on 127.0.0.1 (a free port). It prints
      "PORT <n>", then serves one connection: echoes every chunk until the
      client's close_notify, then closes (sending its own). It prints one JSON
      line describing the connection and exits.

  python_peer.py client --port N --cafile CA [--asyncio | --blocking]
                        [--size BYTES] [--max-version 1.2] [--alpn P ...]
                        [--cert C --key K]
      Connects to tulip's server on 127.0.0.1 with server_hostname
      "localhost", sends BYTES bytes of a known pattern, reads the echo,
      closes with close_notify and prints one JSON line: whether the echo was
      exact, the protocol version, the cipher and ALPN. --asyncio uses
      asyncio.open_connection, --blocking the ssl module's SSLSocket.

Exit status 0 when the exchange was as expected; 1 with a reason on stderr.
"""
import argparse
import asyncio
import hashlib
import json
import socket
import ssl
import sys


def pattern(size):
    block = bytes((i * 131 + 7) & 0xFF for i in range(65536))
    return (block * (size // len(block) + 1))[:size]


def versions(context, max_version):
    if max_version == "1.2":
        context.maximum_version = ssl.TLSVersion.TLSv1_2


async def serve(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    versions(context, args.max_version)
    if args.alpn:
        context.set_alpn_protocols(args.alpn)
    names = []
    context.sni_callback = lambda sslobj, name, ctx: names.append(name)
    done = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        sslobj = writer.get_extra_info("ssl_object")
        received = hashlib.sha256()
        total = 0
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            received.update(chunk)
            total += len(chunk)
            writer.write(chunk)
            await writer.drain()
        report = {
            "version": sslobj.version(),
            "cipher": sslobj.cipher()[0],
            "alpn": sslobj.selected_alpn_protocol(),
            "sni": names[0] if names else None,
            "bytes": total,
            "sha256": received.hexdigest(),
        }
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError) as error:
            report["close_error"] = repr(error)
        if not done.done():
            done.set_result(report)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    report = await done
    server.close()
    await server.wait_closed()
    print(json.dumps(report), flush=True)
    return 0


def client_context(args):
    context = ssl.create_default_context(cafile=args.cafile)
    versions(context, args.max_version)
    if args.alpn:
        context.set_alpn_protocols(args.alpn)
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    return context


def report(sslobj, echoed, payload):
    return {
        "ok": echoed == payload,
        "echoed": len(echoed),
        "version": sslobj.version(),
        "cipher": sslobj.cipher()[0],
        "alpn": sslobj.selected_alpn_protocol(),
    }


async def asyncio_client(args):
    payload = pattern(args.size)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", args.port, ssl=client_context(args), server_hostname="localhost")
    sslobj = writer.get_extra_info("ssl_object")
    writer.write(payload)
    await writer.drain()
    echoed = await reader.readexactly(len(payload))
    result = report(sslobj, echoed, payload)
    writer.close()
    await writer.wait_closed()
    return result


def blocking_client(args):
    payload = pattern(args.size)
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=60)
    with client_context(args).wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(payload)
        echoed = bytearray()
        while len(echoed) < len(payload):
            chunk = tls.recv(1 << 16)
            if not chunk:
                break
            echoed += chunk
        result = report(tls, bytes(echoed), payload)
        # unwrap() sends close_notify and waits for the server's.
        tls.unwrap().close()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["server", "client"])
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--cafile")
    parser.add_argument("--port", type=int)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--max-version", choices=["1.2", "1.3"], default="1.3")
    parser.add_argument("--alpn", nargs="*")
    parser.add_argument("--blocking", action="store_true")
    parser.add_argument("--asyncio", action="store_true")
    args = parser.parse_args()
    try:
        if args.mode == "server":
            return asyncio.run(serve(args))
        result = blocking_client(args) if args.blocking else asyncio.run(asyncio_client(args))
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as error:
        print("python_peer: %r" % (error,), file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
