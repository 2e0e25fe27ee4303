"""Message encryption, byte-compatible with the Node sailor (docs/wire-dialects.md, "Encryption").

AES-256-CBC with PKCS#7 padding; key = SHA-256 of the password's UTF-8 bytes; IV = the 16 UTF-8 bytes
of MESSAGE_CRYPTO_IV, the same for every message. Plaintext = JSON.stringify(message) as UTF-8, which
`js_json_dumps` reproduces. Protocol version < 2: the body is base64 text; version 2: raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .js import js_json_dumps


class CryptoError(ValueError):
    """A body that cannot be decoded, decrypted or parsed (the worker rejects it)."""


# --- base64 as Node reads it -----------------------------------------------------------------
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/\-_]")


def node_b64decode(data: bytes | str) -> bytes:
    """Buffer.from(data, 'base64'): url-safe letters allowed, other characters skipped, padding optional."""
    raw = data.encode("latin-1", "replace") if isinstance(data, str) else bytes(data)
    clean = _NOT_B64.sub(b"", raw.split(b"=", 1)[0]).replace(b"-", b"+").replace(b"_", b"/")
    clean = clean[: len(clean) - (len(clean) % 4 == 1)]  # a lone trailing sextet carries no byte
    return base64.b64decode(clean + b"=" * (-len(clean) % 4))


# --- the cipher ------------------------------------------------------------------------------
class MessageCipher:
    """Encrypts/decrypts message bodies as the sailor of the chosen dialect does.

    No password: `legacy_plaintext=False` (elastic.io sailor >= 2.6.5) writes base64 of the plain
    JSON for protocol version 1 and the plain JSON for version 2; `legacy_plaintext=True` (OIH
    ferryman, older sailors) writes plain JSON for both. Decoding accepts either form in both modes.
    """

    def __init__(self, password: str | None = None, iv: str | None = None, *, legacy_plaintext: bool = False):
        self.legacy_plaintext = legacy_plaintext
        self.password = password or None
        if self.password is None:
            self._key = self._iv = None
            return
        if not iv:
            raise ValueError("MESSAGE_CRYPTO_IV is required when MESSAGE_CRYPTO_PASSWORD is set")
        iv_bytes = iv.encode("utf-8")
        if len(iv_bytes) != 16:
            raise ValueError(f"MESSAGE_CRYPTO_IV must be 16 bytes of UTF-8 text, got {len(iv_bytes)}")
        self._key = hashlib.sha256(self.password.encode("utf-8")).digest()
        self._iv = iv_bytes

    @property
    def encrypting(self) -> bool:
        return self._key is not None

    # bytes level
    def encrypt_bytes(self, plaintext: bytes) -> bytes:
        padder = padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        return enc.update(padder.update(plaintext) + padder.finalize()) + enc.finalize()

    def decrypt_bytes(self, ciphertext: bytes) -> bytes:
        try:
            dec = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
            padded = dec.update(ciphertext) + dec.finalize()
            unpadder = padding.PKCS7(128).unpadder()
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError as exc:
            raise CryptoError(f"cannot decrypt the message: {exc}") from None

    # message level
    def encrypt(self, obj: Any, protocol_version: int | None = 1) -> bytes:
        """The AMQP body for `obj` under protocol version 1 (base64 text) or 2 (raw bytes)."""
        text = js_json_dumps(obj).encode("utf-8")
        v2 = _version(protocol_version) >= 2
        if self.encrypting:
            ct = self.encrypt_bytes(text)
            return ct if v2 else base64.b64encode(ct)
        if self.legacy_plaintext or v2:
            return text
        return base64.b64encode(text)

    def decrypt(self, body: bytes | str, protocol_version: int | None = 1) -> Any:
        """The message in an AMQP body; CryptoError when it cannot be read."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not body:
            raise CryptoError("empty message body")
        v2 = _version(protocol_version) >= 2
        if self.encrypting:
            try:
                raw = body if v2 else node_b64decode(body)
            except (binascii.Error, ValueError) as exc:
                raise CryptoError(f"message body is not base64: {exc}") from None
            return _parse(self.decrypt_bytes(raw))
        if v2:
            attempts = [body]
        elif self.legacy_plaintext:
            attempts = [body, _try_b64(body)]
        else:
            attempts = [_try_b64(body), body]
        for candidate in attempts:
            if candidate is None:
                continue
            try:
                return _parse(candidate)
            except CryptoError:
                continue
        raise CryptoError("message body is neither JSON nor base64 of JSON")

    # strings (error payloads are always base64 strings)
    def encrypt_str(self, obj: Any) -> str:
        return self.encrypt(obj, 1).decode("utf-8")

    def decrypt_str(self, text: str) -> Any:
        return self.decrypt(text.encode("utf-8"), 1)


def _version(value: Any) -> int:
    try:
        return int(float(value)) if value is not None else 1
    except (TypeError, ValueError):
        return 1


def _try_b64(body: bytes) -> bytes | None:
    try:
        return node_b64decode(body)
    except (binascii.Error, ValueError):
        return None


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CryptoError(f"message is not UTF-8 JSON: {exc}") from None
