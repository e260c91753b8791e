// The search page: lists /api/swarms?q=..., sorts by column, copies magnet
// links. Plain JavaScript, no library.
"use strict";
(function () {
  const q = document.getElementById("q");
  const tbody = document.querySelector("#swarms tbody");
  const status = document.getElementById("status");
  const heads = document.querySelectorAll("#swarms th.sortable");
  let rows = [];
  let sortKey = "name";
  let sortDir = 1;
  let seq = 0;

  function human(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = bytes, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v : v.toFixed(1)) + " " + units[i];
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function copy(text, button) {
    const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallback(text, button, done));
    } else {
      fallback(text, button, done);
    }
  }

  // Plain http on a LAN is not a secure context: the clipboard API is
  // missing there, so select a hidden text area and copy that.
  function fallback(text, button, done) {
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    if (ok) done(); else window.prompt("Copy the magnet link:", text);
  }

  function render() {
    const sorted = rows.slice().sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const c = typeof x === "string" ? x.localeCompare(y) : x - y;
      return c !== 0 ? c * sortDir : a.info_hash.localeCompare(b.info_hash);
    });
    const frag = document.createDocumentFragment();
    for (const s of sorted) {
      const tr = document.createElement("tr");
      tr.dataset.infoHash = s.info_hash;
      const name = cell(tr, "", "name");
      const a = document.createElement("a");
      a.href = "/swarm/" + s.info_hash;
      a.textContent = s.name || s.info_hash;
      a.title = s.info_hash;
      name.appendChild(a);
      cell(tr, human(s.size), "num").title = s.size + " bytes";
      cell(tr, String(s.seeders), "num");
      cell(tr, String(s.leechers), "num");
      cell(tr, String(s.completed), "num");
      const m = cell(tr, "");
      const link = document.createElement("a");
      link.href = s.magnet;
      link.className = "magnet";
      link.textContent = "magnet";
      m.appendChild(link);
      m.appendChild(document.createTextNode(" "));
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Copy";
      b.addEventListener("click", () => copy(s.magnet, b));
      m.appendChild(b);
      const t = cell(tr, "");
      if (s.torrent) {
        const dl = document.createElement("a");
        dl.href = s.torrent;
        dl.className = "torrent";
        dl.textContent = "download";
        t.appendChild(dl);
      } else {
        t.textContent = "—";
        t.className = "muted";
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    heads.forEach((h) => {
      h.setAttribute("aria-sort", h.dataset.key === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    });
  }

  function load() {
    const mine = ++seq;
    fetch("/api/swarms?q=" + encodeURIComponent(q.value), { cache: "no-store" })
      .then((r) => r.json().then((j) => ({ ok: r.ok, j })))
      .then(({ ok, j }) => {
        if (mine !== seq) return;
        if (!ok) throw new Error(j.error || "the tracker answered an error");
        rows = j.swarms;
        const n = rows.length;
        status.textContent = n === 0
          ? (q.value ? "No swarm's name contains \u201c" + q.value + "\u201d." : "No swarm yet: start seeding a file with minitorrent, or publish a .torrent.")
          : n + " swarm" + (n === 1 ? "" : "s") + (q.value ? " matching \u201c" + q.value + "\u201d" : "") + ".";
        status.className = "status muted";
        render();
      })
      .catch((e) => {
        if (mine !== seq) return;
        status.textContent = "Cannot reach the tracker: " + e.message;
        status.className = "status error";
      });
  }

  heads.forEach((h) => h.addEventListener("click", () => {
    const k = h.dataset.key;
    if (k === sortKey) sortDir = -sortDir;
    else { sortKey = k; sortDir = k === "name" ? 1 : -1; }
    render();
  }));
  let timer = null;
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  const start = new URLSearchParams(location.search).get("q");
  if (start) q.value = start;
  load();
  setInterval(() => { if (!document.hidden) load(); }, 5000);
})();
