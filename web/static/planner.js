/* The planner's workspace, part 7 (the start): load the zone's layers, fit the view, load
 * the plots near it, count them, then mark the page ready. window.zpPlanner exposes the map
 * and the feature index for tests and the console. */
(function () {
  "use strict";

  var P = window.zpPl;
  if (!P || !P.map) { return; }
  var cfg = P.cfg, T = P.T, map = P.map;

  function failed(err) {
    P.showMessage("error", T.loadFailed, [String(err.message || err)]);
    return null;
  }

  var ready = Promise.all(cfg.layers.filter(function (spec) { return spec.name !== "plots"; })
    .map(function (spec) { return P.loadLayer(spec.name).catch(failed); }))
    .then(function () {
      var bounds = L.latLngBounds([]);
      ["zone", "expansion"].forEach(function (name) {
        if (P.groups[name].getLayers().length) { bounds.extend(P.groups[name].getBounds()); }
      });
      if (bounds.isValid()) { map.fitBounds(bounds, { padding: [16, 16], animate: false }); }
      else { map.setView([43.33, 76.87], 14, { animate: false }); }
      return P.loadPlots().catch(failed);
    }).then(function () {
      P.ensureOnTop();
      P.updateCounts();
      P.root.setAttribute("data-ready", "true");
    });

  window.zpPlanner = { map: map, groups: P.groups, index: P.index, ready: ready, tiles: P.tiles,
                       select: P.select, deselect: P.deselect,
                       draft: function () { return P.state.draft; } };
})();
