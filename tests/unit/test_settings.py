from pathlib import Path

import pytest

from ledger.settings import Backend, KafkaClient, LogBackend, SettingsError, ViewsBackend, load_settings


def test_defaults_are_the_embedded_zero_setup_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEDGER_BACKEND", "LEDGER_TOPIC", "LEDGER_PARTITIONS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.backend is Backend.EMBEDDED
    assert settings.topic == "task-events"
    assert settings.partitions == 6


def test_values_come_from_ledger_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_BACKEND", "kafka+postgres")
    monkeypatch.setenv("LEDGER_PARTITIONS", "12")
    monkeypatch.setenv("LEDGER_KAFKA_BOOTSTRAP_SERVERS", "a:1,b:2")
    monkeypatch.setenv("LEDGER_DATA_DIR", "/tmp/x")
    settings = load_settings()
    assert settings.backend is Backend.KAFKA_POSTGRES
    assert settings.partitions == 12
    assert settings.kafka_bootstrap_servers == "a:1,b:2"
    assert settings.data_dir == Path("/tmp/x")


PORTS = ("LEDGER_BACKEND", "LEDGER_LOG_BACKEND", "LEDGER_VIEWS_BACKEND")


def test_backend_is_the_shorthand_that_picks_both_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PORTS:
        monkeypatch.delenv(name, raising=False)
    default = load_settings()
    assert (default.log_backend, default.views_backend) == (LogBackend.SQLITE, ViewsBackend.SQLITE)
    servers = load_settings(backend="kafka+postgres")
    assert (servers.log_backend, servers.views_backend) == (LogBackend.KAFKA, ViewsBackend.POSTGRES)


def test_each_port_can_be_picked_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PORTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGER_LOG_BACKEND", "kafka")  # a Kafka log with SQLite views: a dev setup
    dev = load_settings()
    assert (dev.log_backend, dev.views_backend) == (LogBackend.KAFKA, ViewsBackend.SQLITE)
    monkeypatch.delenv("LEDGER_LOG_BACKEND")
    monkeypatch.setenv("LEDGER_BACKEND", "kafka+postgres")
    monkeypatch.setenv("LEDGER_VIEWS_BACKEND", "sqlite")  # overrides the shorthand's half
    mixed = load_settings()
    assert (mixed.backend, mixed.log_backend, mixed.views_backend) == (
        Backend.KAFKA_POSTGRES, LogBackend.KAFKA, ViewsBackend.SQLITE)  # fmt: skip
    assert load_settings(views_backend="postgres").views_backend is ViewsBackend.POSTGRES


def test_the_kafka_client_is_kafka_python_unless_confluent_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_KAFKA_CLIENT", raising=False)
    assert load_settings().kafka_client is KafkaClient.KAFKA_PYTHON
    for value, client in (("confluent", KafkaClient.CONFLUENT), ("kafka-python", KafkaClient.KAFKA_PYTHON)):
        monkeypatch.setenv("LEDGER_KAFKA_CLIENT", value)
        assert load_settings().kafka_client is client


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("LEDGER_LOG_BACKEND", "redis", "'sqlite' or 'kafka'"),
        ("LEDGER_VIEWS_BACKEND", "mysql", "'sqlite' or 'postgres'"),
        ("LEDGER_PARTITIONS", "0", "greater than or equal to 1"),
        ("LEDGER_PARTITIONS", "many", "valid integer"),
        ("LEDGER_BACKEND", "redis", "'embedded' or 'kafka+postgres'"),
        ("LEDGER_KAFKA_CLIENT", "librdkafka", "'kafka-python' or 'confluent'"),
        ("LEDGER_KAFKA_BOOTSTRAP_SERVERS", "localhost", "host:port"),
        ("LEDGER_TOPIC", "bad topic!", "pattern"),
        ("LEDGER_POSTGRES_DSN", "mysql:x", "postgresql://"),
    ],
)
def test_an_invalid_value_names_the_variable_and_the_rule(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, rule: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert variable in str(info.value)
    assert rule in str(info.value)


def test_unknown_ledger_variables_are_ignored_but_unknown_fields_are_not() -> None:
    with pytest.raises(SettingsError, match="LEDGER_NOPE"):
        load_settings(nope=1)


def test_the_readme_documents_every_setting() -> None:
    from ledger.settings import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [f"LEDGER_{name.upper()}" for name in Settings.model_fields if f"`LEDGER_{name.upper()}`" not in readme]
    assert not missing, f"README's configuration table lacks {missing}"


def test_choosing_confluent_without_confluent_kafka_installed_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from ledger.bootstrap import build_event_log

    real = importlib.util.find_spec
    missing = "confluent_kafka"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    settings = load_settings(log_backend="kafka", kafka_client="confluent")
    with pytest.raises(SettingsError) as refused:
        build_event_log(settings)
    assert str(refused.value) == (
        "LEDGER_KAFKA_CLIENT=confluent needs confluent-kafka: pip install 'task-ledger[confluent]'"
    )
