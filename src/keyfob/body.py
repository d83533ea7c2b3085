"""An answer's body, sans I/O: decoded, capped in size, and read within a deadline.

A hostile or broken server chooses how much it sends and how fast: a 100 MB
token, a 500 KB gzip answer that inflates to gigabytes, one byte every few
seconds (each inside the read timeout, so httpx never times out). Every
transport driver feeds the bytes of an answer to a :class:`BodyReader` as they
arrive, still content-encoded (httpx ``iter_raw``/``aiter_raw``, requests
``raw.stream(decode_content=False)``), and takes the body from
:meth:`BodyReader.finish`. The reader decodes gzip and deflate itself, never
producing more than the cap, and checks the deadline at every chunk.

Cheap to import: ``zlib`` and ``time`` only.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

from keyfob.errors import ProviderError, TransportError

#: the most a decoded answer may hold: ample for any token answer or discovery document
MAX_BODY = 1 << 20
#: what keyfob can decode itself, so the cap holds for compressed answers too
ACCEPT_ENCODING = "gzip, deflate"


def total_deadline(connect_timeout: float, timeout: float) -> float:
    """Seconds a whole request may take, from connecting to the body's last byte.

    The connect timeout, then the read timeout twice: once for the server to
    start answering, once more for the rest. A server that sends a byte just
    inside each read timeout (a drip) still ends there.
    """
    return connect_timeout + 2 * timeout


class BodyReader:
    """Collects one answer's body: ``feed`` each chunk as it arrives, then ``finish``.

    Raises ``ProviderError`` (exit 4) once the decoded body passes ``limit``
    or it is in an encoding keyfob does not read, and ``TransportError``
    (exit 4) once ``clock()`` passes ``deadline``.
    """

    def __init__(
        self,
        where: str,
        content_encoding: str | None,
        *,
        deadline: float,
        seconds: float,
        limit: int = MAX_BODY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.where = where
        self.deadline = deadline
        self.seconds = seconds
        self.limit = limit
        self.clock = clock
        self._parts: list[bytes] = []
        self._size = 0
        self._decoders = [_decoder(e, where) for e in _encodings(content_encoding)]
        self.check_time()

    def check_time(self) -> None:
        """A ``TransportError`` once the request's deadline has passed."""
        if self.clock() > self.deadline:
            raise TransportError(
                f"{self.where} did not finish answering within {self.seconds:g} s",
                hint="the provider is too slow or sends its answer drop by drop; try again "
                "later, or raise KEYFOB_TIMEOUT or [http] timeout",
            )

    def feed(self, chunk: bytes) -> None:
        self.check_time()
        for decoder in self._decoders:
            chunk = self._inflate(decoder, chunk)
        self._keep(chunk)

    def finish(self) -> bytes:
        self.check_time()
        tail = b""
        for decoder in self._decoders:
            tail = self._inflate(decoder, tail) + decoder.flush()
        self._keep(tail)
        return b"".join(self._parts)

    def _inflate(self, decoder: zlib._Decompress, data: bytes) -> bytes:
        room = self.limit - self._size + 1
        try:
            out = decoder.decompress(data, room)
        except zlib.error:
            raise ProviderError(
                f"{self.where} answered with a body that does not decode as its "
                "Content-Encoding says",
            ) from None
        if decoder.unconsumed_tail:  # it would inflate past the cap
            self._too_large()
        return out

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.limit:
            self._too_large()
        if data:
            self._parts.append(data)

    def _too_large(self) -> None:
        raise ProviderError(
            f"{self.where} answered with more than {self.limit // 1024} KiB; "
            "keyfob stopped reading",
            hint="no token answer or discovery document is that large: check the "
            "provider's URL in config.toml",
        )


def _encodings(header: str | None) -> list[str]:
    """The content codings in the order to undo them (the last applied first)."""
    names = [e.strip().lower() for e in (header or "").split(",")]
    return [e for e in reversed(names) if e and e != "identity"]


def _decoder(encoding: str, where: str) -> zlib._Decompress:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":  # RFC 9110 §8.4.1.2: zlib format
        return zlib.decompressobj()
    shown = "".join(c if c.isalnum() or c in "-_." else "?" for c in encoding[:20])
    raise ProviderError(f"{where} answered in a Content-Encoding keyfob cannot read ({shown})")
