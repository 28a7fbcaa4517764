"""WeCom callback crypto (WXBizMsgCrypt): signatures, AES-256-CBC envelopes.

wechatpy implements the cipher, but compares signatures with ``!=`` and lets a garbage body
escape as whatever low-level error it happens to trip (struct, base64, unicode). This wrapper
keeps wechatpy's cipher, checks signatures in constant time and turns every decryption failure
into one named error, so the callback view can answer 403/400 and never 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from wechatpy.work.crypto import PrpCrypto


class CallbackSignatureError(Exception):
    """The msg_signature does not match: the request is not from WeCom."""


class CallbackDecryptError(Exception):
    """The payload is signed correctly but cannot be decrypted or is not for our corp."""


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """sha1 of the four strings sorted and joined, as WeCom signs callbacks."""
    # SHA-1 is what the protocol mandates; it authenticates, we do not choose it.
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


class CallbackCrypto:
    """Sign, verify, encrypt and decrypt callback payloads for one corp."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str):
        try:
            key = base64.b64decode(encoding_aes_key + "=")
        except ValueError as exc:
            raise ValueError("EncodingAESKey is not valid base64") from exc
        if len(key) != 32:
            raise ValueError("EncodingAESKey must be 43 characters (32 bytes)")
        self._key = key
        self._token = token
        self.receive_id = receive_id

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise CallbackSignatureError unless the signature matches (constant time)."""
        expected = signature(self._token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), (msg_signature or "").encode()):
            raise CallbackSignatureError()

    def decrypt(self, encrypt: str) -> str:
        """Decrypt an Encrypt field; raise CallbackDecryptError on any malformed input."""
        try:
            plain = PrpCrypto(self._key).decrypt(encrypt, self.receive_id)
        except Exception as exc:  # wechatpy raises many unrelated types for bad input
            raise CallbackDecryptError(type(exc).__name__) from exc
        return plain

    def encrypt(self, plaintext: str) -> str:
        return PrpCrypto(self._key).encrypt(plaintext, self.receive_id).decode()

    def verify_and_decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        self.verify(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def seal(self, plaintext: str, timestamp: str | None = None, nonce: str | None = None) -> dict:
        """Encrypt and sign a payload as WeCom would post it: the query params and the body."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(8)
        encrypt = self.encrypt(plaintext)
        return {
            "msg_signature": signature(self._token, timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
            "encrypt": encrypt,
        }

    def envelope(self, plaintext: str, agent_id: str = "") -> tuple[dict, bytes]:
        """(query params, XML body) for a POST callback carrying ``plaintext``."""
        sealed = self.seal(plaintext)
        body = (
            f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{sealed['encrypt']}]]></Encrypt>"
            f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>"
        )
        params = {k: sealed[k] for k in ("msg_signature", "timestamp", "nonce")}
        return params, body.encode()
