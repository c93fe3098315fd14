#!/usr/bin/env python3
"""A shop written the way a shop team would write it: the standard library's HTTP server and the
official Standard Webhooks library (`pip install standardwebhooks==1.1.0`) with its DEFAULT
settings, `Webhook(secret).verify(body, headers)`, for every signed request.

Serve (the first line on stdout is `listening on http://127.0.0.1:PORT`):

    python3 python_shop.py serve --token shop-token --secret whsec_... [--port 0]

It keeps the shop contract (shop_adapter_spec/openapi.yaml) under /erp, and records every request
with whether the library verified it; GET /_recorded (no auth: a test aid, not contract) answers
{"requests": [...], "levels": {...}, "shipments": {...}}.

Sign a body the way a shop signs an order for the relay (prints the three headers as JSON):

    python3 python_shop.py sign --secret whsec_... [--msg-id msg_...] < order.json
"""

import argparse
import hmac
import json
import secrets
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def sign(secret: str, body: bytes, msg_id: str | None = None) -> dict:
    """The Standard Webhooks headers for `body`, made by the library's own `sign`."""
    msg_id = msg_id or "msg_" + secrets.token_hex(16)
    now = datetime.now(tz=timezone.utc)
    signature = Webhook(secret).sign(msg_id, now, body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def valid_levels(v) -> bool:
    def level(x):
        return (
            isinstance(x, dict)
            and set(x) == {"sku", "available"}
            and isinstance(x["sku"], str)
            and x["sku"] != ""
            and isinstance(x["available"], int)
            and not isinstance(x["available"], bool)
            and x["available"] >= 0
        )

    return (
        isinstance(v, dict)
        and set(v) == {"channel", "levels"}
        and isinstance(v["channel"], str)
        and v["channel"] != ""
        and isinstance(v["levels"], list)
        and len(v["levels"]) > 0
        and all(level(x) for x in v["levels"])
    )


def valid_shipment(v) -> bool:
    fields = {"status", "carrier", "tracking_number", "tracking_url", "items", "shipped_at"}
    return (
        isinstance(v, dict)
        and set(v) == fields
        and v["status"] in ("shipped", "cancelled")
        and all(v[f] is None or isinstance(v[f], str) for f in ("carrier", "tracking_number", "tracking_url"))
        and isinstance(v["items"], list)
        and len(v["items"]) > 0
        and all(
            isinstance(i, dict)
            and isinstance(i.get("sku"), str)
            and isinstance(i.get("qty"), (int, float))
            and i["qty"] > 0
            for i in v["items"]
        )
        and isinstance(v["shipped_at"], str)
    )


class Shop:
    def __init__(self, token: str, secret: str):
        self.bearer = f"Bearer {token}".encode()
        self.webhook = Webhook(secret)
        self.lock = threading.Lock()
        self.requests = []
        self.levels = {}
        self.shipments = {}

    def handle(self, method: str, target: str, headers: dict, body: bytes):
        url = urlsplit(target)
        if method == "GET" and url.path == "/_recorded":
            with self.lock:
                return 200, {
                    "requests": list(self.requests),
                    "levels": {f"{c}/{s}": n for (c, s), n in self.levels.items()},
                    "shipments": {f"{o}/{s}": b for (o, s), b in self.shipments.items()},
                }
        record = {"method": method, "path": url.path, "verified": None}
        status, answer = self.answer(method, url, headers, body, record)
        record["status"] = status
        record["body"] = body.decode("utf-8", "replace")
        with self.lock:
            self.requests.append(record)
        return status, answer

    def answer(self, method, url, headers, body, record):
        auth = headers.get("authorization", "").encode()
        if not hmac.compare_digest(auth, self.bearer):
            return 401, {"error": "bad or missing bearer token"}
        parts = url.path.split("/")
        if method == "GET" and url.path == "/erp/inventory/levels":
            # Reads are not signed: the bearer token is enough.
            q = parse_qs(url.query)
            channel = (q.get("channel") or [""])[0]
            skus = q.get("sku") or []
            if not channel or not skus:
                return 400, {"error": "channel and sku are required"}
            with self.lock:
                levels = [
                    {"sku": s, "available": self.levels[(channel, s)]} for s in skus if (channel, s) in self.levels
                ]
            return 200, {"channel": channel, "levels": levels}
        if method not in ("POST", "PUT"):
            return 405, {"error": f"{method} is not served"}
        try:
            # The library's defaults: it parses the payload as JSON and checks the timestamp.
            self.webhook.verify(body, headers)
            record["verified"] = True
        except WebhookVerificationError as e:
            record["verified"] = False
            return 401, {"error": f"signature: {e}"}
        payload = json.loads(body)
        if method == "POST" and url.path == "/erp/inventory/levels":
            if not valid_levels(payload):
                return 422, {"error": "body must be {channel, levels: [{sku, available >= 0}]}"}
            with self.lock:
                for level in payload["levels"]:
                    self.levels[(payload["channel"], level["sku"])] = level["available"]
            return 200, {"accepted": len(payload["levels"])}
        if method == "PUT" and len(parts) == 6 and parts[:3] == ["", "erp", "orders"] and parts[4] == "shipments":
            if not valid_shipment(payload):
                return 422, {"error": "body must be a shipment"}
            with self.lock:
                self.shipments[(unquote(parts[3]), unquote(parts[5]))] = payload
            return 200, {"ok": True}
        return 404, {"error": "no such endpoint"}


def serve(args):
    shop = Shop(args.token, args.secret)

    class Handler(BaseHTTPRequestHandler):
        def dispatch(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = shop.handle(self.command, self.path, headers, body)
            out = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = dispatch

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--token", required=True)
    s.add_argument("--secret", required=True)
    s.add_argument("--port", type=int, default=0)
    g = sub.add_parser("sign")
    g.add_argument("--secret", required=True)
    g.add_argument("--msg-id")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
    else:
        print(json.dumps(sign(args.secret, sys.stdin.buffer.read(), args.msg_id)))


if __name__ == "__main__":
    main()
