"use strict";
// The officer's screen: sign-in, then one view of the booking that arrives over a server-sent
// event stream. Every request carries the session's CSRF token; a 401 or 423 shows sign-in.
// The page never uses the browser's prompt/confirm/alert: questions are on-page dialogs.
const $ = (id) => document.getElementById(id);

const MESSAGES = {
  en: {
    title: "Booking station", lock: "Lock screen", signin_title: "Officer sign-in", screen_locked: "Screen locked",
    signin_locked_note: "The screen was locked. The booking in progress is kept: sign in to go on.",
    officer_id: "Officer id", pin: "PIN", signin: "Sign in", officer: "Officer",
    start_title: "Start a booking", booking_number: "Booking number", start: "Start booking", start_anyway: "Start anyway",
    recent_title: "Today's bookings", col_booking: "Booking", col_prints: "Prints", col_delivery: "Delivery", col_receipt: "Receipt / reason",
    capture: "Capture", accept: "Accept", accept_reason: "Accept with a reason", retake: "Retake",
    keep_old: "Keep the earlier one", to_review: "Review", cancel: "Cancel booking", undo: "Undo",
    auto_countdown: "Taken automatically after {left} more steady frames",
    roll_progress: "Rolled {mm} mm of about {target} mm, nail to nail",
    live_preview: "live preview", captured_print: "captured print",
    verdict_failed: "The {print} scored NFIQ 2 {score}, below {threshold}: take it again.",
    verdict_not_measured: "The quality of the {print} could not be measured: take it again.",
    verdict_slap_failed: "Take the {print} again: {notes}.",
    note_missing: "the {finger} was not found", note_poor: "the {finger} is too poor ({score})",
    or_override: "Or accept it with a reason.",
    checks_title: "Prints to look at",
    suspect_pair: "The {a} and the {b} look like each other's finger: retake the one placed wrongly, or both.",
    suspect_none: "The {a} matches no finger of the slaps: check the finger and retake it if it is wrong.",
    review_title: "Review, then submit", submit: "Submit booking", sharing_title: "Where this booking goes",
    reason: "Reason", reason_worn: "Worn or damaged skin", reason_injury: "Injury or bandage",
    reason_uncooperative: "Subject not cooperating", reason_best: "Best of several attempts",
    reason_other: "Other or more detail", reason_missing: "Pick a reason or type one.",
    take_again: "Take this print again", mark_xx: "Amputated (XX)", mark_up: "Unable to print (UP)",
    clear_mark: "Clear the mark", close: "Close", yes: "Yes", no: "No", back: "Back",
    scanner: "scanner", central: "central", clock: "clock", connected: "connected", offline: "offline",
    clock_trusted: "trusted", clock_untrusted: "not trusted",
    banner_scanner: "Scanner disconnected: check the cable. Accepted prints are safe.",
    banner_central: "Central is unreachable: bookings are kept and sent when it is back.",
    banner_clock: "The clock is not trusted: booking times will be marked.",
    state_queued: "queued", state_sending: "sending", state_stored: "held by central", state_rejected: "rejected",
    clock_note: " (clock not trusted)",
    prompt_rolled: "Roll the {finger} from nail edge to nail edge", prompt_thumbs: "Place both thumbs flat on the glass",
    prompt_right_four: "Place the four fingers of the right hand flat on the glass",
    prompt_left_four: "Place the four fingers of the left hand flat on the glass",
    prompt_redo: "Taking the {finger} print again", all_taken: "All prints taken: review them, then submit",
    capture_hint: "Check the print, then accept or retake it.", accepted: "{finger}: print accepted and saved.",
    accepted_reason: "{finger}: accepted with a reason and saved.", retake_hint: "Place the finger again.",
    marked: "{finger} marked {mark}.", unmarked: "{finger}: mark cleared.",
    ask_mark: "Mark the {finger} as {words}?", words_XX: "amputated (XX)", words_UP: "unable to print (UP)",
    mark_it: "Mark it", ask_override: "Why accept this print below the quality threshold?",
    accept_with_reason: "Accept with this reason", ask_cancel: "Cancel this booking? Its prints will be discarded.",
    cancel_it: "Cancel the booking", keep_it: "Keep it", submit_anyway: "Submit anyway", back_to_prints: "Back to the prints",
    submitted: "Booking saved and queued for central.", no_score: "no score", score: "NFIQ 2 {score}",
    not_taken: "not taken yet", taken: "taken", state_XX: "amputated (XX)", state_UP: "unable to print (UP)",
    mandatory: "required by law", optional: "chosen by the agency", no_sharing: "Central keeps the booking; it is passed on to no one else.",
    scanner_problem: "Scanner problem: {message}", hold_still: "Hold still",
    right_hand: "Right hand", left_hand: "Left hand", slap_13: "Right 4", slap_14: "Left 4", slap_15: "Thumbs",
    scanner_ready: "ready", scanner_busy: "busy", scanner_disconnected: "disconnected", scanner_absent: "absent",
    subject_details: "Subject details", required_note: "Fields marked * are required before submit.",
    look_up: "Look up", save: "Save", edit: "Edit", saved: "Subject details saved.", not_found: "Nothing found for this booking number.",
    no_subject: "No subject details yet.", pick: "Pick…", hide_keyboard: "Hide keyboard",
    scanner_unavailable: "unavailable", scanner_starting: "starting", scanner_stopped: "stopped", verdict_passed: "The {print} passed: accept it.",
  },
  es: {
    title: "Estación de reseña", lock: "Bloquear pantalla", signin_title: "Acceso del agente", screen_locked: "Pantalla bloqueada",
    signin_locked_note: "La pantalla se bloqueó. La reseña en curso se conserva: inicie sesión para seguir.",
    officer_id: "Identificador del agente", pin: "PIN", signin: "Entrar", officer: "Agente",
    start_title: "Iniciar una reseña", booking_number: "Número de reseña", start: "Iniciar reseña", start_anyway: "Iniciar de todos modos",
    recent_title: "Reseñas de hoy", col_booking: "Reseña", col_prints: "Huellas", col_delivery: "Envío", col_receipt: "Recibo / motivo",
    capture: "Capturar", accept: "Aceptar", accept_reason: "Aceptar con un motivo", retake: "Repetir",
    keep_old: "Conservar la anterior", to_review: "Revisar", cancel: "Cancelar reseña", undo: "Deshacer",
    auto_countdown: "Se toma sola tras {left} imágenes estables más",
    roll_progress: "Girado {mm} mm de unos {target} mm, de uña a uña",
    live_preview: "vista en directo", captured_print: "huella capturada",
    verdict_failed: "La huella ({print}) obtuvo NFIQ 2 {score}, por debajo de {threshold}: tómela de nuevo.",
    verdict_not_measured: "No se pudo medir la calidad de la huella ({print}): tómela de nuevo.",
    verdict_slap_failed: "Tome de nuevo la {print}: {notes}.",
    note_missing: "no se encontró el {finger}", note_poor: "el {finger} es de mala calidad ({score})",
    or_override: "O acéptela indicando un motivo.",
    checks_title: "Huellas que revisar",
    suspect_pair: "{A} y {b} parecen el dedo del otro: repita la que se colocó mal, o las dos.",
    suspect_none: "{A} no coincide con ningún dedo de las palmadas: compruebe el dedo y repítala si está mal.",
    review_title: "Revisar y enviar", submit: "Enviar reseña", sharing_title: "Adónde va esta reseña",
    reason: "Motivo", reason_worn: "Piel gastada o dañada", reason_injury: "Lesión o vendaje",
    reason_uncooperative: "La persona no colabora", reason_best: "La mejor de varios intentos",
    reason_other: "Otro motivo o más detalle", reason_missing: "Elija un motivo o escríbalo.",
    take_again: "Tomar esta huella de nuevo", mark_xx: "Amputado (XX)", mark_up: "No se puede tomar (UP)",
    clear_mark: "Quitar la marca", close: "Cerrar", yes: "Sí", no: "No", back: "Volver",
    scanner: "escáner", central: "central", clock: "reloj", connected: "conectada", offline: "sin conexión",
    clock_trusted: "fiable", clock_untrusted: "no fiable",
    banner_scanner: "Escáner desconectado: revise el cable. Las huellas aceptadas están a salvo.",
    banner_central: "No se alcanza la central: las reseñas se guardan y se envían cuando vuelva.",
    banner_clock: "El reloj no es fiable: las horas de las reseñas quedarán marcadas.",
    state_queued: "en cola", state_sending: "enviando", state_stored: "en poder de la central", state_rejected: "rechazada",
    clock_note: " (reloj no fiable)",
    prompt_rolled: "Ruede el {finger} de un borde de la uña al otro", prompt_thumbs: "Apoye los dos pulgares planos sobre el cristal",
    prompt_right_four: "Apoye los cuatro dedos de la mano derecha planos sobre el cristal",
    prompt_left_four: "Apoye los cuatro dedos de la mano izquierda planos sobre el cristal",
    prompt_redo: "Tomando de nuevo la huella del {finger}", all_taken: "Todas las huellas tomadas: revíselas y envíe",
    capture_hint: "Revise la huella y acéptela o repítala.", accepted: "{finger}: huella aceptada y guardada.",
    accepted_reason: "{finger}: aceptada con un motivo y guardada.", retake_hint: "Coloque el dedo de nuevo.",
    marked: "{finger} marcado {mark}.", unmarked: "{finger}: marca quitada.",
    ask_mark: "¿Marcar el {finger} como {words}?", words_XX: "amputado (XX)", words_UP: "imposible de tomar (UP)",
    mark_it: "Marcar", ask_override: "¿Por qué aceptar esta huella por debajo del umbral de calidad?",
    accept_with_reason: "Aceptar con este motivo", ask_cancel: "¿Cancelar esta reseña? Sus huellas se descartarán.",
    cancel_it: "Cancelar la reseña", keep_it: "Conservarla", submit_anyway: "Enviar de todos modos", back_to_prints: "Volver a las huellas",
    submitted: "Reseña guardada y en cola para la central.", no_score: "sin puntuación", score: "NFIQ 2 {score}",
    not_taken: "sin tomar", taken: "tomada", state_XX: "amputado (XX)", state_UP: "imposible de tomar (UP)",
    mandatory: "obligatorio por ley", optional: "elegido por la agencia", no_sharing: "La central guarda la reseña; no se pasa a nadie más.",
    scanner_problem: "Problema del escáner: {message}", hold_still: "No se mueva",
    right_hand: "Mano derecha", left_hand: "Mano izquierda", slap_13: "Dcha. 4", slap_14: "Izda. 4", slap_15: "Pulgares",
    scanner_ready: "listo", scanner_busy: "ocupado", scanner_disconnected: "desconectado", scanner_absent: "ausente",
    subject_details: "Datos de la persona", required_note: "Los campos con * son obligatorios antes de enviar.",
    look_up: "Buscar", save: "Guardar", edit: "Editar", saved: "Datos de la persona guardados.", not_found: "No hay nada para este número de reseña.",
    no_subject: "Aún no hay datos de la persona.", pick: "Elija…", hide_keyboard: "Ocultar teclado",
    scanner_unavailable: "no disponible", scanner_starting: "arrancando", scanner_stopped: "parado", verdict_passed: "La huella ({print}) es buena: acéptela.",
  },
};
const POSITION_NAMES = {
  en: { 1: "right thumb", 2: "right index", 3: "right middle", 4: "right ring", 5: "right little",
        6: "left thumb", 7: "left index", 8: "left middle", 9: "left ring", 10: "left little",
        13: "right four-finger slap", 14: "left four-finger slap", 15: "two-thumb slap" },
  es: { 1: "pulgar derecho", 2: "índice derecho", 3: "medio derecho", 4: "anular derecho", 5: "meñique derecho",
        6: "pulgar izquierdo", 7: "índice izquierdo", 8: "medio izquierdo", 9: "anular izquierdo", 10: "meñique izquierdo",
        13: "palmada de cuatro dedos derecha", 14: "palmada de cuatro dedos izquierda", 15: "palmada de dos pulgares" },
};
// The advice catalogue's codes (the station's English text is the fallback): the live checks
// and the quality report speak the page's language.
const ADVICE = {
  es: {
    PLACE_FINGER: "Apoye el dedo sobre el cristal.",
    PLACE_FOUR: "Apoye los cuatro dedos planos sobre el cristal.",
    PLACE_THUMBS: "Apoye los dos pulgares planos sobre el cristal.",
    TOO_MANY_FINGERS: "Solo deben tocar el cristal los dedos de este paso.",
    SPREAD_FINGERS: "Separe un poco los dedos para que no se toquen.",
    PRESS_HARDER: "Apriete un poco más.",
    PRESS_LIGHTER: "Apriete un poco menos.",
    MOISTEN_FINGER: "El dedo parece seco: échele el aliento o humedézcalo un poco y vuelva a apoyarlo.",
    DRY_FINGER: "El dedo parece mojado: séquelo y vuelva a apoyarlo.",
    CLEAN_GLASS: "Limpie el cristal y el dedo y vuelva a apoyarlo.",
    MOVE_LEFT: "Desplace hacia la izquierda.",
    MOVE_RIGHT: "Desplace hacia la derecha.",
    MOVE_UP: "Desplace hacia arriba (lejos de la persona).",
    MOVE_DOWN: "Desplace hacia abajo (hacia la persona).",
    CENTRE_FINGER: "Colóquese en el centro del cristal.",
    MORE_CONTACT: "Apoye el dedo más plano para que toque más el cristal.",
    ROLL_WIDER: "Ruede el dedo por completo, de un borde de la uña al otro.",
    HOLD_STILL: "No se mueva.",
    FEW_DETAILS: "Muy pocos detalles de las crestas: limpie el dedo y el cristal y apriete de forma uniforme.",
    PRESS_EVENLY: "Tome la huella de nuevo, apretando de forma uniforme.",
    BLANK_IMAGE: "La imagen está en blanco: apoye el dedo y capture de nuevo.",
    DARK_IMAGE: "La imagen está negra: limpie el cristal y revise el escáner.",
    NOT_A_FINGERPRINT: "No se encontró ninguna huella en la imagen: capture el dedo de nuevo.",
    TOO_SMALL: "Se capturó muy poco del dedo: captúrelo de nuevo, plano y en el centro.",
    WRONG_RESOLUTION: "Esta imagen no es una captura a resolución completa: capture el dedo de nuevo.",
    UNREADABLE: "No se pudo leer la imagen: capture el dedo de nuevo.",
    NOT_MEASURED: "No se pudo medir la calidad de la huella: tómela de nuevo.",
    CAPTURE_NOW: "No se mueva: capturando.",
  },
};
function advice(code, english) {
  return (lang !== "en" && code && ADVICE[lang] && ADVICE[lang][code]) || english;
}

