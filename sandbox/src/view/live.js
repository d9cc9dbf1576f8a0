// Keeps the page current without reloading it, so that what is typed into the
// forms survives: every 2 s the page is fetched again and each part marked
// data-live is replaced by the new page's. The forms are outside those parts.
// When a conversation appeared (the parts differ), <main> is replaced whole,
// unless the user is typing in it, and what was typed is put back.
// document.body.dataset.updates counts the refreshes applied.
(function () {
  "use strict";
  var PERIOD_MS = 2000;
  var body = document.body;
  function liveIds(root) {
    return Array.prototype.map
      .call(root.querySelectorAll("[data-live]"), function (e) { return e.id; })
      .join(" ");
  }
  function typingIn(root) {
    var a = document.activeElement;
    return !!a && root.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName);
  }
  function apply(next) {
    if (liveIds(document) === liveIds(next)) {
      next.querySelectorAll("[data-live]").forEach(function (part) {
        var here = document.getElementById(part.id);
        if (here && here.innerHTML !== part.innerHTML) here.innerHTML = part.innerHTML;
      });
      return true;
    }
    var main = document.getElementById("live");
    var fresh = next.getElementById("live");
    if (!main || !fresh || typingIn(main)) return false;
    var typed = {};
    main.querySelectorAll("input[id]").forEach(function (i) {
      if (i.type !== "hidden") typed[i.id] = i.value;
    });
    main.innerHTML = fresh.innerHTML;
    var notice = document.getElementById("live-notice");
    var freshNotice = next.getElementById("live-notice");
    if (notice && freshNotice) notice.innerHTML = freshNotice.innerHTML;
    Object.keys(typed).forEach(function (id) {
      var i = document.getElementById(id);
      if (i) i.value = typed[id];
    });
    return true;
  }
  function refresh() {
    return fetch(location.href, { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html");
        if (apply(next)) {
          body.dataset.updates = String((Number(body.dataset.updates) || 0) + 1);
        }
        delete body.dataset.offline;
      })
      .catch(function () {
        // The sandbox stopped or restarted: keep trying, and say so.
        body.dataset.offline = "1";
      });
  }
  function loop() {
    refresh().then(function () { setTimeout(loop, PERIOD_MS); });
  }
  setTimeout(loop, PERIOD_MS);
})();
