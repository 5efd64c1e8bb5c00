"""A lean webhook receiver for bench/webhooks.py, run as its own process: a raw asyncio HTTP/1.1 server
with keep-alive that answers 204, counts distinct webhook-ids, and verifies every 50th request with the
`standardwebhooks` library (all of them would make the receiver, not dialwave, the bottleneck).

python bench/_receiver.py PORT SECRET   (prints "ready", and on stdin EOF: "<distinct> <requests> <bad>")"""

from __future__ import annotations

import asyncio
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


async def main(port: int, secret: str) -> None:
    hook = Webhook(secret)
    seen: set[str] = set()
    stats = {"requests": 0, "bad": 0}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                stats["requests"] += 1
                msg_id = headers.get("webhook-id", "")
                if stats["requests"] % 50 == 1:
                    try:
                        hook.verify(body, headers)
                    except WebhookVerificationError:
                        stats["bad"] += 1
                seen.add(msg_id)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    print(len(seen), stats["requests"], stats["bad"], flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