// The station's other sentences for the officer, by the code it sends beside its English: the
// subject form's labels, code words and problems, and the booking number's checks. English
// (and any code without an entry here) shows the station's own text.
const WORDS = {
  es: {
    label_NAM: "Nombre (apellido, nombre)", label_POB: "Lugar de nacimiento (código de estado o país)",
    label_DOB: "Fecha de nacimiento", label_SEX: "Sexo", label_RAC: "Raza",
    label_HGT: "Estatura (pies y pulgadas)", label_WGT: "Peso (libras)", label_EYE: "Color de ojos",
    label_HAI: "Color de pelo", label_DOA: "Fecha de la detención", label_ASL: "Delito",
    label_CRI: "Organismo responsable (ORI)",
    code_SEX_M: "masculino", code_SEX_F: "femenino", code_SEX_X: "desconocido", code_SEX_U: "no declarado",
    code_RAC_A: "asiático o de las islas del Pacífico", code_RAC_B: "negro",
    code_RAC_I: "indígena americano o nativo de Alaska", code_RAC_W: "blanco", code_RAC_U: "desconocida",
    code_EYE_BLK: "negros", code_EYE_BLU: "azules", code_EYE_BRO: "marrones", code_EYE_GRN: "verdes",
    code_EYE_GRY: "grises", code_EYE_HAZ: "avellana", code_EYE_MAR: "granates", code_EYE_MUL: "multicolores",
    code_EYE_PNK: "rosados", code_EYE_XXX: "desconocido",
    code_HAI_BAL: "calvo", code_HAI_BLK: "negro", code_HAI_BLN: "rubio", code_HAI_BRO: "castaño",
    code_HAI_GRY: "gris", code_HAI_RED: "pelirrojo", code_HAI_SDY: "rubio rojizo", code_HAI_WHI: "blanco",
    code_HAI_XXX: "desconocido",
    required: "Obligatorio.", pick_list: "Elija uno de la lista.",
    height: "Pies y pulgadas en tres cifras, p. ej. 510 para 5 ft 10 in.", weight: "Libras, de 50 a 499.",
    ascii_text: "Solo letras, cifras y signos ASCII, como mucho {max}.",
    name: "Apellido, una coma y el nombre: SMITH,JOHN.", date_format: "Una fecha como AAAAMMDD, p. ej. 19800131.",
    no_such_date: "Esa fecha no existe.", date_range: "Una fecha entre 1900 y hoy.",
    number_empty: "Escriba el número de reseña.",
    number_too_long: "Un número de reseña tiene como mucho {max} caracteres; este tiene {length}.",
    number_chars: "Solo se pueden enviar letras A-Z, cifras, espacios y signos ASCII; no {chars}.",
    number_in_progress: "{number} es la reseña en curso en esta estación.",
    number_repeat_today: "{number} ya se reseñó hoy a las {time} ({prints} huellas, {state}). Compruebe el número antes de seguir.",
    number_repeat_on: "{number} ya se reseñó el {date} ({prints} huellas, {state}). Compruebe el número antes de seguir.",
    in_progress: "Ya hay una reseña en curso: envíela o cancélela primero.",
    finish_redo: "Termine de tomar de nuevo la huella de {position}, o conserve la que aceptó antes.",
    not_captured: "Falta capturar: {position}.",
    subject_missing: "Datos de la persona: rellene {fields} antes de enviar.",
    disk_full: "Disco lleno: no se admiten reseñas nuevas; lo ya guardado está a salvo y el envío a la central sigue. Avise a un técnico.",
    scanner_unavailable: "Problema con el escáner: compruebe que está conectado y vuelva a intentarlo.",
    retake_slap: "La {position} se aceptó con este dedo: tómela de nuevo.",
    disk_below_floor: "Disco lleno: faltan {need} MB (mínimo {floor} MB); no se admiten reseñas nuevas, el envío a la central continúa.",
    disk_reserve: "Disco lleno: faltan {need} MB para recuperar la reserva del almacén; no se admiten reseñas nuevas, el envío a la central continúa.",
    disk_nearly_full: "Disco casi lleno: quedan {free} MiB; las reseñas nuevas se detienen por debajo de {floor} MiB. Avise a un técnico.",
  },
};
function word(code, english, params = {}) {
  const text = lang !== "en" && code && WORDS[lang] && WORDS[lang][code];
  if (!text) return english;
  return text.replace(/\{(\w+)\}/g, (_m, k) => {
    if (k === "state") return t("state_" + params.state);
    if (k === "position") return positionName(params.position);
    if (k === "fields") return (params.fields || []).map((m) => word("label_" + m, m)).join(", ");
    return params[k] === undefined ? "" : params[k];
  });
}
// A list of the station's sentences, each worded from its code where the page has one.
function worded(texts, words) {
  return texts.map((text, i) => { const w = (words || [])[i]; return w ? word(w.code, text, w.params) : text; });
}

