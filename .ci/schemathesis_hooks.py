"""Schemathesis hook: signs every request that has a body with Standard Webhooks, using the
official Python library (standardwebhooks), so that `shoprelay shop mock` can be fuzzed with
signing configured (it then requires and verifies webhook-id, webhook-timestamp and
webhook-signature). The secret comes from SHOP_SIGNING_SECRET.

The hook serializes the JSON body itself and passes those exact bytes as the request body, so the
signature covers what is sent. A case that deliberately breaks one of the webhook-* headers
(negative testing) keeps its broken header; the other two are signed as usual.
"""

import json
import os
import secrets
from datetime import datetime, timezone

import schemathesis
from schemathesis.core import NotSet
from standardwebhooks.webhooks import Webhook

SECRET = os.environ["SHOP_SIGNING_SECRET"]
WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _body_bytes(body) -> bytes:
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    return json.dumps(body).encode("utf-8")


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, NotSet) or context.operation is None or context.operation.method.upper() == "GET":
        return
    raw = _body_bytes(case.body)
    kwargs["data"] = raw
    headers = case.headers if case.headers is not None else {}
    meta = case.meta
    negative = meta is not None and meta.generation.mode.is_negative
    # A negative case may have broken one webhook-* header on purpose: leave that one alone.
    kept = {k.lower(): v for k, v in headers.items() if k.lower() in WEBHOOK_HEADERS} if negative else {}
    msg_id = kept.get("webhook-id") or "msg_" + secrets.token_hex(16)
    now = datetime.now(tz=timezone.utc)
    timestamp = kept.get("webhook-timestamp") or str(int(now.timestamp()))
    signed = {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": kept.get("webhook-signature")
        or Webhook(SECRET).sign(msg_id, now, raw.decode("utf-8", "replace")),
    }
    for name in list(headers):
        if name.lower() in WEBHOOK_HEADERS:
            del headers[name]
    headers.update(signed)
    case.headers = headers
