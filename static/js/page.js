// Every page: times in the reader's own time zone, and focus to an error summary.
// Loaded with the CSP nonce from base.html; nothing here is needed for the page to work.
(function () {
  "use strict";

  // <time datetime="…Z" data-local-time> from the server reads "… UTC"; rewritten here in the
  // reader's time zone and the page's language. `window.localTimes(root)` does it again for
  // markup added later.
  function localTimes(root) {
    var format;
    try {
      format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
      });
    } catch (e) {
      return; // no Intl: the UTC text stays, and it says it is UTC
    }
    (root || document).querySelectorAll("time[data-local-time]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) el.textContent = format.format(when);
    });
  }
  window.localTimes = localTimes;
  localTimes(document);

  // GOV.UK's error summary: focus moves to it after a submit with errors, and its links move
  // focus to the field itself (a plain #fragment would only scroll).
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      var field = link && document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      var label = document.querySelector("label[for='" + field.id + "']");
      (label || field).scrollIntoView();
      field.focus({ preventScroll: true });
    });
  }
})();
