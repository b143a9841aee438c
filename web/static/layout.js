/* Every page's layout: the header menu on narrow screens (a button opens and closes it;
 * Escape or a click elsewhere closes it) and, on small screens, the map legend and any
 * <details data-small-closed> (the catalogue's filters) start collapsed so the map stays
 * visible. Loaded by base.html. */
(function () {
  "use strict";

  var SMALL = "(max-width: 700px)";
  var header = document.querySelector(".zp-header");
  var toggle = header && header.querySelector(".zp-menu-toggle");

  function setOpen(open) {
    header.classList.toggle("zp-menu-open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }
  if (toggle) {
    toggle.addEventListener("click", function () {
      setOpen(toggle.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && header.classList.contains("zp-menu-open")) {
        setOpen(false);
        toggle.focus();
      }
    });
    document.addEventListener("click", function (e) {
      if (!header.contains(e.target)) { setOpen(false); }
    });
  }

  if (window.matchMedia && window.matchMedia(SMALL).matches) {
    document.querySelectorAll("details.zp-legend[open], details[data-small-closed][open]").forEach(function (d) {
      d.removeAttribute("open");
    });
  }
  /* printing shows the legend whatever its state on screen */
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details.zp-legend").forEach(function (d) { d.setAttribute("open", ""); });
  });
})();
