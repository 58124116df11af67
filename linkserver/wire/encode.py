"""The clients' strict encoder: a request the server would refuse as not JSON is refused here.

``json.dumps`` writes ``NaN``, ``Infinity`` and lone surrogates that no
strict reader accepts (and ``httpx`` raises a bare ValueError for some of
them); :func:`encode` raises a :class:`BadRequest` saying what cannot be sent.
"""

from __future__ import annotations

import json
from typing import Any

from linkserver.core.errors import BadRequest


def encode(document: Any, what: str = "the request") -> bytes:
    """``document`` as UTF-8 JSON; BadRequest for non-finite numbers and text that is not text."""
    try:
        return json.dumps(document, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    except ValueError as exc:
        if isinstance(exc, UnicodeEncodeError):
            bad = exc.object[exc.start : exc.end]
            raise BadRequest(
                f"{what} cannot be sent: a string holds a lone surrogate ({bad!r}), "
                "e.g. from bytes that are not UTF-8"
            ) from None
        raise BadRequest(f"{what} cannot be sent: NaN and infinite numbers are not JSON ({exc})") from None
    except (TypeError, RecursionError) as exc:
        raise BadRequest(f"{what} cannot be sent as JSON: {exc}") from None
