"use strict";
// The officer's screen: sign-in, then a thin view over /api/kiosk, the live preview and the
// event stream. Every request carries the session's CSRF token; a 401 or 423 shows sign-in.
const $ = (id) => document.getElementById(id);
const STATE_WORDS = { queued: "queued", sending: "sending", stored: "held by central", rejected: "rejected" };
let previewSocket = null;
let eventSocket = null;
let lastPendingKey = "";
let csrf = null;
let idleLockMs = 300000;
let lastTouch = 0;
let idleTimer = null;

class SignedOut extends Error {}

async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch(path, { method: body === undefined ? "GET" : "POST", headers,
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 423) { showSignIn(res.status === 423); throw new SignedOut(); }
  if (!res.ok) throw new Error(data.error || data.detail || res.statusText);
  return data;
}

function showSignIn(locked) {
  csrf = null;
  if (previewSocket) { previewSocket.close(); previewSocket = null; }
  if (eventSocket) { eventSocket.onclose = null; eventSocket.close(); eventSocket = null; }
  for (const id of ["start-panel", "capture-panel", "bookings-panel"]) $(id).hidden = true;
  $("officer-name").hidden = $("lock").hidden = true;
  $("signin-panel").hidden = false;
  $("signin-note").hidden = !locked;
  $("signin-title").textContent = locked ? "Screen locked" : "Officer sign-in";
  $("officer-pin").value = "";
}

function signedIn(session) {
  csrf = session.csrf;
  idleLockMs = (session.idle_lock_s || 300) * 1000;
  $("signin-panel").hidden = true; $("signin-error").hidden = true;
  $("officer-name").textContent = "Officer " + session.officer;
  $("officer-name").hidden = $("lock").hidden = false;
  $("bookings-panel").hidden = false;
  touched();
  openEvents();
  refresh();
}

function touched() {
  const now = Date.now();
  if (csrf && now - lastTouch > 15000) {
    lastTouch = now;
    api("/api/kiosk/activity", {}).catch(() => {});
  }
  clearTimeout(idleTimer);
  idleTimer = setTimeout(checkSession, idleLockMs + 1000);
}

async function checkSession() {
  const res = await fetch("/api/kiosk/session");
  const s = await res.json().catch(() => ({}));
  if (!s.officer || s.locked) showSignIn(!!s.officer);
  else if (!csrf) signedIn(s);
  else openEvents();
}

// The on-page dialog (never the browser's prompt/confirm): resolves to the reason, "" without
// a reason list, or null when the officer backs out.
function ask(text, { okLabel = "Yes", backLabel = "No", reasons = false } = {}) {
  const dlg = $("ask");
  $("ask-text").textContent = text;
  $("ask-ok").textContent = okLabel; $("ask-back").textContent = backLabel;
  $("ask-reasons").hidden = !reasons;
  $("ask-error").hidden = true;
  $("ask-other").value = "";
  for (const r of document.querySelectorAll("input[name=ask-reason]")) r.checked = false;
  dlg.showModal();
  return new Promise((resolve) => {
    $("ask-back").onclick = () => { dlg.close(); resolve(null); };
    $("ask-ok").onclick = () => {
      if (!reasons) { dlg.close(); resolve(""); return; }
      const picked = document.querySelector("input[name=ask-reason]:checked");
      const other = $("ask-other").value.trim();
      const reason = [picked ? picked.value : "", other].filter(Boolean).join(": ");
      if (!reason) { $("ask-error").hidden = false; return; }
      dlg.close(); resolve(reason.slice(0, 200));
    };
  });
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const res = await fetch("/api/kiosk/signin", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ officer: $("officer-id").value.trim(), pin: $("officer-pin").value }) });
  const data = await res.json().catch(() => ({}));
  $("officer-pin").value = "";
  if (!res.ok) { $("signin-error").textContent = data.error || data.detail || res.statusText; $("signin-error").hidden = false; return; }
  signedIn(data);
});
$("lock").onclick = async () => { await api("/api/kiosk/signout", {}).catch(() => {}); showSignIn(false); };
document.addEventListener("pointerdown", touched, true);
document.addEventListener("keydown", touched, true);

