"""Password hashes: scrypt with a salt of its own per hash (``scrypt$n$r$p$salt$key``, base64).

:func:`verify_password` compares in constant time and never raises on a
malformed hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_LENGTH = 2**14, 8, 1, 32
MIN_PASSWORD, MAX_PASSWORD = 8, 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, salt: bytes | None = None) -> str:
    """A scrypt hash with a fresh 16-byte salt: ``scrypt$n$r$p$salt$key``."""
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=KEY_LENGTH,
        maxmem=256 * n * SCRYPT_R + 2**20,
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def check_password_hash(encoded: object) -> str | None:
    """What is wrong with a stored hash, or None if it is usable."""
    parts = encoded.split("$") if isinstance(encoded, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        return "not a scrypt hash (scrypt$n$r$p$salt$key); create one with 'hash-password'"
    try:
        n, r, p = (int(x) for x in parts[1:4])
        base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return "malformed scrypt hash"
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or n > 2**20 or not key:
        return "scrypt parameters out of range"
    return None


def check_new_password(password: object) -> str | None:
    """What is wrong with a password someone wants to set, or None."""
    if not isinstance(password, str):
        return "the password must be a string"
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"the password must have at most {MAX_PASSWORD} characters"
    return None


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches ``encoded``; constant-time, False for malformed hashes."""
    if not isinstance(password, str) or check_password_hash(encoded) is not None:
        return False
    _, n, r, p, salt, key = encoded.split("$")
    expected = base64.b64decode(key)
    actual = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
        maxmem=256 * int(n) * int(r) * int(p) + 2**20,
    )
    return hmac.compare_digest(actual, expected)
