// natlink status page: live updates over server-sent events, ticking ages, actions without a reload.
// The page works without this script (static view, forms post and redirect back).
"use strict";
(function () {
  const live = document.getElementById("live");
  const conn = document.getElementById("conn");
  const result = document.getElementById("action-result");
  let offset = Number(document.body.dataset.now) * 1000 - Date.now(); // server clock minus ours
  let lastUpdate = Date.now();
  let lost = null; // when the stream broke: the facts on screen are from before then

  function units(seconds) {
    seconds = Math.round(seconds);
    if (seconds <= 0) return "0s";
    const out = [];
    for (const [u, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      const n = Math.floor(seconds / size);
      seconds -= n * size;
      if (n) out.push(n + u);
    }
    return out.slice(0, 2).join("");
  }
  // The same words as render.when() on the server.
  function ageText(ts, now) {
    const delta = now - ts;
    if (Math.abs(delta) < 1) return "just now";
    return delta > 0 ? units(delta) + " ago" : "in " + units(-delta);
  }
  function tick() {
    const now = (Date.now() + offset) / 1000;
    for (const t of document.querySelectorAll("time[data-ts]")) {
      t.textContent = ageText(Number(t.dataset.ts), now);
    }
    if (!lost && Date.now() - lastUpdate > 25000) markLost("no update from natlink for 25 s");
  }
  function markLost(why) {
    if (!lost) lost = new Date();
    document.body.classList.add("stale");
    conn.className = "bad";
    conn.textContent = "Not connected to natlink (" + why + ", since " + lost.toLocaleTimeString() +
      "): the service may be stopped. Everything below is from before then and is not current.";
  }
  function connect() {
    const es = new EventSource("/events");
    es.addEventListener("page", function (ev) {
      live.innerHTML = ev.data;
      offset = Number(ev.lastEventId) * 1000 - Date.now();
      lastUpdate = Date.now();
      lost = null;
      document.body.classList.remove("stale");
      conn.className = "good";
      conn.textContent = "Live: updated as natlink sees changes.";
      tick();
    });
    es.onerror = function () {
      if (es.readyState !== EventSource.CLOSED) {
        markLost("the page's connection to natlink broke");
        return; // the browser reconnects by itself
      }
      // Refused: logged out (401), or natlink is gone. Ask once to tell which.
      fetch("/api/status", {credentials: "same-origin"}).then(function (resp) {
        if (resp.status === 401) {
          markLost("the session ended");
          conn.innerHTML = 'Logged out (the session ended or the password changed): <a href="/login">log in again</a>.';
          return;
        }
        markLost("the page's connection was refused");
        setTimeout(connect, 3000);
      }).catch(function () {
        markLost("natlink does not answer");
        setTimeout(connect, 3000);
      });
    };
  }
  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (!form.action.includes("/action/")) return; // login/logout: plain posts
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    fetch(form.action, {
      method: "POST", body: new URLSearchParams(new FormData(form)),
      headers: {"Accept": "application/json"}, credentials: "same-origin",
    }).then(function (resp) {
      return resp.json().catch(function () { return {ok: false, message: "HTTP " + resp.status}; });
    }).then(function (doc) {
      result.className = doc.ok ? "good" : "bad";
      result.textContent = (doc.ok ? "" : "Failed: ") + doc.message;
    }).catch(function () {
      result.className = "bad";
      result.textContent = "Failed: natlink did not answer (is the service running?)";
    }).finally(function () { button.disabled = false; });
  });
  connect();
  setInterval(tick, 1000);
})();
