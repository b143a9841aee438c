/* The planner's workspace, part 4: drawing a parcel with geoman (snapping to the plots'
 * outlines and corners), the live check through /api/check, saving it as a candidate plot;
 * reshaping a stored plot (geoman vertex editing, checked the same way). */
(function () {
  "use strict";

  var P = window.zpPl;
  if (!P || !P.map) { return; }
  var cfg = P.cfg, T = P.T, state = P.state, el = P.el, map = P.map;
  var checkPanel = document.getElementById("zp-pl-check");
  var DRAFT = { color: "#0b5d8f", weight: 3, dashArray: "6 4", fillColor: "#7fb8dc",
                fillOpacity: 0.35 };
  var GOOD = { color: "#1b7f3b", weight: 3, fillColor: "#5cc47a", fillOpacity: 0.45, dashArray: null };
  var BAD = { color: "#c62828", weight: 3, fillColor: "#e53935", fillOpacity: 0.4, dashArray: "8 5" };
  /* snap within 15 px to a plot's corner first, else to its edge (geoman) */
  var EDIT = { snappable: true, snapDistance: 15, allowSelfIntersection: true };
  var checkSeq = 0;
  var checkTimer = null;

  map.pm.setLang("zp", cfg.geoman, "en");
  map.pm.setGlobalOptions(Object.assign({ pathOptions: DRAFT, templineStyle: DRAFT,
                                          hintlineStyle: { color: "#0b5d8f", dashArray: "4 4" },
                                          continueDrawing: false }, EDIT));
  map.pm.addControls({
    position: "topleft", drawPolygon: true, drawRectangle: true, drawMarker: false,
    drawCircleMarker: false, drawPolyline: false, drawCircle: false, drawText: false,
    editMode: false, dragMode: false, cutPolygon: false, removalMode: false, rotateMode: false
  });

  /* outline in red the plots and protection zones a drawing collides with */
  var flagged = [];
  P.highlight = function (problems) {
    P.unflag();
    (problems || []).forEach(function (p) {
      var name = p.code === "overlaps_plot" ? "plots"
        : p.code === "overlaps_protection" ? "prot_zones" : null;
      if (!name) { return; }
      p.ids.forEach(function (id) {
        var layer = P.index[name][id];
        if (!layer) { return; }
        layer.setStyle({ color: "#c62828", weight: 4, dashArray: null, opacity: 1 });
        flagged.push({ name: name, id: id });
      });
    });
  };
  P.unflag = function () {
    var old = flagged;
    flagged = [];
    old.forEach(function (f) { P.restyle(f); });
  };

  // ------------------------------------------------------------------ drawing a new parcel
  /* corners snap to the plot outlines loaded in view: no drawing while the map shows plots
     as tiles only (zoomed out, or too many in view); the planner is asked to zoom in, and
     the same tool starts again once the outlines are there */
  P.outlinesShown = function () { return P.root.getAttribute("data-plots") === "outlines"; };
  function askToZoomIn(shape) {
    map.pm.disableDraw();
    P.showMessage("info", T.zoomToDraw, [T.zoomToDrawWhy], [{ label: T.zoomIn, run: function () {
      map.once("zp:plots", function () {
        if (P.outlinesShown()) { map.pm.enableDraw(shape); } else { askToZoomIn(shape); }
      });
      map.setView(map.getCenter(), Math.max(cfg.plotZoom, Math.floor(map.getZoom()) + 1),
                  { animate: false });
    } }]);
  }
  map.on("pm:drawstart", function (e) {
    if (!P.outlinesShown()) { askToZoomIn(e.shape); return; }
    state.drawing = true;
    P.hideMessage();
    P.discardDraft();
    P.endEdit(true);
  });
  map.on("pm:drawend", function () {  // after pm:create when a shape is finished
    if (!state.drawing) { return; }
    state.drawing = false;
    if (map.getZoom() < cfg.plotZoom) { P.loadPlots(); }  // the outlines kept while drawing go
  });
  map.on("pm:create", function (e) {
    P.setDraft(e.layer);
  });

  /* make `layer` (drawn, or built from typed coordinates) the draft and check it */
  P.setDraft = function (layer) {
    P.discardDraft();
    state.draft = layer;
    if (!map.hasLayer(layer)) { layer.addTo(map); }
    layer.setStyle(DRAFT);
    layer.pm.enable(EDIT);
    layer.on("pm:edit", scheduleCheck);
    P.deselect();
    runCheck();
  };

  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(runCheck, 250);
  }

  function runCheck() {
    var draft = state.draft;
    if (!draft) { return; }
    var seq = ++checkSeq;
    renderCheck({ pending: true });
    P.api("POST", cfg.urls.check, { geometry: P.geometryOf(draft) }).then(function (response) {
      if (seq !== checkSeq || !state.draft) { return; }
      if (response.status !== 200) {
        renderCheck({ error: response.body });
        P.showMessage("error", T.invalid, P.problemLines(response.body));
        return;
      }
      var result = response.body;
      renderCheck({ result: result });
      draft.setStyle(result.valid ? GOOD : BAD);
      P.highlight(result.problems);
      if (result.valid) {
        P.showMessage("ok", T.valid, [T.area + ": " + P.hectares(result.area_ha) + " " + T.ha]);
      } else {
        P.showMessage("error", T.invalid, result.problems.map(function (p) { return p.message; }));
      }
    }, function () { if (seq === checkSeq) { P.offline(); } });
  }

  function verdict(result, id) {
    var box = el("div", { class: "zp-pl-verdict " + (result.valid ? "zp-pl-good" : "zp-pl-bad"),
                          id: id }, [el("p", { text: result.valid ? T.valid : T.invalid })]);
    if (!result.valid) {
      box.appendChild(el("ul", { class: "zp-pl-problems" }, result.problems.map(function (p) {
        return el("li", { "data-code": p.code, text: p.message });
      })));
    }
    return box;
  }
  function areaLine(value, id) {
    return el("div", { class: "zp-pl-area" }, [
      el("span", { class: "zp-pl-area-value", id: id, text: P.hectares(value) }),
      el("span", { class: "zp-pl-area-unit", text: " " + T.ha })]);
  }

  function renderCheck(view) {
    P.clear(checkPanel);
    checkPanel.hidden = false;
    P.intro.hidden = true;
    checkPanel.appendChild(el("h2", { text: T.drawn }));
    if (view.pending && !checkPanel.zpLast) {
      checkPanel.appendChild(el("p", { class: "zp-help", text: T.checking }));
      return;
    }
    var result = view.result || checkPanel.zpLast;
    if (view.error) {
      checkPanel.appendChild(el("div", { class: "zp-pl-verdict zp-pl-bad" }, [
        el("p", { text: T.invalid }), el("ul", {}, P.problemLines(view.error).map(function (l) {
          return el("li", { text: l });
        }))]));
    }
    if (!result) { return; }
    checkPanel.zpLast = result;
    checkPanel.appendChild(areaLine(result.area_ha, "zp-pl-area"));
    if (result.exp_id) { checkPanel.appendChild(P.facts([[T.expansion, result.exp_id]])); }
    checkPanel.appendChild(verdict(result, "zp-pl-verdict"));
    if (result.warnings && result.warnings.length) {
      checkPanel.appendChild(el("div", { class: "zp-pl-verdict zp-pl-warn" }, [
        el("p", { text: T.warnings }),
        el("ul", {}, result.warnings.map(function (w) { return el("li", { text: w.message }); }))
      ]));
    }
    if (result.explain && result.explain.length) {
      checkPanel.appendChild(el("h3", { text: T.servicing }));
      checkPanel.appendChild(P.explainList(result.explain));
    }
    checkPanel.appendChild(el("div", { class: "zp-pl-buttons" }, [
      el("button", { type: "button", id: "zp-pl-save", class: "btn btn-primary",
                     disabled: !result.valid || view.pending, text: T.save, onclick: saveDraft }),
      el("button", { type: "button", id: "zp-pl-discard", class: "btn btn-outline-secondary",
                     text: T.discard, onclick: function () { P.discardDraft(); P.hideMessage(); } })
    ]));
  }

  P.discardDraft = function () {
    if (state.draft) {
      state.draft.pm.disable();
      map.removeLayer(state.draft);
    }
    state.draft = null;
    P.unflag();
    checkSeq++;
    checkPanel.hidden = true;
    checkPanel.zpLast = null;
    P.intro.hidden = !!state.selected;
  };

  function saveDraft() {
    if (!state.draft) { return; }
    var button = document.getElementById("zp-pl-save");
    if (button) { button.disabled = true; }
    var body = { type: "Feature", geometry: P.geometryOf(state.draft), properties: {} };
    P.api("POST", cfg.urls.plots, body).then(function (response) {
      if (response.status !== 201) {
        P.refused(response);
        if (button) { button.disabled = false; }
        return;
      }
      var feature = response.body;
      P.discardDraft();
      P.replaceFeature("plots", feature);
      P.select("plots", feature.id);
      P.showMessage("ok", P.fmt(T.saved, { id: feature.id }),
                    [T.area + ": " + P.hectares(feature.properties.area_ha) + " " + T.ha]);
    }, function () { if (button) { button.disabled = false; } P.offline(); });
  }

  // ------------------------------------------------------------------ reshaping a plot
  P.startEdit = function (id, latlngs) {
    var layer = P.index.plots[id];
    if (!layer || !layer.pm) { return; }
    P.hideMessage();
    P.discardDraft();
    if (!state.editing || state.editing.id !== id) {
      P.endEdit(true);
      state.editing = { id: id, layer: layer, feature: JSON.parse(JSON.stringify(layer.feature)) };
      layer.unbindTooltip();
      layer.on("pm:edit", onEdited);
    }
    if (latlngs) { layer.pm.disable(); layer.setLatLngs(latlngs); }
    layer.pm.enable(EDIT);
    renderEditPanel(null);
    if (latlngs) { checkEdit(); }
  };
  function onEdited() {
    if (!state.editing) { return; }
    clearTimeout(checkTimer);
    checkTimer = setTimeout(checkEdit, 250);
  }
  function checkEdit() {
    var editing = state.editing;
    if (!editing) { return; }
    var seq = ++checkSeq;
    var body = { geometry: P.geometryOf(editing.layer), exclude_plot_id: editing.id };
    P.api("POST", cfg.urls.check, body).then(function (response) {
      if (!state.editing || seq !== checkSeq) { return; }
      if (response.status === 200) {
        renderEditPanel(response.body);
        P.highlight(response.body.problems);
        if (!response.body.valid) {
          P.showMessage("error", T.invalid,
                        response.body.problems.map(function (p) { return p.message; }));
        } else { P.hideMessage(); }
      } else { P.showMessage("error", T.invalid, P.problemLines(response.body)); }
    }, P.offline);
  }
  function renderEditPanel(result) {
    var panel = P.selPanel;
    P.clear(panel);
    panel.hidden = false;
    panel.appendChild(el("p", { class: "zp-pl-kicker", text: P.specs.plots.noun }));
    panel.appendChild(el("h2", { id: "zp-pl-title", text: T.editOutline + " — " + state.editing.id }));
    panel.appendChild(el("p", { class: "zp-help", text: T.editing }));
    if (result) {
      panel.appendChild(areaLine(result.area_ha, "zp-pl-edit-area"));
      panel.appendChild(verdict(result, "zp-pl-edit-verdict"));
    }
    panel.appendChild(el("div", { class: "zp-pl-buttons" }, [
      el("button", { type: "button", id: "zp-pl-save-outline", class: "btn btn-primary",
                     disabled: result ? !result.valid : false, text: T.saveOutline,
                     onclick: saveEdit }),
      el("button", { type: "button", id: "zp-pl-cancel-edit", class: "btn btn-outline-secondary",
                     text: T.cancel, onclick: function () { P.endEdit(true); } })
    ]));
  }
  P.endEdit = function (restore) {
    var editing = state.editing;
    if (!editing) { return; }
    state.editing = null;
    checkSeq++;
    P.unflag();
    editing.layer.off("pm:edit", onEdited);
    if (editing.layer.pm) { editing.layer.pm.disable(); }
    if (restore) {
      P.replaceFeature("plots", editing.feature);
      if (state.selected && state.selected.id === editing.id) {
        P.restyle(state.selected);
        P.renderSelected();
      }
    }
  };
  function saveEdit() {
    var editing = state.editing;
    if (!editing) { return; }
    var body = { version: editing.feature.properties.version,
                 geometry: P.geometryOf(editing.layer) };
    P.api("PATCH", P.url("plot", { id: editing.id }), body).then(function (response) {
      if (response.status !== 200) {
        P.refused(response, function () {
          P.endEdit(false);
          P.reloadAndSelect("plots", editing.id)();
        });
        return;
      }
      P.endEdit(false);
      P.plotSaved(response.body, P.fmt(T.outlineSaved, { id: editing.id,
        area: P.hectares(response.body.properties.area_ha) }));
    }, P.offline);
  }

  P.checkPanel = checkPanel;
})();
