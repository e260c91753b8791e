// The live swarm view: polls /api/swarms/<info_hash> about every second and
// redraws the peers table, the graph (who sends to whom), the piece
// availability and the event timeline, without reloading the page.
// Plain JavaScript, no library, no build step. Every value from the tracker
// is shown with textContent or a numeric attribute, never as HTML.
(function () {
  "use strict";

  var POLL_MS = 1000;
  var POLL_HIDDEN_MS = 5000; // while the tab is hidden
  var FETCH_TIMEOUT_MS = 4000;
  var MAX_CELLS = 2048; // more pieces than this: each cell covers several
  var MAX_EVENTS = 100;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var CX = 500, CY = 390, RING = 275;

  var KIND_TEXT = {
    register: "joined",
    exit: "left",
    expiry: "timed out",
    completed: "completed",
  };
  var PROTOCOL_TEXT = { json: "JSON", bep15: "BEP 15", http: "HTTP", unknown: "unknown" };

  function $(id) {
    return document.getElementById(id);
  }

  // el("td", {class: "num"}, "text", child, ...): an element; attributes
  // are set with setAttribute, strings become text nodes.
  function el(tag, attrs) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (var k in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, k) && attrs[k] !== null && attrs[k] !== undefined) {
        e.setAttribute(k, String(attrs[k]));
      }
    }
  }

  function num(v) {
    var n = Number(v);
    return isFinite(n) && n >= 0 ? n : 0;
  }

  function str(v) {
    return v === null || v === undefined ? "" : String(v);
  }

  function arr(v) {
    return Array.isArray(v) ? v : [];
  }

  // ------------------------------------------------------------ formatting

  function formatSize(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var b = num(bytes), i = 0;
    while (b >= 1024 && i < units.length - 1) {
      b /= 1024;
      i++;
    }
    return i === 0 ? b + " B" : b.toFixed(1) + " " + units[i];
  }

  function formatRate(bps) {
    var b = num(bps);
    if (b >= 1048576) return (b / 1048576).toFixed(1) + " MiB/s";
    if (b >= 1024) return (b / 1024).toFixed(b >= 10240 ? 0 : 1) + " KiB/s";
    return Math.round(b) + " B/s";
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function formatClock(d) {
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }

  function formatWhen(ms) {
    var d = new Date(num(ms));
    var now = new Date();
    var t = formatClock(d);
    if (d.toDateString() !== now.toDateString()) {
      t = d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + t;
    }
    return t;
  }

  // "ip:port" or "[v6]:port" → [host, port].
  function splitAddr(addr) {
    var a = str(addr);
    var i = a.lastIndexOf(":");
    if (i < 0) return [a, ""];
    return [a.slice(0, i), a.slice(i + 1)];
  }

  // A sort key: IPv4 octets and the port zero-padded, so 10.0.0.9 < 10.0.0.10.
  function addrKey(addr) {
    var hp = splitAddr(addr);
    var host = hp[0];
    var m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
    if (m) {
      host = "4:" + [m[1], m[2], m[3], m[4]].map(function (o) {
        return ("00" + o).slice(-3);
      }).join(".");
    } else {
      host = "6:" + host.toLowerCase();
    }
    return host + "#" + ("0000" + hp[1]).slice(-5);
  }

  // ----------------------------------------------------------------- state

  var infoHash = null;
  var polls = 0;
  var lastOk = null; // Date of the last good reply
  var failingSince = null;
  var lastData = null;

  function setState(state, text) {
    var s = $("status");
    s.setAttribute("data-state", state);
    s.textContent = text;
    document.body.setAttribute("data-state", state);
  }

  function showMessage(kind, text) {
    var m = $("message");
    if (!kind) {
      m.hidden = true;
      m.textContent = "";
      m.removeAttribute("data-kind");
      return;
    }
    m.hidden = false;
    m.setAttribute("data-kind", kind);
    m.textContent = text;
  }

  // Old data stays in view, dimmed; with none yet the empty panels hide.
  function dim(on) {
    $("live").classList.toggle("dim", on);
    $("live").hidden = on && !lastData;
  }

  // ------------------------------------------------------------- polling

  function start() {
    buildScale();
    var m = /^\/swarm\/([0-9a-fA-F]{40})\/?$/.exec(location.pathname);
    if (!m) {
      setState("invalid", "No swarm");
      showMessage(
        "invalid",
        "This address names no swarm: it should be /swarm/ followed by the 40 hexadecimal digits of an info hash. The list of swarms is on the home page."
      );
      dim(true);
      return;
    }
    infoHash = m[1].toLowerCase();
    $("info-hash").textContent = infoHash;
    $("name").textContent = "Swarm " + infoHash.slice(0, 12) + "…";
    poll();
  }

  function schedule() {
    setTimeout(poll, document.hidden ? POLL_HIDDEN_MS : POLL_MS);
  }

  function poll() {
    polls++;
    document.body.setAttribute("data-polls", String(polls));
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () {
      if (ctrl) ctrl.abort();
    }, FETCH_TIMEOUT_MS);
    fetch("/api/swarms/" + infoHash, {
      cache: "no-store",
      headers: { Accept: "application/json" },
      signal: ctrl ? ctrl.signal : undefined,
    })
      .then(function (res) {
        if (res.status === 404) {
          return res.json().then(
            function (body) {
              unknownSwarm(body && body.error);
            },
            function () {
              unknownSwarm(null);
            }
          );
        }
        if (!res.ok) {
          return res.text().then(function (t) {
            var why = "HTTP " + res.status;
            try {
              var e = JSON.parse(t).error;
              if (e) why += ": " + e;
            } catch (ignored) {
              /* not JSON: the status says enough */
            }
            throw new Error(why);
          });
        }
        return res.json().then(function (data) {
          if (!data || typeof data !== "object" || Array.isArray(data)) {
            throw new Error("the tracker's reply is not a swarm");
          }
          live(data);
        });
      })
      .catch(function (err) {
        unreachable(err);
      })
      .then(function () {
        clearTimeout(timer);
        schedule();
      });
  }

  function live(data) {
    lastOk = new Date();
    failingSince = null;
    lastData = data;
    showMessage(null);
    dim(false);
    setState("live", "Live · updated " + formatClock(lastOk));
    render(data);
  }

  function unknownSwarm(error) {
    failingSince = null;
    setState("unknown", "Unknown swarm · checking every second");
    var text =
      "The tracker knows no swarm with info hash " + infoHash + " (no peer has registered it, or every peer has left)." +
      " This page keeps checking and shows the swarm as soon as a peer joins.";
    if (error) text += " The tracker said: " + error;
    showMessage("unknown", text);
    dim(true);
    if (!lastData) $("summary").hidden = true;
  }

  function unreachable(err) {
    if (!failingSince) failingSince = new Date();
    var why = err && err.name === "AbortError" ? "no answer within " + FETCH_TIMEOUT_MS / 1000 + " s" : str(err && err.message) || "network error";
    setState("unreachable", "Tracker unreachable · retrying every second");
    var text =
      "Cannot reach the tracker's web server at " + location.host + " since " + formatClock(failingSince) + " (" + why + ")." +
      " Retrying every second;";
    text += lastOk ? " the data below is from " + formatClock(lastOk) + "." : " nothing to show yet.";
    showMessage("unreachable", text);
    dim(true);
  }

  // --------------------------------------------------------------- header

  function renderHeader(d) {
    var name = str(d.name) || "(unnamed file)";
    $("name").textContent = name;
    document.title = name + " · swarm · minitorrent tracker";
    $("summary").hidden = false;
    $("seeders").textContent = String(num(d.seeders));
    $("leechers").textContent = String(num(d.leechers));
    $("completed").textContent = d.completed === undefined || d.completed === null ? "–" : String(num(d.completed));
    $("size").textContent = formatSize(d.size);
    if (d.info_hash) $("info-hash").textContent = str(d.info_hash);

    var magnet = str(d.magnet);
    var a = $("magnet");
    if (/^magnet:/i.test(magnet)) {
      a.href = magnet;
      a.hidden = false;
      $("copy-magnet").hidden = false;
    } else {
      a.removeAttribute("href");
      a.hidden = true;
      $("copy-magnet").hidden = true;
    }
    var t = $("torrent");
    var url = str(d.torrent);
    if (url && /^(\/|https?:\/\/)/i.test(url)) {
      t.href = url;
      // (a file name for browsers that honour it; the server's may win)
      t.setAttribute("download", name.replace(/[\/\\:*?"<>|\x00-\x1f]/g, "_") + ".torrent");
      t.hidden = false;
      $("no-torrent").hidden = true;
    } else {
      t.removeAttribute("href");
      t.hidden = true;
      $("no-torrent").hidden = false;
    }
  }

  function copyMagnet() {
    var text = $("magnet").getAttribute("href") || "";
    var out = $("copy-result");
    if (!text) return;
    function done(ok) {
      out.textContent = ok ? "Copied." : "Could not copy: select the link and copy it by hand.";
      setTimeout(function () {
        out.textContent = "";
      }, 4000);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          done(true);
        },
        function () {
          done(fallbackCopy(text));
        }
      );
    } else {
      // Plain http on a LAN is not a secure context: no Clipboard API.
      done(fallbackCopy(text));
    }
  }

  function fallbackCopy(text) {
    var ta = el("textarea", { readonly: "", style: "position:fixed;top:-1000px;opacity:0" });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(ta);
    return ok;
  }

  // ---------------------------------------------------------------- peers

  function sortedPeers(d) {
    var peers = arr(d.peers).filter(function (p) {
      return p && typeof p === "object" && p.addr;
    });
    peers.sort(function (a, b) {
      var ka = addrKey(a.addr), kb = addrKey(b.addr);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    return peers;
  }

  function progressOf(p) {
    if (p.seeder) return 1;
    if (p.progress === null || p.progress === undefined) return null;
    return Math.max(0, Math.min(1, num(p.progress)));
  }

  function pctText(pr) {
    if (pr === null) return "?";
    if (pr >= 1) return "100%";
    return Math.min(99, Math.floor(pr * 100)) + "%";
  }

  function reportText(p) {
    if (p.reporting) return "reporting";
    if (p.protocol === "bep15" || p.protocol === "http") return "no STATS";
    if (p.protocol === "unknown") return "not registered";
    return "not reporting";
  }

  function renderPeers(peers, d) {
    var tbody = $("peers").tBodies[0];
    var rows = document.createDocumentFragment();
    peers.forEach(function (p) {
      var pr = progressOf(p);
      var role = p.seeder ? "seeder" : "leecher";
      var fill = el("span", { style: "width:" + (pr === null ? 0 : (pr * 100).toFixed(1)) + "%" });
      var bar = el("div", { class: "bar", "data-role": role, title: pr === null ? "progress not reported" : (pr * 100).toFixed(1) + "%" }, fill, el("b", null, pctText(pr)));
      var client = str(p.client) || "unknown client";
      var rates = p.reporting || num(p.down_rate) || num(p.up_rate);
      rows.appendChild(
        el(
          "tr",
          { "data-addr": str(p.addr), "data-role": role, "data-reporting": p.reporting ? "true" : "false", "data-protocol": str(p.protocol) },
          el("td", null, el("span", { class: "mono" }, str(p.addr)), el("br"), el("span", { class: "role", "data-role": role }, role)),
          el("td", null, client, p.peer_id ? el("span", { class: "client-id mono" }, str(p.peer_id)) : null),
          el("td", null, bar),
          el("td", { class: "num" }, rates ? formatRate(p.down_rate) : "–"),
          el("td", { class: "num" }, rates ? formatRate(p.up_rate) : "–"),
          el("td", null, PROTOCOL_TEXT[p.protocol] || str(p.protocol) || "unknown", el("span", { class: "sub" }, reportText(p)))
        )
      );
    });
    if (!peers.length) {
      rows.appendChild(el("tr", null, el("td", { colspan: "6", class: "note" }, "No peers right now.")));
    }
    tbody.textContent = "";
    tbody.appendChild(rows);
    $("peer-count").textContent = "(" + peers.length + ")";
    $("truncated").hidden = !d.truncated;
  }

  // ---------------------------------------------------------------- graph

  // Nodes keyed by address keep their position between refreshes; when the
  // set of peers changes they glide to their new place on the circle.
  var nodes = new Map(); // addr -> {g, x, y, tx, ty, r}
  var edges = new Map(); // "from>to" -> {g, path, arrow, from, to, w}
  var layers = null;
  var clipSeq = 0;
  var animating = false;

  function graphLayers() {
    if (layers) return layers;
    var root = $("graph");
    root.textContent = "";
    layers = {
      edges: svg("g", { class: "edges" }),
      nodes: svg("g", { class: "nodes" }),
      empty: svg("text", { class: "graph-empty", x: CX, y: CY }),
    };
    root.appendChild(layers.edges);
    root.appendChild(layers.nodes);
    root.appendChild(layers.empty);
    return layers;
  }

  function nodeRadius(n) {
    if (n <= 1) return 56;
    var around = (2 * Math.PI * RING) / n;
    return Math.max(12, Math.min(52, around * 0.36));
  }

  function shortLabels(peers) {
    var hosts = {};
    peers.forEach(function (p) {
      hosts[splitAddr(p.addr)[0]] = true;
    });
    var oneHost = Object.keys(hosts).length === 1;
    return function (addr) {
      return oneHost ? ":" + splitAddr(addr)[1] : str(addr);
    };
  }

  function renderGraph(peers, d) {
    var L = graphLayers();
    var n = peers.length;
    var r = nodeRadius(n);
    var label = shortLabels(peers);
    var seen = new Set();

    peers.forEach(function (p, i) {
      var addr = str(p.addr);
      seen.add(addr);
      var angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, n);
      var ring = n <= 1 ? 0 : RING;
      var tx = CX + ring * Math.cos(angle), ty = CY + ring * Math.sin(angle);
      var node = nodes.get(addr);
      if (!node) {
        node = { g: svg("g", { class: "node" }), x: tx, y: ty, clip: "swarm-clip-" + ++clipSeq };
        nodes.set(addr, node);
        L.nodes.appendChild(node.g);
      }
      node.tx = tx;
      node.ty = ty;
      node.r = r;
      node.angle = angle;
      drawNode(node, p, r, label(addr), n);
    });
    nodes.forEach(function (node, addr) {
      if (!seen.has(addr)) {
        node.g.remove();
        nodes.delete(addr);
      }
    });

    // Edges: thickness from the bytes of the window, relative to the largest.
    var win = num(d.window_secs) || 10;
    $("edge-legend").textContent = "data sent (thicker = more bytes in the last " + win + " s)";
    var list = arr(d.edges).filter(function (e) {
      return e && nodes.has(str(e.from)) && nodes.has(str(e.to)) && str(e.from) !== str(e.to) && num(e.bytes) > 0;
    });
    var max = 0;
    list.forEach(function (e) {
      max = Math.max(max, num(e.bytes));
    });
    var live = new Set();
    list.forEach(function (e) {
      var key = str(e.from) + ">" + str(e.to);
      live.add(key);
      var edge = edges.get(key);
      if (!edge) {
        edge = { g: svg("g", { class: "edge-g" }), path: svg("path", { class: "edge" }), arrow: svg("polygon", { class: "arrow", fill: "#e07000" }), title: svg("title") };
        edge.g.appendChild(edge.title);
        edge.g.appendChild(edge.path);
        edge.g.appendChild(edge.arrow);
        edge.from = str(e.from);
        edge.to = str(e.to);
        edges.set(key, edge);
        L.edges.appendChild(edge.g);
      }
      var b = num(e.bytes);
      // (thin enough for small nodes when the swarm is big)
      edge.w = 2 + Math.min(16, r * 0.5) * Math.sqrt(b / max);
      setAttrs(edge.g, { "data-from": edge.from, "data-to": edge.to, "data-bytes": b });
      edge.path.setAttribute("stroke-width", edge.w.toFixed(1));
      edge.title.textContent = edge.from + " → " + edge.to + ": " + formatSize(b) + " in the last " + win + " s (" + formatRate(b / win) + ")";
    });
    edges.forEach(function (edge, key) {
      if (!live.has(key)) {
        edge.g.remove();
        edges.delete(key);
      }
    });

    L.empty.textContent = n === 0 ? "No peers right now" : "";
    place();
    if (!animating) {
      animating = true;
      requestAnimationFrame(step);
    }
  }

  function drawNode(node, p, r, label, n) {
    var role = p.seeder ? "seeder" : "leecher";
    var pr = progressOf(p);
    setAttrs(node.g, {
      "data-addr": str(p.addr),
      "data-role": role,
      "data-progress": pr === null ? "" : pr.toFixed(3),
      "data-reporting": p.reporting ? "true" : "false",
    });
    var g = node.g;
    g.textContent = "";
    var shape = function (cls) {
      return p.seeder
        ? svg("rect", { class: cls, x: -r, y: -r, width: 2 * r, height: 2 * r, rx: r * 0.25 })
        : svg("circle", { class: cls, r: r });
    };
    var clip = svg("clipPath", { id: node.clip });
    clip.appendChild(shape(null));
    g.appendChild(clip);
    g.appendChild(shape("node-bg"));
    var h = pr === null ? 0 : 2 * r * pr;
    g.appendChild(svg("rect", { class: "node-fill", "clip-path": "url(#" + node.clip + ")", x: -r, y: r - h, width: 2 * r, height: h }));
    var outline = shape("node-shape");
    outline.setAttribute("fill", "none");
    g.appendChild(outline);
    if (r >= 22) {
      var pct = svg("text", { class: "node-pct", x: 0, y: 0 });
      pct.textContent = pctText(pr);
      g.appendChild(pct);
    }
    // The label outside the circle of peers, away from the centre.
    var lx = 0, ly = r + 24;
    if (n > 1) {
      var dist = r + 26;
      lx = Math.cos(node.angle) * dist;
      ly = Math.sin(node.angle) * dist + 8;
      if (Math.abs(Math.cos(node.angle)) > 0.3) lx += Math.cos(node.angle) * label.length * 5;
    }
    // (past about two dozen peers the labels would overlap: the table and
    // each node's tooltip still name them)
    if (n <= 24) {
      var text = svg("text", { class: "node-label", x: lx.toFixed(1), y: ly.toFixed(1) });
      text.textContent = label;
      g.appendChild(text);
    }
    var title = svg("title");
    title.textContent =
      str(p.addr) + " · " + (str(p.client) || "unknown client") + " · " + role + " · " + (pr === null ? "progress not reported" : (pr * 100).toFixed(1) + "%") +
      " · ↓ " + formatRate(p.down_rate) + " ↑ " + formatRate(p.up_rate);
    g.appendChild(title);
  }

  // Moves every node to its current position and redraws the edges.
  function place() {
    nodes.forEach(function (node) {
      node.g.setAttribute("transform", "translate(" + node.x.toFixed(1) + " " + node.y.toFixed(1) + ")");
    });
    edges.forEach(function (edge) {
      var a = nodes.get(edge.from), b = nodes.get(edge.to);
      if (!a || !b) return;
      drawEdge(edge, a, b);
    });
  }

  // A slightly bent line from a to b (so a→b and b→a do not overlap), ending
  // in an arrowhead at b's border.
  function drawEdge(edge, a, b) {
    var dx = b.x - a.x, dy = b.y - a.y;
    var len = Math.sqrt(dx * dx + dy * dy) || 1;
    var nx = -dy / len, ny = dx / len;
    var bend = Math.min(60, len * 0.15);
    var cx = (a.x + b.x) / 2 + nx * bend, cy = (a.y + b.y) / 2 + ny * bend;
    var s = unit(cx - a.x, cy - a.y), t = unit(b.x - cx, b.y - cy);
    var sx = a.x + s[0] * (a.r + 4), sy = a.y + s[1] * (a.r + 4);
    var tipx = b.x - t[0] * (b.r + 4), tipy = b.y - t[1] * (b.r + 4);
    var head = Math.max(8, Math.min(14 + edge.w * 1.4, b.r * 1.2));
    var ex = tipx - t[0] * head * 0.7, ey = tipy - t[1] * head * 0.7;
    edge.path.setAttribute("d", "M" + f(sx) + " " + f(sy) + " Q" + f(cx) + " " + f(cy) + " " + f(ex) + " " + f(ey));
    var bx = tipx - t[0] * head, by = tipy - t[1] * head;
    var w = head * 0.55;
    edge.arrow.setAttribute(
      "points",
      f(tipx) + "," + f(tipy) + " " + f(bx + t[1] * w) + "," + f(by - t[0] * w) + " " + f(bx - t[1] * w) + "," + f(by + t[0] * w)
    );
  }

  function unit(x, y) {
    var l = Math.sqrt(x * x + y * y) || 1;
    return [x / l, y / l];
  }

  function f(v) {
    return v.toFixed(1);
  }

  function step() {
    var moving = false;
    nodes.forEach(function (node) {
      var dx = node.tx - node.x, dy = node.ty - node.y;
      if (Math.abs(dx) > 0.5 || Math.abs(dy) > 0.5) {
        node.x += dx * 0.15;
        node.y += dy * 0.15;
        moving = true;
      } else {
        node.x = node.tx;
        node.y = node.ty;
      }
    });
    place();
    if (moving) {
      requestAnimationFrame(step);
    } else {
      animating = false;
    }
  }

  // --------------------------------------------------------- availability

  var BUCKETS = 7; // 0, 1, ..., 5, 6 or more

  function buildScale() {
    var scale = $("scale");
    scale.textContent = "";
    scale.appendChild(el("span", null, "Held by:"));
    for (var k = 0; k < BUCKETS; k++) {
      var text = k === 0 ? "nobody" : k === 1 ? "1 peer (rarest)" : k === BUCKETS - 1 ? k + "+ peers" : k + " peers";
      scale.appendChild(el("span", { "data-count": String(k) }, el("span", { class: "cell a" + k }), text));
    }
  }

  function renderPieces(d) {
    var avail = arr(d.availability).map(num);
    var box = $("pieces");
    var n = avail.length;
    var empty = $("pieces-empty");
    if (!n) {
      box.textContent = "";
      $("pieces-note").textContent = "";
      empty.hidden = false;
      empty.textContent =
        "No piece map yet: peers send theirs with STATS while they transfer (the tracker keeps none for files of more than 16384 pieces, nor for BEP 15 or HTTP announcers).";
      return;
    }
    empty.hidden = true;
    var per = Math.ceil(n / MAX_CELLS);
    var cells = Math.ceil(n / per);
    box.style.setProperty("--cell", cells <= 200 ? "26px" : cells <= 800 ? "16px" : "10px");
    while (box.children.length > cells) box.removeChild(box.lastChild);
    while (box.children.length < cells) box.appendChild(el("div", { class: "cell" }));
    var rarest = Infinity, once = 0, none = 0;
    for (var c = 0; c < cells; c++) {
      var lo = c * per, hi = Math.min(n, lo + per);
      var min = Infinity;
      for (var i = lo; i < hi; i++) min = Math.min(min, avail[i]);
      var cell = box.children[c];
      var cls = "cell a" + Math.min(min, BUCKETS - 1);
      if (cell.className !== cls) cell.className = cls;
      if (cell.getAttribute("data-count") !== String(min)) {
        cell.setAttribute("data-count", String(min));
        cell.title = (per === 1 ? "piece " + lo : "pieces " + lo + "–" + (hi - 1) + ", rarest") + ": held by " + min + (min === 1 ? " peer" : " peers");
      }
    }
    avail.forEach(function (k) {
      rarest = Math.min(rarest, k);
      if (k === 1) once++;
      if (k === 0) none++;
    });
    var note = "(" + n + " pieces";
    if (per > 1) note += "; one cell per " + per + " pieces, coloured by the rarest";
    note += "; rarest held by " + rarest + (rarest === 1 ? " peer" : " peers");
    if (once) note += "; " + once + " held by only one peer";
    if (none) note += "; " + none + " held by nobody who reports";
    $("pieces-note").textContent = note + ")";
  }

  // --------------------------------------------------------------- events

  function renderEvents(d) {
    var list = $("events");
    var items = arr(d.events).filter(function (e) {
      return e && typeof e === "object";
    }).slice(0, MAX_EVENTS);
    var frag = document.createDocumentFragment();
    items.forEach(function (e) {
      var kind = str(e.kind);
      frag.appendChild(
        el(
          "li",
          { "data-kind": kind, "data-peer": str(e.peer) },
          el("span", { class: "ev-time" }, formatWhen(e.at_ms)),
          el("span", { class: "ev-kind" }, KIND_TEXT[kind] || kind || "event"),
          el("span", { class: "mono" }, str(e.peer))
        )
      );
    });
    list.textContent = "";
    list.appendChild(frag);
    $("events-empty").hidden = items.length > 0;
  }

  // --------------------------------------------------------------- render

  function render(d) {
    renderHeader(d);
    var peers = sortedPeers(d);
    renderPeers(peers, d);
    renderGraph(peers, d);
    renderPieces(d);
    renderEvents(d);
  }

  $("copy-magnet").addEventListener("click", copyMagnet);
  start();
})();
