/* The funds page after coming back from a gateway: while the payment is being confirmed, ask
   the server for the top-up's state and reload the page once it is settled, so the banner,
   the balance and the history all show the outcome. Every visible word comes from the page,
   so this file has nothing to translate. */
(function () {
  "use strict";
  var banner = document.getElementById("topup-status");
  if (!banner || !banner.dataset.statusUrl || !window.fetch) return;
  var progress = banner.querySelector(".topup-status__progress");
  var started = Date.now();
  var SLOW_AFTER = 120000; // two minutes: say it is slow, and ask less often

  function waited() {
    return Math.round((Date.now() - started) / 1000);
  }

  function showProgress() {
    if (!progress) return;
    var text = waited() * 1000 > SLOW_AFTER ? progress.dataset.slowText : progress.dataset.waitedText;
    progress.textContent = (text || "").replace("{s}", String(waited()));
  }

  function ask() {
    fetch(banner.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (reply) {
        if (reply && reply.state && reply.state !== "pending") {
          window.location.reload();
          return;
        }
        later();
      })
      .catch(later);
  }

  function later() {
    showProgress();
    window.setTimeout(ask, Date.now() - started > SLOW_AFTER ? 10000 : 2000);
  }

  var ticker = window.setInterval(function () {
    showProgress();
    if (!document.body.contains(banner)) window.clearInterval(ticker);
  }, 1000);
  later();
})();
