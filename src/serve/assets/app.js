// Keeps the page current: every few seconds the page is fetched again and its main part
// replaced, unless the reader is typing or has a <details> open they toggled. The page
// works the same without it (a <noscript> refresh covers running operations).
(function () {
  "use strict";
  // Times in the reader's own time zone and language: <time datetime="RFC 3339">.
  function localTimes(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var d = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(d)) times[i].textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    }
  }
  localTimes(document);
  var main = document.getElementById("main");
  if (!main || !document.querySelector(".stand, .lab")) return;
  function refresh() {
    if (document.hidden || document.activeElement && document.activeElement.tagName === "INPUT") return;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (next) { main.innerHTML = next.innerHTML; localTimes(main); }
      })
      .catch(function () {});
  }
  setInterval(refresh, main.dataset.busy ? 2000 : 5000);
})();
