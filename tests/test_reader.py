"""read_chunks hands over exactly the bytes asked for, in chunks of whole lines, from any start."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.reader import read_chunks


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, int, int | None, bool, int]:
    lines = draw(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=40))
    data = b"".join(lines) + draw(st.sampled_from([b"", b"no newline at the end"]))
    bounds = [0] + [i + 1 for i, c in enumerate(data) if c == 10]
    start = draw(st.sampled_from(bounds))
    limit = draw(st.sampled_from([None, *(b for b in bounds if b >= start)]))
    return data, start, limit, draw(st.booleans()), draw(st.integers(min_value=6, max_value=100))


@settings(max_examples=400, deadline=None)
@given(cases())
def test_chunks_cover_exactly_the_range_in_whole_lines(
    case: tuple[bytes, int, int | None, bool, int],
) -> None:
    data, start, limit, final, chunk_bytes = case
    chunks = list(read_chunks(io.BytesIO(data), start, limit=limit, chunk_bytes=chunk_bytes, final=final))
    expected = data[start : len(data) if limit is None else limit]
    if not final:  # a file still being written: the unfinished last line waits
        expected = expected[: expected.rfind(b"\n") + 1]
    assert b"".join(c.data for c in chunks) == expected
    position = start
    for c in chunks:
        assert c.start == position
        position = c.end
    assert all(c.data.endswith(b"\n") for c in chunks[:-1])
