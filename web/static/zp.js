/* Small helpers every page script shares (window.zp): text templates, DOM building with
 * textContent only (no HTML from data), URL templates from the page's data-config, and a JSON
 * fetch that sends the CSRF token. Load it before the page's own script. */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  /* "{n} plots" with {n: 3} -> "3 plots"; unknown keys stay as written */
  function fmt(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (m, key) {
      return values && Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : m;
    });
  }

  /* el("p", {class: "x", text: "hi", onclick: f, disabled: true}, [child, "text", null]) */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) { return; }
      if (key === "text") { node.textContent = value; }
      else if (key === "class") { node.className = value; }
      else if (key.slice(0, 2) === "on") { node.addEventListener(key.slice(2), value); }
      else { node.setAttribute(key, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  /* url(cfg.urls, "feature", {id: "P-1"}): fills "__id__" placeholders, URL-encoded */
  function url(urls, name, values) {
    var out = urls[name];
    Object.keys(values || {}).forEach(function (key) {
      out = out.replace("__" + key + "__", encodeURIComponent(values[key]));
    });
    return out;
  }

  /* JSON request; resolves {status, body} for any HTTP answer, rejects on network failure */
  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin",
                    headers: { "Accept": "application/json" } };
    if (method !== "GET") { options.headers["X-CSRFToken"] = csrf; }
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 204) { return { status: 204, body: null }; }
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, body: data };
      });
    });
  }

  /* the page's configuration: JSON in the data-config attribute of element #id (CSP: no inline scripts) */
  function config(id) {
    var root = document.getElementById(id);
    return root ? { root: root, cfg: JSON.parse(root.getAttribute("data-config")) } : null;
  }

  /* Leaflet keeps a closed popup in the page for its 200 ms fade-out, invisible but
     still catching clicks: a click right after closing one (on the marker it pointed at, say)
     went to the vanishing popup instead of the map. Every map made after this script marks
     the popups it closes as zp-closing (no pointer events, see zoneplan.css) and clears the mark when
     the same popup opens again. */
  if (window.L && window.L.Map) {
    window.L.Map.addInitHook(function () {
      function mark(closing) {
        return function (e) {
          var node = e.popup && e.popup.getElement();
          if (node) { node.classList.toggle("zp-closing", closing); }
        };
      }
      this.on("popupclose", mark(true));
      this.on("popupopen", mark(false));
    });
  }

  window.zp = { fmt: fmt, el: el, clear: clear, url: url, api: api, config: config, csrf: csrf };
})();
