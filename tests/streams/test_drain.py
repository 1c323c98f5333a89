"""Which records of one fetch go on: those of active (or buffer-full) partitions, in offset order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.drain import fetched_batches

fetches = st.dictionaries(
    st.tuples(st.sampled_from(["clicks", "changelog"]), st.integers(0, 3)),
    st.lists(st.integers(0, 1000), max_size=5).map(sorted),
    max_size=8,
)
tp_sets = st.sets(st.tuples(st.sampled_from(["clicks", "changelog"]), st.integers(0, 3)))


@given(fetches, st.one_of(st.none(), tp_sets), tp_sets)
def test_only_active_or_buffered_partitions_with_records_go_on(
    records: dict[tuple[str, int], list[int]],
    active: set[tuple[str, int]] | None,
    buffered: set[tuple[str, int]],
) -> None:
    batches = fetched_batches(records, active, buffered)
    for tp, batch in batches:
        assert batch == records[tp]
        assert batch
        assert active is None or tp in active or tp in buffered
    skipped = set(records) - {tp for tp, _ in batches}
    for tp in skipped:
        assert not records[tp] or (active is not None and tp not in active and tp not in buffered)