const SLAP_FINGERS = { 13: [2, 3, 4, 5], 14: [10, 9, 8, 7], 15: [1, 6] };
const HANDS = [{ key: "left_hand", fingers: [10, 9, 8, 7, 6], slap: 14 },
               { key: "right_hand", fingers: [1, 2, 3, 4, 5], slap: 13 }];

let lang = "en";
let numberShown = null;  // the booking number's last check shown, worded again in a new language
let subjectShown = null;  // the subject form's last problems shown, likewise
let view = null;
let csrf = null;
let stream = null;
let previewSocket = null;
let idleLockMs = 300000;
let lastTouch = 0;
let idleTimer = null;
let shownPending = "";
let thumbsKey = "";
let undoMark = null;

function t(key, vars = {}) {
  const text = (MESSAGES[lang] && MESSAGES[lang][key]) || MESSAGES.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_m, k) => (vars[k] === undefined ? "" : vars[k]));
}
function positionName(p) { return POSITION_NAMES[lang][p] || POSITION_NAMES.en[p] || String(p); }
function capitalised(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

function translatePage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  for (const el of document.querySelectorAll("[data-t-alt]")) el.alt = t(el.dataset.tAlt);
  $("language").textContent = lang === "en" ? "Español" : "English";
  $("language").lang = lang === "en" ? "es" : "en";
  buildHands();
  if (view) render(view);
  if (numberShown) showNumberCheck(numberShown);
  wordSubjectForm();
  if (subjectShown) showSubjectProblems(subjectShown.problems, subjectShown.words);
}

