"""Optional payload compression and encryption, from the ``eventsourcing`` library.

Encryption uses ``eventsourcing.cryptography.AESCipher`` (AES-GCM from the ``cryptography``
package, ~13 µs a round trip), not ``eventsourcing.cipher`` (pycryptodome, ~290 µs).
Per-payload zlib is available but Kafka's lz4 batch compression is usually the better
choice (``Settings.compression``). Order: compress, then encrypt (ciphertext does not
compress). Headers stay plaintext so subscribers can route without the key.
"""

from __future__ import annotations

import binascii
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from eventsourcing.compressor import ZlibCompressor
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import Cipher, Compressor
from eventsourcing.utils import Environment

if TYPE_CHECKING:
    from ledger.settings import Settings

__all__ = ["PLAIN", "Codec", "CodecError", "generate_cipher_key"]

PLAIN_CONTENT_TYPE: Final = "application/json"
ENCODED_CONTENT_TYPE: Final = "application/vnd.taskledger.event+json"
"""With ``; encoding=zlib``, ``aes-gcm`` or ``zlib+aes-gcm``: the JSON event, transformed."""


class CodecError(ValueError):
    """Bytes that this codec cannot turn back into a payload (wrong key, damaged data)."""


def generate_cipher_key() -> str:
    """A new 256-bit AES key, base64-encoded: the value for ``LEDGER_CIPHER_KEY``."""
    return AESCipher.create_key(32)


@dataclass(frozen=True, slots=True)
class Codec:
    """What happens to an event's JSON between ``encode`` and the log, and back."""

    cipher: Cipher | None = None
    compressor: Compressor | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Codec:
        """The codec that ``cipher_key`` and ``compress_payloads`` ask for."""
        cipher = None
        if settings.cipher_key is not None:
            cipher = _aes_cipher(settings.cipher_key.get_secret_value())
        compressor = ZlibCompressor() if settings.compress_payloads else None
        return cls(cipher=cipher, compressor=compressor)

    @classmethod
    def with_key(cls, key: str, *, compress: bool = False) -> Codec:
        return cls(cipher=_aes_cipher(key), compressor=ZlibCompressor() if compress else None)

    @property
    def content_type(self) -> str:
        """The ``content-type`` header of records this codec writes."""
        used = (("zlib", self.compressor), ("aes-gcm", self.cipher))
        steps = [name for name, step in used if step is not None]
        if not steps:
            return PLAIN_CONTENT_TYPE
        return f"{ENCODED_CONTENT_TYPE}; encoding={'+'.join(steps)}"

    def encode(self, payload: bytes) -> bytes:
        if self.compressor is not None:
            payload = self.compressor.compress(payload)
        if self.cipher is not None:
            payload = self.cipher.encrypt(payload)
        return payload

    def decode(self, data: bytes, *, limit: int) -> bytes:
        """The payload back; ``CodecError`` if it cannot be, or if it would exceed ``limit``
        bytes (checked while decompressing, so a zlib bomb never gets inflated)."""
        if self.cipher is not None:
            try:
                data = self.cipher.decrypt(data)
            except ValueError as exc:
                raise CodecError(f"cannot decrypt ({exc}: wrong cipher key?)") from None
        if self.compressor is not None:
            data = self._decompress(data, limit)
        return data

    def _decompress(self, data: bytes, limit: int) -> bytes:
        try:
            if isinstance(self.compressor, ZlibCompressor):
                inflater = zlib.decompressobj()
                payload = inflater.decompress(data, limit + 1)
                if not inflater.eof and len(payload) <= limit:
                    raise CodecError("cannot decompress (zlib: truncated data)")
                return payload
            assert self.compressor is not None
            return self.compressor.decompress(data)
        except zlib.error as exc:
            raise CodecError(f"cannot decompress (zlib: {exc})") from None


PLAIN: Final = Codec()
"""No compression, no encryption: the record's value is the event's JSON."""


def _aes_cipher(key: str) -> AESCipher:
    try:
        return AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))
    except (ValueError, OSError, binascii.Error) as exc:
        raise ValueError(f"cipher_key: not a base64 AES key of 16, 24 or 32 bytes: {exc}") from None
