// One torrent's page (/torrent/<info hash>): polls /api/torrents/<hash>
// every second and updates the summary, the rate graph, the piece map, and
// the peers, files and trackers tables in place.
// Plain JavaScript (needs common.js first). Server strings go in with
// textContent only.
"use strict";
(() => {
  const { $, el, setText, setAttr } = MT;
  const POLL_MS = 1000;
  const POLL_HIDDEN_MS = 5000;
  const POLL_GONE_MS = 2000;
  const HISTORY_SECONDS = 120;
  const PIECE_MAP_MAX_HEIGHT = 200; // px; beyond this cells shrink, then aggregate
  const PIECE_CELL_MAX = 16;
  const PIECE_CELL_MIN = 2;

  const m = /^\/torrent\/([0-9a-fA-F]{40})\/?$/.exec(location.pathname);
  if (!m) {
    $("badhash").hidden = false;
    document.body.dataset.state = "invalid";
    return;
  }
  const hash = m[1].toLowerCase();
  const apiUrl = "/api/torrents/" + hash;
  let last = null; // the last reply
  let gone = false;

  // ================================================================ polling

  const poll = MT.poller(async () => {
    try {
      const d = await MT.api("GET", apiUrl);
      MT.connectionOk();
      gone = false;
      last = d || {};
      render(last);
      setText($("updated"), "updated " + MT.clock(new Date()));
    } catch (e) {
      if (e.status === 404) {
        MT.connectionOk();
        notFound(e.message);
      } else {
        MT.connectionLost(e);
      }
    }
  }, () => (gone ? POLL_GONE_MS : document.hidden ? POLL_HIDDEN_MS : POLL_MS));
  const refreshNow = poll.now;

  function notFound(why) {
    gone = true;
    $("detail").hidden = true;
    $("notfound").hidden = false;
    setText($("notfound-detail"), "Info hash " + hash + (why ? ". The peer said: " + why : "."));
    document.body.dataset.state = "notfound";
    document.title = "Not found · minitorrent";
  }

  // ================================================================ summary

  function render(d) {
    $("notfound").hidden = true;
    $("detail").hidden = false;
    const state = String(d.state || "unknown");
    document.body.dataset.state = state;
    const name = d.name ? String(d.name) : hash;
    setText($("name"), name);
    document.title = name + " · minitorrent";
    setText($("state"), state);
    setAttr($("state"), "data-state", state);
    setText($("state-text"), d.state_text && d.state_text !== state ? d.state_text : "");
    const err = $("error-text");
    err.hidden = !d.error;
    setText(err, d.error ? String(d.error) : "");

    const prog = $("progress");
    MT.setBar(prog, d.progress);
    setAttr(prog, "data-state", state);

    setText($("size"), MT.size(d.size));
    const total = MT.num(d.pieces_total);
    setText($("pieces-count"), total > 0 ? MT.num(d.pieces_have) + " of " + total : "–");
    setText($("down-rate"), MT.rate(d.down_rate));
    setText($("up-rate"), MT.rate(d.up_rate));
    setText($("downloaded"), MT.size(d.downloaded));
    setText($("uploaded"), MT.size(d.uploaded));
    setText($("ratio"), MT.ratio(d.ratio));
    setText($("eta"), MT.duration(d.eta));
    setText($("peer-count"), String(MT.num(d.peers)));
    setText($("info-hash"), d.info_hash || hash);

    const running = MT.isRunning(state);
    const toggle = $("toggle");
    setText(toggle, running ? "Pause" : "Resume");
    setAttr(toggle, "data-op", running ? "pause" : "resume");

    const magnet = MT.safeMagnet(d.magnet);
    const ma = $("magnet");
    ma.hidden = !magnet;
    setAttr(ma, "href", magnet);
    const mt = $("magnet-text");
    mt.hidden = !magnet;
    if (magnet && mt.value !== magnet && document.activeElement !== mt) mt.value = magnet;

    const url = MT.safePath(d.torrent_url);
    const tl = $("torrent-link");
    tl.hidden = !url;
    setAttr(tl, "href", url);
    setAttr(tl, "download", url ? name.replace(/[\/\\:*?"<>|\x00-\x1f]/g, "_") + ".torrent" : null);

    renderPeers(Array.isArray(d.peers_list) ? d.peers_list : []);
    renderFiles(Array.isArray(d.files) ? d.files : []);
    renderTrackers(Array.isArray(d.trackers) ? d.trackers : []);
    drawPieces(typeof d.pieces === "string" ? d.pieces : "", false);
    drawRates(Array.isArray(d.history) ? d.history : [], d);
  }

  // ================================================================== peers

  // "1.2.3.4:5" sorts by numbers; IPv6 after IPv4.
  function addrKey(addr) {
    const a = String(addr);
    const i = a.lastIndexOf(":");
    const host = i < 0 ? a : a.slice(0, i);
    const port = i < 0 ? "" : a.slice(i + 1);
    const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
    const h = v4 ? "4:" + v4.slice(1).map((o) => o.padStart(3, "0")).join(".") : "6:" + host.toLowerCase();
    return h + "#" + port.padStart(5, "0");
  }

  const FLAGS = [
    ["am_choking", "data-am-choking", "we choke them"],
    ["am_interested", "data-am-interested", "we are interested"],
    ["peer_choking", "data-peer-choking", "they choke us"],
    ["peer_interested", "data-peer-interested", "they are interested"],
  ];

  function renderPeers(peers) {
    const tbody = $("peers");
    const list = peers.filter((p) => p && p.addr).slice().sort((a, b) => {
      const x = addrKey(a.addr), y = addrKey(b.addr);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    let down = 0, up = 0;
    for (const p of list) { down += MT.num(p.down_rate); up += MT.num(p.up_rate); }
    setText($("peers-note"), list.length ? list.length + " connected · \u2193 " + MT.rate(down) + " · \u2191 " + MT.rate(up) : "");
    if (list.length === 0) {
      MT.emptyRow(tbody, 12, "No peer connected.");
      return;
    }
    MT.syncRows(tbody, list, (p) => p.addr, () => {
      const tr = el("tr");
      tr.append(el("td", { class: "mono addr" }), el("td", { class: "client" }), el("td", { class: "dir" }),
        el("td", { class: "progress-cell" }, MT.bar("small-bar")),
        el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" }));
      for (const [, , title] of FLAGS) tr.append(el("td", { class: "flag", title }));
      return tr;
    }, (tr, p) => {
      const c = tr.children;
      setText(c[0], p.addr);
      setText(c[1], p.client ? String(p.client) : "unknown");
      setText(c[2], p.outbound ? "out" : "in");
      setAttr(c[2], "title", p.outbound ? "we connected to them" : "they connected to us");
      const b = c[3].firstChild;
      if (p.progress === null || p.progress === undefined) {
        MT.setBar(b, 0, "?", c[3]);
        setAttr(c[3], "data-progress", null);
      } else {
        MT.setBar(b, p.progress, undefined, c[3]);
      }
      setText(c[4], MT.num(p.down_rate) > 0 ? MT.rate(p.down_rate) : "–");
      setText(c[5], MT.num(p.up_rate) > 0 ? MT.rate(p.up_rate) : "–");
      setText(c[6], MT.size(p.downloaded));
      setText(c[7], MT.size(p.uploaded));
      FLAGS.forEach(([key, attr], i) => {
        const on = !!p[key];
        setAttr(tr, attr, on ? "true" : "false");
        const td = c[8 + i];
        setText(td, on ? "\u25cf" : "\u25cb");
        td.classList.toggle("on", on);
      });
      setAttr(tr, "data-direction", p.outbound ? "out" : "in");
    }, "data-addr");
  }

  // ================================================================== files

  function renderFiles(files) {
    const tbody = $("files");
    const list = files.filter((f) => f && f.path !== undefined);
    if (list.length === 0) {
      MT.emptyRow(tbody, 3, "The list of files appears once the metadata is known.");
      return;
    }
    MT.syncRows(tbody, list, (f) => f.path, () =>
      el("tr", null, el("td", { class: "name" }), el("td", { class: "num" }), el("td", { class: "progress-cell" }, MT.bar("small-bar"))),
    (tr, f) => {
      const c = tr.children;
      setText(c[0], String(f.path));
      setText(c[1], MT.size(f.size));
      MT.setBar(c[2].firstChild, f.progress, undefined, c[2]);
    }, "data-path");
  }

  // =============================================================== trackers

  function renderTrackers(trackers) {
    const tbody = $("trackers");
    const list = trackers.filter((t) => t && t.url !== undefined);
    if (list.length === 0) {
      MT.emptyRow(tbody, 5, "No tracker.");
      return;
    }
    MT.syncRows(tbody, list, (t) => t.url, () =>
      el("tr", null, el("td", { class: "mono url" }), el("td"), el("td", { class: "ok" }), el("td", { class: "error" }), el("td", { class: "num" })),
    (tr, t) => {
      const c = tr.children;
      setText(c[0], String(t.url) + (t.in_use ? " (in use)" : ""));
      setText(c[1], t.protocol === "bep15" ? "UDP (BEP 15)" : t.protocol === "json" ? "JSON" : t.protocol === "http" ? "HTTP" : String(t.protocol || "?"));
      setText(c[2], t.last_answer ? String(t.last_answer) : "–");
      setText(c[3], t.last_error ? String(t.last_error) : "");
      setText(c[4], MT.ago(t.seconds_ago));
      setAttr(tr, "data-status", t.last_error ? "error" : t.last_answer ? "ok" : "none");
    }, "data-url");
  }

  // ============================================================== piece map

  let piecesDrawn = null; // "width|pieces" of the last drawing

  function canvasSize(canvas, cssHeight) {
    const w = Math.max(50, Math.floor(canvas.clientWidth));
    const dpr = window.devicePixelRatio || 1;
    canvas.style.height = cssHeight + "px";
    const pw = Math.round(w * dpr), ph = Math.round(cssHeight * dpr);
    if (canvas.width !== pw) canvas.width = pw;
    if (canvas.height !== ph) canvas.height = ph;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, cssHeight);
    return { ctx, w };
  }

  // Blend two "#rrggbb" colours (t = 0 gives a, 1 gives b).
  function mix(a, b, t) {
    const pa = /^#([0-9a-f]{6})$/i.exec(a), pb = /^#([0-9a-f]{6})$/i.exec(b);
    if (!pa || !pb) return t < 0.5 ? a : b;
    const x = parseInt(pa[1], 16), y = parseInt(pb[1], 16);
    let out = 0;
    for (const shift of [16, 8, 0]) {
      const c1 = (x >> shift) & 255, c2 = (y >> shift) & 255;
      out |= Math.round(c1 + (c2 - c1) * t) << shift;
    }
    return "#" + out.toString(16).padStart(6, "0");
  }

  function drawPieces(pieces, force) {
    const canvas = $("pieces-map");
    const n = pieces.length;
    $("pieces-empty").hidden = n > 0;
    canvas.hidden = n === 0;
    if (n === 0) { setText($("pieces-note"), ""); piecesDrawn = null; return; }
    const width = Math.max(50, Math.floor(canvas.clientWidth));
    const key = width + "|" + pieces;
    if (!force && key === piecesDrawn) return;
    piecesDrawn = key;

    // The largest cell that fits the height; below the minimum, one cell
    // stands for several pieces.
    let pitch = PIECE_CELL_MAX, cols, rows, per = 1;
    for (; pitch >= PIECE_CELL_MIN; pitch--) {
      cols = Math.max(1, Math.floor(width / pitch));
      rows = Math.ceil(n / cols);
      if (rows * pitch <= PIECE_MAP_MAX_HEIGHT) break;
    }
    if (pitch < PIECE_CELL_MIN) {
      pitch = PIECE_CELL_MIN;
      cols = Math.max(1, Math.floor(width / pitch));
      const maxCells = cols * Math.floor(PIECE_MAP_MAX_HEIGHT / pitch);
      per = Math.ceil(n / maxCells);
    }
    const cells = Math.ceil(n / per);
    rows = Math.ceil(cells / cols);
    const gap = pitch >= 6 ? 1 : 0;
    const { ctx } = canvasSize(canvas, rows * pitch);
    const colour = {
      h: MT.cssVar("--have", "#2da44e"), f: MT.cssVar("--flight", "#e3a008"),
      m: MT.cssVar("--missing", "#d0d0cc"),
    };
    let have = 0, flight = 0, partial = false;
    for (let c = 0; c < cells; c++) {
      let h = 0, f = 0, count = 0;
      for (let i = c * per; i < Math.min(n, (c + 1) * per); i++) {
        const ch = pieces.charCodeAt(i);
        if (ch === 104) h++; else if (ch === 102) f++;
        count++;
      }
      have += h; flight += f;
      let fill;
      if (h === count) fill = colour.h;
      else if (f > 0) fill = colour.f;
      else if (h > 0) { fill = mix(colour.m, colour.h, 0.25 + 0.6 * (h / count)); partial = true; }
      else fill = colour.m;
      ctx.fillStyle = fill;
      ctx.fillRect((c % cols) * pitch, Math.floor(c / cols) * pitch, pitch - gap, pitch - gap);
    }
    $("legend-partial").hidden = !partial;
    let note = "(" + have + " of " + n + " have";
    if (flight) note += ", " + flight + " downloading";
    if (per > 1) note += "; one cell per " + per + " pieces";
    setText($("pieces-note"), note + ")");
    setAttr(canvas, "data-pieces", n);
    setAttr(canvas, "data-have", have);
  }

  // ============================================================= rate graph

  function niceMax(v) {
    const units = [1, 1024, 1024 ** 2, 1024 ** 3, 1024 ** 4];
    for (const u of units) {
      for (const s of [1, 2, 5, 10, 20, 50, 100, 200, 500]) {
        if (s * u >= v) return s * u;
      }
    }
    return v;
  }

  function drawRates(history, d) {
    const canvas = $("rate-graph");
    const H = 180;
    const { ctx, w } = canvasSize(canvas, H);
    const pts = history.filter((p) => Array.isArray(p) && p.length >= 3)
      .map((p) => [Number(p[0]), MT.num(p[1]), MT.num(p[2])])
      .filter((p) => Number.isFinite(p[0]) && p[0] >= -HISTORY_SECONDS - 1 && p[0] <= 1)
      .sort((a, b) => a[0] - b[0]);
    let peakDown = 0, peakUp = 0;
    for (const p of pts) { peakDown = Math.max(peakDown, p[1]); peakUp = Math.max(peakUp, p[2]); }
    const top = niceMax(Math.max(1024, peakDown, peakUp));

    const muted = MT.cssVar("--muted", "#6b6b70");
    const line = MT.cssVar("--line", "#dcdcd8");
    const cDown = MT.cssVar("--down", "#1f6feb");
    const cUp = MT.cssVar("--up", "#d9730d");
    const left = 64, right = 8, topPad = 8, bottom = 20;
    const pw = w - left - right, ph = H - topPad - bottom;
    const x = (t) => left + ((t + HISTORY_SECONDS) / HISTORY_SECONDS) * pw;
    const y = (v) => topPad + ph - (v / top) * ph;

    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    // grid: 0, half, top
    for (const f of [0, 0.5, 1]) {
      const yy = Math.round(y(top * f)) + 0.5;
      ctx.strokeStyle = line;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(w - right, yy); ctx.stroke();
      ctx.fillStyle = muted;
      ctx.textAlign = "right";
      ctx.fillText(f === 0 ? "0" : MT.rate(top * f), left - 6, yy);
    }
    ctx.textBaseline = "alphabetic";
    ctx.textAlign = "left";
    ctx.fillText("\u22122 min", left, H - 4);
    ctx.textAlign = "center";
    ctx.fillText("\u22121 min", x(-60), H - 4);
    ctx.textAlign = "right";
    ctx.fillText("now", w - right, H - 4);

    const plot = (idx, colour, fill) => {
      if (pts.length === 0) return;
      ctx.beginPath();
      pts.forEach((p, i) => { if (i === 0) ctx.moveTo(x(p[0]), y(p[idx])); else ctx.lineTo(x(p[0]), y(p[idx])); });
      if (fill) {
        ctx.save();
        ctx.lineTo(x(pts[pts.length - 1][0]), y(0));
        ctx.lineTo(x(pts[0][0]), y(0));
        ctx.closePath();
        ctx.globalAlpha = 0.12;
        ctx.fillStyle = colour;
        ctx.fill();
        ctx.restore();
        ctx.beginPath();
        pts.forEach((p, i) => { if (i === 0) ctx.moveTo(x(p[0]), y(p[idx])); else ctx.lineTo(x(p[0]), y(p[idx])); });
      }
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.stroke();
      ctx.lineWidth = 1;
    };
    plot(1, cDown, true);
    plot(2, cUp, false);
    if (pts.length === 0) {
      ctx.fillStyle = muted;
      ctx.textAlign = "center";
      ctx.fillText("no samples yet", left + pw / 2, topPad + ph / 2);
    }
    setText($("legend-down"), MT.rate(d.down_rate));
    setText($("legend-up"), MT.rate(d.up_rate));
    setText($("legend-max"), "peak: \u2193 " + MT.rate(peakDown) + " · \u2191 " + MT.rate(peakUp));
    setAttr(canvas, "data-samples", pts.length);
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (!last || gone) return;
      drawPieces(typeof last.pieces === "string" ? last.pieces : "", true);
      drawRates(Array.isArray(last.history) ? last.history : [], last);
    }, 100);
  });

  // ================================================================ actions

  function actionStatus(text, isError) {
    const s = $("action-status");
    setText(s, text);
    s.className = "status small" + (isError ? " error" : text ? " ok" : "");
  }

  $("toggle").addEventListener("click", () => {
    const btn = $("toggle");
    const pause = btn.getAttribute("data-op") !== "resume";
    btn.disabled = true;
    MT.pauseOrResume(hash, pause).then((row) => {
      actionStatus("", false);
      if (row && row.state && last) { last = Object.assign({}, last, row); render(last); }
    }, (e) => actionStatus((pause ? "Cannot pause: " : "Cannot resume: ") + e.message, true))
      .finally(() => { btn.disabled = false; refreshNow(); });
  });

  $("remove").addEventListener("click", () => {
    const name = (last && last.name) || hash;
    MT.askRemove(name).then((choice) => {
      if (!choice) return;
      const btn = $("remove");
      btn.disabled = true;
      MT.removeTorrent(hash, choice === "delete").then(() => {
        actionStatus("Removed. Going back to the list…", false);
        setTimeout(() => { location.href = "/"; }, 600);
      }, (e) => {
        actionStatus("Cannot remove: " + e.message, true);
        btn.disabled = false;
      });
    });
  });

  $("magnet").addEventListener("click", (e) => {
    e.preventDefault();
    const mg = last && MT.safeMagnet(last.magnet);
    if (mg) MT.copyText(mg, $("magnet"));
  });
  $("magnet-text").addEventListener("focus", (e) => e.target.select());

  setText($("info-hash"), hash);
  poll.start();
})();
