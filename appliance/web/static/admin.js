// The technician page: health, outbox and audit (metadata only; never a subject).
"use strict";
const $ = (id) => document.getElementById(id);
const ACTIONS = ["login", "login_failed", "login_locked", "logout", "capture", "quality_override",
  "annotation", "booking_committed", "submission", "acknowledged", "rejected", "purge",
  "config_loaded", "config_changed", "config_rolled_back", "remote_command",
  "diagnostics_exported", "scanner_test", "store_key_rotated", "station_started",
  "station_stopped", "store_restored", "store_created"];
let session = null;
let span = "day";

function showError(text) { $("page-error").textContent = text || ""; }

async function call(path, options = {}) {
  const opts = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
  if (opts.method && opts.method !== "GET") {
    opts.headers["X-CSRF-Token"] = session ? session.csrf : "";
    if (opts.body !== undefined) opts.headers["Content-Type"] = "application/json";
  }
  const answer = await fetch(path, opts);
  if (answer.status === 401) { window.location.assign("/admin/login"); throw new Error("signed out"); }
  if (!answer.ok) {
    let why = answer.status + "";
    try { why = (await answer.json()).detail || why; } catch (_e) { /* not JSON */ }
    throw new Error(path + ": " + why);
  }
  return answer;
}

function cell(tr, text, cls) {
  const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls;
  tr.appendChild(td); return td;
}

function fillPairs(id, obj) {
  const tb = $(id).querySelector("tbody"); tb.replaceChildren();
  for (const [k, v] of Object.entries(obj)) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.scope = "row"; th.textContent = k.replaceAll("_", " ");
    tr.appendChild(th);
    cell(tr, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v));
    tb.appendChild(tr);
  }
}

function fillHealth(items) {
  const tb = $("health").querySelector("tbody"); tb.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.scope = "row"; th.textContent = item.label; tr.appendChild(th);
    const td = document.createElement("td");
    const badge = document.createElement("span"); badge.className = "status " + item.status;
    badge.textContent = item.status; td.appendChild(badge); tr.appendChild(td);
    cell(tr, item.value); cell(tr, item.reason);
    tb.appendChild(tr);
  }
}

function auditQuery() {
  const q = new URLSearchParams();
  const since = $("f-since").value, until = $("f-until").value;
  if (since) q.set("since", since + "Z");
  if (until) q.set("until", until + "Z");
  if ($("f-actor").value.trim()) q.set("actor", $("f-actor").value.trim());
  if ($("f-action").value) q.set("action", $("f-action").value);
  return q;
}

async function loadAudit() {
  const q = auditQuery(); q.set("limit", "100");
  showAudit(await (await call("/api/admin/audit?" + q)).json());
}

function showAudit(rows) {
  const tb = $("audit").querySelector("tbody"); tb.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    [r.seq, r.at, r.actor, r.action, r.detail].forEach((v) => cell(tr, String(v)));
    tb.appendChild(tr);
  }
}

async function verify(whole) {
  showChain(await (await call("/api/admin/audit/verify" + (whole ? "?whole=true" : ""))).json());
}

function showChain(v) {
  $("chain").textContent = v.ok
    ? "Chain verifies up to entry " + v.verified_to + " (" + v.checked + " checked this time)."
    : "CHAIN BROKEN at entry " + v.first_bad + ": " + v.problem;
  $("chain").className = v.ok ? "" : "error";
}

async function loadScanner() {
  fillPairs("scanner-counters", await (await call("/api/admin/scanner")).json());
}

async function scannerTool(path, body, what) {
  $("scanner-result").textContent = what + "…";
  try {
    const answer = await call(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });
    if (answer.headers.get("Content-Type") === "image/jpeg") {
      const img = document.createElement("img");
      img.alt = "Test capture from the scanner (not stored)";
      img.src = URL.createObjectURL(await answer.blob());
      $("scanner-shot").replaceChildren(img);
      $("scanner-result").textContent = "Test capture shown below; it is not stored.";
    } else {
      const r = await answer.json();
      $("scanner-result").textContent = r.fps !== undefined
        ? r.frames + " frames in " + r.seconds + " s: " + r.fps + " frames per second." : what + ": done.";
    }
    await loadScanner();
  } catch (err) { $("scanner-result").textContent = err.message; }
}

function showTechnician(r) {
  if (r.scanner) fillPairs("scanner-counters", r.scanner);
  fillHealth(r.health.items || []);
  fillPairs("link", r.health.link);
  const tb = $("outbox").querySelector("tbody"); tb.replaceChildren();
  for (const o of (r.outbox ? r.outbox.rows : [])) {
    const tr = document.createElement("tr");
    [o.booking, o.size + " B", o.state, o.attempts, Math.round(o.age_s) + " s",
      o.state === "queued" ? Math.round(o.next_attempt_in_s) + " s" : "—"].forEach((v) => cell(tr, String(v)));
    tb.appendChild(tr);
  }
}

