"""The result: one row per measurement with the ledger's figure, its raw baselines from the
same run, the ratio ledger/baseline and the target; printed as a table and saved as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
Row = dict[str, Any]


def _ratio(ledger: float, baseline: float | None) -> float | None:
    return round(ledger / baseline, 3) if baseline else None


def produce_row(sdk: dict[str, float], raw: dict[str, float], confluent: dict[str, float] | None,
                sdk_confluent: dict[str, float] | None = None) -> Row:  # fmt: skip
    """The SDK on each client against that client's raw producer sending the same bytes."""
    baseline = {"kafka_python_events_per_s": raw["events_per_s"]}
    if confluent:
        baseline["confluent_kafka_events_per_s"] = confluent["events_per_s"]
    ratio = _ratio(sdk["events_per_s"], raw["events_per_s"])
    on_confluent = _ratio(sdk_confluent["events_per_s"], confluent["events_per_s"]) if sdk_confluent and confluent \
        else None  # fmt: skip
    ledger = {**sdk, **({"confluent_events_per_s": sdk_confluent["events_per_s"]} if sdk_confluent else {})}
    return {"ledger": ledger, "baseline": baseline, "ratio": ratio, "ratio_vs_confluent": on_confluent,
            "ratio_note": "SDK on kafka-python / raw kafka-python; SDK on confluent / raw confluent",
            "target": ">= 0.9 x the raw client, each client",
            "met": all(r is not None and r >= 0.9 for r in [ratio, *([on_confluent] if confluent else [])])}


def fold_row(ledger: dict[str, Any], consume: dict[str, float], copy: dict[str, float], *, replay: bool,
             members: dict[str, Any] | None = None) -> Row:  # fmt: skip
    """Rows "project" and "replay": against the slower of the two raw baselines (and the
    project row's second figure, ``members``: ``bench.members``)."""
    slower = min(consume["events_per_s"], copy["events_per_s"])
    ratio = _ratio(ledger["events_per_s"], slower)
    row = {"ledger": ledger, "baseline": {"kafka_python_consume_events_per_s": consume["events_per_s"],
                                          "copy_events_per_s": copy["events_per_s"]}, "ratio": ratio}  # fmt: skip
    if members is not None:
        row.update(processes=members, ratio_processes=_ratio(members["events_per_s"], slower))
    if replay:
        per_million = ledger["seconds"] * 1_000_000 / max(ledger["events"], 1)
        row.update(seconds_per_million=round(per_million, 1),
                   target="1,000,000 events in <= 45 s, the views the projector made", met=per_million <= 45)  # fmt: skip
    else:
        row.update(target=">= 0.6 x slower baseline and >= 1.0 x Celery State, exactly once "
                          "(one process, or one a core: ledger project --processes, the same views)")  # fmt: skip
    return row


def late_row(measured: dict[str, Any]) -> Row:
    """The projector on a stream with 30 % of its events out of place against the same
    fleet in order (``bench.late``); met only if both views came out the same."""
    ordered, late = measured["in_order"], measured["late"]
    ratio = _ratio(late["events_per_s"], ordered["events_per_s"])
    return {"ledger": late, "baseline": {"in_order_events_per_s": ordered["events_per_s"],
                                         "in_order_seconds": ordered["seconds"]},
            "ratio": ratio, "ratio_note": "late stream / in-order stream, same events, same run",
            "same_views": measured["same_views"], "differing_rows": measured["differing_rows"],
            "tasks": measured["tasks"],
            "stream": {k: measured[k] for k in ("displaced", "duplicated", "reach")},
            "target": ">= 0.8 x in-order, the same views",
            "met": ratio is not None and ratio >= 0.8 and measured["same_views"]}  # fmt: skip


def latency_row(latency: dict[str, Any], tuned: dict[str, Any] | None, faster: dict[str, Any] | None = None) -> Row:
    """Met on the configured settings; ``tuned`` is the same with a shorter batch wait,
    ``faster`` the default settings at a higher rate (reported, not judged)."""
    return {"ledger": latency, "baseline": {}, "ratio": None, "tuned": tuned, "faster": faster,
            "target": "p99 <= 100 ms (default settings)",
            "met": latency["seen"] == latency["events"] and latency["p99_ms"] <= 100}  # fmt: skip


