"""Settings: defaults of SPEC §4, one-line errors, masked secrets."""

from __future__ import annotations

import pytest

from clickmuncher.logs import start_line
from clickmuncher.settings import ConfigError, Settings, load_settings, mask_url_password


def test_defaults_match_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("CLICKMUNCHER_"):
            monkeypatch.delenv(name)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.database_url == "sqlite:///clickmuncher.db"
    assert (settings.clicks_topic, settings.windows_topic) == ("clicks", "click-windows")
    assert (settings.partitions, settings.window_s, settings.grace_s) == (8, 1800, 30)
    assert settings.streams_app_id == "clickmuncher-streams"
    assert settings.sink_group == "clickmuncher-sink"
    assert settings.effective_late_retention_s == 1800


def test_env_lists_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKMUNCHER_ALLOWED_HOSTS", "example.com, *.example.org")
    monkeypatch.setenv("CLICKMUNCHER_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")
    monkeypatch.setenv("CLICKMUNCHER_SIGNING_KEY", "hunter2")
    monkeypatch.setenv("CLICKMUNCHER_DATABASE_URL", "postgresql+psycopg://app:pw@db/clicks")
    settings = load_settings(Settings)
    assert settings.allowed_hosts == ["example.com", "*.example.org"]
    assert settings.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    line = start_line("gateway", settings)
    assert "hunter2" not in line and "signing_key=***" in line
    assert "app:***@db" in line and "pw@" not in line


def test_bad_value_is_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKMUNCHER_WINDOW_S", "soon")
    with pytest.raises(ConfigError, match="CLICKMUNCHER_WINDOW_S"):
        load_settings(Settings)


def test_mask_url_password() -> None:
    assert mask_url_password("sqlite:///x.db") == "sqlite:///x.db"
    assert mask_url_password("postgresql://u@h/d") == "postgresql://u@h/d"
    assert mask_url_password("postgresql://u:p@ss@h/d") == "postgresql://u:***@h/d"


def test_each_service_sees_and_prints_only_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from clickmuncher.logs import start_line
    from clickmuncher.settings import ApiSettings, GatewaySettings, SinkSettings, StreamsSettings

    monkeypatch.setenv("CLICKMUNCHER_SIGNING_KEY", "k" * 40)
    monkeypatch.setenv("CLICKMUNCHER_DATABASE_URL", "postgresql+psycopg://u:secret@db/clicks")
    sink = start_line("sink", load_settings(SinkSettings))
    assert "signing_key" not in sink and "gateway_" not in sink and "streams_store" not in sink
    assert "database_url=postgresql+psycopg://u:***@db/clicks" in sink
    gateway = start_line("gateway", load_settings(GatewaySettings))
    assert "signing_key=***" in gateway and "database_url" not in gateway and "sink_group" not in gateway
    assert "database_url" not in start_line("streams", load_settings(StreamsSettings))
    assert "signing_key" not in start_line("api", load_settings(ApiSettings))
    assert not hasattr(load_settings(SinkSettings), "signing_key")
