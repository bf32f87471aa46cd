"""The derived columns computed over a whole batch (``events_rows.derived_columns``) equal the
one-row derivations for any event data, message, provider and event id."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.events_rows import EventColumns, derive_alert, derive_code, derive_target
from parsers.events_schema import level_name, level_number

# values shaped like the ones derivations look for, and arbitrary text around them
CODES = st.sampled_from(["-2147023660", " 0x800704D4", "0x0", "0xc0000064", "80092013", "0", "12", "-", ""])
# characters JSON escapes in every way, among ordinary ones
ESCAPES = st.text(alphabet=st.sampled_from('a0 \\"\n\r\t\b\f\x01\x1f\x7fé/'), max_size=6)
TEXT = st.text(max_size=12) | CODES | ESCAPES
KEYS = (
    st.sampled_from(["ErrorCode", "Status", "AlertDesc", "TargetName", "Result@value", "1", "4", "x"])
    | st.text(max_size=6)
    | ESCAPES
)
MESSAGES = (
    st.none()
    | TEXT
    | st.sampled_from(
        [
            "The error code returned on failure is -2147023660.",
            "A fatal alert was received. The TLS protocol defined fatal alert code is 40.",
            "CredSSP authentication to TERMSRV/host failed",
            'Status 0xC000006A and "quotes"\n',
        ]
    )
)
EVENTS = st.fixed_dictionaries(
    {
        "provider": st.sampled_from([None, "RasClient", "LsaSrv", "Schannel"]),
        "event_id": st.sampled_from([None, 20227, 6041, 36887]),
        "level": st.sampled_from([None, 0, 2, 4, 9]),
        "level_name": st.sampled_from([None, "Error", " warning ", "odd"]),
        "message": MESSAGES,
        "event_data": st.none() | st.dictionaries(KEYS, TEXT, max_size=5),
    }
)


@settings(max_examples=300)
@given(st.lists(EVENTS, max_size=8))
def test_batch_derivations_equal_the_one_row_functions(events: list[dict[str, object]]) -> None:
    rows = EventColumns()
    for i, event in enumerate(events):
        rows.add({**event, "format": "xml", "source_file": "f", "source_offset": i})
    got = rows.table().to_pylist()
    for event, row in zip(events, got, strict=True):
        p, e, d, m = event["provider"], event["event_id"], event["event_data"], event["message"]
        assert row["code"] == derive_code(p, e, d, m)  # type: ignore[arg-type]
        assert row["alert_code"] == derive_alert(d, m)  # type: ignore[arg-type]
        assert row["target"] == derive_target(p, e, d, m)  # type: ignore[arg-type]
        assert row["event_data_json"] == (None if d is None else orjson.dumps(d).decode())
        level, name = event["level"], event["level_name"]
        assert row["level"] == (level if level is not None else level_number(name))  # type: ignore[arg-type]
        assert row["level_name"] == (name if name is not None else level_name(level))  # type: ignore[arg-type]
