"""File identity: which file is this, whatever it is called now?

A file is known by a fingerprint of its first bytes, not by its path, so a renamed (rotated) file
is recognised and not read twice. Files shorter than the fingerprint length are identified by all
their bytes, and keep that identity as they grow as long as the bytes they had are unchanged
(``KnownPrefixes``), so small files are read at once instead of waiting to reach 1 KiB.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

FINGERPRINT_BYTES = 1024


@dataclass(frozen=True)
class Fingerprint:
    file_id: str
    length: int  # how many leading bytes the id hashes (< FINGERPRINT_BYTES for short files)


def fingerprint_bytes(head: bytes) -> Fingerprint:
    """Identity of a file whose first bytes are ``head`` (at least FINGERPRINT_BYTES if it has them)."""
    part = head[:FINGERPRINT_BYTES]
    return Fingerprint(hashlib.sha256(part).hexdigest()[:32], len(part))


def fingerprint(path: Path) -> Fingerprint:
    with path.open("rb") as f:
        return fingerprint_bytes(f.read(FINGERPRINT_BYTES))


def prefix_id(head: bytes, length: int) -> str:
    """The id a file would have had when it was ``length`` bytes long."""
    return hashlib.sha256(head[:length]).hexdigest()[:32]
