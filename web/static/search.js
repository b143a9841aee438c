/* Plot search box on a Leaflet map: window.zpSearch(map, {url, labels, onResult}) adds a control
 * that asks GET url?q=... (/api/search: what the reader's role may find, decided on the server)
 * as the user types, lists the plots found, and on a choice zooms to the plot, outlines it and
 * calls onResult(hit). Needs zp.js. labels: search, placeholder, none, error, fields{...},
 * statuses{...}. The control's element carries data-found="<plot id>" after a choice. */
(function () {
  "use strict";

  var HIGHLIGHT = { color: "#e8590c", weight: 4, fill: true, fillColor: "#ffd8a8", fillOpacity: 0.35,
                    interactive: false, className: "zp-search-hit" };
  var WAIT_MS = 250;

  window.zpSearch = function (map, options) {
    var T = options.labels || {};
    var el = window.zp.el;
    var control = L.control({ position: "topleft" });
    var outline = L.geoJSON(null, { style: function () { return HIGHLIGHT; } }).addTo(map);
    var box, input, list, timer = null, asked = 0, hits = [];

    function choose(hit) {
      outline.clearLayers();
      if (hit.geometry) { outline.addData(hit.geometry); }
      if (hit.bbox) {
        map.fitBounds([[hit.bbox[1], hit.bbox[0]], [hit.bbox[3], hit.bbox[2]]],
                      { maxZoom: 17, padding: [40, 40], animate: false });
      }
      outline.bringToFront();
      box.setAttribute("data-found", hit.plot_id);
      input.value = hit.plot_id;
      close();
      if (options.onResult) { options.onResult(hit); }
    }
    function close() { window.zp.clear(list); list.hidden = true; input.setAttribute("aria-expanded", "false"); }
    function show(found) {
      hits = found;
      window.zp.clear(list);
      if (!found.length) {
        list.appendChild(el("li", { class: "zp-search-none", text: T.none || "No plot found." }));
      }
      found.forEach(function (hit) {
        var detail = hit.field === "plot_id" ? "" : (T.fields && T.fields[hit.field] || hit.field) + ": " + hit.text;
        var status = (T.statuses && T.statuses[hit.status]) || hit.status;
        list.appendChild(el("li", null, [el("button", {
          type: "button", class: "zp-search-hit-button", "data-plot": hit.plot_id,
          onclick: function () { choose(hit); }
        }, [el("strong", { text: hit.plot_id }), " · " + status + (detail ? " · " + detail : "")])]));
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }
    function ask() {
      var q = input.value.trim();
      var seq = ++asked;
      if (!q) { close(); return Promise.resolve([]); }
      return window.zp.api("GET", options.url + "?q=" + encodeURIComponent(q)).then(function (answer) {
        if (seq !== asked) { return hits; }
        if (answer.status !== 200) {
          window.zp.clear(list);
          list.appendChild(el("li", { class: "zp-search-none", text: (T.error || "Search failed:") + " " + (answer.body.error || answer.status) }));
          list.hidden = false;
          return [];
        }
        show(answer.body.results);
        return answer.body.results;
      });
    }

    control.onAdd = function () {
      box = el("div", { class: "zp-search leaflet-bar", role: "search" });
      var form = el("form", { class: "zp-search-form" });
      input = el("input", {
        type: "search", class: "zp-search-input", placeholder: T.placeholder || "Plot id or cadastral number",
        "aria-label": T.search || "Search plots", autocomplete: "off", maxlength: "100",
        "aria-expanded": "false", "aria-controls": "zp-search-results"
      });
      list = el("ul", { class: "zp-search-results", id: "zp-search-results" });
      list.hidden = true;
      form.appendChild(input);
      box.appendChild(form);
      box.appendChild(list);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(ask, WAIT_MS);
      });
      input.addEventListener("keydown", function (e) {
        if (e.key === "Escape") { close(); }
      });
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        clearTimeout(timer);
        // Enter takes the best match (exact matches come first)
        ask().then(function (found) { if (found.length) { choose(found[0]); } });
      });
      return box;
    };
    control.addTo(map);
    return { control: control, ask: ask, choose: choose, outline: outline };
  };
})();
