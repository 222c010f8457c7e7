// The technician page's charts, drawn with the vendored uPlot (no CDN, no inline script).
"use strict";
const CHART_COLOURS = ["#1f3b5a", "#b71c1c", "#1b5e20", "#8a4b00", "#5e35b1", "#00695c",
  "#ad1457", "#37474f", "#6d4c41", "#283593", "#558b2f", "#c62828", "#0277bd", "#4e342e", "#00838f"];
const charts = {};

function chartWidth(id) {
  const box = document.getElementById(id);
  return Math.max(320, Math.min(560, box.parentElement.clientWidth - 8));
}

function draw(id, opts, data) {
  if (charts[id]) charts[id].destroy();
  const box = document.getElementById(id); box.replaceChildren();
  charts[id] = new uPlot({ width: chartWidth(id), height: 220, ...opts }, data, box);
}

function lineSeries(labels) {
  return [{}, ...labels.map((label, i) => ({ label, stroke: CHART_COLOURS[i % CHART_COLOURS.length], width: 2 }))];
}

function fixedTime(from, to) {
  return { x: { time: true, range: () => [from, to] } };
}

function drawHistory(h) {
  const o = h.outbox;
  const now = Math.floor(Date.now() / 1000);
  const span = h.span === "day" ? 86400 : 30 * 86400;
  const window = fixedTime(now - span, now);
  draw("c-queue", { scales: window, series: lineSeries(["unsent (highest)", "delivered"]) },
    [o.t, o.queue, o.drained]);
  draw("c-scanner", { scales: window, series: lineSeries(["errors", "reconnects"]) },
    [o.t, o.errors, o.reconnects]);
  const b = h.bookings_per_day;
  draw("c-bookings", {
    scales: fixedTime(b.t[0] - 43200, b.t[b.t.length - 1] + 43200),
    series: [{}, { label: "bookings", stroke: CHART_COLOURS[0], fill: "rgba(31,59,90,0.25)",
      paths: uPlot.paths.bars({ size: [0.6, 40] }) }],
  }, [b.t, b.bookings]);
  const positions = Object.keys(h.nfiq2_by_position);
  const bands = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90];
  draw("c-nfiq", {
    scales: { x: { time: false } },
    axes: [{ label: "NFIQ 2 score (band start)" }, { label: "prints" }],
    series: lineSeries(positions.map((p) => "position " + p)),
  }, [bands, ...positions.map((p) => h.nfiq2_by_position[p])]);
}

window.loadHistory = async function loadHistory(call, span) {
  const h = await (await call("/api/admin/history?span=" + span)).json();
  drawHistory(h);
  document.getElementById("charts-section").dataset.drawn = span;
};