class SignedOut extends Error {}

async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch(path, { method: body === undefined ? "GET" : "POST", headers,
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 423) { showSignIn(res.status === 423); throw new SignedOut(); }
  if (!res.ok) {
    const w = data.words;  // the refusal's code and figures, worded in the page's language
    throw new Error(w ? word(w.code, data.error, w.params) : (data.error || data.detail || res.statusText));
  }
  return data;
}

// ---- sign-in, the idle lock ---------------------------------------------------------------

function showSignIn(locked) {
  // a background check may find the lock again while the officer types: keep what is typed
  const showing = !$("signin-panel").hidden;
  clearTimeout(idleTimer);
  csrf = null; view = null;
  if (previewSocket) { previewSocket.onclose = null; previewSocket.close(); previewSocket = null; }
  if (stream) { stream.close(); stream = null; }
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  for (const id of ["start-panel", "capture-panel", "review-panel"]) $(id).hidden = true;
  $("officer-name").hidden = $("lock").hidden = true;
  $("signin-panel").hidden = false;
  $("signin-note").hidden = !locked;
  $("signin-title").textContent = t(locked ? "screen_locked" : "signin_title");
  if (!showing) $("officer-pin").value = "";
}

function signedIn(session) {
  hideKeyboard();
  csrf = session.csrf;
  idleLockMs = (session.idle_lock_s || 300) * 1000;
  $("signin-panel").hidden = true; $("signin-error").hidden = true;
  $("officer-name").textContent = t("officer") + " " + session.officer;
  $("officer-name").hidden = $("lock").hidden = false;
  touched();
  follow();
}

function touched() {
  const now = Date.now();
  if (csrf && now - lastTouch > Math.min(15000, idleLockMs / 3)) {  // well inside the lock
    lastTouch = now;
    api("/api/kiosk/activity", {}).catch(() => {});
  }
  clearTimeout(idleTimer);
  if (csrf) idleTimer = setTimeout(checkSession, idleLockMs + 1000);
}

