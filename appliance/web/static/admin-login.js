// The technician's sign-in form: one POST, then the technician page.
"use strict";
const form = document.getElementById("signin");
const message = document.getElementById("signin-message");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  message.textContent = "Signing in…";
  let answer;
  try {
    answer = await fetch("/api/admin/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: form.user.value, password: form.password.value }),
    });
  } catch (err) {
    message.textContent = "The station did not answer: " + err.message;
    return;
  }
  form.password.value = "";
  if (answer.ok) { window.location.assign("/admin"); return; }
  if (answer.status === 429) {
    const wait = Math.ceil(Number(answer.headers.get("Retry-After") || "600") / 60);
    message.textContent = "Locked after too many failed sign-ins. Try again in " + wait + " minutes.";
  } else if (answer.status === 401) {
    message.textContent = "Wrong name or password.";
  } else {
    message.textContent = "Sign-in failed (" + answer.status + ").";
  }
});