function say(text, bad) { $("message").textContent = text || ""; $("message").className = bad ? "error" : ""; }

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
      const msg = JSON.parse(ev.data);
      if (msg.type === "live") {
        $("live").textContent = msg.ok ? (msg.message || "Hold still") : msg.reasons.join(" ");
        $("live").className = msg.ok ? "live-ok" : "live-bad";
      } else if (msg.type === "idle") {
        $("live").textContent = ""; $("live").className = "";
      } else if (msg.type === "fault") {
        say("Scanner problem: " + msg.message, true);
        $("live").textContent = "";
      }
      return;
    }
    const url = URL.createObjectURL(ev.data);
    const img = $("preview"); const old = img.src; img.src = url;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  };
  previewSocket.onclose = (ev) => { previewSocket = null; if (ev.code === 4401) checkSession(); };
}

async function refresh() {
  if (!csrf) return;
  try { render(await api("/api/kiosk")); } catch (e) { if (!(e instanceof SignedOut)) say(e.message, true); }
}

async function act(path, body, okText) {
  try { await api(path, body); say(okText || ""); }
  catch (e) { if (e instanceof SignedOut) return; say(e.message, true); }
  await refresh();
}

// The booking number is checked as it is typed: what the profile cannot carry stops the start,
// a number already booked today or held by central asks the officer to look again.
let numberTimer = null;
let numberChecked = "";
function showNumberCheck(check) {
  $("number-problems").textContent = check.problems.join(" ");
  $("number-warnings").textContent = check.warnings.join(" ");
  $("start").disabled = !check.ok;
  $("start").textContent = check.warnings.length ? "Start anyway" : "Start booking";
}
async function checkNumber() {
  const number = $("booking-number").value.trim();
  if (!number) { showNumberCheck({ ok: false, problems: [], warnings: [] }); return null; }
  try {
    const check = await api("/api/booking/check", { booking_number: number });
    if ($("booking-number").value.trim() === number) { showNumberCheck(check); numberChecked = number; }
    return check;
  } catch (e) { if (!(e instanceof SignedOut)) $("number-problems").textContent = e.message; return null; }
}
$("booking-number").addEventListener("input", () => {
  clearTimeout(numberTimer); numberChecked = "";
  numberTimer = setTimeout(checkNumber, 250);
});
$("start-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const number = $("booking-number").value.trim();
  if (numberChecked !== number) {
    const check = await checkNumber();
    if (!check || !check.ok || check.warnings.length) return;  // shown: the officer decides
  }
  try {
    await api("/api/booking", { booking_number: number });
    $("booking-number").value = ""; showNumberCheck({ ok: false, problems: [], warnings: [] });
    say("");
  } catch (e) { if (!(e instanceof SignedOut)) $("number-problems").textContent = e.message; }
  await refresh();
});
$("capture").onclick = () => act("/api/capture", {}, "Check the print, then accept or retake");
$("accept").onclick = () => act("/api/accept", {}, "Print accepted and saved");
$("retake").onclick = () => act("/api/retake", {}, "Place the finger again");
$("accept-override").onclick = async () => {
  const reason = await ask("Why accept this print below the quality threshold?",
    { okLabel: "Accept with this reason", backLabel: "Back", reasons: true });
  if (reason) act("/api/accept", { override_reason: reason }, "Print accepted with a reason and saved");
};
$("submit").onclick = async () => {
  try { await api("/api/submit", {}); say("Booking saved and queued for central"); }
  catch (e) {
    if (e.message.startsWith("sequence check") &&
        await ask(e.message, { okLabel: "Submit anyway", backLabel: "Back to the prints" }) !== null) {
      await act("/api/submit", { confirm_sequence: true }, "Booking saved and queued for central");
      return;
    }
    say(e.message, true);
  }
  await refresh();
};
$("cancel").onclick = async () => {
  if (await ask("Cancel this booking? Its prints will be discarded.",
    { okLabel: "Cancel the booking", backLabel: "Keep it" }) !== null) act("/api/cancel", {});
};
async function mark(code) {
  const k = await api("/api/kiosk");
  if (k.current) act("/api/annotate", { position: k.current.position, annotation: code }, "Marked " + code);
}
$("mark-xx").onclick = () => mark("XX");
$("mark-up").onclick = () => mark("UP");

function openEvents() {
  if (eventSocket) return;
  eventSocket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/events");
  eventSocket.onmessage = () => refresh();
  eventSocket.onclose = () => { eventSocket = null; setTimeout(checkSession, 2000); };
}

checkSession();
setInterval(refresh, 5000);
