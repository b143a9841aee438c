/* The planner's workspace, part 3: selecting a plot or an asset (a click on the map, or on
 * a plot drawn only as tiles), its panel, lifecycle moves and deleting a candidate. */
(function () {
  "use strict";

  var P = window.zpPl;
  if (!P || !P.map) { return; }
  var cfg = P.cfg, T = P.T, specs = P.specs, state = P.state, el = P.el, map = P.map;
  var selPanel = document.getElementById("zp-pl-selected");
  var intro = document.getElementById("zp-pl-intro");
  P.selPanel = selPanel;
  P.intro = intro;

  P.select = function (name, id) {
    P.endEdit(true);
    var previous = state.selected;
    state.selected = { name: name, id: String(id) };
    P.restyle(previous);
    P.restyle(state.selected);
    var layer = P.index[name][state.selected.id];
    if (layer && layer.bringToFront && name !== "plots") { layer.bringToFront(); }
    intro.hidden = true;
    P.renderSelected();
  };
  P.deselect = function () {
    var previous = state.selected;
    state.selected = null;
    P.restyle(previous);
    selPanel.hidden = true;
    intro.hidden = !!state.draft;
  };

  map.on("click", function (e) {
    if (state.drawing || state.editing || map.zpMeasuring) { return; }
    // below plotZoom, or where more plots are in view than one page of outlines holds, plots
    // are tiles: ask the server (a click on an outline stops at the outline)
    var tiles = map.getZoom() < cfg.plotZoom || !P.outlinesShown();
    if (tiles && map.hasLayer(P.groups.plots)) { pickPlot(e.latlng); return; }
    if (state.selected) { P.deselect(); }
  });
  /* a plot drawn only as tiles: ask the server which it is, zoom to it and select it */
  function pickPlot(latlng) {
    var query = "at=" + latlng.lng.toFixed(7) + "," + latlng.lat.toFixed(7) +
      "&zoom=" + Math.round(map.getZoom()) + "&layers=plots";
    return P.api("GET", cfg.urls.pick + "?" + query).then(function (response) {
      var found = response.body;
      if (response.status === 200 && found && found.block) {
        // plots merged into a block at this zoom: zoom in towards the click to tell them apart
        map.setView(latlng, Math.max(map.getZoom() + 2, cfg.plotZoom), { animate: false });
        return;
      }
      if (response.status !== 200 || !found || !found.id) {
        if (state.selected) { P.deselect(); }
        return;
      }
      var bb = found.bbox;
      var tries = 0;
      function selectWhenLoaded() {
        if (P.index.plots[found.id]) { P.select("plots", found.id); }
        else if (tries++ < 3) { map.once("zp:plots", selectWhenLoaded); }
      }
      map.once("zp:plots", selectWhenLoaded);
      map.fitBounds([[bb[1], bb[0]], [bb[3], bb[2]]],
                    { maxZoom: Math.max(cfg.plotZoom + 2, map.getZoom()), animate: false });
    }, P.offline);
  }

  function badge(name, status) {
    var label = name === "plots" ? cfg.plotStatuses[status] : cfg.assetStatuses[status];
    return el("span", { class: "zp-pl-badge zp-pl-status-" + status, text: label || status });
  }

  P.renderSelected = function () {
    var selected = state.selected;
    var layer = selected && P.index[selected.name][selected.id];
    if (!layer) { P.deselect(); return; }
    var name = selected.name;
    var props = layer.feature.properties;
    P.clear(selPanel);
    selPanel.hidden = false;
    var spec = specs[name];
    selPanel.appendChild(el("p", { class: "zp-pl-kicker", text: spec.noun }));
    selPanel.appendChild(el("h2", { id: "zp-pl-title" }, [
      String(props.name || props[spec.key]) + " ", badge(name, props.status)]));
    if (name === "plots") { renderPlot(props); } else { P.renderAsset(name, props); }
    selPanel.appendChild(el("p", { class: "zp-pl-more" }, [
      el("a", { href: P.url("feature", { layer: name, id: selected.id }), text: T.details })]));
  };

  function renderPlot(props) {
    selPanel.appendChild(P.facts([
      [T.area, P.hectares(props.area_ha) + " " + T.ha], [T.cadastre, props.cadastre],
      [T.expansion, props.exp_id], [T.version, props.version]
    ]));
    var moves = cfg.transitions[props.status] || [];
    var actions = el("div", { class: "zp-pl-actions" });
    if (moves.length) {
      actions.appendChild(el("p", { class: "zp-pl-label", text: T.moveTo }));
      actions.appendChild(el("div", { class: "zp-pl-buttons" }, moves.map(function (status) {
        return el("button", { type: "button", class: "btn btn-sm zp-pl-move",
          "data-status": status, text: "→ " + cfg.plotStatuses[status],
          onclick: function () { movePlot(props.plot_id, status); } });
      })));
    } else {
      actions.appendChild(el("p", { class: "zp-help", text: T.noMoves }));
    }
    var tools = el("div", { class: "zp-pl-buttons" });
    if (cfg.reshape.indexOf(props.status) >= 0) {
      tools.appendChild(el("button", { type: "button", id: "zp-pl-edit",
        class: "btn btn-sm btn-outline-primary", text: T.editOutline,
        onclick: function () { P.startEdit(props.plot_id); } }));
      tools.appendChild(el("button", { type: "button", id: "zp-pl-edit-coords",
        class: "btn btn-sm btn-outline-primary", text: T.typeCoords,
        onclick: function () { P.openCoords(props.plot_id); } }));
    }
    if (cfg.deletable.indexOf(props.status) >= 0) {
      tools.appendChild(el("button", { type: "button", id: "zp-pl-delete",
        class: "btn btn-sm btn-outline-danger", text: T["delete"],
        onclick: function (e) { confirmDelete(e.target, props.plot_id); } }));
    }
    actions.appendChild(tools);
    selPanel.appendChild(actions);
    selPanel.appendChild(P.attributeForm(props));
    var box = el("div", { class: "zp-pl-servicing", id: "zp-pl-servicing" }, [
      el("h3", { text: T.servicingPlot }), el("p", { class: "zp-help", text: T.loading })]);
    selPanel.appendChild(box);
    var asked = state.selected.id;
    P.api("GET", P.url("servicing", { id: props.plot_id })).then(function (response) {
      if (!state.selected || state.selected.id !== asked) { return; }
      box.removeChild(box.lastChild);
      if (response.status === 200 && response.body.explain.length) {
        box.appendChild(P.explainList(response.body.explain));
      } else {
        box.appendChild(el("p", { class: "zp-help", text: T.noServicing }));
      }
    }, function () {});
  }

  /* a "reload" action: fetch the feature's current version and select it again */
  P.reloadAndSelect = function (name, id) {
    return function () {
      (name === "plots" ? forgetPlot(id) : P.loadLayer(name)).then(function () {
        if (name === "plots") { P.updateCounts(); P.ensureOnTop(); }
        if (P.index[name][id]) { P.select(name, id); } else { P.deselect(); }
        P.showMessage("info", T.reloaded, []);
      }, function (err) { P.showMessage("error", T.loadFailed, [String(err)]); });
    };
  };

  /* drop our copy of a plot, then load the view's plots again (the current version comes back) */
  function forgetPlot(id) {
    var old = P.index.plots[id];
    if (old) { P.groups.plots.removeLayer(old); delete P.index.plots[id]; }
    if (state.selected && state.selected.id === id) { state.selected = null; }
    return P.loadPlots();
  }

  /* a plot as the server stored it after a change: redraw it, select it, say so */
  P.plotSaved = function (feature, message) {
    P.replaceFeature("plots", feature);
    P.select("plots", feature.id);
    P.showMessage("ok", message, []);
  };

  function movePlot(id, status, confirmed) {
    var props = P.index.plots[id].feature.properties;
    var body = { version: props.version, status: status };
    if (confirmed) { body.confirm = true; }
    P.api("PATCH", P.url("plot", { id: id }), body).then(function (response) {
      if (response.status === 409 && response.body && response.body.field === "confirm") {
        // publishing a plot without road or water: show why, publish only when asked again
        P.showMessage("error", P.fmt(T.publishGaps, { id: id }), P.problemLines(response.body),
                      [{ label: T.publishAnyway, run: function () { movePlot(id, status, true); } }]);
        return;
      }
      if (response.status !== 200) { P.refused(response, P.reloadAndSelect("plots", id)); return; }
      P.plotSaved(response.body, P.fmt(T.moved, { id: id, status: cfg.plotStatuses[status] }));
    }, P.offline);
  }

  function confirmDelete(button, id) {
    if (!button.classList.contains("zp-pl-armed")) {
      button.classList.add("zp-pl-armed", "btn-danger");
      button.classList.remove("btn-outline-danger");
      button.textContent = P.fmt(T.confirmDelete, { id: id });
      return;
    }
    var props = P.index.plots[id].feature.properties;
    P.api("DELETE", P.url("plot", { id: id }) + "?version=" + encodeURIComponent(props.version))
      .then(function (response) {
        if (response.status !== 204) {
          P.renderSelected();
          P.refused(response, P.reloadAndSelect("plots", id));
          return;
        }
        P.deselect();
        P.removeFeature("plots", id);
        P.showMessage("ok", P.fmt(T.deleted, { id: id }), []);
      }, P.offline);
  }
})();
