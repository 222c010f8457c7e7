"use strict";
// The officer's screen: a thin view over /api/kiosk, the live preview and the event stream.
const $ = (id) => document.getElementById(id);
const STATE_WORDS = { queued: "queued", sending: "sending", stored: "held by central", rejected: "rejected" };
let previewSocket = null;
let lastPendingKey = "";

async function api(path, body) {
  const res = await fetch(path, { method: body === undefined ? "GET" : "POST",
    headers: { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || data.detail || res.statusText);
  return data;
}

function say(text, bad) { $("message").textContent = text || ""; $("message").className = bad ? "bad" : ""; }

function badge(el, text, cls) { el.textContent = text; el.className = "badge " + cls; }

function render(k) {
  $("station").textContent = k.station;
  badge($("scanner-badge"), "scanner: " + k.scanner, k.scanner === "ready" || k.scanner === "busy" ? "good" : "bad");
  badge($("link-badge"), "central: " + (k.link ? "connected" : "offline"), k.link ? "good" : "warn");
  badge($("clock-badge"), "clock: " + k.clock, k.clock === "synchronised" ? "good" : "warn");
  const banner = $("banner");
  if (k.problem) { banner.textContent = k.problem; banner.hidden = false; }
  else if (k.scanner === "disconnected") { banner.textContent = "Scanner disconnected: check the cable. Accepted prints are safe."; banner.hidden = false; }
  else banner.hidden = true;
  const inBooking = !!k.booking;
  $("start-panel").hidden = inBooking;
  $("capture-panel").hidden = !inBooking;
  if (inBooking) {
    $("prompt").textContent = k.current ? k.current.prompt : "All prints taken: check and submit";
    const steps = $("steps"); steps.innerHTML = "";
    for (const s of k.steps) {
      const li = document.createElement("li");
      li.textContent = s.label; li.className = s.state; li.dataset.position = s.position;
      if (s.annotation) li.dataset.note = s.annotation;
      steps.appendChild(li);
    }
    const pending = !!k.pending;
    $("capture").hidden = pending || !k.current;
    $("accept").hidden = !pending; $("retake").hidden = !pending;
    $("submit").hidden = !!k.current;
    $("pending").hidden = !pending; $("preview").hidden = pending || !k.current;
    $("mark-xx").hidden = $("mark-up").hidden = !k.current;
    const key = pending ? k.booking.booking_id + ":" + k.pending.position + ":" + k.pending.retakes : "";
    if (pending && key !== lastPendingKey) {
      $("pending").src = "/api/pending.jpg?" + Date.now();
    }
    lastPendingKey = key;
    const q = pending ? k.pending.quality : null;
    $("quality").hidden = !q;
    $("accept-override").hidden = !(q && !q.passed && q.override_allowed);
    $("accept").hidden = !pending || (q && !q.passed);
    if (q) {
      const score = q.nfiq2 === null ? "no score" : "NFIQ 2: " + q.nfiq2;
      const fingers = Object.entries(q.fingers).map(([p, v]) => p + ": " + (v === null ? "–" : v)).join(", ");
      $("quality").textContent = score + (fingers ? " (" + fingers + ")" : "") + ". " + q.message + " " + q.feedback.join(" ");
      $("quality").className = q.passed ? "quality-ok" : "quality-bad";
    }
    ensurePreview();
  }
  const tbody = $("bookings").querySelector("tbody"); tbody.innerHTML = "";
  for (const b of k.bookings) {
    const tr = document.createElement("tr");
    const receipt = b.receipt ? JSON.parse(b.receipt) : null;
    const shared = receipt && receipt.shared_with && receipt.shared_with.length ? " → " + receipt.shared_with.map((d) => d.name).join(", ") : "";
    tr.innerHTML = "<td></td><td></td><td></td><td></td>";
    tr.children[0].textContent = b.booking_number + (b.clock_trusted ? "" : " (clock not trusted)");
    tr.children[1].textContent = b.impressions;
    tr.children[2].textContent = STATE_WORDS[b.state] || b.state;
    tr.children[2].className = "state-" + b.state;
    tr.children[3].textContent = receipt ? receipt.receipt + shared : (b.reason || "");
    tbody.appendChild(tr);
  }
}

function ensurePreview() {
  if (previewSocket) return;
  previewSocket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/preview");
  previewSocket.binaryType = "blob";
  previewSocket.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      if (ev.data.startsWith("{")) {
        const live = JSON.parse(ev.data).live;
        $("live").textContent = live.ok ? (live.message || "Hold still") : live.reasons.join(" ");
        $("live").className = live.ok ? "live-ok" : "live-bad";
      }
      return;
    }
    const url = URL.createObjectURL(ev.data);
    const img = $("preview"); const old = img.src; img.src = url;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  };
  previewSocket.onclose = () => { previewSocket = null; };
}

async function refresh() { try { render(await api("/api/kiosk")); } catch (e) { say(e.message, true); } }

async function act(path, body, okText) {
  try { await api(path, body); say(okText || ""); } catch (e) { say(e.message, true); }
  await refresh();
}

$("start-form").addEventListener("submit", (ev) => { ev.preventDefault();
  act("/api/booking", { booking_number: $("booking-number").value }, "Booking started")
    .then(() => { $("booking-number").value = ""; }); });
$("capture").onclick = () => act("/api/capture", {}, "Check the print, then accept or retake");
$("accept").onclick = () => act("/api/accept", {}, "Print accepted and saved");
$("retake").onclick = () => act("/api/retake", {}, "Place the finger again");
$("accept-override").onclick = () => {
  const reason = prompt("Why accept this print below the quality threshold?");
  if (reason) act("/api/accept", { override_reason: reason }, "Print accepted with a reason and saved");
};
$("submit").onclick = async () => {
  try { await api("/api/submit", {}); say("Booking saved and queued for central"); }
  catch (e) {
    if (e.message.startsWith("sequence check") && confirm(e.message + "\n\nSubmit anyway?")) {
      await act("/api/submit", { confirm_sequence: true }, "Booking saved and queued for central");
      return;
    }
    say(e.message, true);
  }
  await refresh();
};
$("cancel").onclick = () => { if (confirm("Cancel this booking? Its prints will be discarded.")) act("/api/cancel", {}); };
async function mark(code) {
  const k = await api("/api/kiosk");
  if (k.current) act("/api/annotate", { position: k.current.position, annotation: code }, "Marked " + code);
}
$("mark-xx").onclick = () => mark("XX");
$("mark-up").onclick = () => mark("UP");

const events = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/events");
events.onmessage = () => refresh();
refresh();
setInterval(refresh, 5000);
