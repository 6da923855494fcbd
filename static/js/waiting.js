// The waiting page: counts the estimate down, then continues into the flow by itself.
// The visible countdown changes every second; the live region speaks only every 15 seconds
// and once when continuing, so a screen reader is told the progress without a flood.
(function () {
  "use strict";
  var script = document.currentScript;
  var continueUrl = script.getAttribute("data-continue-url");
  var countdown = document.getElementById("wait-countdown");
  var status = document.getElementById("wait-status");
  var left = parseInt(countdown.getAttribute("data-wait-seconds"), 10) || 1;
  // Words come translated on the script tag; "5 seconds" from Intl, with the language's plurals.
  var units = null;
  try {
    units = new Intl.NumberFormat(document.documentElement.lang || undefined,
      { style: "unit", unit: "second", unitDisplay: "long" });
  } catch (e) { /* no Intl units: the server's words for the first estimate stay */ }

  function seconds(n) {
    return units ? units.format(n) : String(n);
  }

  var timer = window.setInterval(function () {
    left -= 1;
    if (left <= 0) {
      window.clearInterval(timer);
      countdown.textContent = script.getAttribute("data-continuing");
      status.textContent = script.getAttribute("data-continuing-status");
      window.location.replace(continueUrl);
      return;
    }
    countdown.textContent = seconds(left);
    if (left % 15 === 0) status.textContent = script.getAttribute("data-time-left").replace("{time}", seconds(left));
  }, 1000);
})();
