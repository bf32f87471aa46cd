"""Splitting W3C data lines into fields: a vectorised bulk path and an exact per-line path.

The bulk path hands a whole run of lines to ``pyarrow.csv`` (about DuckDB's speed). It is only
trusted when its counts prove a one-to-one match of rows to lines: pyarrow skips empty lines,
lets an unterminated quote swallow the following lines and splits at a bare CR, so each of those
is either excluded beforehand or detected afterwards. Lines it cannot split are re-read by the
exact path (Python's csv module, one line at a time), whose failures carry the reject reason.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from parsers.w3c_header import Layout

_MIN_BLOCK = 1 << 20


@dataclass
class Lines:
    """The lines of one chunk: where they are and their text (CR/LF removed)."""

    data: bytes
    starts: np.ndarray  # byte offset of each line in ``data``
    ends: np.ndarray  # byte offset just after each line (its newline included)
    text: pa.Array  # one string per line, without the line end
    exact_only: np.ndarray  # bool per line: the bulk path must not see it (stray CR, BOM)
    bom: np.ndarray  # bool per line: starts with a UTF-8 byte-order mark
    empty: np.ndarray  # bool per line: nothing but the line end


@dataclass
class Split:
    """Fields of the lines that could be split; ``lines`` holds their indices, ascending."""

    columns: dict[str, pa.ChunkedArray]
    lines: np.ndarray
    rejects: list[tuple[int, str]] = field(default_factory=list)


def stray_cr_mask(data: bytes, starts: np.ndarray) -> np.ndarray:
    """Lines holding a CR not followed by LF (pyarrow would cut the line there)."""
    mask = np.zeros(len(starts), dtype=bool)
    buf = np.frombuffer(data, dtype=np.uint8)
    crs = int(np.count_nonzero(buf == 13))
    if crs == 0:
        return mask
    ends = np.append(starts[1:], len(data))
    crlf = ends[ends >= 2]
    if crs == int(np.count_nonzero((buf[crlf - 1] == 10) & (buf[crlf - 2] == 13))):
        return mask  # every CR is part of a CRLF line end
    cr = np.flatnonzero(buf == 13)
    nxt = cr + 1
    stray = cr[(nxt < len(buf)) & (buf[np.minimum(nxt, len(buf) - 1)] != 10)]
    if len(stray):
        mask[np.searchsorted(starts, stray, side="right") - 1] = True
    return mask


def split_lines(lines: Lines, idx: np.ndarray, layout: Layout) -> Split:
    """Split the data lines ``idx`` (ascending chunk line indices) under ``layout``."""
    if len(idx) == 0:
        return Split(_empty_columns(layout), idx)
    fast_idx = idx[~lines.exact_only[idx]]
    exact_idx = [idx[lines.exact_only[idx]]]
    got = bulk_split(lines, fast_idx, layout)
    if got is None and layout.quoted:
        # an unterminated quote merged lines: set aside lines with an odd number of quotes
        quotes = pc.count_substring(lines.text.take(pa.array(fast_idx)), '"').to_numpy(zero_copy_only=False)
        odd = quotes % 2 == 1
        exact_idx.append(fast_idx[odd])
        fast_idx = fast_idx[~odd]
        got = bulk_split(lines, fast_idx, layout)
    if got is None:
        exact_idx.append(fast_idx)
        fast_idx = fast_idx[:0]
        got = (_empty_columns(layout), fast_idx, fast_idx)
    columns, good, bad = got
    exact_idx.append(bad)
    slow = np.sort(np.concatenate(exact_idx))
    if len(slow) == 0:
        return Split(columns, good)
    slow_cols, slow_good, rejects = split_exact(lines.text, slow, layout)
    order = np.argsort(np.concatenate((good, slow_good)), kind="stable")
    merged = {
        name: pa.chunked_array(columns[name].chunks + slow_cols[name].chunks, pa.string()).take(
            pa.array(order)
        )
        for name in layout.columns
    }
    return Split(merged, np.concatenate((good, slow_good))[order], rejects)


def _empty_columns(layout: Layout) -> dict[str, pa.ChunkedArray]:
    return {name: pa.chunked_array([], pa.string()) for name in layout.columns}


def bulk_split(
    lines: Lines, idx: np.ndarray, layout: Layout
) -> tuple[dict[str, pa.ChunkedArray], np.ndarray, np.ndarray] | None:
    """pyarrow.csv over the lines ``idx``; None when the rows cannot be matched to the lines.

    Returns the columns of the good rows, their line indices, and the lines pyarrow refused.
    """
    if len(idx) == 0:
        return _empty_columns(layout), idx, idx
    lo, hi = int(idx[0]), int(idx[-1])
    start, end = int(lines.starts[lo]), int(lines.ends[hi])
    inside = np.zeros(hi - lo + 1, dtype=bool)
    inside[idx - lo] = True
    if bool(np.all(inside | lines.empty[lo : hi + 1])):
        buffer = pa.py_buffer(lines.data)[start:end]  # zero-copy: pyarrow skips empty lines
    else:
        lengths = lines.ends[lo : hi + 1] - lines.starts[lo : hi + 1]
        raw = np.frombuffer(lines.data, dtype=np.uint8)[start:end]
        buffer = pa.py_buffer(raw[np.repeat(inside, lengths)].tobytes())
    refused: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        refused.append(row.text)
        return "skip"

    longest = int(np.max(lines.ends[idx] - lines.starts[idx]))
    names = list(layout.columns)
    try:
        table = pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(
                column_names=names, block_size=max(_MIN_BLOCK, 4 * longest), use_threads=True
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=layout.separator,
                quote_char='"' if layout.quoted else False,
                double_quote=True,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows + len(refused) != len(idx):
        return None
    if not refused:
        return {n: table.column(n) for n in names}, idx, idx[:0]
    is_bad = pc.is_in(lines.text.take(pa.array(idx)), value_set=pa.array(sorted(set(refused)), pa.string()))
    bad_mask = is_bad.to_numpy(zero_copy_only=False).astype(bool)
    if int(bad_mask.sum()) != len(refused):
        return None
    return {n: table.column(n) for n in names}, idx[~bad_mask], idx[bad_mask]


def split_exact(
    text: pa.Array, idx: np.ndarray, layout: Layout
) -> tuple[dict[str, pa.ChunkedArray], np.ndarray, list[tuple[int, str]]]:
    """One line at a time with Python's csv module: slow, exact, and it says why a line fails."""
    want = len(layout.columns)
    values: list[list[str | None]] = [[] for _ in range(want)]
    good: list[int] = []
    rejects: list[tuple[int, str]] = []
    for i in idx.tolist():
        line = text[i].as_py().lstrip("\ufeff")
        fields, reason = split_one(line, layout)
        if fields is None:
            rejects.append((i, reason))
            continue
        if len(fields) != want:
            rejects.append((i, f"expected {want} fields (as the #Fields header says), found {len(fields)}"))
            continue
        good.append(i)
        for col, v in zip(values, fields, strict=True):
            col.append(v if v != "" else None)
    columns = {
        name: pa.chunked_array([pa.array(v, pa.string())])
        for name, v in zip(layout.columns, values, strict=True)
    }
    return columns, np.array(good, dtype=np.int64), rejects


def split_one(line: str, layout: Layout) -> tuple[list[str] | None, str]:
    """Fields of one line, or None and the reason it cannot be split."""
    if "\r" in line:
        return None, "carriage return inside the line (not a line end)"
    if not layout.quoted:
        return line.split(layout.separator), ""
    if line.count('"') % 2:
        return None, "unterminated quoted field (odd number of '\"')"
    try:
        return next(csv.reader([line], delimiter=layout.separator, quotechar='"', doublequote=True)), ""
    except csv.Error as exc:
        return None, f"cannot split the line: {exc}"
