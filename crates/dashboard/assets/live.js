// Refreshes the page's content in place every few seconds (no reload): fetches the same
// URL with ?partial=1, which the server answers with the content alone, already escaped.
(function () {
  "use strict";
  var main = document.getElementById("live");
  if (!main || !main.dataset.live) { return; }
  var every = parseInt(main.dataset.live, 10) || 2000;
  var banner = document.getElementById("connection");

  function typing() {
    var active = document.activeElement;
    return active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function refresh() {
    if (typing() || document.hidden) { setTimeout(refresh, every); return; }
    var url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    fetch(url, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) {
        // 503 carries the "Redis is unreachable" content; anything else that is not OK
        // keeps what is shown and flags the connection.
        if (!response.ok && response.status !== 503) { throw new Error(response.status); }
        return response.text();
      })
      .then(function (html) {
        if (!typing()) { main.innerHTML = html; }
        banner.hidden = true;
      })
      .catch(function () { banner.hidden = false; })
      .finally(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
