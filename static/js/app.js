/* Behaviour of the staff pages, as a static file: the Content-Security-Policy allows no inline
 * event handlers (onclick=…) and inline scripts only with the response's nonce.
 *
 *   data-confirm="…"          a click on the element (button, link) asks first; "cancel" stops it
 *   a[data-drop-param="p"]    the link drops query parameter p from its href when followed
 *   input[data-autorefresh]   a checkbox (remembered under its value in localStorage) reloading the
 *                             page every data-seconds; the reload carries autorefresh=1, which the
 *                             idle timeout does not count as activity (hospital_interop/security/idle.py)
 *   [data-deferred][data-src] filled with the HTML data-src answers (removed when it answers nothing)
 *   input[data-check-all="n"] checks or clears every checkbox named n
 */
(function () {
  "use strict";

  document.addEventListener("click", function (e) {
    var ask = e.target.closest("[data-confirm]");
    if (ask && !window.confirm(ask.getAttribute("data-confirm"))) {
      e.preventDefault();
      e.stopImmediatePropagation();
      return;
    }
    var link = e.target.closest("a[data-drop-param]");
    if (link) {
      var url = new URL(link.href);
      url.searchParams.delete(link.getAttribute("data-drop-param"));
      link.href = url.toString();
    }
  });

  // a page loaded by the auto-refresh keeps a clean address (a manual reload then counts as activity)
  var here = new URL(window.location.href);
  var passive = here.searchParams.get("autorefresh") === "1";
  if (passive) {
    here.searchParams.delete("autorefresh");
    window.history.replaceState(null, "", here.toString());
  }

  document.querySelectorAll("input[data-autorefresh]").forEach(function (box) {
    var key = box.getAttribute("data-autorefresh");
    var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 15;
    box.checked = window.localStorage.getItem(key) !== "0";
    box.addEventListener("change", function () { window.localStorage.setItem(key, box.checked ? "1" : "0"); });
    window.setInterval(function () {
      if (!box.checked) return;
      var next = new URL(window.location.href);
      next.searchParams.set("autorefresh", "1");
      window.location.replace(next.toString());
    }, seconds * 1000);
  });

  document.querySelectorAll("[data-deferred][data-src]").forEach(function (box) {
    var headers = passive ? {"X-Interop-Passive": "1"} : {};
    fetch(box.getAttribute("data-src"), {credentials: "same-origin", headers: headers})
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { if (html) { box.innerHTML = html; } else { box.remove(); } });
  });

  document.querySelectorAll("input[data-check-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="' + all.getAttribute("data-check-all") + '"]')
        .forEach(function (b) { b.checked = all.checked; });
    });
  });
})();
