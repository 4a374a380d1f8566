// The dashboard's behaviour beyond htmx: charts (uPlot) from the JSON API's aggregates.
"use strict";

const Ledger = (() => {
  const seriesUrl = (el) => {
    const since = new Date(Date.now() - Number(el.dataset.since) * 1000).toISOString();
    const params = new URLSearchParams({ since, bucket: el.dataset.bucket });
    if (el.dataset.name) params.set("name", el.dataset.name);
    return `/stats/series?${params}`;
  };

  // each chart: its series (label, colour, value per point) from one /stats/series answer
  const CHARTS = {
    "throughput": [
      ["succeeded", "#17693a", (p) => p.succeeded],
      ["failed", "#a3261c", (p) => p.failed],
    ],
    "failure-rate": [
      ["failure rate %", "#a3261c", (p) => (p.succeeded + p.failed ? (100 * p.failed) / (p.succeeded + p.failed) : null)],
    ],
    "runtime-p95": [
      ["runtime p95 (s)", "#1f5fbf", (p) => p.runtime.p95],
      ["queue wait p95 (s)", "#8a5a00", (p) => p.queue_wait.p95],
    ],
  };

  async function drawChart(el) {
    const lines = CHARTS[el.dataset.chart];
    const response = await fetch(seriesUrl(el), { credentials: "same-origin" });
    if (!response.ok) {
      el.insertAdjacentHTML("beforeend", `<p class="error">could not load the series (${response.status})</p>`);
      return;
    }
    const series = await response.json();
    const xs = series.points.map((p) => Date.parse(p.start) / 1000);
    const data = [xs, ...lines.map(([, , value]) => series.points.map(value))];
    const width = Math.max(280, el.clientWidth - 14);
    el.querySelector(".u-plot-host")?.remove();
    const host = document.createElement("div");
    host.className = "u-plot-host";
    el.appendChild(host);
    new uPlot({
      width, height: 180,
      series: [{}, ...lines.map(([label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: false, points: { show: true, size: 4 } }))],
      axes: [{}, { size: 50 }],
      scales: { x: { time: true } },
    }, data, host);
    el.dataset.points = String(xs.length);
  }

  function drawCharts(root) {
    root.querySelectorAll("figure[data-chart]").forEach((el) => drawChart(el));
  }

  // Live table: each event from the log (/events/stream) schedules a refresh of the first
  // page; the projector applies an event a moment after it is appended, so the refresh
  // waits a little and runs again once more. Paused, or on a later page: no refresh, the
  // count of events that arrived is shown instead.
  function liveTable(button) {
    const target = () => document.getElementById(button.dataset.liveFor);
    const state = document.getElementById("live-state");
    let paused = false, missed = 0, timers = [];
    const refresh = () => {
      const rows = target();
      if (!rows) return;
      htmx.ajax("GET", `/ui/tasks/rows?${rows.dataset.query}`, { target: "#rows", swap: "outerHTML" });
    };
    const schedule = () => {
      if (timers.length) return;
      timers = [setTimeout(refresh, 400), setTimeout(() => { refresh(); timers = []; }, 2000)];
    };
    const source = new EventSource("/events/stream");
    const arrived = () => {
      const rows = target();
      if (paused || !rows || rows.dataset.paged === "yes") {
        missed += 1;
        state.textContent = `${missed} new event${missed === 1 ? "" : "s"} since paused`;
        return;
      }
      schedule();
    };
    button.dataset.eventTypes.split(" ").forEach((type) => source.addEventListener(type, arrived));
    source.addEventListener("open", () => { if (!paused) state.textContent = "live"; });
    button.addEventListener("click", () => {
      paused = !paused;
      button.setAttribute("aria-pressed", String(paused));
      button.textContent = paused ? "Resume live updates" : "Pause live updates";
      state.textContent = paused ? "paused" : "live";
      if (!paused && missed) { missed = 0; refresh(); }
    });
    window.addEventListener("pagehide", () => source.close());
  }

  // Keyboard: rows are focusable; ↓/↑ (or j/k) move between them, Enter opens the task.
  function tableKeys(event) {
    const row = event.target.closest && event.target.closest("tr[data-href]");
    if (!row) return;
    const go = (next) => { if (next) { next.focus(); event.preventDefault(); } };
    if (event.key === "Enter") { window.location.href = row.dataset.href; }
    else if (event.key === "ArrowDown" || event.key === "j") go(row.nextElementSibling);
    else if (event.key === "ArrowUp" || event.key === "k") go(row.previousElementSibling);
  }

  // Filters submit by GET: empty fields stay out of the URL, so a shared view reads clean
  // (the server ignores them too: forms.py).
  function cleanSubmit(event) {
    const form = event.target;
    if (!form.matches || !form.matches("form.filters")) return;
    form.querySelectorAll("input[name], select[name]").forEach((el) => {
      const empty = el.multiple ? el.selectedOptions.length === 0 : !el.value.trim();
      if (empty) el.disabled = true;
    });
  }

  function start() {
    drawCharts(document);
    if (document.querySelector("figure[data-chart][data-refresh]")) setInterval(() => drawCharts(document), 30000);
    document.addEventListener("submit", cleanSubmit);
    window.addEventListener("pageshow", () => document.querySelectorAll("form.filters [disabled]").forEach((el) => { el.disabled = false; }));
    const live = document.getElementById("live-toggle");
    if (live) liveTable(live);
    document.addEventListener("keydown", tableKeys);
    document.addEventListener("click", (event) => {  // a click on a row, not on its link, opens it too
      const row = event.target.closest("tr[data-href]");
      if (row && !event.target.closest("a, button, input, select")) window.location.href = row.dataset.href;
    });
  }

  return { drawCharts, start };
})();

document.addEventListener("DOMContentLoaded", () => Ledger.start());
