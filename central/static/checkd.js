// checkd pages: refresh the live part of the page without a reload, count durations
// on, show times in the viewer's time zone, and say plainly when central cannot be
// reached. Only server-rendered (escaped) HTML is ever inserted.
"use strict";
(function () {
  const body = document.body;
  // The parts of the page that refresh themselves; the server answers with the same parts.
  const regions = [...document.querySelectorAll("[data-live]")];
  const lost = document.getElementById("conn");
  const refresh = Math.max(1, Number(body.dataset.refresh) || 5) * 1000;
  const timeout = Math.max(4000, 2 * refresh);
  let etag = null;
  let offset = 0;               // server clock minus ours, in ms
  let lastGood = Date.now();
  let submitting = false;

  function duration(seconds) {  // as checkd.durations.format_duration: 45s, 12m, 3h05m, 2d04h
    const s = Math.max(0, Math.floor(seconds));
    const pad = (n) => String(n).padStart(2, "0");
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m";
    if (s < 86400) return Math.floor(s / 3600) + "h" + pad(Math.floor((s % 3600) / 60)) + "m";
    return Math.floor(s / 86400) + "d" + pad(Math.floor((s % 86400) / 3600)) + "h";
  }

  function tick() {
    const now = (Date.now() + offset) / 1000;
    for (const t of document.querySelectorAll("time[data-since]")) {
      t.textContent = duration(now - Number(t.dataset.since));
    }
  }

  function localTimes(root) {
    for (const t of root.querySelectorAll("time.clock[datetime]")) {
      const d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        t.title = t.getAttribute("datetime");
        t.textContent = t.classList.contains("time-only") ? d.toLocaleTimeString() : d.toLocaleString();
      }
    }
  }

  function adopt() {            // after the live parts were (re)drawn
    const root = document.querySelector(".live-root");
    if (!root) return;
    if (root.dataset.now) offset = Number(root.dataset.now) * 1000 - Date.now();
    if (root.dataset.etag) etag = root.dataset.etag;
    if (root.dataset.title) document.title = root.dataset.title;
    localTimes(document);
    tick();
  }

  function editing() {          // never redraw a form under someone's fingers
    if (submitting) return true;
    const a = document.activeElement;
    const inside = (el) => regions.some((r) => r.contains(el));
    if (a && inside(a) && a.matches("input, select, textarea")) return true;
    for (const el of document.querySelectorAll("[data-live] input:not([type=hidden]), [data-live] textarea")) {
      if (el.type === "checkbox" ? el.checked !== el.defaultChecked : el.value !== el.defaultValue) return true;
    }
    for (const sel of document.querySelectorAll("[data-live] select")) {
      let first = 0;
      for (let i = 0; i < sel.options.length; i++) if (sel.options[i].defaultSelected) first = i;
      if (sel.selectedIndex !== first) return true;
    }
    return false;
  }

  function connected(ok) {
    if (ok) {
      lastGood = Date.now();
      const u = document.getElementById("updated");
      if (u) { u.setAttribute("datetime", new Date().toISOString()); u.textContent = new Date().toLocaleTimeString(); }
    }
    if (ok === lost.hidden) return;     // no change
    lost.hidden = ok;
    body.classList.toggle("offline", !ok);
    if (!ok) {
      const since = document.getElementById("conn-since");
      since.setAttribute("datetime", new Date(lastGood).toISOString());
      since.textContent = new Date(lastGood).toLocaleTimeString();
      document.title = "OFFLINE · " + document.title.replace(/^OFFLINE · /, "");
    } else {
      document.title = document.title.replace(/^OFFLINE · /, "");
    }
  }

  function redraw(html) {
    const t = document.createElement("template");     // inert: nothing in it runs or loads
    t.innerHTML = html;
    for (const r of regions) {
      const part = t.content.querySelector(`[data-live="${r.dataset.live}"]`);
      if (part) r.replaceChildren(...part.childNodes);
    }
  }

  async function poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeout);
    try {
      const headers = { "X-Checkd-Live": "1" };
      if (etag) headers["If-None-Match"] = etag;
      const r = await fetch(location.pathname + location.search, {
        headers, cache: "no-store", credentials: "same-origin", signal: ctl.signal, redirect: "error" });
      if (r.status === 200) {
        const html = await r.text();
        if (!editing()) { redraw(html); adopt(); }
        connected(true);
      } else if (r.status === 304) {
        connected(true);
      } else {
        throw new Error("HTTP " + r.status);
      }
    } catch (e) {
      connected(false);
    } finally {
      clearTimeout(timer);
      setTimeout(poll, refresh);
    }
  }

  // A redirect after an action says what was done once; do not keep it in the URL.
  const url = new URL(location.href);
  if (url.searchParams.has("done")) {
    url.searchParams.delete("done");
    history.replaceState(null, "", url.pathname + (url.search || "") + url.hash);
  }
  localTimes(document);
  if (regions.length) {
    document.addEventListener("submit", () => { submitting = true; });
    adopt();
    setInterval(tick, 1000);
    setTimeout(poll, refresh);
  }
})();