def _latency_text(led: dict[str, Any]) -> str:
    return (f"p50 {led['p50_ms']:.0f} / p95 {led['p95_ms']:.0f} / p99 {led['p99_ms']:.0f} ms "
            f"(batch wait {led['batch_wait_ms']} ms)")  # fmt: skip


def query_row(query: dict[str, Any]) -> Row:
    get_task, page, raw = query["get_task"], query["list_page"], query["raw_pk"]
    ledger = {
        "get_task_p50_ms": get_task["p50_ms"],
        "get_task_p99_ms": get_task["p99_ms"],
        "list_page_p50_ms": page["p50_ms"],
        "list_page_p99_ms": page["p99_ms"],
        "rows": query["rows"],
    }
    return {"ledger": ledger, "baseline": {"pk_select_p50_ms": raw["p50_ms"], "pk_select_p99_ms": raw["p99_ms"]},
            "ratio": _ratio(get_task["p99_ms"], raw["p99_ms"]), "ratio_note": "get_task p99 / pk select p99",
            "target": "get_task p99 <= 1.5 x pk select p99, list page p99 < 20 ms",
            "met": get_task["p99_ms"] <= 1.5 * raw["p99_ms"] and page["p99_ms"] < 20}  # fmt: skip


def peer_row(celery: dict[str, float], project_rate: float, members_rate: float | None = None) -> Row:
    rate = celery["events_per_s"]
    return {"ledger": {}, "baseline": {"celery_state_events_per_s": rate},
            "ratio": _ratio(project_rate, rate), "ratio_note": "ledger project / Celery State",
            "ratio_processes": None if members_rate is None else _ratio(members_rate, rate),
            "target": "— (reference)", "met": None}  # fmt: skip


def project_met(row: Row) -> bool:
    """Exactly once, and both ratios met by one process, or by the members (``--processes``)
    with the views one process made."""
    def both(ratio: float | None, vs_celery: float | None) -> bool:
        return ratio is not None and ratio >= 0.6 and vs_celery is not None and vs_celery >= 1.0

    members = row.get("processes")
    alone = both(row["ratio"], row.get("ratio_vs_celery_state"))
    together = members is not None and members["same_views"] and both(row.get("ratio_processes"),
                                                                         row.get("ratio_processes_vs_celery_state"))
    return bool(row["exactly_once"]["ok"]) and (alone or together)


def memory_row(memory: dict[str, Any]) -> Row:
    """The projector's resident memory over the project row (``bench.children``)."""
    sizes = {k: memory[k] for k in ("peak_rss_mb", "rss_25_mb", "rss_100_mb")}
    return {"ledger": sizes, "baseline": {}, "ratio": None, "growth_25_to_100": memory["growth_25_to_100"],
            "flat": memory["flat"], "target": "peak RSS <= 250 MB, flat",
            "met": memory["peak_rss_mb"] <= 250 and bool(memory["flat"])}  # fmt: skip


def rules_row(rules: dict[str, Any]) -> Row:
    """What the run rules (aggregates) cost per task of four steps, beside the SDK's whole
    emit path and the encoding of the same events without the rules."""
    ledger = {k: rules[k] for k in ("rules_us_per_task", "sdk_us_per_task", "tasks")}
    return {"ledger": ledger, "baseline": {"encode_us_per_task": rules["encode_us_per_task"]},
            "ratio": _ratio(rules["rules_us_per_task"], rules["encode_us_per_task"]),
            "ratio_note": "rules / encoding the four events", "target": "rules <= 50 us per task",
            "met": rules["rules_us_per_task"] <= 50}  # fmt: skip


def ingest_row(measured: dict[str, Any]) -> Row:
    """``ledger ingest celery`` (acks after the log) against Celery's ``EventReceiver`` with
    a no-op handler, both draining the same pre-filled RabbitMQ queue, the ingester once on
    each Kafka client (``measured["ingesters"]``): the ratio is the default client's
    (kafka-python), the one with confluent beside it; met if either meets the target."""
    ingesters, receiver = measured["ingesters"], measured["receiver"]
    ratios = {client: _ratio(f["events_per_s"], receiver["events_per_s"]) for client, f in ingesters.items()}
    default = ingesters["kafka-python"]
    return {"ledger": {**default, "events": measured["events"], "messages": measured["messages"],
                       **{f"{client}_events_per_s": f["events_per_s"] for client, f in ingesters.items()}},
            "baseline": {"celery_event_receiver_events_per_s": receiver["events_per_s"],
                         "celery_event_receiver_seconds": receiver["seconds"]},
            "floor": {"events_per_s": measured["floor"]["events_per_s"],
                      "ratio": _ratio(measured["floor"]["events_per_s"], receiver["events_per_s"]),
                      "what": "the same reader, log (confluent) and acks, no translation: the most the ratio could be"},
            "ratio": ratios["kafka-python"], "ratio_with_confluent": ratios.get("confluent"),
            "ratio_note": "ingester / Celery EventReceiver (kafka-python; confluent beside it)",
            "target": ">= 0.8 x Celery EventReceiver",
            "met": any(r is not None and r >= 0.8 for r in ratios.values())}  # fmt: skip


