// Shared helpers for the peer's web pages (index.js and torrent.js load this
// first). Plain JavaScript, no library. Every value that comes from the
// server is put in the page with textContent or as an attribute value,
// never as HTML: names are chosen by whoever shares a file.
"use strict";

const MT = (() => {
  const FETCH_TIMEOUT_MS = 5000;

  // ------------------------------------------------------------ formatting

  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  function num(v) {
    const n = Number(v);
    return Number.isFinite(n) ? n : 0;
  }

  // 1536 -> "1.5 KiB"; null/undefined -> "–".
  function size(bytes) {
    if (bytes === null || bytes === undefined || !Number.isFinite(Number(bytes))) return "–";
    let v = Math.max(0, Number(bytes));
    let i = 0;
    while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
    if (i === 0) return Math.round(v) + " B";
    const t = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
    return t.replace(/\.?0+$/, (z) => (t.includes(".") ? "" : z)) + " " + UNITS[i];
  }

  // Bytes per second; 0 shows as "0 B/s".
  function rate(bps) {
    return size(num(bps)) + "/s";
  }

  // Seconds -> "h:mm:ss" (or "d days h:mm:ss" past a day); null -> "–".
  function duration(sec) {
    if (sec === null || sec === undefined) return "–";
    const s0 = Number(sec);
    if (!Number.isFinite(s0) || s0 < 0) return "–";
    let s = Math.round(s0);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const core = h + ":" + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
    return d > 0 ? d + "d " + core : core;
  }

  // 0.4567 -> 45.7 (a number, one decimal; 100 only when complete).
  function percentNumber(fraction) {
    const f = Math.min(1, Math.max(0, num(fraction)));
    let p = Math.floor(f * 1000) / 10; // never round 99.96 up to 100
    if (f >= 1) p = 100;
    return p;
  }

  function percent(fraction) {
    return percentNumber(fraction).toFixed(1).replace(/\.0$/, "") + " %";
  }

  function ratio(r) {
    return r === null || r === undefined || !Number.isFinite(Number(r)) ? "–" : Number(r).toFixed(2);
  }

  function ago(sec) {
    if (sec === null || sec === undefined) return "–";
    const s = num(sec);
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return duration(s) + " ago";
  }

  function clock(d) {
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, "0")).join(":");
  }

  // "500k", "2M", "1.5 GiB/s", "0", "" -> bytes per second (k/M/G are
  // powers of 1024); NaN when it is not a size.
  function parseRate(text) {
    const t = String(text).trim().replace(/\/s$/i, "").trim();
    if (t === "") return 0;
    const m = /^(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(t);
    if (!m) return NaN;
    const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2].toLowerCase()];
    return Math.round(parseFloat(m[1]) * mult);
  }

  // The shortest exact way to type a limit back: 524288 -> "512k".
  function rateInput(bps) {
    const n = Math.round(num(bps));
    if (n <= 0) return "0";
    for (const [suffix, mult] of [["G", 1024 ** 3], ["M", 1024 ** 2], ["k", 1024]]) {
      if (n % mult === 0) return n / mult + suffix;
    }
    return String(n);
  }

  function limitText(bps) {
    return num(bps) > 0 ? rate(bps) : "unlimited";
  }

  // ------------------------------------------------------------------- DOM

  function $(id) {
    return document.getElementById(id);
  }

  // el("td", {class: "num", "data-x": 1}, "text", child, ...): attributes go
  // through setAttribute, strings become text nodes (never HTML).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // Set text only when it changed (keeps selections and avoids layout work).
  function setText(node, text) {
    const t = String(text);
    if (node.textContent !== t) node.textContent = t;
  }

  function setAttr(node, name, value) {
    if (value === null || value === undefined) {
      if (node.hasAttribute(name)) node.removeAttribute(name);
      return;
    }
    const v = String(value);
    if (node.getAttribute(name) !== v) node.setAttribute(name, v);
  }

  // A progress bar: <div class="bar" data-progress="45.7"><span class="fill"></span><span class="label">45.7 %</span></div>
  function bar(extraClass) {
    const fill = el("span", { class: "fill" });
    const label = el("span", { class: "label" });
    const b = el("div", { class: "bar" + (extraClass ? " " + extraClass : ""), role: "progressbar",
                          "aria-valuemin": 0, "aria-valuemax": 100 }, fill, label);
    return b;
  }

  // Update a bar made by bar(); text defaults to "45.7 %".
  function setBar(b, fraction, text, holder) {
    const p = percentNumber(fraction);
    const fill = b.firstChild;
    const w = p + "%";
    if (fill.style.width !== w) fill.style.width = w;
    setText(b.lastChild, text === undefined ? percent(fraction) : text);
    setAttr(b, "aria-valuenow", p);
    setAttr(holder || b, "data-progress", p);
  }

  // Keep tbody's rows in step with items, keyed by key(item): existing rows
  // are updated in place (buttons under the mouse stay the same element, so a
  // click is never lost to a refresh), new ones are created, gone ones
  // removed, and the order follows items. create(item) returns a <tr>;
  // update(tr, item) fills it.
  function syncRows(tbody, items, key, create, update, keyAttr) {
    const attr = keyAttr || "data-key";
    const old = new Map();
    for (const tr of Array.from(tbody.children)) {
      const k = tr.getAttribute(attr);
      if (k === null) tr.remove(); else old.set(k, tr);
    }
    let prev = null;
    const seen = new Set();
    for (const item of items) {
      const k = String(key(item));
      if (seen.has(k)) continue;
      seen.add(k);
      let tr = old.get(k);
      if (!tr) {
        tr = create(item);
        tr.setAttribute(attr, k);
      }
      old.delete(k);
      update(tr, item);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of old.values()) tr.remove();
  }

  // A one-cell row spanning the table, e.g. "No torrents yet".
  function emptyRow(tbody, colspan, text) {
    const tr = el("tr", { class: "empty" }, el("td", { colspan }, text));
    tbody.replaceChildren(tr);
  }

  // --------------------------------------------------------------- network

  class ApiError extends Error {
    constructor(message, status, body) {
      super(message);
      this.name = "ApiError";
      this.status = status; // 0 when the peer did not answer at all
      this.body = body;
    }
    get network() { return this.status === 0; }
  }

  // The {"error": "..."} text of a failed reply, or a sentence from the status.
  function errorText(status, statusText, bodyText) {
    try {
      const j = JSON.parse(bodyText);
      if (j && typeof j.error === "string" && j.error) return j.error;
    } catch (_) { /* not JSON */ }
    const t = String(bodyText || "").trim();
    if (t && t.length < 300 && !/^\s*</.test(t)) return "HTTP " + status + ": " + t;
    return "HTTP " + status + (statusText ? " " + statusText : "");
  }

  // fetch + JSON. body: an object (sent as JSON), or a Blob/File (sent raw
  // with opts.type). Resolves to the parsed reply; rejects with ApiError,
  // whose message is the server's "error" text.
  async function api(method, url, body, opts = {}) {
    const init = { method, cache: "no-store", credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined && body !== null) {
      if (body instanceof Blob) {
        init.body = body;
        init.headers["Content-Type"] = opts.type || "application/octet-stream";
      } else {
        init.body = JSON.stringify(body);
        init.headers["Content-Type"] = "application/json";
      }
    }
    const ctrl = new AbortController();
    const timeout = opts.timeout === undefined ? FETCH_TIMEOUT_MS : opts.timeout;
    const timer = timeout ? setTimeout(() => ctrl.abort(), timeout) : null;
    init.signal = ctrl.signal;
    let res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      const why = e && e.name === "AbortError" ? "no answer within " + timeout / 1000 + " s"
        : (e && e.message) || "network error";
      throw new ApiError(why, 0, null);
    } finally {
      if (timer) clearTimeout(timer);
    }
    let text;
    try {
      text = await res.text();
    } catch (e) {
      throw new ApiError("the reply was cut off (" + ((e && e.message) || "network error") + ")", 0, null);
    }
    if (!res.ok) {
      let j = null;
      try { j = JSON.parse(text); } catch (_) { /* not JSON */ }
      throw new ApiError(errorText(res.status, res.statusText, text), res.status, j);
    }
    if (text === "") return null;
    try {
      return JSON.parse(text);
    } catch (_) {
      throw new ApiError("the peer's reply is not JSON (HTTP " + res.status + ")", res.status, null);
    }
  }

  // ------------------------------------------------------------ the banner

  // One banner at the top of the page for "cannot reach the peer". Shown by
  // the polling loops when a request fails, hidden when one works again.
  let since = null;
  function banner() {
    let b = $("conn-banner");
    if (!b) {
      b = el("div", { id: "conn-banner", class: "banner", role: "alert", hidden: true });
      document.body.insertBefore(b, document.body.firstChild);
    }
    return b;
  }

  function connectionLost(err) {
    if (!since) since = new Date();
    const b = banner();
    const why = (err && err.message) || "network error";
    let text;
    if (err && err.status === 401) {
      text = "The peer asks for its password (HTTP 401): reload the page to log in. Retrying every second.";
    } else if (err && err.status) {
      text = "The peer answers with an error (" + why + "), retrying every second (since " + clock(since) + ").";
    } else {
      text = "Cannot reach the peer at " + location.host + " (" + why + "), retrying every second (since " + clock(since) + ").";
    }
    setText(b, text);
    b.hidden = false;
    document.body.dataset.connection = "lost";
  }

  function connectionOk() {
    since = null;
    const b = $("conn-banner");
    if (b && !b.hidden) { b.hidden = true; b.textContent = ""; }
    document.body.dataset.connection = "ok";
  }

  // --------------------------------------------------------------- actions

  // Copy text to the clipboard; without the clipboard API (plain http on
  // another machine is not a "secure context") copy from a selected hidden
  // text area, and as a last resort show the text selected in a prompt.
  function copyText(text, button) {
    const done = () => {
      if (!button) return;
      const old = button.dataset.label || button.textContent;
      button.dataset.label = old;
      button.textContent = "copied";
      button.classList.add("copied");
      setTimeout(() => { button.textContent = old; button.classList.remove("copied"); }, 1500);
    };
    const fallback = () => {
      const ta = el("textarea", { readonly: true, class: "offscreen", "aria-hidden": "true" });
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
      ta.remove();
      if (ok) done(); else window.prompt("Copy this (Ctrl+C):", text);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  // Ask how to remove a torrent: resolves to "keep", "delete" or null
  // (cancelled). Uses the page's <dialog id="remove-dialog"> when present.
  function askRemove(name) {
    const dlg = $("remove-dialog");
    if (!dlg || typeof dlg.showModal !== "function") {
      if (!window.confirm("Remove \u201c" + name + "\u201d from this peer?")) return Promise.resolve(null);
      return Promise.resolve(window.confirm("Also delete its files from the disk?\nOK = delete the files, Cancel = keep them.") ? "delete" : "keep");
    }
    setText($("remove-name"), name);
    dlg.returnValue = "";
    return new Promise((resolve) => {
      dlg.addEventListener("close", () => {
        const v = dlg.returnValue;
        resolve(v === "keep" || v === "delete" ? v : null);
      }, { once: true });
      dlg.showModal();
      const keep = $("remove-keep");
      if (keep) keep.focus();
    });
  }

  function removeTorrent(hash, withFiles) {
    return api("DELETE", "/api/torrents/" + encodeURIComponent(hash) + "?delete=" + (withFiles ? 1 : 0));
  }

  function pauseOrResume(hash, pause) {
    return api("POST", "/api/torrents/" + encodeURIComponent(hash) + (pause ? "/pause" : "/resume"));
  }

  // States in which Pause makes sense (others get Resume).
  function isRunning(state) {
    return state === "downloading" || state === "seeding" || state === "checking" || state === "metadata";
  }

  // Only magnet: links and same-site paths become hrefs.
  function safeMagnet(m) {
    return typeof m === "string" && /^magnet:\?/i.test(m) ? m : null;
  }
  function safePath(u) {
    return typeof u === "string" && /^\/(?!\/)/.test(u) ? u : null;
  }

  // A read-only canvas colour from the CSS variables (light/dark aware).
  function cssVar(name, fallback) {
    const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  // A poll loop: runs `step` (async), then again after `delay()` ms; never
  // two at once. `now()` polls at once (after an action), or right after
  // the poll under way. A tab shown again polls at once.
  function poller(step, delay) {
    let timer = null;
    let inFlight = false;
    let again = false;
    function schedule(ms) {
      clearTimeout(timer);
      timer = setTimeout(tick, ms);
    }
    async function tick() {
      if (inFlight) { again = true; return; }
      inFlight = true;
      try {
        await step();
      } finally {
        inFlight = false;
        schedule(again ? 0 : delay());
        again = false;
      }
    }
    function now() {
      if (inFlight) again = true; else schedule(0);
    }
    document.addEventListener("visibilitychange", () => { if (!document.hidden) now(); });
    return { start: tick, now };
  }

  return {
    poller,
    num, size, rate, duration, percent, percentNumber, ratio, ago, clock, parseRate, rateInput, limitText,
    $, el, setText, setAttr, bar, setBar, syncRows, emptyRow,
    ApiError, api, errorText, connectionLost, connectionOk,
    copyText, askRemove, removeTorrent, pauseOrResume, isRunning, safeMagnet, safePath, cssVar,
  };
})();
