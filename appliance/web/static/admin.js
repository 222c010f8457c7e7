// The technician page: health, counters and the audit log (no subject data).
"use strict";
const $ = (id) => document.getElementById(id);
function fill(id, obj) {
  const tb = $(id).querySelector("tbody"); tb.innerHTML = "";
  for (const [k, v] of Object.entries(obj)) {
    const tr = document.createElement("tr"); tr.innerHTML = "<th></th><td></td>";
    tr.children[0].textContent = k.replaceAll("_", " ");
    tr.children[1].textContent = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
    tb.appendChild(tr);
  }
}
async function load() {
  const h = await (await fetch("/api/admin/health")).json();
  fill("health", h.health); fill("scanner", h.scanner); fill("link", h.link);
  $("chain").textContent = h.audit ? (h.audit.ok ? "Chain verifies: " : "CHAIN BROKEN at entry " + h.audit.first_bad + ": ") + h.audit.entries + " entries" : "";
  const rows = await (await fetch("/api/admin/audit?limit=50")).json();
  const tb = $("audit").querySelector("tbody"); tb.innerHTML = "";
  for (const r of rows) {
    const tr = document.createElement("tr"); tr.innerHTML = "<td></td><td></td><td></td><td></td><td></td>";
    [r.seq, r.at, r.actor, r.action, r.detail].forEach((v, i) => { tr.children[i].textContent = v; });
    tb.appendChild(tr);
  }
}
for (const [id, action] of [["sync-now", "now"], ["pause", "pause"], ["resume", "resume"]]) {
  $(id).onclick = async () => { await fetch("/api/admin/sync/" + action, { method: "POST" }); load(); };
}
load(); setInterval(load, 5000);
