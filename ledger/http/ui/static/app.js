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
  // runs soon and twice more. Paused, on a later page or oldest first (the table says
  // data-live="no"): no refresh, the count of events that arrived is shown instead.
  const REFRESH_AFTER_MS = [300, 1500, 5000];

  function liveTable(button) {
    const target = () => document.getElementById(button.dataset.liveFor);
    const state = document.getElementById("live-state");
    let paused = false, missed = 0, timers = [];
    const refresh = () => {
      const rows = target();
      if (!rows) return;
      htmx.ajax("GET", `/ui/tasks/rows?${rows.dataset.query}`, { target: "#rows", swap: "outerHTML" });
    };
    const schedule = () => {  // after the latest event: soon, then twice more for a lagging projector
      timers.forEach(clearTimeout);
      timers = REFRESH_AFTER_MS.map((ms) => setTimeout(refresh, ms));
    };
    const source = new EventSource("/events/stream");
    const arrived = () => {
      const rows = target();
      if (paused || !rows || rows.dataset.live !== "yes") {  // paged, or oldest first
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
      if (!paused && missed) { missed = 0; schedule(); }
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

  // Workflow graphs: the page embeds the nodes and edges (big groups already collapsed by
  // the server); dagre lays them out, this only draws the SVG it computed. Each task node
  // is a link to its page, with a title; edges differ by kind (classes in app.css).
  const SVG_NS = "http://www.w3.org/2000/svg";
  const svgEl = (name, attrs, parent) => {
    const el = document.createElementNS(SVG_NS, name);
    Object.entries(attrs).forEach(([key, value]) => el.setAttribute(key, String(value)));
    if (parent) parent.appendChild(el);
    return el;
  };

  function layoutGraph(data) {
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: "LR", nodesep: 16, ranksep: 54, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    data.nodes.forEach((node) => {
      const longest = Math.max(...node.lines.map((line) => line.length));
      g.setNode(node.id, { width: Math.min(300, Math.max(120, longest * 7.2 + 20)), height: 14 + 17 * node.lines.length, node });
    });
    data.edges.forEach((edge) => g.setEdge(edge.source, edge.target, { edge }, edge.kind));
    dagre.layout(g);
    return g;
  }

  function drawNode(parent, box) {
    const node = box.node;
    const attrs = { class: `node node-${node.kind} status-${node.status.toLowerCase()}${node.critical ? " critical" : ""}${node.current ? " current" : ""}`, "data-id": node.id, "aria-label": node.title };
    const holder = node.href ? svgEl("a", { ...attrs, href: node.href }, parent) : svgEl("g", { ...attrs, role: "img" }, parent);
    svgEl("title", {}, holder).textContent = node.title;
    const x = box.x - box.width / 2, y = box.y - box.height / 2;
    svgEl("rect", { x, y, width: box.width, height: box.height, rx: 4 }, holder);
    node.lines.forEach((line, i) => {
      svgEl("text", { x: x + 9, y: y + 20 + 17 * i, class: i ? "sub" : "main" }, holder).textContent = line;
    });
  }

  function drawEdge(parent, g, ref, index) {
    const { edge } = g.edge(ref), points = g.edge(ref).points;
    const d = points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    const path = svgEl("path", { d, class: `edge edge-${edge.kind}${edge.critical ? " critical" : ""}`,
      "marker-end": `url(#arrow${edge.critical ? "-critical" : ""}-${index})` }, parent);
    svgEl("title", {}, path).textContent = `${edge.kind}: ${edge.source} → ${edge.target}`;
  }

  function drawGraph(figure, index) {
    const script = figure.querySelector("script.graph-data"), host = figure.querySelector(".graph-host");
    if (!script || !host) return;
    const data = JSON.parse(script.textContent);
    const g = layoutGraph(data);
    const width = Math.ceil(g.graph().width), height = Math.ceil(g.graph().height);
    const svg = svgEl("svg", { class: "workflow-graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "group",
      "aria-label": `workflow graph: ${data.nodes.length} nodes, ${data.edges.length} edges` });
    const defs = svgEl("defs", {}, svg);
    [["", "#5b6473"], ["-critical", "#c2410c"]].forEach(([suffix, colour]) => {
      const marker = svgEl("marker", { id: `arrow${suffix}-${index}`, viewBox: "0 0 10 10", refX: 10, refY: 5,
        markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, defs);
      svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: colour }, marker);
    });
    const edges = svgEl("g", { class: "edges" }, svg), nodes = svgEl("g", { class: "nodes" }, svg);
    g.edges().forEach((ref) => drawEdge(edges, g, ref, index));
    g.nodes().forEach((id) => drawNode(nodes, g.node(id)));
    host.replaceChildren(svg);
    figure.dataset.drawn = "yes";
  }

  // Copy buttons: the text of the block a button names goes to the clipboard, and the
  // button's note says so (or why not) for a few seconds.
  async function copyBlock(button) {
    const block = document.getElementById(button.dataset.copyFor);
    const note = button.parentElement.querySelector(".copied");
    try {
      await navigator.clipboard.writeText(block.textContent);
      note.textContent = "copied";
    } catch (error) {
      note.textContent = `could not copy: ${error.message}`;
    }
    setTimeout(() => { note.textContent = ""; }, 4000);
  }

  function start() {
    drawCharts(document);
    if (document.querySelector("figure[data-chart][data-refresh]")) setInterval(() => drawCharts(document), 30000);
    document.addEventListener("submit", cleanSubmit);
    window.addEventListener("pageshow", () => document.querySelectorAll("form.filters [disabled]").forEach((el) => { el.disabled = false; }));
    const live = document.getElementById("live-toggle");
    if (live) liveTable(live);
    document.addEventListener("keydown", tableKeys);
    document.querySelectorAll("figure[data-workflow-graph]").forEach((figure, i) => drawGraph(figure, i));
    document.addEventListener("click", (event) => {
      const copy = event.target.closest("button.copy");
      if (copy) copyBlock(copy);
    });
    document.addEventListener("click", (event) => {  // a click on a row, not on its link, opens it too
      const row = event.target.closest("tr[data-href]");
      if (row && !event.target.closest("a, button, input, select")) window.location.href = row.dataset.href;
    });
  }

  return { drawCharts, drawGraph, start };
})();

document.addEventListener("DOMContentLoaded", () => Ledger.start());