async function checkSession() {
  const res = await fetch("/api/kiosk/session");
  const s = await res.json().catch(() => ({}));
  if (!s.officer || s.locked) showSignIn(!!s.officer);
  else if (!csrf) signedIn(s);
  else follow();
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
$("language").onclick = () => { lang = lang === "en" ? "es" : "en"; translatePage(); };

// ---- the event stream ----------------------------------------------------------------------

function follow() {
  if (stream) return;
  stream = new EventSource("/api/kiosk/stream");
  stream.onmessage = (ev) => { view = JSON.parse(ev.data); render(view); };
  stream.addEventListener("locked", () => { stream.close(); stream = null; showSignIn(true); });
  stream.onerror = () => {
    if (stream && stream.readyState === EventSource.CLOSED) { stream = null; setTimeout(checkSession, 2000); }
  };
}

// ---- rendering -----------------------------------------------------------------------------

function say(text, bad, where = "message") { $(where).textContent = text || ""; $(where).className = bad ? "error" : ""; }

function badge(el, label, text, cls) { el.textContent = t(label) + ": " + text; el.className = "badge " + cls; }

function stepOf(k, position) { return k.steps.find((s) => s.position === position); }

function scoreClass(score) {
  if (score === null || score === undefined) return "score-none";
  return score >= 50 ? "score-good" : score >= 30 ? "score-fair" : "score-poor";
}

// The finger's state on the diagram: its mark, else its rolled print, else its slap's score.
function fingerState(k, finger) {
  const mark = k.annotations[finger];
  if (mark) return { cls: "marked", text: mark, detail: t("state_" + mark) };
  const rolled = stepOf(k, finger);
  if (rolled) {
    if (rolled.state === "accepted") return { cls: scoreClass(rolled.nfiq2), text: rolled.nfiq2 ?? "✓", detail: t("score", { score: rolled.nfiq2 ?? "–" }) };
    return { cls: rolled.state === "current" ? "current" : "todo", text: slapScore(k, finger), detail: t("not_taken") };
  }
  for (const [slap, fingers] of Object.entries(SLAP_FINGERS)) {
    const step = fingers.includes(finger) ? stepOf(k, Number(slap)) : null;
    if (step && step.state === "accepted") {
      const score = step.fingers[finger];
      return { cls: scoreClass(score), text: score ?? "✓", detail: t("score", { score: score ?? "–" }) };
    }
    if (step) return { cls: step.state === "current" ? "current" : "todo", text: "", detail: t("not_taken") };
  }
  return { cls: "todo", text: "", detail: t("not_taken") };
}

// A finger's score in its accepted slap, shown small while its rolled print is still to take.
function slapScore(k, finger) {
  for (const [slap, fingers] of Object.entries(SLAP_FINGERS)) {
    const step = fingers.includes(finger) ? stepOf(k, Number(slap)) : null;
    if (step && step.state === "accepted" && step.fingers[finger] !== undefined && step.fingers[finger] !== null) return "(" + step.fingers[finger] + ")";
  }
  return "";
}

// Each hand is one row: its four-finger slap, then its five fingers as the subject shows them
// palm down (left hand little to thumb, right hand thumb to little); the two-thumb slap below.
function buildHands() {
  const box = $("hands"); box.textContent = "";
  for (const hand of HANDS) {
    const row = document.createElement("div"); row.className = "hand";
    row.setAttribute("role", "group"); row.setAttribute("aria-label", t(hand.key));
    row.appendChild(fingerButton(hand.slap, "slap"));
    for (const f of hand.fingers) row.appendChild(fingerButton(f, "finger"));
    box.appendChild(row);
  }
  box.appendChild(fingerButton(15, "slap thumbs"));
}

function fingerButton(position, cls) {
  const b = document.createElement("button");
  b.type = "button"; b.className = cls; b.id = "pos-" + position; b.dataset.position = position;
  b.onclick = () => openFinger(position);
  return b;
}

function renderHands(k) {
  for (let f = 1; f <= 10; f++) {
    const b = $("pos-" + f); const s = fingerState(k, f);
    b.className = "finger " + s.cls; b.textContent = s.text;
    b.setAttribute("aria-label", capitalised(positionName(f)) + ": " + s.detail);
  }
  for (const slap of [13, 14, 15]) {
    const b = $("pos-" + slap); const step = stepOf(k, slap);
    b.hidden = !step;
    if (!step) continue;
    const allMarked = SLAP_FINGERS[slap].every((f) => k.annotations[f]);
    const cls = step.state === "accepted" ? scoreClass(step.nfiq2) : allMarked ? "marked" : step.state === "current" ? "current" : "todo";
    b.className = "slap " + (slap === 15 ? "thumbs " : "") + cls;
    b.textContent = t("slap_" + slap) + (step.state === "accepted" && step.nfiq2 !== null ? " · " + step.nfiq2 : "");
    b.setAttribute("aria-label", capitalised(positionName(slap)) + ": " + (step.state === "accepted" ? t("score", { score: step.nfiq2 ?? "–" }) : t("not_taken")));
  }
}

function promptFor(k) {
  if (!k.current) return t("all_taken");
  if (k.redo) return t("prompt_redo", { finger: positionName(k.redo) });
  const p = k.current.position;
  if (k.current.mode === "rolled") return t("prompt_rolled", { finger: positionName(p) });
  if (p === 15) return t("prompt_thumbs");
  return t(p === 13 ? "prompt_right_four" : "prompt_left_four");
}

// Why a print failed, in the page's language, from the verdict's figures (its advice follows).
function failedText(position, q) {
  let text;
  if (Object.keys(q.fingers).length || (q.missing || []).length) {
    const notes = (q.below || []).map((p) => ((q.missing || []).includes(p)
      ? t("note_missing", { finger: positionName(p) })
      : t("note_poor", { finger: positionName(p), score: q.fingers[p] == null ? t("no_score") : "NFIQ 2 " + q.fingers[p] })));
    text = t("verdict_slap_failed", { print: positionName(position), notes: notes.join("; ") });
  } else if (q.nfiq2 === null) {
    text = t("verdict_not_measured", { print: positionName(position) });
  } else {
    text = t("verdict_failed", { print: positionName(position), score: q.nfiq2, threshold: q.threshold });
  }
  return q.override_allowed ? text + " " + t("or_override") : text;
}

// One message after each capture: the verdict, what to do when it failed (each hint once),
// and the score of every finger of a slap by its name.
function verdictText(position, q) {
  const parts = [q.passed ? t("verdict_passed", { print: positionName(position) }) : failedText(position, q)];
  if (!q.passed) parts.push(...new Set(q.feedback.map((f, i) => advice((q.feedback_codes || [])[i], f))));
  const fingers = Object.entries(q.fingers);
  const scores = fingers.length
    ? fingers.map(([p, v]) => capitalised(positionName(Number(p))) + " " + (v === null ? "–" : v)).join(", ")
    : (q.nfiq2 === null ? t("no_score") : t("score", { score: q.nfiq2 }));
  return scores + ". " + parts.join(" ");
}

function render(k) {
  $("station").textContent = k.station;
  const scannerOk = k.scanner === "ready" || k.scanner === "busy";
  badge($("scanner-badge"), "scanner", t("scanner_" + k.scanner), scannerOk ? "good" : "bad");
  badge($("link-badge"), "central", t(k.link ? "connected" : "offline"), k.link ? "good" : "warn");
  badge($("clock-badge"), "clock", t(k.clock === "synchronised" ? "clock_trusted" : "clock_untrusted"), k.clock === "synchronised" ? "good" : "warn");
  // standing banners: what stops the station first, then what the officer should know
  // (red: the station cannot work as it should; amber: it works, with something to know)
  const lines = [[k.problem, "stop"], ...worded(k.notices || [], k.notice_words).map((n) => [n, "stop"])];
  if (k.scanner === "disconnected") lines.push([t("banner_scanner"), "stop"]);
  if (k.state !== "unavailable" && !k.link) lines.push([t("banner_central"), "know"]);
  if (k.clock === "unsynchronised") lines.push([t("banner_clock"), "know"]);
  const banner = $("banner");
  banner.replaceChildren(...lines.filter(([line]) => line).map(([line, kind]) => {
    const p = document.createElement("p"); p.textContent = line; p.className = kind; return p;
  }));
  banner.hidden = !banner.childElementCount;

  const inBooking = !!k.booking;
  const reviewing = inBooking && !k.current && !k.pending;
  $("start-panel").hidden = inBooking;
  $("capture-panel").hidden = !inBooking || reviewing;
  $("review-panel").hidden = !reviewing;
  if (!inBooking) renderBookings(k);
  if (inBooking && !reviewing) renderCapture(k);
  if (reviewing) renderReview(k);
  if (!inBooking || reviewing) closePreview();
}

function renderCapture(k) {
  $("prompt").textContent = promptFor(k);
  renderHands(k);
  const pending = !!k.pending;
  const q = pending ? k.pending.quality : null;
  $("capture").hidden = pending || !k.current;
  $("retake").hidden = !pending;
  $("accept").hidden = !pending || (q && !q.passed);
  $("accept-override").hidden = !(q && !q.passed && q.override_allowed);
  $("keep-old").hidden = !k.redo;
  $("pending").hidden = !pending; $("preview").hidden = pending || !k.current;
  if (pending || !k.current) { showBoxes([], 1, true); showRoll(0, 0); }
  const key = pending ? k.pending.impression_id : "";
  if (pending && key !== shownPending) {
    $("pending").src = "/api/pending.jpg?" + encodeURIComponent(key);
    $("live").textContent = "";
  }
  if (pending) {  // drawn again on every render: a language switch retells it
    $("verdict").textContent = q ? verdictText(k.pending.position, q) : "";
    $("verdict").className = q && q.passed ? "verdict-ok" : "verdict-bad";
    $("verdict").hidden = !q;
  }
  if (!pending) $("verdict").hidden = true;
  shownPending = key;
  if (k.current && !pending) ensurePreview(); else if (pending) $("live").textContent = "";
}

function renderReview(k) {
  const key = k.booking.booking_id + ":" + k.steps.map((s) => s.position + s.state + s.retakes + (s.annotation || "") + s.nfiq2).join(",") + lang;
  if (key === thumbsKey) return;
  thumbsKey = key;
  const box = $("thumbs"); box.textContent = "";
  for (const s of k.steps) {
    const card = document.createElement("figure"); card.className = "thumb";
    const marks = (SLAP_FINGERS[s.position] || [s.position]).filter((f) => k.annotations[f]);
    if (s.state === "accepted") {
      const img = document.createElement("img");
      img.src = "/api/print/" + s.position + ".jpg?" + encodeURIComponent(key.length + ":" + s.retakes + ":" + s.nfiq2);
      img.alt = capitalised(positionName(s.position));
      card.appendChild(img);
    } else {
      const none = document.createElement("div"); none.className = "no-print";
      none.textContent = marks.map((f) => k.annotations[f]).join(" ") || "–";
      card.appendChild(none);
    }
    const caption = document.createElement("figcaption");
    const fingers = Object.entries(s.fingers || {});
    const score = s.state === "accepted"
      ? (fingers.length ? fingers.map(([p, v]) => (v === null ? "–" : v)).join(" · ") : (s.nfiq2 === null ? t("no_score") : t("score", { score: s.nfiq2 })))
      : marks.map((f) => capitalised(positionName(f)) + " " + t("state_" + k.annotations[f])).join(", ");
    caption.textContent = capitalised(positionName(s.position)) + ": " + score + (s.override ? " (" + s.override + ")" : "");
    caption.className = s.state === "accepted" ? scoreClass(s.nfiq2) : "marked";
    card.appendChild(caption);
    const redo = document.createElement("button");
    redo.type = "button"; redo.className = "small"; redo.id = "review-redo-" + s.position;
    redo.textContent = s.state === "accepted" ? t("retake") : t("clear_mark");
    redo.onclick = () => (s.state === "accepted" ? takeAgain(s.position) : unmark(s.position));
    card.appendChild(redo);
    box.appendChild(card);
  }
  loadChecks(key);
  renderSubjectSummary();
  const list = $("sharing-list"); list.textContent = "";
  if (!k.sharing.length) { const li = document.createElement("li"); li.textContent = t("no_sharing"); list.appendChild(li); }
  for (const d of k.sharing) {
    const li = document.createElement("li");
    li.textContent = d.name + ": " + d.purpose + " (" + t(d.mandatory ? "mandatory" : "optional") + ")";
    list.appendChild(li);
  }
}

// The sequence and duplicate checks of the prints as they stand: each suspect pair side by
// side with a retake button under either print, and the pair's thumbnails outlined.
let checksKey = "";
async function loadChecks(key) {
  checksKey = key;
  let found;
  try { found = await api("/api/review-checks"); } catch (e) { return; }
  if (checksKey !== key) return;  // a print changed while the check ran: a newer call draws
  const box = $("pairs"); box.textContent = "";
  for (const el of document.querySelectorAll(".thumb.suspect")) el.classList.remove("suspect");
  const seen = new Set();
  for (const s of found.suspects) {
    const both = s.other === null ? [s.position] : [s.position, s.other];
    const id = [...both].sort((a, b) => a - b).join("-");
    if (seen.has(id)) continue;  // a swap flags both of its positions: one pair on screen
    seen.add(id);
    const pair = document.createElement("div"); pair.className = "pair"; pair.id = "pair-" + id;
    const text = document.createElement("p");
    text.textContent = s.other === null
      ? t("suspect_none", { a: positionName(s.position), A: capitalised(positionName(s.position)) })
      : t("suspect_pair", { a: positionName(s.position), A: capitalised(positionName(s.position)),
                            b: positionName(s.other) });
    pair.appendChild(text);
    for (const p of both) {
      const card = document.createElement("figure"); card.className = "thumb";
      const img = document.createElement("img");
      img.src = "/api/print/" + p + ".jpg?" + encodeURIComponent(key.length + ":" + id);
      img.alt = capitalised(positionName(p));
      const caption = document.createElement("figcaption"); caption.textContent = capitalised(positionName(p));
      const redo = document.createElement("button");
      redo.type = "button"; redo.className = "small"; redo.id = "pair-redo-" + p;
      redo.textContent = t("retake"); redo.onclick = () => takeAgain(p);
      card.append(img, caption, redo);
      pair.appendChild(card);
      const thumb = $("review-redo-" + p);
      if (thumb) thumb.closest(".thumb").classList.add("suspect");
    }
    box.appendChild(pair);
  }
  $("checks").hidden = !seen.size;
}

function renderBookings(k) {
  const tbody = $("bookings").querySelector("tbody"); tbody.textContent = "";
  for (const b of k.bookings) {
    const tr = document.createElement("tr");
    const receipt = b.receipt ? JSON.parse(b.receipt) : null;
    const shared = receipt && receipt.shared_with && receipt.shared_with.length ? " → " + receipt.shared_with.map((d) => d.name).join(", ") : "";
    for (let i = 0; i < 4; i++) tr.appendChild(document.createElement("td"));
    tr.children[0].textContent = b.booking_number + (b.clock_trusted ? "" : t("clock_note"));
    tr.children[1].textContent = b.impressions;
    tr.children[2].textContent = t("state_" + b.state);
    tr.children[2].className = "state-" + b.state;
    tr.children[3].textContent = receipt ? receipt.receipt + shared : (b.reason || "");
    tbody.appendChild(tr);
  }
}

// ---- the live preview: binary frames are JPEGs, text frames typed JSON ----------------------

function ensurePreview() {
  if (previewSocket) return;
  previewSocket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/preview");
  previewSocket.binaryType = "blob";
  previewSocket.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      const msg = JSON.parse(ev.data);
      if (msg.type === "live") {
        $("live").textContent = msg.ok
          ? advice(msg.message_code, msg.message || t("hold_still"))
          : msg.reasons.map((r, i) => advice((msg.codes || [])[i], r)).join(" ");
        $("live").className = msg.ok ? "live-ok" : "live-bad";
        showCountdown(msg.ok ? msg.steady : 0, msg.needed);
        showBoxes(msg.boxes || [], msg.aspect || 1, msg.ok);
        showRoll(msg.rolled_mm || 0, msg.roll_target_mm || 0);
      } else if (msg.type === "idle") {
        $("live").textContent = ""; $("live").className = "";
        showCountdown(0, 0); showBoxes([], 1, true); showRoll(0, 0);
      } else if (msg.type === "fault") {
        say(word("scanner_unavailable", t("scanner_problem", { message: msg.message })), true);
        $("live").textContent = "";
      }
      return;
    }
    const url = URL.createObjectURL(ev.data);
    const img = $("preview"); const old = img.src; img.src = url;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  };
  previewSocket.onclose = (ev) => {
    previewSocket = null; $("live").textContent = "";
    if (ev.code === 4401) checkSession();
  };
}

