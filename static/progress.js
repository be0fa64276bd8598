// The progress of a file the worker is checking or applying, kept current without a page
// reload (a timed reload is an accessibility failure, WCAG 2.2.1). Without JavaScript the
// page has a "Refresh now" link. The region is aria-live, so screen readers hear the count.
(function () {
  "use strict";
  var region = document.getElementById("progress");
  if (!region || !window.fetch || !window.DOMParser) return;
  var every = 3000;
  function poll() {
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("progress");
        if (fresh) {
          region.innerHTML = fresh.innerHTML;
          window.setTimeout(poll, every);
        } else {
          var done = page.getElementById("progress-done");
          region.innerHTML = done ? done.innerHTML : "";
        }
      })
      .catch(function () { window.setTimeout(poll, every * 2); });
  }
  window.setTimeout(poll, every);
})();
