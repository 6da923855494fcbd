// The continue page: boots the official Persona client and heals "Session expired" once.
// Settings come from the JSON block #verify-config; no inline script (CSP nonce only).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("verify-config").textContent);
  var statusEl = document.getElementById("flow-status");
  var savedPanel = document.getElementById("saved-panel");
  var errorPanel = document.getElementById("error-panel");
  var client = null;
  var refreshed = false; // one automatic token refresh per page view
  var loadTimer = null;
  var ready = false;

  function setStatus(text) {
    statusEl.textContent = text;
    statusEl.hidden = !text;
  }

  function showPanel(panel) {
    [savedPanel, errorPanel].forEach(function (p) { p.hidden = p !== panel; });
    // Each panel has its own "Email me a link": one such button on screen is enough.
    document.getElementById("summary-email-link").hidden = Boolean(panel);
    if (panel) {
      var heading = panel.querySelector("h2");
      if (heading) heading.focus();
    }
  }

  function destroyClient() {
    window.clearTimeout(loadTimer);
    if (client) {
      try { client.destroy(); } catch (e) { /* already gone */ }
      client = null;
    }
  }

  function postJSON(url) {
    return window.fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": cfg.csrfToken, "Accept": "application/json", "Content-Type": "application/json" },
      body: "{}"
    }).then(function (response) {
      return response.json().then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      }, function () {
        return { ok: false, status: response.status, data: {} };
      });
    });
  }

  function fail(title, text) {
    destroyClient();
    setStatus("");
    document.getElementById("error-title").textContent = title;
    document.getElementById("error-text").textContent = text;
    showPanel(errorPanel);
  }

  function failUnavailable() {
    fail("We couldn't reconnect you", "Our identity partner isn't answering right now. Nothing is lost: please try again in a moment.");
  }

  function onReady() {
    ready = true;
    window.clearTimeout(loadTimer);
    setStatus("");
    client.open();
  }

  function onComplete() {
    setStatus("Saving your result…");
    postJSON(cfg.completeUrl).then(function (result) {
      var error = result.data && result.data.error;
      if (error && error.code === "busy") {
        // Over the shared budget: try again when our turn comes (the server says when).
        setStatus("Saving your result… this takes a few seconds more.");
        window.setTimeout(onComplete, Math.max(error.retryAfter || 1, 1) * 1000);
        return;
      }
      window.location.assign((result.data && result.data.redirect) || window.location.pathname);
    }, function () {
      window.location.assign(window.location.pathname);
    });
  }

  function onCancel() {
    setStatus("");
    showPanel(savedPanel);
  }

  function refreshToken() {
    refreshed = true;
    destroyClient();
    setStatus("Your session expired. Reconnecting…");
    postJSON(cfg.tokenUrl).then(function (result) {
      if (result.ok && result.data.redirect) {
        window.location.assign(result.data.redirect);
      } else if (result.ok && result.data.inquiryId) {
        cfg.inquiryId = result.data.inquiryId;
        cfg.sessionToken = result.data.sessionToken;
        boot();
      } else if (result.status === 429) {
        fail("Too many attempts", "Please wait a few minutes, then try again.");
      } else {
        failUnavailable();
      }
    }, failUnavailable);
  }

  function onError(error) {
    var sessionExpired = error && (error.code === "unauthenticated" || error.status === 409);
    if (sessionExpired && !refreshed) {
      refreshToken();
    } else if (sessionExpired) {
      fail("Your session expired", "We couldn't reconnect you automatically. Please try again.");
    } else {
      fail("We couldn't open the verification", "Something went wrong inside the verification window. Please try again.");
    }
  }

  function boot() {
    destroyClient();
    showPanel(null);
    ready = false;
    setStatus("Opening the secure verification window…");
    if (!window.Persona || !window.Persona.Client) {
      fail("The verification window couldn't load",
        "Your connection dropped, or a browser extension blocked it. Check your connection or allow this page, then try again.");
      return;
    }
    var options = { inquiryId: cfg.inquiryId, onReady: onReady, onComplete: onComplete, onCancel: onCancel, onError: onError };
    if (cfg.host) options.host = cfg.host;
    if (cfg.sessionToken) options.sessionToken = cfg.sessionToken;
    try {
      client = new window.Persona.Client(options);
    } catch (e) {
      fail("We couldn't open the verification", "Please reload the page and try again.");
      return;
    }
    loadTimer = window.setTimeout(function () {
      if (!ready) fail("This is taking too long", "The verification window didn't load. Check your connection and try again.");
    }, cfg.loadTimeoutMs);
  }

  document.getElementById("continue-button").addEventListener("click", function () {
    if (client) {
      showPanel(null);
      client.open();
    } else {
      boot();
    }
  });
  // "Email me a link": sent in place, so the flow and its progress stay where they are.
  document.querySelectorAll("form[data-email-link]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var status = form.nextElementSibling;
      var button = form.querySelector("button");
      button.disabled = true;
      window.fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json" },
        body: new FormData(form)
      }).then(function (response) {
        return response.json().then(function (data) {
          status.textContent = response.ok && data.sent
            ? "We've sent a link to " + data.to + ". It works once, on any device."
            : "We couldn't send the link. Please try again in a few minutes.";
        });
      }).catch(function () {
        status.textContent = "We couldn't send the link. Please check your connection and try again.";
      }).then(function () { button.disabled = false; });
    });
  });

  document.getElementById("retry-button").addEventListener("click", function () {
    window.location.reload();
  });

  boot();
})();
