"""Typed JSON documents in the lake: one pydantic model per document kind, read with the object's key
named in every error and written as the sorted JSON the inbox has always held.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from stores.lake import Lake

Doc = TypeVar("Doc", bound=BaseModel)


class DocumentError(ValueError):
    """A stored object that is not a document of its kind (an older format, or damaged)."""


def parse_document(key: str, data: bytes, kind: type[Doc]) -> Doc:
    """The ``kind`` document in ``data`` (the object at ``key``); :class:`DocumentError` names the key
    and each field that is missing or wrong."""
    try:
        return kind.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(map(str, e['loc']))!r}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors(include_url=False)
        )
        raise DocumentError(f"{key} is not a valid {kind.__name__} document: {problems}") from None


def read_document(lake: Lake, key: str, kind: type[Doc]) -> Doc:
    return parse_document(key, lake.get_bytes(key), kind)


def document_bytes(doc: BaseModel) -> bytes:
    """The document as JSON with sorted keys (the bytes the inbox has always held)."""
    return json.dumps(doc.model_dump(mode="json"), sort_keys=True).encode()