def operator_row(measured: dict[str, Any], *, target_ms: float | None, what: str) -> Row:
    """An operator's question (workflow, failure groups, series, search): the ledger's query
        against one raw SQL query returning the same result, p50 and p99; met on the p50 (the
    issue's "answers in under"), the p99 beside it."""
    led, raw = measured["ledger"], measured["raw_sql"]
    sizes = {k: v for k, v in measured.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {"ledger": {"p50_ms": led["p50_ms"], "p99_ms": led["p99_ms"], **sizes},
            "baseline": {"raw_sql_p50_ms": raw["p50_ms"], "raw_sql_p99_ms": raw["p99_ms"]},
            "ratio": _ratio(led["p50_ms"], raw["p50_ms"]), "ratio_note": "ledger p50 / raw SQL p50",
            "target": "— (none set)" if target_ms is None else f"{what} < {target_ms:g} ms",
            "met": None if target_ms is None else led["p50_ms"] < target_ms, "detail": measured}  # fmt: skip


def _n(value: float) -> str:
    return f"{value:,.0f}"


def summaries(name: str, row: Row) -> tuple[str, str]:
    """The row's ledger and baseline figures as short text for the table."""
    led, base = row["ledger"], row["baseline"]
    if name == "produce":
        text = [f"kafka-python {_n(base['kafka_python_events_per_s'])} ev/s"]
        if "confluent_kafka_events_per_s" in base:
            text.append(f"confluent-kafka {_n(base['confluent_kafka_events_per_s'])} ev/s")
        sdk = [f"{_n(led['events_per_s'])} ev/s on kafka-python"]
        if "confluent_events_per_s" in led:
            sdk.append(f"{_n(led['confluent_events_per_s'])} ev/s on confluent")
        return "\n".join(sdk), "\n".join(text)
    if name in ("project", "replay"):
        ledger = f"{_n(led['events_per_s'])} ev/s ({_n(led['events'])} in {led['seconds']:.1f} s)"
        if "same_views" in row:
            ledger += "; the same views" if row["same_views"] else f"; views DIFFER: {', '.join(row['differing_tables'])}"
        if (members := row.get("processes")) is not None:
            differ = ", ".join(members["differing_tables"])
            same = "the same views" if members["same_views"] else f"views DIFFER: {differ}"
            ledger += (f"\n{members['processes']} processes: {_n(members['events_per_s'])} ev/s "
                       f"({members['seconds']:.1f} s; {same})")
        return ledger, (f"consume {_n(base['kafka_python_consume_events_per_s'])} ev/s\n"
                        f"COPY {_n(base['copy_events_per_s'])} ev/s")  # fmt: skip
    if name == "projector memory":
        return (f"peak {led['peak_rss_mb']} MB; {led['rss_25_mb']} MB after 25 %, {led['rss_100_mb']} MB after 100 % "
                f"({row['growth_25_to_100']:+.1%}: {'flat' if row['flat'] else 'NOT flat'})", "—")  # fmt: skip
    if name == "project late":
        stream = row["stream"]
        views = (f"the same {_n(row['tasks'])} task rows" if row["same_views"]
                 else f"{_n(row['differing_rows'])} of {_n(row['tasks'])} rows DIFFER")  # fmt: skip
        return (f"{_n(led['events_per_s'])} ev/s ({_n(led['events'])} events, {stream['displaced']:.0%} displaced "
                f"up to {_n(stream['reach'])} places, {stream['duplicated']:.0%} duplicated; {views})",
                f"in order {_n(base['in_order_events_per_s'])} ev/s")  # fmt: skip
    if name == "latency":
        lines = [_latency_text(led)] + ([_latency_text(row["tuned"])] if row.get("tuned") else [])
        lines.append(f"at {_n(led['rate_per_s'])} ev/s ({_n(led['seen'])}/{_n(led['events'])} seen)")
        if faster := row.get("faster"):
            lines.append(f"at {_n(faster['rate_per_s'])} ev/s: {_latency_text(faster)}")
        return "\n".join(lines), "—"
    if name == "query":
        return (f"get_task p50 {led['get_task_p50_ms']:.2f} / p99 {led['get_task_p99_ms']:.2f} ms\n"
                f"list page p50 {led['list_page_p50_ms']:.2f} / p99 {led['list_page_p99_ms']:.2f} ms\n"
                f"({_n(led['rows'])} rows)",
                f"pk select p50 {base['pk_select_p50_ms']:.2f} / p99 {base['pk_select_p99_ms']:.2f} ms")  # fmt: skip
    if name == "emit rules":
        return (f"rules {led['rules_us_per_task']:.1f} µs/task\nSDK emit path {led['sdk_us_per_task']:.1f} µs/task",
                f"encode only {base['encode_us_per_task']:.1f} µs/task")  # fmt: skip
    if name == "ingest":
        clients = "\n".join(f"{_n(led[f'{c}_events_per_s'])} ev/s on {c}" for c in ("kafka-python", "confluent")
                             if f"{c}_events_per_s" in led)  # fmt: skip
        return (f"{clients}\n({_n(led['events'])} Celery events in {_n(led['messages'])} messages; "
                f"acked after the log)",
                f"Celery EventReceiver {_n(base['celery_event_receiver_events_per_s'])} ev/s\n"
                f"(no-op handler)\nfloor: no translation {_n(row['floor']['events_per_s'])} ev/s "
                f"({row['floor']['ratio']:.2f})")  # fmt: skip
    if "raw_sql_p50_ms" in base:
        sizes = ", ".join(f"{k} {_n(v)}" for k, v in led.items() if k not in ("p50_ms", "p99_ms"))
        return (f"p50 {led['p50_ms']:.1f} / p99 {led['p99_ms']:.1f} ms\n({sizes})",
                f"raw SQL p50 {base['raw_sql_p50_ms']:.1f} / p99 {base['raw_sql_p99_ms']:.1f} ms")  # fmt: skip
    return "—", f"Celery State {_n(base['celery_state_events_per_s'])} ev/s"


def print_table(result: dict[str, Any], console: Console) -> None:
    only = result["args"].get("only")
    what = ", ".join(only) + " alone" if only else f"{result['args']['events']:,} events"
    title = f"Task Ledger benchmark — {what}"
    quiet = result["machine"].get("quiet_at_start", {})
    if quiet.get("busy"):
        title += f" — BUSY machine at start (load {quiet['load_1m']} > {quiet['busy_limit']}): ratios only"
    table = Table(title=title, show_lines=True)
    for column in ("row", "ledger", "raw baseline (same run)", "ratio", "target", "met"):
        table.add_column(column)
    for name, row in result["rows"].items():
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
        if row.get("ratio_vs_confluent") is not None:
            ratio += f"\n{row['ratio_vs_confluent']:.2f} on confluent"
        if row.get("ratio_vs_celery_state") is not None:
            ratio += f"\n{row['ratio_vs_celery_state']:.2f} vs Celery State"
        if (members := row.get("processes")) is not None and row.get("ratio_processes") is not None:
            ratio += f"\n{members['processes']} processes: {row['ratio_processes']:.2f}"
            if row.get("ratio_processes_vs_celery_state") is not None:
                ratio += f"; {row['ratio_processes_vs_celery_state']:.2f} vs Celery State"
        if row.get("ratio_with_confluent") is not None:
            ratio += f"\n{row['ratio_with_confluent']:.2f} with confluent"
        met = {True: "yes", False: "NO", None: "—"}[row["met"]]
        table.add_row(name, *summaries(name, row), ratio, row["target"], met)
    console.print(table)
    memory = result.get("projector_memory")
    if memory is None:  # --only: no projector ran
        return
    console.print(f"projector RSS: peak {memory['peak_rss_mb']} MB; after 25 % {memory['rss_25_mb']} MB, "
                  f"after 100 % {memory['rss_100_mb']} MB ({memory['growth_25_to_100']:+.1%}): "
                  f"{'flat' if memory['flat'] else 'NOT flat'}")  # fmt: skip


def write_json(result: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"bench-{stamp}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
