// The fleet page: polls /api/stations, sorts, and charts one station's history with uPlot.
"use strict";

const REFRESH_MS = 5000;
const state = { stations: [], sortKey: "backlog_age_s", descending: true, selected: null,
                charts: {} };

function span(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds >= 7200) return `${Math.round(seconds / 3600)} h`;
  if (seconds >= 120) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds)} s`;
}

function text(value) { return value === null || value === undefined ? "—" : String(value); }

function compare(a, b) {
  const key = state.sortKey;
  let x = a[key], y = b[key];
  if (key === "backlog_age_s") { x = x ?? -1; y = y ?? -1; }
  const order = x < y ? -1 : x > y ? 1 : a.station_id.localeCompare(b.station_id);
  return state.descending ? -order : order;
}

function cell(row, content, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (content instanceof Node) td.append(content); else td.textContent = content;
  row.append(td);
}

function stateBadge(station) {
  const badge = document.createElement("span");
  badge.className = `state ${station.colour}`;
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.setAttribute("aria-hidden", "true");
  badge.append(dot, document.createTextNode(station.colour));
  return badge;
}

function renderTable() {
  const body = document.querySelector("#fleet tbody");
  const rows = [...state.stations].sort(compare).map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.station = s.station_id;
    tr.dataset.colour = s.colour;
    if (s.station_id === state.selected) tr.classList.add("selected");
    const link = document.createElement("a");
    link.href = `#${encodeURIComponent(s.station_id)}`;
    link.textContent = s.station_id;
    cell(tr, link, "station");
    cell(tr, stateBadge(s), "colour");
    cell(tr, s.reason, "reason");
    cell(tr, span(s.backlog_age_s), "backlog");
    cell(tr, text(s.queue_depth), "queue");
    cell(tr, text(s.drain_per_s), "drain");
    cell(tr, text(s.scanner_state), "scanner");
    cell(tr, s.last_seen_s === null ? "never" : `${span(s.last_seen_s)} ago`, "seen");
    cell(tr, text(s.software), "software");
    tr.addEventListener("click", () => { location.hash = encodeURIComponent(s.station_id); });
    return tr;
  });
  body.replaceChildren(...rows);
  const counts = {};
  for (const s of state.stations) counts[s.colour] = (counts[s.colour] || 0) + 1;
  document.querySelector("#counts").textContent =
    `${state.stations.length} stations: ` +
    ["red", "amber", "green", "grey"].map((c) => `${counts[c] || 0} ${c}`).join(", ");
  for (const th of document.querySelectorAll("#fleet th")) {
    const button = th.querySelector("button");
    if (!button) continue;
    th.setAttribute("aria-sort", button.dataset.sort === state.sortKey
      ? (state.descending ? "descending" : "ascending") : "none");
  }
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

async function refresh() {
  try {
    state.stations = (await getJson("/api/stations")).stations;
    renderTable();
    if (state.selected) await renderDetail(state.selected);
  } catch (error) {
    document.querySelector("#counts").textContent = `Cannot reach central: ${error.message}`;
  }
}

function chart(id, label, xs, ys, stepped) {
  const target = document.getElementById(id);
  const opts = {
    width: Math.max(420, Math.min(640, target.clientWidth || 420)), height: 220,
    series: [{}, { label, stroke: "#0b3d91", width: 2,
                   paths: stepped ? uPlot.paths.stepped({ align: 1 }) : undefined }],
    axes: [{}, {}],
    scales: { x: { time: true } },
  };
  if (state.charts[id]) { state.charts[id].setData([xs, ys]); return; }
  target.replaceChildren();
  state.charts[id] = new uPlot(opts, [xs, ys], target);
}

function listItems(id, items) {
  const list = document.getElementById(id);
  list.replaceChildren(...items.map((t) => {
    const li = document.createElement("li");
    li.textContent = t;
    return li;
  }));
  if (!items.length) {
    const li = document.createElement("li");
    li.textContent = "none";
    list.append(li);
  }
}

async function renderDetail(stationId) {
  const detail = await getJson(`/api/stations/${encodeURIComponent(stationId)}`);
  const section = document.querySelector("#detail");
  section.hidden = false;
  document.querySelector("#detail-title").textContent = `Station ${detail.station_id}`;
  document.querySelector("#detail-state").textContent =
    `${detail.colour}: ${detail.reason}. Backlog age ${span(detail.backlog_age_s)}.`;
  const h = detail.history;
  chart("chart-queue", "queue depth", h.at, h.queue_depth, false);
  chart("chart-drain", "deliveries per second", h.at, h.drain_per_s, false);
  const events = detail.scanner_events;
  const xs = events.map((e) => e.at);
  const ys = events.map((e) => (e.state === "ready" || e.state === "busy" ? 1 : 0));
  if (xs.length) { xs.push(h.at[h.at.length - 1] ?? xs[xs.length - 1]); ys.push(ys[ys.length - 1]); }
  chart("chart-scanner", "scanner connected", xs, ys, true);
  listItems("scanner-events", events.map(
    (e) => `${new Date(e.at * 1000).toISOString().slice(0, 19)}Z: ${e.state}`));
  listItems("alerts", detail.alerts.map(
    (a) => `${new Date(a.at * 1000).toISOString().slice(0, 19)}Z ${a.severity} ${a.kind}: ${a.message}`));
}

function select() {
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted !== state.selected) {
    for (const c of Object.values(state.charts)) c.destroy();
    state.charts = {};
  }
  state.selected = wanted || null;
  if (!state.selected) { document.querySelector("#detail").hidden = true; return; }
  renderTable();
  renderDetail(state.selected).catch((error) => {
    document.querySelector("#detail-state").textContent = `No history: ${error.message}`;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("#fleet th button")) {
    button.addEventListener("click", () => {
      const key = button.dataset.sort;
      state.descending = state.sortKey === key ? !state.descending : key === "backlog_age_s";
      state.sortKey = key;
      renderTable();
    });
  }
  window.addEventListener("hashchange", select);
  select();
  refresh();
  setInterval(refresh, REFRESH_MS);
});
