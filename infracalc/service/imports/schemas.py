"""What the imports API accepts and returns (msgspec structs; unknown fields are refused).

The upload itself is no JSON: it is the file's bytes, ``Content-Type: application/octet-stream``,
with the file's name in the ``name`` query parameter (UTF-8, percent-encoded as any query; a
header could only carry Latin-1 without a second encoding).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from infracalc.db import Governance, ImportState, Sensitivity

Comment = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, description="for the uploader and the record")]


class ImportOut(msgspec.Struct):
    """An import: the file, what its content is, where it stands."""

    id: str
    project: str
    name: str
    size: int
    sha256: str
    part_sha256: list[str]
    detected_type: str
    content_type: str
    governance: Governance
    state: ImportState
    sensitivity: Sensitivity | None
    #: Why it was released at once or held for review.
    routing: str
    uploaded_by: str
    uploaded_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_comment: str | None


class ImportApproval(msgspec.Struct, forbid_unknown_fields=True):
    """CASD staff release an import, saying how sensitive it is."""

    sensitivity: Annotated[
        Sensitivity,
        msgspec.Meta(description="standard, or sensitive (the project then stays under CASD governance)"),
    ]
    comment: Comment


class ImportRejection(msgspec.Struct, forbid_unknown_fields=True):
    """CASD staff refuse an import; its object is deleted."""

    comment: Comment
