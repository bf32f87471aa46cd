""".evtx records read the fast way (``evtx_json.read_batch``: msgspec structs, columns a batch
at a time) give exactly the rows and rejects of the reference reading (``orjson`` and
``system_values``/``flatten_json_event``, one record at a time), for the records of the real
public System sample and for records of every shape the package's JSON can take.

File read (see ../shared/samples/README.md): ``omerbenamram-evtx_2-vss_7-System.evtx``, from
github omerbenamram/evtx, ``samples/2-vss_7-System.evtx``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evtx
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.events_rows import Batcher
from parsers.evtx import EvtxParser


def both(texts: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fast, reference) rows and rejects of the same records, as plain values."""
    parser = EvtxParser()
    ids = list(range(1, len(texts) + 1))
    fast, slow = Batcher(len(texts) + 1), Batcher(len(texts) + 1)
    parser._read(fast, texts, ids, "s")
    for i, text in enumerate(texts):
        parser._add(slow, text, i, ids[i], "s")
    return _plain(fast), _plain(slow)


def _plain(out: Batcher) -> dict[str, Any]:
    result = out.take().result
    rows = result.tables["events"].to_pylist() if "events" in result.tables else []
    return {"rows": rows, "rejects": result.rejects.to_pylist()}


def test_the_system_sample_reads_the_same_both_ways(shared_samples: Path) -> None:
    path = shared_samples / "evtx" / "omerbenamram-evtx_2-vss_7-System.evtx"
    texts = [str(r["data"]) for r in evtx.PyEvtxParser(str(path), indent=False).records_json() if r]
    fast, slow = both(texts)
    assert len(fast["rows"]) == 1160 and fast == slow


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # the binary format holds no wider number
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", " ", "\t\r\n", "a\r\nb", "4", "-12", " 7 ", "x", "0x80070005", "é"])
    | st.text(max_size=5)
)
NODES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["#attributes", "#text", "Name", "Qualifiers", "a", "xmlns"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)


def attributed(names: list[str]) -> st.SearchStrategy[Any]:
    """An element as the package writes it: attributes under ``#attributes``, or something odd."""
    return (
        st.fixed_dictionaries(
            {},
            optional={"#attributes": st.fixed_dictionaries({}, optional={n: NODES for n in names}) | NODES},
        )
        | NODES
    )


SYSTEM = st.fixed_dictionaries(
    {},
    optional={
        "Provider": attributed(["Name", "EventSourceName", "Guid"]),
        "EventID": SCALARS
        | st.fixed_dictionaries({"#text": SCALARS}, optional={"#attributes": attributed(["Qualifiers"])}),
        "Version": SCALARS,
        "Level": SCALARS,
        "Task": SCALARS,
        "Opcode": SCALARS,
        "Keywords": SCALARS,
        "TimeCreated": attributed(["SystemTime"])
        | st.just({"#attributes": {"SystemTime": "2018-07-06T18:37:44.881628Z"}}),
        "EventRecordID": SCALARS,
        "Correlation": NODES,
        "Execution": attributed(["ProcessID", "ThreadID"]),
        "Channel": SCALARS,
        "Computer": SCALARS,
        "Security": attributed(["UserID"]),
    },
)
EVENT_DATA = st.dictionaries(
    st.sampled_from(["Data", "Binary", "#attributes", "Name", "ErrorCode", "1", "2", "x"]),
    NODES | st.fixed_dictionaries({"#text": st.lists(SCALARS, max_size=3) | SCALARS}),
    max_size=5,
)
EVENTS = st.fixed_dictionaries(
    {"System": SYSTEM | NODES},
    optional={"EventData": EVENT_DATA | NODES, "UserData": st.none() | NODES, "#attributes": NODES},
)
# a usual record, whose System values the variations above then change
USUAL = {
    "System": {
        "Provider": {"#attributes": {"Name": "Service Control Manager"}},
        "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7036},
        "Level": 4,
        "TimeCreated": {"#attributes": {"SystemTime": "2018-07-06T18:37:44.881628Z"}},
        "EventRecordID": 12,
    }
}


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=6), st.data())
def test_records_of_any_shape_read_the_same_both_ways(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    texts = []
    for event in events:
        if data.draw(st.booleans()):  # mostly-usual records, so that most become rows
            event = {
                **event,
                "System": {
                    **USUAL["System"],
                    **(event["System"] if isinstance(event["System"], dict) else {}),
                },
            }
        texts.append(orjson.dumps({"Event": event}).decode())
    texts.append('{"Event": {"System": 5}}')
    fast, slow = both(texts)
    assert fast == slow


def test_odd_texts_read_the_same_both_ways() -> None:
    usual = orjson.dumps({"Event": {**USUAL, "EventData": {"a": "1"}}}).decode()
    texts = [
        usual,
        usual.replace('"EventRecordID":12', '"EventRecordID":12,"EventRecordID":13'),  # repeated key
        usual.replace('{"a":"1"}', '{"a":"1","a":"2"}'),
        usual.replace('"Level":4', '"Level":"4"'),
        usual[:-5],  # cut short
        "",
        "[]",
        '{"Event": null}',
        usual.replace('"Level":4', '"Level":1e400'),  # no 64-bit float holds it
    ]
    fast, slow = both(texts)
    assert fast == slow and len(fast["rows"]) == 4


EVENT_DATA_SHAPES: list[Any] = [
    None,
    {},
    {"Binary": ""},
    {"Binary": None},
    {"Binary": "00FF", "a": "1"},
    {"Data": {"#text": ["a", "", None, 7]}, "Binary": "00"},
    {"Data": {"#text": "one"}},
    {"Data": {"#attributes": {"Name": "x"}}},
    {"Data": "x", "1": "y"},  # the unnamed value's name is taken
    {"2": "y", "Data": "x"},
    {"Data": ["x", {"#text": "y"}]},
    {"#attributes": {"Name": "x"}, "a": "1"},
    {"a": " ", "b": "x\r\ny", "c": "\r"},
    {"a": 5, "b": True, "c": None, "d": 1.5, "e": -(2**63)},
    {"a": {"b": "c", "#attributes": {"d": "e"}}},
    {"a": ["x", "y"]},
    "text",
    ["x"],
]


def test_event_data_of_every_shape_reads_the_same_both_ways() -> None:
    texts = []
    for shape in EVENT_DATA_SHAPES:
        texts.append(orjson.dumps({"Event": {**USUAL, "EventData": shape}}).decode())
        texts.append(
            orjson.dumps({"Event": {**USUAL, "EventData": shape, "UserData": {"W": {"a": "1"}}}}).decode()
        )
    fast, slow = both(texts)
    assert fast == slow and len(fast["rows"]) == len(texts)
