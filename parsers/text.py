"""Vectorised helpers for line-oriented bytes: where lines start and end, and their text.

Splitting with numpy and slicing Arrow buffers avoids a Python loop per line, which is what keeps
the bulk path near DuckDB's own CSV speed (see DESIGN.md, "Speed").
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


# --- whole text files, any encoding, with byte offsets (whole-file formats) ----------------


@dataclass
class Line:
    offset: int  # byte offset of the line's first byte in the file
    number: int  # 1-based
    text: str  # without the line end
    valid: bool  # False if the bytes were not valid in the file's encoding


def sniff_text(head: bytes) -> str | None:
    """``head`` decoded (BOM-aware, UTF-16 included) for content sniffing, None if binary."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head[: len(head) // 2 * 2].decode("utf-16", errors="replace")
    if b"\x00" in head[:4096]:
        return None
    return head.decode("utf-8-sig", errors="replace")


def read_lines(path: Path) -> Iterator[Line]:
    """Lines of a text file with their byte offsets; memory stays at one line.

    UTF-8 (with or without BOM) is read as bytes; UTF-16 (with BOM, as Windows PowerShell's
    ``-Encoding Unicode`` and some tools write) is decoded and its offsets counted in code units.
    """
    with path.open("rb") as f:
        bom = f.read(2)
        f.seek(0)
        if bom in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            yield from _utf16_lines(path, "utf-16-le" if bom == codecs.BOM_UTF16_LE else "utf-16-be")
            return
        offset = 0
        for number, raw in enumerate(f, start=1):
            body = raw[3:] if number == 1 and raw.startswith(codecs.BOM_UTF8) else raw
            try:
                text, valid = body.decode("utf-8"), True
            except UnicodeDecodeError:
                text, valid = body.decode("utf-8", errors="replace"), False
            yield Line(offset, number, text.rstrip("\r\n"), valid)
            offset += len(raw)


def _utf16_lines(path: Path, encoding: str) -> Iterator[Line]:
    offset = 2
    with path.open("r", encoding=encoding, errors="replace", newline="") as f:
        f.read(1)  # the BOM
        for number, text in enumerate(_split_keep_ends(f), start=1):
            yield Line(offset, number, text.rstrip("\r\n"), "\ufffd" not in text)
            offset += len(text.encode(encoding, errors="surrogatepass"))


def _split_keep_ends(f: object) -> Iterator[str]:
    # a text file opened with newline="" keeps "\r\n"; iterating splits on "\n" and "\r" alike,
    # so re-join lone "\r" pieces to count bytes exactly
    pending = ""
    for piece in f:  # type: ignore[attr-defined]
        pending += piece
        if pending.endswith("\n"):
            yield pending
            pending = ""
    if pending:
        yield pending
