"""Signing a webhook per Standard Webhooks: `webhook-id`, `webhook-timestamp`, and one
`v1,` HMAC-SHA256 signature per secret in force (two while a rotated secret is honoured)."""

import base64
import functools
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the form of a secret, not one


def new_secret() -> str:
    """A signing secret in the form Standard Webhooks libraries read: whsec_ and base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    # Decoding the secret costs more than the HMAC itself: once a secret, not once a request.
    return Webhook(secret)


def signed_headers(
    message_id: str, body: bytes, *, secrets_in_force: Sequence[str], at: datetime
) -> dict[str, str]:
    text = body.decode()
    signatures = " ".join(
        _signer(secret).sign(msg_id=message_id, timestamp=at, data=text)
        for secret in secrets_in_force
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
