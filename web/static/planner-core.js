/* The planner's workspace, part 1 of 7: the namespace every planner-*.js script shares
 * (window.zpPl: the page's config, its strings, shared state and small helpers) and the
 * message shown over the map. Load order (planner.html): zp.js, leaflet-i18n.js,
 * planner-core.js, planner-map.js, planner-select.js, planner-draw.js, planner-coords.js,
 * planner-attrs.js, planner.js (the start). No bundler: plain scripts on one object.
 * No inline scripts (CSP); everything shown is built with textContent (no HTML from data). */
(function () {
  "use strict";

  var page = window.zp && zp.config("zp-planner");
  if (!page || !window.L || !L.PM) { return; }
  var cfg = page.cfg;
  var P = {
    root: page.root,
    cfg: cfg,
    T: cfg.text,
    specs: {},
    /* what the planner is doing: the selected feature {name, id}, the drawn draft layer, the
       plot being reshaped {id, layer, feature}, whether a drawing tool is active */
    state: { selected: null, draft: null, editing: null, drawing: false },
    el: zp.el, clear: zp.clear, fmt: zp.fmt, api: zp.api
  };
  cfg.layers.forEach(function (spec) { P.specs[spec.name] = spec; });
  var el = zp.el, clear = zp.clear;

  P.url = function (name, values) { return zp.url(cfg.urls, name, values); };

  P.hectares = function (value) {
    return (Math.round(Number(value || 0) * 100) / 100).toLocaleString(cfg.locale, {
      minimumFractionDigits: 2, maximumFractionDigits: 2 });
  };

  function round9(coords) {
    if (typeof coords[0] === "number") {
      return [Math.round(coords[0] * 1e9) / 1e9, Math.round(coords[1] * 1e9) / 1e9];
    }
    return coords.map(round9);
  }
  /* A corner within EXACT_M of a loaded plot's corner is that corner: geoman snaps in screen
     space and lands a few millimetres off, which would leave slivers between neighbours. */
  var EXACT_M = 0.02;
  function exactCorner(position, skip) {
    if (!P.index || !P.index.plots) { return position; }
    var here = L.latLng(position[1], position[0]);
    var best = null, bestDistance = EXACT_M;
    Object.keys(P.index.plots).forEach(function (id) {
      var plot = P.index.plots[id];
      if (plot === skip || !plot.getBounds().pad(0.01).contains(here)) { return; }
      plot.getLatLngs().forEach(function (ring) {
        ring.forEach(function (corner) {
          var distance = P.map.distance(here, corner);
          if (distance < bestDistance) { bestDistance = distance; best = corner; }
        });
      });
    });
    return best ? [best.lng, best.lat] : position;
  }
  /* a layer's outline as GeoJSON, degrees rounded to 9 decimals (0.1 mm: typed UTM metres
     and snapped corners survive the round trip; Leaflet's default would cut at 10 cm) */
  P.geometryOf = function (layer) {
    var geometry = layer.toGeoJSON(false).geometry;
    geometry.coordinates = round9(geometry.coordinates.map(function (ring) {
      return ring.map(function (position) { return exactCorner(position, layer); });
    }));
    return geometry;
  };

  P.today = function () {
    var d = new Date();
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  };

  // ------------------------------------------------------------------ the message on the map
  var messageBox = document.getElementById("zp-pl-message");
  var messageTimer = null;
  /* kind: ok | error | info; lines: extra sentences; actions: [{label, run}] */
  P.showMessage = function (kind, title, lines, actions) {
    clearTimeout(messageTimer);
    clear(messageBox);
    messageBox.className = "zp-pl-message zp-pl-message-" + kind;
    messageBox.appendChild(el("button", { type: "button", class: "zp-pl-close",
      "aria-label": P.T.close, text: "×", onclick: P.hideMessage }));
    messageBox.appendChild(el("p", { class: "zp-pl-message-title", text: title }));
    if (lines && lines.length) {
      messageBox.appendChild(el("ul", {}, lines.map(function (line) {
        return el("li", { text: line });
      })));
    }
    (actions || []).forEach(function (action) {
      messageBox.appendChild(el("button", { type: "button", class: "btn btn-sm btn-primary",
        text: action.label, onclick: function () { P.hideMessage(); action.run(); } }));
    });
    messageBox.hidden = false;
    if (kind === "ok") { messageTimer = setTimeout(P.hideMessage, 7000); }
  };
  P.hideMessage = function () { messageBox.hidden = true; };

  /* the sentences of a refusal: one per problem, else the error itself */
  P.problemLines = function (body) {
    if (body && body.problems && body.problems.length) {
      return body.problems.map(function (p) { return p.reason || p.message; });
    }
    return [body && body.error ? body.error : String(body)];
  };

  /* 409 on a stale version: say so and offer `reload`; else the server's reasons */
  P.refused = function (response, reload) {
    var body = response.body || {};
    // the store's words (never translated): "... (now version 3, your copy is version 2)"
    var versions = /now version (\d+), your copy is version (\d+)/.exec(body.error || "");
    if (response.status === 409 && versions) {
      P.showMessage("error", P.T.stale,
                    [P.fmt(P.T.staleDetail, { now: versions[1], mine: versions[2] })],
                    reload ? [{ label: P.T.reload, run: reload }] : []);
    } else {
      P.showMessage("error", response.status === 422 ? P.T.not_saved : P.T.failed,
                    P.problemLines(body));
    }
  };
  P.offline = function () { P.showMessage("error", P.T.network, []); };

  /* a definition list of [label, value] rows, empty values left out */
  P.facts = function (rows) {
    var dl = el("dl", { class: "zp-pl-facts" });
    rows.forEach(function (row) {
      if (row[1] === null || row[1] === undefined || row[1] === "") { return; }
      dl.appendChild(el("dt", { text: row[0] }));
      dl.appendChild(el("dd", { text: String(row[1]) }));
    });
    return dl;
  };

  /* servicing sentences "power: SS-12 ..." with the utility in bold */
  P.explainList = function (lines) {
    return el("ul", { class: "zp-pl-explain" }, lines.map(function (line) {
      var cut = line.indexOf(": ");
      if (cut > 0 && cut < 40) {
        return el("li", {}, [el("strong", { text: line.slice(0, cut) }), ": " + line.slice(cut + 2)]);
      }
      return el("li", { text: line });
    }));
  };

  window.zpPl = P;
})();