// Where the live checks see skin: a box per fingertip of a slap, one around a single print.
// The SVG spans the viewer and "meets" like the image's object-fit: contain, so a box drawn
// in the frame's proportions lies over the same pixels of the preview.
function showBoxes(boxes, aspect, ok) {
  const svg = $("finger-boxes");
  const height = Math.round(1000 * aspect);
  svg.setAttribute("viewBox", `0 0 1000 ${height}`);
  svg.setAttribute("class", ok ? "ok" : "bad");
  svg.textContent = "";
  for (const [x0, y0, x1, y1] of boxes) {
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("x", (x0 * 1000).toFixed(1)); rect.setAttribute("y", (y0 * height).toFixed(1));
    rect.setAttribute("width", ((x1 - x0) * 1000).toFixed(1));
    rect.setAttribute("height", ((y1 - y0) * height).toFixed(1));
    rect.setAttribute("rx", "12");
    svg.appendChild(rect);
  }
  svg.style.display = boxes.length ? "" : "none";
}

// A roll's progress: millimetres of skin covered since the finger came down.
function showRoll(mm, target) {
  const bar = $("roll-progress");
  bar.hidden = !target;
  if (!target) return;
  bar.max = target; bar.value = Math.min(mm, target);
  bar.setAttribute("aria-label", t("roll_progress", { mm: Math.round(mm), target: Math.round(target) }));
  bar.title = bar.getAttribute("aria-label");
}

