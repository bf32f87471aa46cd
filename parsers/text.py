"""Vectorised helpers for line-oriented bytes: where lines start and end, and their text.

Splitting with numpy and slicing Arrow buffers avoids a Python loop per line, which is what keeps
the bulk path near DuckDB's own CSV speed (see DESIGN.md, "Speed").
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

UTF8_BOM = b"\xef\xbb\xbf"


def line_starts(data: bytes) -> np.ndarray:
    """Byte offsets (int64) where each line of ``data`` starts; ``data`` holds complete lines.

    A final line without a newline still counts as a line.
    """
    if not data:
        return np.zeros(0, dtype=np.int64)
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10).astype(np.int64)
    starts = np.concatenate(([0], newlines + 1))
    if starts[-1] == len(data):
        starts = starts[:-1]
    return starts


def lines_array(data: bytes, starts: np.ndarray) -> pa.Array:
    """The text of each line (without CR/LF) as an Arrow string array, zero-copy where valid.

    Invalid UTF-8 does not raise: such lines are decoded with U+FFFD replacements, so the caller
    can still see them; ``invalid_utf8_mask`` tells which lines they were.
    """
    n = len(starts)
    if n == 0:
        return pa.array([], pa.string())
    offsets = np.concatenate((starts, [len(data)])).astype(np.int32 if len(data) < 2**31 else np.int64)
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    arr = pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)])
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        decoded = [
            data[int(s) : int(e)].decode("utf-8", errors="replace") for s, e in itertools.pairwise(offsets)
        ]
        arr = pa.array(decoded, typ)
    trimmed = pc.utf8_rtrim(arr, characters="\r\n")
    return trimmed.cast(pa.string()) if typ == pa.large_string() else trimmed


def invalid_utf8_mask(data: bytes, starts: np.ndarray) -> np.ndarray:
    """Boolean mask of lines that are not valid UTF-8 (rare; the check is per line only then)."""
    mask = np.zeros(len(starts), dtype=bool)
    try:
        data.decode("utf-8")
        return mask
    except UnicodeDecodeError:
        pass
    ends = np.concatenate((starts[1:], [len(data)]))
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        try:
            data[int(s) : int(e)].decode("utf-8")
        except UnicodeDecodeError:
            mask[i] = True
    return mask


def looks_like_text(head: bytes) -> bool:
    """True for UTF-8 (or ASCII) text: no NUL bytes and at most a few undecodable bytes.

    A log with one corrupted line is still a log (that line becomes a reject), so a handful of
    invalid sequences does not make a file binary.
    """
    if not head or b"\x00" in head:
        return False
    sample = head[:8192]
    bad = sample.decode("utf-8", errors="replace").count("\ufffd")
    return bad <= max(2, len(sample) // 100)
