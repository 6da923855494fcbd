// Times in the person's own time zone: every <time datetime data-local-time> the server wrote
// in UTC (saying "UTC") is rewritten with Intl, in the page's language. Without JS the UTC
// words stay, and they say so.
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;
  var format;
  try {
    format = new Intl.DateTimeFormat(lang, { dateStyle: "long", timeStyle: "short" });
  } catch (e) {
    return; // an engine without Intl options keeps the UTC words
  }
  document.querySelectorAll("time[data-local-time]").forEach(function (el) {
    var moment = new Date(el.getAttribute("datetime"));
    if (isNaN(moment.getTime())) return;
    el.textContent = format.format(moment);
  });
})();
