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

  function seconds(n) {
    return n + (n === 1 ? " second" : " seconds");
  }

  var timer = window.setInterval(function () {
    left -= 1;
    if (left <= 0) {
      window.clearInterval(timer);
      countdown.textContent = "continuing now";
      status.textContent = "Continuing now…";
      window.location.replace(continueUrl);
      return;
    }
    countdown.textContent = seconds(left);
    if (left % 15 === 0) status.textContent = "About " + seconds(left) + " left.";
  }, 1000);
})();