// Auto-capture's countdown: how many more steady frames before the print is taken.
function showCountdown(steady, needed) {
  const bar = $("auto-countdown");
  bar.hidden = !needed;
  if (!needed) return;
  bar.max = needed; bar.value = steady;
  bar.setAttribute("aria-label", t("auto_countdown", { left: needed - steady }));
  bar.title = bar.getAttribute("aria-label");
}

function closePreview() {
  if (previewSocket) { previewSocket.onclose = null; previewSocket.close(); previewSocket = null; }
  $("live").textContent = ""; showBoxes([], 1, true); showRoll(0, 0);
}

// ---- dialogs ---------------------------------------------------------------------------------

// Resolves to the reason, "" without a reason list, or null when the officer backs out.
function ask(text, { okLabel = t("yes"), backLabel = t("no"), reasons = false } = {}) {
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

function openFinger(position) {
  if (!view || !view.booking) return;
  const k = view;
  const step = stepOf(k, position);
  const isFinger = position <= 10;
  const mark = isFinger ? k.annotations[position] : null;
  $("finger-title").textContent = capitalised(positionName(position));
  $("finger-state").textContent = isFinger ? fingerState(k, position).detail : (step ? t(step.state === "accepted" ? "taken" : "not_taken") : "");
  $("finger-redo").hidden = !(step && step.state === "accepted") || !!k.pending;
  $("finger-xx").hidden = $("finger-up").hidden = !isFinger || !!mark;
  $("finger-clear").hidden = !mark;
  const dlg = $("finger");
  const done = (fn) => () => { dlg.close(); fn(); };
  $("finger-redo").onclick = done(() => takeAgain(position));
  $("finger-xx").onclick = done(() => markFinger(position, "XX"));
  $("finger-up").onclick = done(() => markFinger(position, "UP"));
  $("finger-clear").onclick = done(() => unmark(position));
  $("finger-close").onclick = () => dlg.close();
  dlg.showModal();
}

// ---- actions ---------------------------------------------------------------------------------

async function act(path, body, okText, where = "message") {
  try { const answer = await api(path, body); say(okText || "", false, where); return answer; }
  catch (e) { if (!(e instanceof SignedOut)) say(e.message, true, where); return null; }
}

async function takeAgain(position) {
  if (await act("/api/redo", { position }, "")) say("");
}

async function markFinger(position, mark) {
  const name = positionName(position);
  if (await ask(t("ask_mark", { finger: name, words: t("words_" + mark) }), { okLabel: t("mark_it"), backLabel: t("back") }) === null) return;
  const answer = await act("/api/annotate", { position, annotation: mark }, t("marked", { finger: capitalised(name), mark }));
  if (!answer) return;
  if (answer.warnings && answer.warnings.length) say(t("marked", { finger: capitalised(name), mark }) + " " + worded(answer.warnings, answer.warning_words).join(" "), true);
  undoMark = position; $("undo").hidden = false;
}

async function unmark(position) {
  const where = view && !view.current && !view.pending ? "review-message" : "message";
  await act("/api/annotate", { position, annotation: null }, t("unmarked", { finger: capitalised(positionName(position)) }), where);
  $("undo").hidden = true; undoMark = null;
}

$("undo").onclick = () => { if (undoMark !== null) unmark(undoMark); };
$("capture").onclick = async () => { $("undo").hidden = true; await act("/api/capture", {}, t("capture_hint")); };
$("accept").onclick = () => {
  const p = view && view.pending ? view.pending.position : 0;
  act("/api/accept", {}, t("accepted", { finger: capitalised(positionName(p)) }));
};
$("retake").onclick = () => act("/api/retake", {}, t("retake_hint"));
$("keep-old").onclick = () => act("/api/keep", {}, "");
$("accept-override").onclick = async () => {
  const p = view && view.pending ? view.pending.position : 0;
  const reason = await ask(t("ask_override"), { okLabel: t("accept_with_reason"), backLabel: t("back"), reasons: true });
  if (reason) act("/api/accept", { override_reason: reason }, t("accepted_reason", { finger: capitalised(positionName(p)) }));
};
$("submit").onclick = async () => {
  try { await api("/api/submit", {}); say(t("submitted"), false, "start-message"); thumbsKey = ""; }
  catch (e) {
    if (e instanceof SignedOut) return;
    if (e.message.startsWith("sequence check") &&
        await ask(e.message, { okLabel: t("submit_anyway"), backLabel: t("back_to_prints") }) !== null) {
      if (await act("/api/submit", { confirm_sequence: true }, t("submitted"), "start-message")) thumbsKey = "";
      return;
    }
    say(e.message, true, "review-message");
  }
};
async function cancelBooking() {
  if (await ask(t("ask_cancel"), { okLabel: t("cancel_it"), backLabel: t("keep_it") }) !== null) {
    await act("/api/cancel", {}, "");
  }
}
$("cancel").onclick = cancelBooking;
$("review-cancel").onclick = cancelBooking;

// ---- the subject's details: a form generated from the profile's Type-2 fields -----------------

let subjectTimer = null;

async function openSubject() {
  let form;
  try { form = await api("/api/subject"); } catch (e) { if (!(e instanceof SignedOut)) say(e.message, true); return; }
  const box = $("subject-form"); box.textContent = "";
  for (const f of form.fields) {
    const id = "subject-" + f.mnemonic;
    const label = document.createElement("label"); label.htmlFor = id;
    label.dataset.word = "label_" + f.mnemonic; label.dataset.english = f.label;
    label.dataset.suffix = f.mandatory ? " *" : "";
    let input;
    if (f.kind === "code") {
      input = document.createElement("select");
      const none = document.createElement("option"); none.value = ""; none.textContent = t("pick");
      input.appendChild(none);
      for (const [code, words] of f.codes) {
        const o = document.createElement("option"); o.value = code;
        o.dataset.word = "code_" + f.mnemonic + "_" + code; o.dataset.english = words;
        o.dataset.prefix = code + " – "; input.appendChild(o);
      }
    } else {
      input = document.createElement("input");
      input.maxLength = 50;
      if (["date", "height", "weight"].includes(f.kind)) input.inputMode = "numeric";
      input.placeholder = { date: "YYYYMMDD", height: "510", weight: "180", name: "SMITH,JOHN" }[f.kind] || "";
    }
    input.id = id; input.name = f.mnemonic; input.value = form.values[f.mnemonic] || "";
    if (f.mandatory) input.setAttribute("aria-required", "true");
    const problem = document.createElement("span"); problem.className = "field-problem"; problem.id = id + "-problem";
    input.setAttribute("aria-describedby", problem.id);
    input.addEventListener("input", () => { clearTimeout(subjectTimer); subjectTimer = setTimeout(checkSubject, 300); });
    input.addEventListener("change", () => { clearTimeout(subjectTimer); subjectTimer = setTimeout(checkSubject, 50); });
    const row = document.createElement("div"); row.className = "field";
    row.append(label, input, problem);
    box.appendChild(row);
  }
  wordSubjectForm();
  $("subject-lookup").hidden = !form.lookup;
  $("subject-error").textContent = "";
  subjectShown = null;
  $("subject").showModal();
}

// Labels and code words of the form in the page's language (the station's English otherwise).
function wordSubjectForm() {
  for (const el of $("subject-form").querySelectorAll("[data-word]")) {
    el.textContent = (el.dataset.prefix || "") + word(el.dataset.word, el.dataset.english) + (el.dataset.suffix || "");
  }
}

function subjectValues() {
  const values = {};
  for (const el of $("subject-form").elements) if (el.name && el.value.trim()) values[el.name] = el.value.trim();
  return values;
}

function showSubjectProblems(problems, words) {
  subjectShown = { problems, words };
  for (const el of $("subject-form").elements) {
    if (!el.name) continue;
    const w = (words || {})[el.name];
    const text = problems[el.name] ? (w ? word(w.code, problems[el.name], w.params) : problems[el.name]) : "";
    $("subject-" + el.name + "-problem").textContent = text;
    el.setAttribute("aria-invalid", text ? "true" : "false");
  }
}

async function checkSubject() {
  try {
    const checked = await api("/api/subject/check", { values: subjectValues() });
    showSubjectProblems(checked.problems, checked.problem_words);
  }
  catch (e) { if (!(e instanceof SignedOut)) $("subject-error").textContent = e.message; }
}

$("subject-save").onclick = async () => {
  try {
    const answer = await api("/api/subject", { values: subjectValues() });
    showSubjectProblems(answer.problems, answer.problem_words);
    if (answer.saved) { $("subject").close(); say(t("saved")); say(t("saved"), false, "review-message"); renderSubjectSummary(); }
  } catch (e) { if (!(e instanceof SignedOut)) $("subject-error").textContent = e.message; }
};
$("subject-lookup").onclick = async () => {
  try {
    const found = (await api("/api/subject/lookup", {})).values;
    for (const el of $("subject-form").elements) if (el.name && found[el.name] !== undefined) el.value = found[el.name];
    $("subject-error").textContent = "";
    checkSubject();
  } catch (e) { if (!(e instanceof SignedOut)) $("subject-error").textContent = t("not_found"); }
};
$("subject-close").onclick = () => $("subject").close();
$("subject-open").onclick = openSubject;
$("subject-edit").onclick = openSubject;

async function renderSubjectSummary() {
  try {
    const form = await api("/api/subject");
    const parts = form.fields.filter((f) => form.values[f.mnemonic])
      .map((f) => word("label_" + f.mnemonic, f.label) + ": " + form.values[f.mnemonic]);
    $("subject-text").textContent = parts.length ? parts.join("; ") : t("no_subject");
  } catch (e) { /* shown by the next action */ }
}

// ---- the booking number, checked as it is typed -----------------------------------------------

let numberTimer = null;
let numberChecked = "";
function showNumberCheck(check) {
  numberShown = check;
  $("number-problems").textContent = worded(check.problems, check.problem_words).join(" ");
  $("number-warnings").textContent = worded(check.warnings, check.warning_words).join(" ");
  $("start").disabled = !check.ok;
  $("start").textContent = t(check.warnings.length ? "start_anyway" : "start");
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
    hideKeyboard();
    $("booking-number").value = ""; showNumberCheck({ ok: true, problems: [], warnings: [] });
    say(""); say("", false, "review-message"); say("", false, "start-message");
  } catch (e) { if (!(e instanceof SignedOut)) $("number-problems").textContent = e.message; }
});