function showChange(result) {
  const box = $("config-result"); box.replaceChildren();
  const head = document.createElement("p");
  if (result.applied) { head.textContent = "Applied; restarted: " + result.restarts.join(", ") + "."; head.className = "ok"; }
  else if (result.rolled_back) { head.textContent = "Rolled back by itself: " + result.reason; head.className = "error"; }
  else if (result.ok && result.applied === undefined) { head.textContent = result.diff.length ? "The change checks; applying restarts: " + result.restarts.join(", ") + "." : "No difference from the running configuration."; head.className = "ok"; }
  else if (result.ok) { head.textContent = "Nothing applied: no difference."; }
  else { head.textContent = "Not applied:"; head.className = "error"; }
  box.appendChild(head);
  if (result.problems && result.problems.length) {
    const ul = document.createElement("ul");
    for (const p of result.problems) { const li = document.createElement("li"); li.textContent = p.path + ": " + p.message; ul.appendChild(li); }
    box.appendChild(ul);
  }
  if (result.diff && result.diff.length) {
    const table = document.createElement("table"); table.id = "config-diff";
    const cap = document.createElement("caption"); cap.textContent = "Difference"; table.appendChild(cap);
    const tb = document.createElement("tbody");
    for (const d of result.diff) {
      const tr = document.createElement("tr");
      [d.key, JSON.stringify(d.from), "→", JSON.stringify(d.to)].forEach((v) => cell(tr, v));
      tb.appendChild(tr);
    }
    table.appendChild(tb); box.appendChild(table);
  }
}

async function loadConfig() {
  const c = await (await call("/api/admin/config")).json();
  $("config-running").textContent = JSON.stringify(c.config, null, 2);
  $("config-editable").textContent = c.editable.join(", ");
  $("config-summary").textContent = "Config hash " + c.hash + (c.file ? " from " + c.file : "") +
    "; a change that leaves the station unhealthy is rolled back after " + c.rollback_after_s + " s.";
}

// One request refreshes the page (chain, audit page, and for a technician the scanner, health
// and outbox); the charts follow every twelfth refresh, a minute, or when asked.
let refreshes = 0;
async function load(charts = true) {
  try {
    const q = auditQuery(); q.set("limit", "100"); q.set("outbox_limit", "50");
    const r = await (await call("/api/admin/refresh?" + q)).json();
    if (r.health) {
      showTechnician(r);
      if (charts) await window.loadHistory(call, span);
    }
    showChain(r.verify);
    showAudit(r.audit);
    showError("");
  } catch (err) {
    if (err.message !== "signed out") showError("Could not refresh: " + err.message);
  }
}

async function post(path, body) {
  try {
    await call(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });
    await load();
  } catch (err) { showError(err.message); }
}

async function start() {
  try {
    session = await (await call("/api/admin/session")).json();
  } catch (err) { return; }
  $("who").textContent = session.user + " (" + session.role + ")";
  if (session.role !== "technician") {
    for (const s of document.querySelectorAll("[data-role=technician]")) s.hidden = true;
  }
  for (const a of ACTIONS) {
    const o = document.createElement("option"); o.value = a; o.textContent = a.replaceAll("_", " ");
    $("f-action").appendChild(o);
  }
  for (const [id, action] of [["sync-now", "now"], ["pause", "pause"], ["resume", "resume"]]) {
    $(id).onclick = () => post("/api/admin/sync/" + action);
  }
  for (const [id, value] of [["span-day", "day"], ["span-month", "month"]]) {
    $(id).onclick = async () => {
      span = value;
      $("span-day").setAttribute("aria-pressed", String(value === "day"));
      $("span-month").setAttribute("aria-pressed", String(value === "month"));
      try { await window.loadHistory(call, span); } catch (err) { showError(err.message); }
    };
  }
  for (const [id, what] of [["config-check", "check"], ["config-apply", "apply"]]) {
    $(id).onclick = async () => {
      $("config-result").textContent = what === "apply" ? "Applying; waiting for the station to be healthy…" : "Checking…";
      try {
        const answer = await call("/api/admin/config/" + what, { method: "POST", body: JSON.stringify({ change: $("config-change").value }) });
        showChange(await answer.json());
        await loadConfig();
      } catch (err) { showError(err.message); }
    };
  }
  $("scanner-capture").onclick = () => scannerTool("/api/admin/scanner/test-capture", undefined, "Capturing");
  $("scanner-rate").onclick = () => scannerTool("/api/admin/scanner/frame-rate", { seconds: 3 }, "Counting frames");
  $("scanner-reset").onclick = () => scannerTool("/api/admin/scanner/reset-counters", undefined, "Resetting counters");
  $("scanner-reconnect").onclick = () => scannerTool("/api/admin/scanner/reconnect", undefined, "Reconnecting");
  $("retry").onclick = () => post("/api/admin/outbox/retry");
  $("set-throttle").onclick = () => post("/api/admin/outbox/throttle", { per_s: Number($("throttle").value) });
  $("verify-whole").onclick = () => verify(true).catch((err) => showError(err.message));
  $("audit-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadAudit().catch((err) => showError(err.message)); });
  $("export").onclick = async () => {
    try {
      const blob = await (await call("/api/admin/audit/export?" + auditQuery())).blob();
      const a = document.createElement("a"); a.href = URL.createObjectURL(blob); a.download = "audit.jsonl";
      document.body.appendChild(a); a.click(); a.remove();
    } catch (err) { showError(err.message); }
  };
  $("bundle").onclick = async () => {
    try {
      const answer = await call("/api/admin/diagnostics");
      const name = (answer.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
      const a = document.createElement("a"); a.href = URL.createObjectURL(await answer.blob());
      a.download = name ? name[1] : "diagnostics.zip";
      document.body.appendChild(a); a.click(); a.remove();
    } catch (err) { showError(err.message); }
  };
  $("logout").onclick = async () => {
    try { await call("/api/admin/logout", { method: "POST" }); } catch (_e) { /* signed out anyway */ }
    window.location.assign("/admin/login");
  };
  await load();
  if (session.role === "technician") await loadConfig().catch((err) => showError(err.message));
  setInterval(() => load(++refreshes % 12 === 0), 5000);
}
start();
