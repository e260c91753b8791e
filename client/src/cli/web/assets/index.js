// The peer's main page: session facts, sharing (uploads), files being
// hashed, search at the tracker, adding a torrent, speed limits and the
// torrents table, refreshed every second from /api/torrents.
// Plain JavaScript (needs common.js first). Server strings go in with
// textContent only.
"use strict";
(() => {
  const { $, el, setText, setAttr } = MT;
  const POLL_MS = 1000;
  const POLL_HIDDEN_MS = 5000;
  const LIMITS_EVERY = 10; // refresh the shown limits every N polls
  const PARALLEL_UPLOADS = 2;

  let session = null;
  let loadingSession = false;
  let torrents = new Map(); // info_hash -> Row, from the last poll
  let polls = 0;

  // ================================================================ session

  function loadSession() {
    if (loadingSession) return;
    loadingSession = true;
    MT.api("GET", "/api/session").then((s) => {
      session = s || {};
      setText($("peer-id"), s.peer_id || "?");
      setText($("listen"), s.listen || "?");
      setText($("tracker"), s.tracker || "none");
      setText($("dir"), s.dir || "?");
      $("dir").title = s.dir || "";
      setText($("version"), s.version ? "v" + s.version : "");
      if (s.limits) showLimits(s.limits);
      if (s.max_upload) {
        setText($("share-note"), "Each file (at most " + MT.size(s.max_upload) +
          ") is copied into this peer's folder, hashed, then seeded.");
      }
    }).catch(() => { /* the poll loop shows the banner; retried next tick */ })
      .finally(() => { loadingSession = false; });
  }

  // ================================================================ polling

  const poll = MT.poller(async () => {
    polls++;
    try {
      if (!session) loadSession();
      if (polls % LIMITS_EVERY === 1) loadLimits();
      const data = await MT.api("GET", "/api/torrents");
      MT.connectionOk();
      render(data || {});
      setText($("updated"), "updated " + MT.clock(new Date()));
    } catch (e) {
      MT.connectionLost(e);
    }
  }, () => (document.hidden ? POLL_HIDDEN_MS : POLL_MS));

  // Poll now (after an action) instead of waiting for the next second.
  const refreshNow = poll.now;

  // ========================================================= torrents table

  const tbody = $("torrent-rows");

  function render(data) {
    const rows = Array.isArray(data.torrents) ? data.torrents.filter((r) => r && r.info_hash) : [];
    torrents = new Map(rows.map((r) => [r.info_hash, r]));
    renderHashing(Array.isArray(data.hashing) ? data.hashing : []);
    if (rows.length === 0) {
      MT.emptyRow(tbody, 10, "No torrents yet: share a file, find one at the tracker, or add a magnet link.");
    } else {
      MT.syncRows(tbody, rows, (r) => r.info_hash, createRow, updateRow, "data-hash");
    }
    let down = 0, up = 0;
    for (const r of rows) { down += MT.num(r.down_rate); up += MT.num(r.up_rate); }
    setText($("totals"), rows.length + (rows.length === 1 ? " torrent" : " torrents") +
      " · \u2193 " + MT.rate(down) + " · \u2191 " + MT.rate(up));
    refreshSearchButtons();
  }

  function torrentHref(hash) {
    return "/torrent/" + encodeURIComponent(hash);
  }

  function createRow() {
    const tr = el("tr");
    const link = el("a", { class: "name-link" });
    const nameTd = el("td", { class: "name" }, link, el("div", { class: "sub mono hash" }));
    const stateTd = el("td", { class: "state" }, el("span", { class: "state-word" }), el("div", { class: "sub state-text" }));
    const bar = MT.bar();
    const progTd = el("td", { class: "progress-cell" }, bar, el("div", { class: "sub pieces" }));
    const pause = el("button", { type: "button", class: "small", "data-action": "toggle" });
    const remove = el("button", { type: "button", class: "small", "data-action": "remove" }, "Remove");
    const magnet = el("a", { class: "magnet small", "data-action": "magnet", title: "Copy the magnet link" }, "magnet");
    const file = el("a", { class: "torrent-file small", title: "Download the .torrent file" }, ".torrent");
    const actions = el("td", { class: "actions" }, pause, remove, magnet, file);
    tr.append(nameTd, el("td", { class: "num size" }), stateTd, progTd,
      el("td", { class: "num down" }), el("td", { class: "num up" }), el("td", { class: "num peers" }),
      el("td", { class: "num ratio" }), el("td", { class: "num eta" }), actions);
    tr._c = { link, hash: nameTd.lastChild, stateTd, stateWord: stateTd.firstChild, stateText: stateTd.lastChild,
              bar, progTd, pieces: progTd.lastChild, size: tr.children[1], down: tr.children[4], up: tr.children[5],
              peers: tr.children[6], ratio: tr.children[7], eta: tr.children[8], pause, remove, magnet, file };
    return tr;
  }

  function updateRow(tr, r) {
    const c = tr._c;
    const state = String(r.state || "unknown");
    const name = r.name ? String(r.name) : r.info_hash;
    setText(c.link, name);
    setAttr(c.link, "href", torrentHref(r.info_hash));
    setText(c.hash, r.info_hash);
    setAttr(tr, "data-state", state);
    setAttr(c.stateTd, "data-state", state);
    setText(c.stateWord, state);
    let detail = "";
    if (state === "error") detail = r.error || r.state_text || "";
    else if (r.state_text && r.state_text !== state) detail = r.state_text;
    setText(c.stateText, detail);
    c.stateText.hidden = detail === "";
    setAttr(c.stateTd, "title", r.state_text || null);

    const p = r.progress;
    MT.setBar(c.bar, p, undefined, c.progTd);
    setAttr(c.bar, "data-state", state);
    const total = MT.num(r.pieces_total);
    setText(c.pieces, total > 0 ? MT.num(r.pieces_have) + " / " + total + " pieces" : "");

    setText(c.size, MT.size(r.size));
    setAttr(c.size, "title", r.size === null || r.size === undefined ? null : r.size + " bytes");
    setText(c.down, MT.num(r.down_rate) > 0 ? MT.rate(r.down_rate) : "–");
    setText(c.up, MT.num(r.up_rate) > 0 ? MT.rate(r.up_rate) : "–");
    setText(c.peers, String(MT.num(r.peers)));
    setText(c.ratio, MT.ratio(r.ratio));
    setText(c.eta, MT.duration(r.eta));

    const running = MT.isRunning(state);
    setText(c.pause, running ? "Pause" : "Resume");
    setAttr(c.pause, "data-op", running ? "pause" : "resume");
    const magnet = MT.safeMagnet(r.magnet);
    setAttr(c.magnet, "href", magnet);
    c.magnet.hidden = !magnet;
    const url = MT.safePath(r.torrent_url);
    setAttr(c.file, "href", url);
    setAttr(c.file, "download", url ? name.replace(/[\/\\:*?"<>|\x00-\x1f]/g, "_") + ".torrent" : null);
    c.file.hidden = !url;
  }

  // One listener for every row's buttons (rows are updated in place).
  tbody.addEventListener("click", (ev) => {
    const t = ev.target.closest("[data-action]");
    if (!t || !tbody.contains(t)) return;
    const tr = t.closest("tr[data-hash]");
    if (!tr) return;
    const hash = tr.getAttribute("data-hash");
    const row = torrents.get(hash) || { info_hash: hash, name: hash };
    const action = t.getAttribute("data-action");
    if (action === "magnet") {
      ev.preventDefault();
      if (row.magnet) MT.copyText(row.magnet, t);
    } else if (action === "toggle") {
      const pause = t.getAttribute("data-op") === "pause";
      t.disabled = true;
      MT.pauseOrResume(hash, pause).then(() => {
        actionStatus("", false);
      }, (e) => {
        actionStatus((pause ? "Cannot pause " : "Cannot resume ") + (row.name || hash) + ": " + e.message, true);
      }).finally(() => { t.disabled = false; refreshNow(); });
    } else if (action === "remove") {
      const name = row.name || hash;
      MT.askRemove(name).then((choice) => {
        if (!choice) return;
        t.disabled = true;
        return MT.removeTorrent(hash, choice === "delete").then((res) => {
          const del = res && Array.isArray(res.deleted) ? res.deleted.length : 0;
          actionStatus("Removed " + name + (choice === "delete" ? " and deleted " + del + (del === 1 ? " file." : " files.") : "; its files are kept."), false);
          tr.remove();
          torrents.delete(hash);
        }, (e) => {
          actionStatus("Cannot remove " + name + ": " + e.message, true);
        }).finally(() => { t.disabled = false; refreshNow(); });
      });
    }
  });

  function actionStatus(text, isError) {
    const s = $("action-status");
    setText(s, text);
    s.classList.toggle("error", !!isError);
    s.classList.toggle("ok", !isError && text !== "");
  }

  // ================================================================ hashing

  function renderHashing(jobs) {
    const list = $("hashing");
    list.hidden = jobs.length === 0;
    MT.syncRows(list, jobs.filter((j) => j && j.name !== undefined), (j) => j.name, () => {
      const li = el("li", { class: "hashing-job" }, el("span", { class: "job-name" }), MT.bar("hash-bar"),
        el("span", { class: "muted small job-size" }));
      return li;
    }, (li, j) => {
      const total = MT.num(j.total);
      const f = total > 0 ? MT.num(j.done) / total : 0;
      setText(li.children[0], String(j.name));
      MT.setBar(li.children[1], f, "hashing " + MT.percent(f), li);
      setText(li.children[2], MT.size(j.done) + " of " + MT.size(total));
    }, "data-name");
  }

  // ================================================================= share

  const uploads = $("uploads");
  const queue = [];
  let running = 0;

  function isHiddenPath(rel) {
    return rel.split("/").some((part) => part.startsWith("."));
  }

  // files: [{file: File, name: "rel/path"}]
  function share(files) {
    let hidden = 0;
    for (const { file, name } of files) {
      if (isHiddenPath(name)) { hidden++; continue; }
      const item = addUploadItem(file, name);
      if (session && MT.num(session.max_upload) > 0 && file.size > session.max_upload) {
        fail(item, "too large: " + MT.size(file.size) + ", this peer accepts files up to " + MT.size(session.max_upload) + ".");
        continue;
      }
      queue.push(item);
    }
    const s = $("share-status");
    setText(s, hidden ? "Skipped " + hidden + " hidden file" + (hidden === 1 ? "" : "s") +
      " (a name or folder starting with \u201c.\u201d is not shared)." : "");
    s.className = "status small muted";
    pump();
  }

  function addUploadItem(file, name) {
    const bar = MT.bar("upload-bar");
    const msg = el("span", { class: "up-msg small" }, "queued");
    const li = el("li", { class: "upload", "data-name": name, "data-state": "queued" },
      el("span", { class: "up-name" }, name), el("span", { class: "muted small up-size" }, MT.size(file.size)), bar, msg);
    uploads.appendChild(li);
    MT.setBar(bar, 0, "0 %", li);
    $("clear-uploads").hidden = false;
    return { file, name, li, bar, msg, overwrite: false };
  }

  function setItem(item, state, text, fraction) {
    item.li.setAttribute("data-state", state);
    setText(item.msg, text);
    item.msg.className = "up-msg small" + (state === "error" ? " error" : state === "done" ? " ok" : " muted");
    if (fraction !== undefined) MT.setBar(item.bar, fraction, undefined, item.li);
  }

  function fail(item, text) {
    setItem(item, "error", text);
    MT.setText(item.bar.lastChild, "failed");
  }

  function pump() {
    while (running < PARALLEL_UPLOADS && queue.length) {
      const item = queue.shift();
      running++;
      upload(item).finally(() => { running--; pump(); });
    }
  }

  function upload(item) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const url = "/api/upload?name=" + encodeURIComponent(item.name) + (item.overwrite ? "&overwrite=1" : "");
      xhr.open("PUT", url);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("Accept", "application/json");
      setItem(item, "uploading", "uploading", 0);
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        const f = e.total > 0 ? e.loaded / e.total : 0;
        setItem(item, "uploading", "uploading " + MT.size(e.loaded) + " of " + MT.size(e.total), f);
      };
      xhr.onload = () => {
        if (xhr.status === 201 || xhr.status === 200) {
          setItem(item, "done", "uploaded; hashing, then seeding", 1);
          refreshNow();
          resolve();
        } else if (xhr.status === 409 && !item.overwrite) {
          const why = MT.errorText(xhr.status, xhr.statusText, xhr.responseText);
          if (window.confirm("\u201c" + item.name + "\u201d already exists in this peer's folder.\n" + why + "\n\nOverwrite it?")) {
            item.overwrite = true;
            upload(item).then(resolve);
          } else {
            fail(item, "not uploaded: a file with this name already exists");
            resolve();
          }
        } else {
          fail(item, MT.errorText(xhr.status, xhr.statusText, xhr.responseText));
          resolve();
        }
      };
      xhr.onerror = () => { fail(item, "upload failed: the connection to the peer broke"); resolve(); };
      xhr.onabort = () => { fail(item, "upload aborted"); resolve(); };
      xhr.send(item.file);
    });
  }

  $("clear-uploads").addEventListener("click", () => {
    for (const li of Array.from(uploads.children)) {
      const s = li.getAttribute("data-state");
      if (s === "done" || s === "error") li.remove();
    }
    $("clear-uploads").hidden = uploads.children.length === 0;
    setText($("share-status"), "");
  });

  $("choose-files").addEventListener("click", () => $("pick-files").click());
  $("choose-folder").addEventListener("click", () => $("pick-folder").click());
  $("pick-files").addEventListener("change", (e) => {
    share(Array.from(e.target.files).map((f) => ({ file: f, name: f.name })));
    e.target.value = "";
  });
  $("pick-folder").addEventListener("change", (e) => {
    share(Array.from(e.target.files).map((f) => ({ file: f, name: f.webkitRelativePath || f.name })));
    e.target.value = "";
  });

  // Drag and drop, folders included (walked with the entries API).
  const zone = $("drop-zone");
  let dragDepth = 0;
  zone.addEventListener("dragenter", (e) => { e.preventDefault(); dragDepth++; zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; zone.classList.remove("over"); } });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); if (e.dataTransfer) e.dataTransfer.dropEffect = "copy"; });
  // A file dropped next to the zone must not make the browser open it.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    dragDepth = 0;
    zone.classList.remove("over");
    const dt = e.dataTransfer;
    if (!dt) return;
    // The entries must be taken now: the DataTransfer is emptied after the event.
    const entries = Array.from(dt.items || [])
      .filter((i) => i.kind === "file")
      .map((i) => (typeof i.webkitGetAsEntry === "function" ? i.webkitGetAsEntry() : null));
    const plain = Array.from(dt.files || []);
    if (entries.length && entries.every((x) => x)) {
      setText($("share-status"), "Reading the dropped folders…");
      collect(entries).then(share, (err) => {
        const s = $("share-status");
        setText(s, "Cannot read the dropped files: " + ((err && err.message) || err));
        s.className = "status small error";
      });
    } else {
      share(plain.map((f) => ({ file: f, name: f.name })));
    }
  });

  async function collect(entries) {
    const out = [];
    const walk = async (entry) => {
      if (entry.isFile) {
        const file = await new Promise((res, rej) => entry.file(res, rej));
        out.push({ file, name: entry.fullPath.replace(/^\/+/, "") || file.name });
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {
          const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
          if (!batch.length) break;
          for (const child of batch) await walk(child);
        }
      }
    };
    for (const e of entries) await walk(e);
    return out;
  }

  // =================================================================== add

  function addStatus(text, kind) {
    const s = $("add-status");
    setText(s, text);
    s.className = "status small" + (kind ? " " + kind : "");
  }

  $("add-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("add-source");
    const source = input.value.trim();
    if (!source) { addStatus("Paste a magnet link, a 40-hex info hash or a file name first.", "error"); return; }
    const btn = $("add-button");
    btn.disabled = true;
    addStatus("Adding…", "muted");
    MT.api("POST", "/api/add", { source }).then((row) => {
      addStatus("Added " + ((row && (row.name || row.info_hash)) || source) + ".", "ok");
      input.value = "";
      refreshNow();
    }, (err) => addStatus(err.message, "error")).finally(() => { btn.disabled = false; });
  });

  $("choose-torrent").addEventListener("click", () => $("add-torrent-file").click());
  $("add-torrent-file").addEventListener("change", (e) => {
    const f = e.target.files && e.target.files[0];
    e.target.value = "";
    if (!f) return;
    addStatus("Adding " + f.name + "…", "muted");
    MT.api("POST", "/api/add-torrent", f, { type: "application/x-bittorrent", timeout: 30000 }).then((row) => {
      addStatus("Added " + ((row && (row.name || row.info_hash)) || f.name) + ".", "ok");
      refreshNow();
    }, (err) => addStatus(f.name + ": " + err.message, "error"));
  });

  // ================================================================ search

  const searchRows = $("search-rows");
  let searchSeq = 0;

  function searchStatus(text, kind) {
    const s = $("search-status");
    setText(s, text);
    s.className = "status small" + (kind ? " " + kind : "");
  }

  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("search-q").value.trim();
    const mine = ++searchSeq;
    searchStatus("Asking the tracker…", "muted");
    MT.api("GET", "/api/search?q=" + encodeURIComponent(q), null, { timeout: 15000 }).then((res) => {
      if (mine !== searchSeq) return;
      const files = res && Array.isArray(res.files) ? res.files.filter((f) => f && f.info_hash) : [];
      $("search-results").hidden = files.length === 0;
      searchStatus(files.length === 0
        ? (q ? "The tracker knows no file whose name contains \u201c" + q + "\u201d." : "The tracker knows no file yet.")
        : files.length + (files.length === 1 ? " file" : " files") + (q ? " matching \u201c" + q + "\u201d" : "") + ".", "muted");
      searchRows.replaceChildren();
      for (const f of files) searchRows.appendChild(searchRow(f));
      refreshSearchButtons();
    }, (err) => {
      if (mine !== searchSeq) return;
      searchStatus("Search failed: " + err.message, "error");
    });
  });

  function searchRow(f) {
    const btn = el("button", { type: "button", class: "small download" }, "Download");
    const note = el("span", { class: "error small row-error" });
    const tr = el("tr", { "data-hash": f.info_hash },
      el("td", { class: "name" }, String(f.name === undefined ? f.info_hash : f.name), el("div", { class: "sub mono hash" }, f.info_hash)),
      el("td", { class: "num" }, MT.size(f.size)),
      el("td", { class: "num" }, String(MT.num(f.seeders))),
      el("td", { class: "num" }, String(MT.num(f.leechers))),
      el("td", { class: "actions" }, btn, note));
    tr._active = !!f.active;
    btn.addEventListener("click", () => {
      tr._busy = true;
      btn.disabled = true;
      setText(btn, "Adding…");
      setText(note, "");
      MT.api("POST", "/api/add", { source: f.info_hash }).then(() => {
        tr._active = true;
        refreshNow();
      }, (err) => {
        if (err.status === 409 && /already/i.test(err.message)) tr._active = true;
        else setText(note, err.message);
      }).finally(() => {
        tr._busy = false;
        refreshSearchButtons();
      });
    });
    return tr;
  }

  // "active" when the torrent is in this session (from the search reply,
  // an add, or the torrents list).
  function refreshSearchButtons() {
    for (const tr of Array.from(searchRows.children)) {
      const btn = tr.querySelector("button.download");
      if (!btn || tr._busy) continue;
      const active = tr._active || torrents.has(tr.getAttribute("data-hash"));
      setText(btn, active ? "active" : "Download");
      btn.disabled = active;
      btn.classList.toggle("primary", !active);
      setAttr(tr, "data-active", active ? "true" : "false");
    }
  }

  // ================================================================ limits

  const limitInputs = { up: $("limit-up"), down: $("limit-down") };
  for (const input of Object.values(limitInputs)) {
    input.addEventListener("input", () => { input.dataset.dirty = "1"; input.classList.remove("invalid"); });
  }

  function showLimits(l) {
    for (const k of ["up", "down"]) {
      const v = MT.num(l[k]);
      setText($("limit-" + k + "-current"), "now " + MT.limitText(v));
      const input = limitInputs[k];
      // Never overwrite what the user is typing.
      if (document.activeElement !== input && !input.dataset.dirty) input.value = MT.rateInput(v);
    }
  }

  function loadLimits() {
    MT.api("GET", "/api/limits").then(showLimits, () => { /* banner comes from the poll */ });
  }

  function limitsStatus(text, kind) {
    const s = $("limits-status");
    setText(s, text);
    s.className = "status small" + (kind ? " " + kind : "");
  }

  $("limits-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const body = {};
    for (const k of ["up", "down"]) {
      const v = MT.parseRate(limitInputs[k].value);
      if (!Number.isFinite(v) || v < 0) {
        limitInputs[k].classList.add("invalid");
        limitsStatus("\u201c" + limitInputs[k].value + "\u201d is not a rate: write e.g. 500k, 2M or 0.", "error");
        limitInputs[k].focus();
        return;
      }
      body[k] = v;
    }
    const btn = $("limits-button");
    btn.disabled = true;
    MT.api("POST", "/api/limits", body).then((l) => {
      for (const input of Object.values(limitInputs)) delete input.dataset.dirty;
      const now = l && typeof l === "object" ? l : body;
      for (const input of Object.values(limitInputs)) input.blur();
      showLimits(now);
      limitsStatus("Upload " + MT.limitText(now.up) + ", download " + MT.limitText(now.down) + ".", "ok");
    }, (err) => limitsStatus(err.message, "error")).finally(() => { btn.disabled = false; });
  });

  // ================================================================= start

  loadSession();
  poll.start();
})();
