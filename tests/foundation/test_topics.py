"""Topics declared once: the declarations, how a topic is compared with its own, and the service check
against the session's broker."""

from __future__ import annotations

import pytest

from clickmuncher.kafka.admin import ensure_topics
from clickmuncher.kafka.topics import (
    Actual,
    MisconfiguredTopic,
    TopicSpec,
    compare,
    declared,
    differences,
    ensure_service_topics,
    service_topics,
)
from clickmuncher.settings import Settings

BROKER = {"default.replication.factor": "3", "min.insync.replicas": "2"}


def test_every_pipeline_topic_is_declared() -> None:
    settings = Settings(_env_file=None, partitions=6, streams_app_id="app")  # type: ignore[call-arg]
    topics = declared(settings)
    assert {spec.name: spec.compacted for spec in topics.values()} == {
        "clicks": False,
        "click-windows": True,
        "click-windows-live": True,
        "app-click-window-counts-changelog": True,
        "clicks-dead": False,
        "clicks-late": False,
        "click-windows-dead": False,
    }
    assert {spec.partitions for spec in topics.values()} == {6}
    assert [s.name for s in service_topics(settings, "sink")] == ["click-windows", "click-windows-dead"]


def test_replication_settings_reach_the_declarations() -> None:
    settings = Settings(_env_file=None, replication_factor=3, min_insync_replicas=2)  # type: ignore[call-arg]
    spec = declared(settings)["windows"]
    assert (spec.replication_factor, spec.min_insync_replicas) == (3, 2)
    assert spec.config() == {"cleanup.policy": "compact", "min.insync.replicas": "2"}


def test_a_matching_topic_has_no_difference() -> None:
    actual = Actual(8, 3, {"cleanup.policy": "delete", "min.insync.replicas": "2"})
    assert compare(TopicSpec("clicks", 8), actual, BROKER) == []


@pytest.mark.parametrize(
    ("spec", "actual", "difference"),
    [
        (TopicSpec("t", 8), Actual(4, 3, {"min.insync.replicas": "2"}), "4 partitions, declared 8"),
        (
            TopicSpec("t", 8),
            Actual(8, 1, {"min.insync.replicas": "1"}),
            "replication factor 1, declared 3 (the cluster",
        ),
        (
            TopicSpec("t", 8, replication_factor=5),
            Actual(8, 3, {}),
            "replication factor 3, declared 5 (CLICKMUNCHER_",
        ),
        (
            TopicSpec("t", 8, compacted=True),
            Actual(8, 3, {"cleanup.policy": "delete"}),
            "cleanup.policy delete, declared compact",
        ),
        (
            TopicSpec("t", 8, compacted=True),
            Actual(8, 3, {"cleanup.policy": "compact,delete"}),
            "cleanup.policy compact,delete",
        ),
        (
            TopicSpec("t", 8),
            Actual(8, 3, {"min.insync.replicas": "1"}),
            "min.insync.replicas 1, declared 2 (the cluster",
        ),
        (
            TopicSpec("t", 8, min_insync_replicas=3),
            Actual(8, 3, {"min.insync.replicas": "2"}),
            "min.insync.replicas 2, declared 3",
        ),
        (
            TopicSpec("t", 8, replication_factor=2),
            Actual(8, 2, {"min.insync.replicas": "3"}),
            "> replication factor 2",
        ),
        (
            TopicSpec("t", 8, retention_ms=1000),
            Actual(8, 3, {"retention.ms": "604800000"}),
            "retention.ms 604800000",
        ),
    ],
)
def test_each_difference_is_named(spec: TopicSpec, actual: Actual, difference: str) -> None:
    assert any(difference in line for line in compare(spec, actual, BROKER)), compare(spec, actual, BROKER)


def test_without_broker_defaults_only_declared_values_are_checked() -> None:
    actual = Actual(8, 1, {"min.insync.replicas": "1"})
    assert compare(TopicSpec("t", 8), actual, {}) == []


def test_service_refuses_its_misconfigured_topic(kafka_bootstrap: str, unique: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, kafka_bootstrap=kafka_bootstrap, windows_topic=f"w-{unique}", partitions=2
    )
    assert sorted(ensure_service_topics(settings, "sink")) == [f"w-{unique}", f"w-{unique}-dead"]
    assert differences(settings.kafka, service_topics(settings, "sink")) == []
    ensure_topics(kafka_bootstrap, {f"w2-{unique}": {}}, partitions=2)  # not compacted
    wrong = settings.model_copy(update={"windows_topic": f"w2-{unique}"})
    with pytest.raises(
        MisconfiguredTopic, match=f"sink refuses to start: topic w2-{unique}: cleanup.policy delete"
    ):
        ensure_service_topics(wrong, "sink")
