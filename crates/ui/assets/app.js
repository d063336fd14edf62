// kube9-ui's only script: live updates. The server sends a `change` event whenever the
// cluster's OperatorStatus or an Assessment changes; the page then fetches itself again and
// replaces its <main>. Everything in it was escaped by the server; nothing here builds HTML.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var url = main && main.getAttribute("data-live");
  if (!url || !window.EventSource || !window.fetch) {
    return;
  }
  var busy = false;
  var again = false;

  function typing() {
    var a = document.activeElement;
    return a && main.contains(a) && /^(TEXTAREA|INPUT|SELECT)$/.test(a.tagName) && a.value !== "";
  }

  function refresh() {
    if (busy || typing()) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) { return; }
        // Typed meanwhile: keep what the person is typing; update once they leave the field.
        if (typing()) { again = true; return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("main");
        if (fresh) {
          main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
          main.setAttribute("data-updated", String(Date.now()));
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again && !typing()) {
          again = false;
          window.setTimeout(refresh, 250);
        }
      });
  }

  var source = new EventSource(url);
  source.addEventListener("open", function () { main.setAttribute("data-live-state", "open"); });
  source.addEventListener("error", function () { main.setAttribute("data-live-state", "retrying"); });
  source.addEventListener("change", refresh);
  document.addEventListener("focusout", function () { if (again) { window.setTimeout(refresh, 250); } });
})();
