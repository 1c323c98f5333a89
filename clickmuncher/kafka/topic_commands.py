"""``clickmuncher topics create`` and ``clickmuncher topics check``: the declared topics against a cluster."""

from __future__ import annotations

import click

from clickmuncher.kafka.topics import TopicSpec
from clickmuncher.settings import CommonSettings


def topics_create(settings: CommonSettings) -> None:
    from clickmuncher.kafka.topics import create_missing

    specs = _declared("topics-create", settings)
    created = create_missing(settings.kafka, specs)
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        click.echo(f"topics: {state} {spec.name} ({spec.partitions} partitions, {spec.cleanup_policy})")


def topics_check(settings: CommonSettings) -> int:
    """Prints each difference; returns the exit code (1 when there is any)."""
    from clickmuncher.kafka.topics import differences

    specs = _declared("topics-check", settings)
    found = differences(settings.kafka, specs)
    for line in found or [f"topics: all {len(specs)} declared topics match"]:
        click.echo(line)
    return 1 if found else 0


def _declared(command: str, settings: CommonSettings) -> list[TopicSpec]:
    """The start line, then the cluster check (a wrong password or CA ends the command in one line); returns
    the declared topics."""
    from clickmuncher.kafka.check import check_cluster
    from clickmuncher.kafka.topics import declared
    from clickmuncher.logs import log_start, setup_logging

    setup_logging()
    log_start(command, settings)
    check_cluster(settings.kafka)
    return list(declared(settings).values())
