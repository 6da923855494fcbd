// The continue page: boots the official Persona client and heals "Session expired" once.
// Settings come from the JSON block #verify-config; no inline script (CSP nonce only).
// Every sentence shown comes translated in cfg.messages; the flow is told cfg.language.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("verify-config").textContent);
  var t = cfg.messages;
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
    fail(t.unavailableTitle, t.unavailableText);
  }

  function onReady() {
    ready = true;
    window.clearTimeout(loadTimer);
    setStatus("");
    client.open();
  }

  function onComplete() {
    setStatus(t.saving);
    postJSON(cfg.completeUrl).then(function (result) {
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
    setStatus(t.reconnecting);
    postJSON(cfg.tokenUrl).then(function (result) {
      if (result.ok && result.data.redirect) {
        window.location.assign(result.data.redirect);
      } else if (result.ok && result.data.inquiryId) {
        cfg.inquiryId = result.data.inquiryId;
        cfg.sessionToken = result.data.sessionToken;
        boot();
      } else if (result.status === 429) {
        fail(t.tooManyTitle, t.tooManyText);
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
      fail(t.expiredTitle, t.expiredText);
    } else {
      fail(t.openFailedTitle, t.flowErrorText);
    }
  }

  function boot() {
    destroyClient();
    showPanel(null);
    ready = false;
    setStatus(t.opening);
    if (!window.Persona || !window.Persona.Client) {
      fail(t.sdkMissingTitle, t.sdkMissingText);
      return;
    }
    var options = { inquiryId: cfg.inquiryId, language: cfg.language, iframeTitle: t.iframeTitle,
      onReady: onReady, onComplete: onComplete, onCancel: onCancel, onError: onError };
    if (cfg.host) options.host = cfg.host;
    if (cfg.sessionToken) options.sessionToken = cfg.sessionToken;
    try {
      client = new window.Persona.Client(options);
    } catch (e) {
      fail(t.openFailedTitle, t.bootFailedText);
      return;
    }
    loadTimer = window.setTimeout(function () {
      if (!ready) fail(t.timeoutTitle, t.timeoutText);
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
            ? t.linkSent.replace("{address}", data.to)
            : t.linkFailed;
        });
      }).catch(function () {
        status.textContent = t.linkOffline;
      }).then(function () { button.disabled = false; });
    });
  });

  document.getElementById("retry-button").addEventListener("click", function () {
    window.location.reload();
  });

  boot();
})();
