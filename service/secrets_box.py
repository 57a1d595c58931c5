"""Sealing biometric data at rest: AES-GCM under a key derived from the secret key."""

from __future__ import annotations

import functools
import os

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


class SecretBox:
    """Encrypts face encodings and invitation tokens; a copied row is useless without the key."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"photo-removal",
            info=b"biometric encodings v1",
        ).derive(secret_key.encode())
        self._aead = AESGCM(key)

    def seal(self, encoding: np.ndarray) -> bytes:
        return self.seal_bytes(np.asarray(encoding, dtype="<f8").tobytes())

    def open(self, sealed: bytes) -> np.ndarray:
        return np.frombuffer(self.open_bytes(sealed), dtype="<f8").copy()

    def seal_bytes(self, plain: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, _VERSION)

    def open_bytes(self, sealed: bytes) -> bytes:
        if sealed[:1] != _VERSION:
            raise ValueError("unknown sealed-data version")
        return self._aead.decrypt(sealed[1:13], sealed[13:], _VERSION)


@functools.lru_cache(maxsize=4)
def box_for(secret_key: str) -> SecretBox:
    """The box of this key, derived once (places that hold only the settings use it)."""
    return SecretBox(secret_key)