// ---- the on-screen keyboard (simple-keyboard, vendored in static/) ---------------------------
// It opens under the panel (or inside the open dialog) when a text field gets the focus, so it
// never covers a control; digits only for the PIN and numeric fields.

const KEY_LAYOUTS = {
  text: { default: ["1 2 3 4 5 6 7 8 9 0 - {bksp}", "Q W E R T Y U I O P /", "A S D F G H J K L , '",
                    "Z X C V B N M . {space} {enter}"] },
  digits: { default: ["1 2 3", "4 5 6", "7 8 9", "{bksp} 0 {enter}"] },
};
let keyboard = null;
let keyboardTarget = null;

function keyboardFor(input) {
  const Keyboard = window.SimpleKeyboard && (window.SimpleKeyboard.default || window.SimpleKeyboard);
  if (!Keyboard) return;
  if (!keyboard) {
    keyboard = new Keyboard(".simple-keyboard", {
      display: { "{bksp}": "⌫", "{enter}": "OK", "{space}": "␣" },
      onChange: (value) => {
        if (!keyboardTarget) return;
        keyboardTarget.value = value.slice(0, keyboardTarget.maxLength > 0 ? keyboardTarget.maxLength : 100);
        keyboardTarget.dispatchEvent(new Event("input", { bubbles: true }));
      },
      onKeyPress: (button) => { if (button === "{enter}") hideKeyboard(); },
    });
  }
  keyboardTarget = input;
  keyboard.setOptions({ layout: KEY_LAYOUTS[input.inputMode === "numeric" ? "digits" : "text"] });
  keyboard.setInput(input.value);
  const box = $("keyboard");
  const dialog = input.closest("dialog");
  (dialog || document.body).appendChild(box);
  box.hidden = false;
}

function hideKeyboard() { $("keyboard").hidden = true; keyboardTarget = null; }

document.addEventListener("focusin", (ev) => {
  const el = ev.target;
  if (el instanceof HTMLInputElement && ["text", "password", ""].includes(el.type) && !el.readOnly) keyboardFor(el);
});
// typing on a real keyboard (or the field cut to its length) keeps the on-screen one in step
document.addEventListener("input", (ev) => {
  if (keyboard && ev.target === keyboardTarget) keyboard.setInput(ev.target.value);
});
$("keyboard").addEventListener("mousedown", (ev) => ev.preventDefault());  // keep the field focused
$("keyboard-hide").onclick = hideKeyboard;
for (const d of document.querySelectorAll("dialog")) d.addEventListener("close", () => { if (keyboardTarget && d.contains(keyboardTarget)) hideKeyboard(); });

translatePage();
checkSession();
