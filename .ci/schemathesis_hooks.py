"""Schemathesis hook: signs every request that has a body with Standard Webhooks, using the
official Python library (standardwebhooks), so that `shoprelay shop mock` can be fuzzed with
signing configured (it then requires and verifies webhook-id, webhook-timestamp and
webhook-signature). The secret comes from SHOP_SIGNING_SECRET.

The hook serializes the JSON body itself and passes those exact bytes as the request body, so the
signature covers what is sent. A case that deliberately breaks one of the webhook-* headers
(negative testing: a value off the spec's pattern) keeps its broken header; the others are
signed as usual.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from datetime import datetime, timezone

import schemathesis
from schemathesis.core import NotSet
from standardwebhooks.webhooks import Webhook

SECRET = os.environ["SHOP_SIGNING_SECRET"]
# The spec's patterns for the three headers.
PATTERNS = {
    "webhook-id": re.compile(r"msg_[0-9a-f]{32}"),
    "webhook-timestamp": re.compile(r"[0-9]+"),
    "webhook-signature": re.compile(r"v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)*"),
}
WEBHOOK_HEADERS = tuple(PATTERNS)


def _body_bytes(body) -> bytes:
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    return json.dumps(body).encode("utf-8")


def _sign(msg_id: str, now: datetime, raw: bytes) -> str:
    try:
        return Webhook(SECRET).sign(msg_id, now, raw.decode("utf-8"))
    except UnicodeDecodeError:
        # The library signs text; a (negative) body that is not UTF-8 is signed by hand, the
        # same way: HMAC-SHA256 over "{id}.{timestamp}.{body}" with the secret's decoded key.
        key = base64.b64decode(SECRET.removeprefix("whsec_"))
        mac = hmac.new(key, f"{msg_id}.{int(now.timestamp())}.".encode() + raw, hashlib.sha256)
        return "v1," + base64.b64encode(mac.digest()).decode()


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, NotSet) or context.operation is None or context.operation.method.upper() == "GET":
        return
    raw = _body_bytes(case.body)
    kwargs["data"] = raw
    headers = case.headers if case.headers is not None else {}
    meta = case.meta
    negative = meta is not None and meta.generation.mode.is_negative
    # A negative case may have broken a webhook-* header on purpose: leave a broken one alone.
    kept = (
        {
            k.lower(): v
            for k, v in headers.items()
            if k.lower() in PATTERNS and not PATTERNS[k.lower()].fullmatch(str(v))
        }
        if negative
        else {}
    )
    msg_id = kept.get("webhook-id") or "msg_" + secrets.token_hex(16)
    now = datetime.now(tz=timezone.utc)
    timestamp = kept.get("webhook-timestamp") or str(int(now.timestamp()))
    signed = {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": kept.get("webhook-signature") or _sign(msg_id, now, raw),
    }
    for name in list(headers):
        if name.lower() in WEBHOOK_HEADERS:
            del headers[name]
    headers.update(signed)
    case.headers = headers


SIGNED_LOG = os.environ.get("SCHEMATHESIS_SIGNED_LOG")


@schemathesis.hook
def after_call(context, case, response):
    """Proves the signing works: records each accepted push, and each push whose headers were all
    well-formed and signed here yet was refused for its signature (there must be none)."""
    if SIGNED_LOG is None or response.request.method == "GET":
        return
    request_headers = {k.lower(): v for k, v in response.request.headers.items()}
    if response.status_code // 100 == 2:
        line = f"accepted {response.request.method}"
    elif (
        response.status_code == 401
        and request_headers.get("authorization") is not None
        and all(PATTERNS[h].fullmatch(request_headers.get(h, "")) for h in PATTERNS)
        and b"bearer" not in response.content
    ):
        shown = {k: v for k, v in request_headers.items() if k.startswith("webhook-")}
        body = response.request.body or b""
        line = f"signature-refused {response.request.method} {response.content[:200]!r} {shown} {body[:300]!r}"
    else:
        return
    with open(SIGNED_LOG, "a", encoding="utf-8") as log:
        log.write(line + "\n")
