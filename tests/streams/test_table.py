"""The changelog records written without Faust's producer are the ones Faust would write and read back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import faust
from hypothesis import given, settings
from hypothesis import strategies as st

from clickmuncher.kafka.config import KafkaSettings, faust_config
from streams.producer import OutRecord
from streams.table import FaustWindowTable, changelog_records, encode_key, encode_value

keys = st.text(min_size=1, max_size=40)
values = st.one_of(
    st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=5),
    st.lists(st.one_of(st.integers(), st.booleans(), st.text(max_size=5)), max_size=4),
    st.builds(
        lambda ints, tail: [*ints, tail],
        st.lists(st.integers(), max_size=7),
        st.from_regex(r"[A-Za-z0-9+/=]*", fullmatch=True),
    ),
    st.integers(min_value=0, max_value=2**62),
)


def _faust_table() -> Any:
    app = faust.App(
        "table-test",
        **faust_config(KafkaSettings(bootstrap="127.0.0.1:1")),
        store="memory://",
        key_serializer="json",
        value_serializer="json",
        autodiscover=False,
        web_enabled=False,
    )
    return app.Table("click-window-counts", default=None, partitions=8, key_type=str)


TABLE = _faust_table()


@settings(max_examples=200)
@given(keys, values)
def test_keys_and_values_are_encoded_as_faust_encodes_them(key: str, value: Any) -> None:
    topic = TABLE.changelog_topic
    assert encode_key(key) == topic.prepare_key(key, TABLE.key_serializer, None, {})[0]
    assert encode_value(value) == topic.prepare_value(value, TABLE.value_serializer, None, {})[0]


def test_a_deletion_is_a_null_value_on_the_same_partition() -> None:
    records = changelog_records("cl", 3, [("1000:https://a/", [1, 5, 0, 3]), ("1000:https://b/", None)])
    assert records == [
        OutRecord("cl", b'"1000:https://a/"', b"[1,5,0,3]", 3),
        OutRecord("cl", b'"1000:https://b/"', None, 3),
    ]


class FakeProducer:
    def __init__(self) -> None:
        self.delivered: list[OutRecord] = []

    async def deliver(self, records: Sequence[OutRecord]) -> int:
        self.delivered.extend(records)
        return len(self.delivered) - 1


def test_memory_store_writes_read_back_by_partition() -> None:
    producer = FakeProducer()
    table = FaustWindowTable(_faust_table(), producer)  # type: ignore[arg-type]
    asyncio.run(table.write(2, [("k1", [1, 0, 0, 2]), ("k2", [7, 1, 0, 2]), ("k1", None)]))
    assert table.read(2, "k1") is None
    assert table.read(2, "k2") == [7, 1, 0, 2]
    assert [r.partition for r in producer.delivered] == [2, 2, 2]
    assert producer.delivered[-1].value is None
