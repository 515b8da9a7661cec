// The alert console's page: a WebSocket feed of alerts and events, filters, a detail view
// with the snapshots, a map and the history, and acknowledge / resolve as POSTs with the
// CSRF token. All text from the stores goes in with textContent, never as HTML.
(function () {
  "use strict";

  var state = {
    alerts: new Map(),   // uid -> alert
    events: new Map(),   // uid -> [event]
    seenEvents: new Set(),
    selected: null,
    csrf: null, csrfHeader: "X-CSRF-Token",
    filter: {status: "", label: "", since: "", until: ""},
    maps: new Map(),     // world -> map data, or null while loading / unknown
    booted: false,
  };
  var thumbs = new Map();  // uid -> <img>
  var $ = function (id) { return document.getElementById(id); };
  var SVG = "http://www.w3.org/2000/svg";
  var LABEL_TEXT = {unmasked: "unmasked", incorrect: "mask below nose", masked: "masked"};

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function statusOf(uid) {
    var kinds = (state.events.get(uid) || []).map(function (e) { return e.kind; });
    if (kinds.indexOf("resolve") >= 0) return "resolved";
    if (kinds.indexOf("acknowledge") >= 0) return "acknowledged";
    return "open";
  }
  function toUtc(local) {  // datetime-local value (local time) -> "YYYY-MM-DDTHH:MM:SSZ"
    if (!local) return "";
    var d = new Date(local);
    return isNaN(d) ? "" : d.toISOString().slice(0, 19) + "Z";
  }
  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    var secs = Math.round((Date.now() - d.getTime()) / 1000);
    var ago = secs < 60 ? "just now" : secs < 3600 ? Math.floor(secs / 60) + " min ago"
      : secs < 86400 ? Math.floor(secs / 3600) + " h ago" : Math.floor(secs / 86400) + " d ago";
    var today = d.toDateString() === new Date().toDateString();
    return (today ? d.toLocaleTimeString() : d.toLocaleString()) + " · " + ago;
  }
  function matches(a) {
    var f = state.filter;
    var t = a.wall_time.replace(/Z$/, "");
    return (!f.status || statusOf(a.uid) === f.status) && (!f.label || a.label === f.label)
      && (!f.since || t >= f.since.replace(/Z$/, "")) && (!f.until || t <= f.until.replace(/Z$/, ""));
  }
  function sorted() {
    return Array.from(state.alerts.values()).sort(function (a, b) {
      return a.wall_time < b.wall_time ? 1 : a.wall_time > b.wall_time ? -1 : b.id - a.id;
    });
  }

  // ---- rendering --------------------------------------------------------------------
  function renderCounts() {
    var n = {open: 0, acknowledged: 0, resolved: 0};
    state.alerts.forEach(function (a) { n[statusOf(a.uid)] += 1; });
    Object.keys(n).forEach(function (k) { $("count-" + k).textContent = n[k]; });
    document.title = (n.open ? "(" + n.open + ") " : "") + "Alerts · mask_patrol";
  }

  function alertItem(a, fresh) {
    var li = el("li", "alert" + (a.uid === state.selected ? " selected" : "") + (fresh ? " fresh" : ""));
    li.dataset.uid = a.uid;
    li.dataset.robot = a.robot;
    li.dataset.label = a.label;
    var status = statusOf(a.uid);
    li.dataset.status = status;
    if (a.face_url) {
      // one <img> per alert, moved between renders, so a face is fetched once (no-store)
      var img = thumbs.get(a.uid);
      if (!img || img.getAttribute("src") !== a.face_url) {
        img = el("img", "thumb");
        img.src = a.face_url;
        img.alt = "face of track " + a.track_id;
        thumbs.set(a.uid, img);
      }
      li.appendChild(img);
    } else {
      li.appendChild(el("div", "thumb gone", "purged"));
    }
    var mid = el("div");
    var line1 = el("div", "line1");
    line1.appendChild(el("span", "tag " + a.label, LABEL_TEXT[a.label] || a.label));
    line1.appendChild(el("span", "", (a.score * 100).toFixed(0) + "%"));
    line1.appendChild(el("span", "muted", "track " + a.track_id));
    mid.appendChild(line1);
    mid.appendChild(el("div", "line2", a.robot + " · #" + a.id + " · " + when(a.wall_time)));
    li.appendChild(mid);
    li.appendChild(el("span", "pill " + status, status));
    li.addEventListener("click", function () { select(a.uid); });
    return li;
  }

  function renderList(freshUid) {
    var list = $("alerts");
    var shown = sorted().filter(matches);
    list.replaceChildren.apply(list, shown.map(function (a) { return alertItem(a, a.uid === freshUid); }));
    $("shown").textContent = shown.length + (shown.length === 1 ? " alert" : " alerts");
    $("empty").hidden = shown.length > 0;
    renderCounts();
    updateExportLinks();
  }

  function fact(dl, name, value) {
    dl.appendChild(el("dt", "", name));
    dl.appendChild(el("dd", "", value));
  }

  function renderDetail() {
    var a = state.selected && state.alerts.get(state.selected);
    $("detail").hidden = !a;
    $("nothing").hidden = !!a;
    if (!a) return;
    var status = statusOf(a.uid);
    $("d-title").textContent = "Alert #" + a.id + " · " + (LABEL_TEXT[a.label] || a.label) + " · " + a.robot;
    $("d-status").className = "pill " + status;
    $("d-status").textContent = status;
    setImage($("d-face"), a.face_url);
    setImage($("d-frame"), a.frame_url);
    var dl = $("d-facts");
    dl.replaceChildren();
    fact(dl, "Time (local)", new Date(a.wall_time).toLocaleString());
    fact(dl, "Time (UTC)", a.wall_time);
    fact(dl, "Label", (LABEL_TEXT[a.label] || a.label) + ", score " + a.score.toFixed(2));
    fact(dl, "Track", String(a.track_id));
    fact(dl, "Robot pose", a.pose ? "x " + a.pose.x.toFixed(2) + " m, y " + a.pose.y.toFixed(2)
      + " m, heading " + (a.pose.yaw * 180 / Math.PI).toFixed(0) + "°" : "unknown");
    fact(dl, "Robot", a.robot + (a.world ? " · " + a.world : ""));
    fact(dl, "Session", a.session);
    var history = $("d-history");
    var events = state.events.get(a.uid) || [];
    history.replaceChildren();
    var raised = el("li", "raised");
    raised.appendChild(el("div", "", "Raised by " + a.robot));
    raised.appendChild(el("div", "when", when(a.wall_time)));
    history.appendChild(raised);
    events.forEach(function (e) {
      var li = el("li", e.kind);
      var verb = {acknowledge: "Acknowledged", resolve: "Resolved", purge: "Snapshots purged"}[e.kind] || e.kind;
      li.appendChild(el("div", "", verb + " by " + e.actor));
      li.appendChild(el("div", "when", when(e.wall_time)));
      if (e.note) li.appendChild(el("div", "note", e.note));
      li.dataset.kind = e.kind;
      history.appendChild(li);
    });
    $("ack-btn").disabled = status !== "open";
    $("resolve-btn").disabled = status === "resolved";
    renderMap(a);
  }

  function setImage(img, url) {
    if (url) {
      if (img.getAttribute("src") !== url) img.src = url;
      img.hidden = false;
    } else {
      img.removeAttribute("src");
      img.alt = "snapshot purged";
    }
  }

  // ---- the map: the world's walls when known, every alert's robot pose, the selected one big
  function renderMap(a) {
    var map = $("map");
    map.replaceChildren();
    var world = a.world && /^[A-Za-z0-9_]+$/.test(a.world) ? a.world : "";
    var data = world ? state.maps.get(world) : null;
    if (world && !state.maps.has(world)) {
      state.maps.set(world, null);
      fetch("/api/map/" + world, {credentials: "same-origin"}).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (d) {
        state.maps.set(world, d);
        if (state.selected === a.uid) renderMap(a);
      }).catch(function () {});
    }
    var poses = Array.from(state.alerts.values()).filter(function (b) {
      return b.pose && b.world === a.world && b.store === a.store;
    });
    var bounds;
    if (data) {
      bounds = data.bounds.slice();
    } else {
      var xs = poses.map(function (b) { return b.pose.x; }), ys = poses.map(function (b) { return b.pose.y; });
      if (!xs.length) { xs = [0]; ys = [0]; }
      bounds = [Math.min.apply(null, xs) - 2, Math.max.apply(null, xs) + 2,
                Math.min.apply(null, ys) - 2, Math.max.apply(null, ys) + 2];
    }
    var W = 320, H = 220, pad = 10;
    var scale = Math.min((W - 2 * pad) / Math.max(bounds[1] - bounds[0], 1),
                         (H - 2 * pad) / Math.max(bounds[3] - bounds[2], 1));
    var ox = (W - scale * (bounds[1] - bounds[0])) / 2, oy = (H - scale * (bounds[3] - bounds[2])) / 2;
    function px(x, y) { return [ox + (x - bounds[0]) * scale, H - oy - (y - bounds[2]) * scale]; }
    $("map-world").textContent = data ? data.world + " (walls from the scenario)" :
      (a.pose ? "odometry frame, 1 m grid" : "robot pose unknown");
    if (!data) {
      for (var gx = Math.ceil(bounds[0]); gx <= bounds[1]; gx++) {
        var p = px(gx, 0);
        map.appendChild(svg("line", {x1: p[0], y1: 0, x2: p[0], y2: H, stroke: "#e5e7eb"}));
      }
      for (var gy = Math.ceil(bounds[2]); gy <= bounds[3]; gy++) {
        var q = px(0, gy);
        map.appendChild(svg("line", {x1: 0, y1: q[1], x2: W, y2: q[1], stroke: "#e5e7eb"}));
      }
    } else {
      data.shapes.forEach(function (s) {
        var c = px(s.x, s.y);
        if (s.kind === "box") {
          var w = s.sx * scale, h = s.sy * scale;
          map.appendChild(svg("rect", {x: c[0] - w / 2, y: c[1] - h / 2, width: w, height: h, fill: "#6b7280",
            transform: "rotate(" + (-s.yaw * 180 / Math.PI) + " " + c[0] + " " + c[1] + ")"}));
        } else {
          map.appendChild(svg("circle", {cx: c[0], cy: c[1], r: s.r * scale, fill: "#6b7280"}));
        }
      });
      if (data.route.length > 1) {
        var pts = data.route.concat([data.route[0]]).map(function (r) { return px(r[0], r[1]).join(","); });
        map.appendChild(svg("polyline", {points: pts.join(" "), fill: "none", stroke: "#93c5fd",
          "stroke-dasharray": "4 3", "stroke-width": 1.5}));
      }
    }
    poses.forEach(function (b) {
      if (b.uid === a.uid) return;
      var c = px(b.pose.x, b.pose.y);
      map.appendChild(svg("circle", {cx: c[0], cy: c[1], r: 3.5, fill: "#9ca3af"}));
    });
    if (a.pose) {
      var c = px(a.pose.x, a.pose.y);
      var tip = px(a.pose.x + 0.8 * Math.cos(a.pose.yaw), a.pose.y + 0.8 * Math.sin(a.pose.yaw));
      map.appendChild(svg("line", {x1: c[0], y1: c[1], x2: tip[0], y2: tip[1], stroke: "#dc2626", "stroke-width": 2.5}));
      map.appendChild(svg("circle", {cx: c[0], cy: c[1], r: 6, fill: "#dc2626", stroke: "#fff", "stroke-width": 2,
        id: "map-robot"}));
    }
  }

  function select(uid) {
    state.selected = uid;
    $("act-msg").textContent = "";
    renderList();
    renderDetail();
  }

  // ---- filters and exports ----------------------------------------------------------
  function query() {
    var f = state.filter, parts = [];
    ["status", "label", "since", "until"].forEach(function (k) {
      if (f[k]) parts.push(k + "=" + encodeURIComponent(f[k]));
    });
    return parts.join("&");
  }
  function updateExportLinks() {
    var q = query();
    $("export-csv").href = "/api/export?format=csv" + (q ? "&" + q : "");
    $("export-json").href = "/api/export?format=json" + (q ? "&" + q : "");
  }
  Array.prototype.forEach.call(document.querySelectorAll("#status-filter button"), function (b) {
    b.addEventListener("click", function () {
      Array.prototype.forEach.call(document.querySelectorAll("#status-filter button"),
        function (o) { o.classList.toggle("on", o === b); });
      state.filter.status = b.dataset.status;
      renderList();
    });
  });
  $("label-filter").addEventListener("change", function (e) { state.filter.label = e.target.value; renderList(); });
  $("since-filter").addEventListener("change", function (e) { state.filter.since = toUtc(e.target.value); renderList(); });
  $("until-filter").addEventListener("change", function (e) { state.filter.until = toUtc(e.target.value); renderList(); });

  // ---- acknowledge / resolve --------------------------------------------------------
  $("actor").value = localStorage.getItem("mask_patrol.actor") || "";
  function act(action) {
    var a = state.alerts.get(state.selected);
    var actor = $("actor").value.trim();
    if (!a) return;
    if (!actor) { $("act-msg").textContent = "Write your name first."; $("actor").focus(); return; }
    localStorage.setItem("mask_patrol.actor", actor);
    var headers = {"Content-Type": "application/json"};
    headers[state.csrfHeader] = state.csrf;
    $("act-msg").textContent = "saving…";
    fetch("/api/alerts/" + a.store + "/" + a.id + "/" + action, {
      method: "POST", credentials: "same-origin", headers: headers,
      body: JSON.stringify({by: actor, note: $("note").value}),
    }).then(function (r) {
      return r.text().then(function (t) {
        if (!r.ok) throw new Error(t.trim() || r.statusText);
        onEvent(JSON.parse(t));
        $("note").value = "";
        $("act-msg").textContent = (action === "resolve" ? "Resolved." : "Acknowledged.");
      });
    }).catch(function (err) { $("act-msg").textContent = "Not saved: " + err.message; });
  }
  $("ack-btn").addEventListener("click", function () { act("acknowledge"); });
  $("resolve-btn").addEventListener("click", function () { act("resolve"); });

  // ---- the feed ---------------------------------------------------------------------
  function onAlert(a, fresh) {
    state.alerts.set(a.uid, a);
    if (!fresh) return;
    renderList(a.uid);
    if (state.selected === a.uid) renderDetail();
  }
  function onEvent(e) {
    var key = e.store + ":" + e.id;
    if (state.seenEvents.has(key)) return;
    state.seenEvents.add(key);
    var list = state.events.get(e.uid) || [];
    list.push(e);
    list.sort(function (x, y) { return x.id - y.id; });
    state.events.set(e.uid, list);
    renderList();
    if (state.selected === e.uid) renderDetail();
  }
  function renderRobots(stores) {
    $("robots").replaceChildren.apply($("robots"), stores.map(function (s) {
      var chip = el("span", "robot-chip", s.robot);
      chip.title = s.path;
      return chip;
    }));
  }

  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onmessage = function (msg) {
      var m = JSON.parse(msg.data);
      if (m.type === "hello") {
        state.alerts.clear(); state.events.clear(); state.seenEvents.clear();
        renderRobots(m.stores);
        m.alerts.forEach(function (a) { onAlert(a, false); });
        m.events.forEach(function (e) {
          state.seenEvents.add(e.store + ":" + e.id);
          var list = state.events.get(e.uid) || [];
          list.push(e);
          state.events.set(e.uid, list);
        });
        if (!state.selected || !state.alerts.has(state.selected)) {
          var first = sorted()[0];
          state.selected = first ? first.uid : null;
        }
        renderList();
        renderDetail();
        state.booted = true;
      } else if (m.type === "alert") {
        onAlert(m.alert, true);
      } else if (m.type === "event") {
        onEvent(m.event);
      }
      $("live").className = "live on";
      $("live").textContent = "live";
    };
    ws.onopen = function () { $("live").className = "live on"; $("live").textContent = "live"; };
    ws.onclose = function () {
      $("live").className = "live off";
      $("live").textContent = "reconnecting…";
      setTimeout(connect, 1000);
    };
  }

  fetch("/api/session", {credentials: "same-origin"}).then(function (r) {
    if (r.status === 401) throw new Error("not logged in: open the login link that alerts serve printed");
    return r.json();
  }).then(function (s) {
    state.csrf = s.csrf;
    state.csrfHeader = s.csrf_header;
    renderRobots(s.stores);
    connect();
  }).catch(function (err) { $("live").textContent = err.message; });
  setInterval(function () { if (state.booted) renderList(); }, 30000);  // keep "n min ago" fresh
})();
