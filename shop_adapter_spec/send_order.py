"""Sends one order to shoprelay, signed with the official Standard Webhooks library.

    pip install standardwebhooks==1.1.0
    python3 send_order.py https://relay.example.com whsec_... [ORDER_ID]

Prints the relay's status and answer: 202 (stored, it will reach ERPNext), 200 (a duplicate:
this order id was received before), or a refusal that says what was wrong.
"""

import json
import sys
import urllib.error
import urllib.request
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook


def send(relay_url: str, secret: str, order: dict) -> tuple[int, dict]:
    payload = json.dumps(order, ensure_ascii=False)
    # One webhook id per order: a retry of the same order reuses it.
    msg_id = "msg_" + order["order_id"]
    now = datetime.now(tz=timezone.utc)
    signature = Webhook(secret).sign(msg_id, now, payload)
    request = urllib.request.Request(
        relay_url.rstrip("/") + "/webhooks/shop/orders",
        data=payload.encode("utf-8"),
        method="POST",
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"null")


if __name__ == "__main__":
    relay_url, secret = sys.argv[1], sys.argv[2]
    order = {
        "order_id": sys.argv[3] if len(sys.argv) > 3 else "SHOP-10042",
        "channel": "web",
        "placed_at": datetime.now(tz=timezone.utc).isoformat(timespec="seconds"),
        "currency": "EUR",
        "customer": {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "+49 30 1234567",
            "fields": {"loyalty_tier": "gold"},
        },
        "shipping_address": {
            "line1": "Hauptstraße 1",
            "city": "Berlin",
            "postcode": "10115",
            "country": "DE",
        },
        "lines": [{"sku": "SKU-001", "qty": 2, "unit_price": 19.9, "discount": 1.8}],
        "shipping": {"method": "DHL Paket", "amount": 4.9},
        "discount_total": 2,
        "total": 40.9,
    }
    status, answer = send(relay_url, secret, order)
    print(status, json.dumps(answer))
    sys.exit(0 if status in (200, 202) else 1)
