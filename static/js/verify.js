// The continue page: boots the official Persona client, heals "Session expired" once, keeps the
// sign-in alive while the flow is open, and says plainly when this browser was signed out.
// Settings come from the JSON block #verify-config; no inline script (CSP nonce only).
// Every sentence shown comes translated in cfg.messages; the flow is told cfg.language.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("verify-config").textContent);
  var t = cfg.messages;
  var statusEl = byId("flow-status");
  var announcer = byId("flow-announcer");
  var warningEl = byId("sign-out-warning");
  var panels = [byId("saved-panel"), byId("slow-panel"), byId("error-panel"), byId("signed-out-panel")];
  var client = null;
  var refreshed = false; // one automatic token refresh per page view
  var loadTimer = null;
  var ready = false;
  var flowOpen = false;
  var signedOut = false; // a page-script call was answered 401: this browser is signed out
  var inertElements = [];
  var keepAliveTimer = null;
  var warningTimer = null;
  var signOutTimer = null;
  var focusBeforeWarning = null;
  // When the sign-in ends if nothing else happens (this clock), from the server's last word.
  var signedInUntil = Date.now() + cfg.signedInMs;

  function byId(id) {
    return document.getElementById(id);
  }

  // The live region stays in the DOM; only its text changes, so each message is heard.
  function setStatus(text) {
    statusEl.textContent = text;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  function showPanel(panel) {
    panels.forEach(function (p) { p.hidden = p !== panel; });
    // Each panel has its own way on: one "Email me a link" on screen is enough.
    byId("summary-email-link").hidden = Boolean(panel);
    if (panel) {
      var heading = panel.querySelector("h2");
      if (heading) heading.focus();
    }
  }

  // While the flow is open, everything behind it leaves the tab order and the accessibility
  // tree; only the SDK's overlay and our announcer stay.
  function setPageBehindInert(on) {
    inertElements.forEach(function (el) { el.inert = false; });
    inertElements = [];
    if (!on) return;
    Array.prototype.forEach.call(document.body.children, function (el) {
      if (el === announcer || el.classList.contains("persona-widget__overlay") || el.inert) return;
      el.inert = true;
      inertElements.push(el);
    });
  }

  function openFlow() {
    showPanel(null);
    hideWarning();
    client.open();
    flowOpen = true;
    setPageBehindInert(true);
    announce(t.flowOpen);
    var frame = document.querySelector(".persona-widget__overlay iframe");
    if (frame) frame.focus();
    scheduleKeepAlive();
  }

  function flowClosed() {
    if (flowOpen) announce("");
    flowOpen = false;
    setPageBehindInert(false);
    window.clearTimeout(keepAliveTimer);
    scheduleSignOutWarning();
  }

  function destroyClient() {
    window.clearTimeout(loadTimer);
    flowClosed();
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
      var requestId = response.headers.get("X-Request-Id");
      return response.json().then(function (data) {
        return { ok: response.ok, status: response.status, data: data, requestId: requestId };
      }, function () {
        return { ok: false, status: response.status, data: {}, requestId: requestId };
      });
    });
  }

  function fail(title, text, requestId) {
    destroyClient();
    setStatus("");
    byId("error-title").textContent = title;
    byId("error-text").textContent = text;
    if (requestId) byId("error-reference").textContent = requestId;
    showPanel(byId("error-panel"));
  }

  function failUnavailable(result) {
    fail(t.unavailableTitle, t.unavailableText, result && result.requestId);
  }

  // A 401 from any of our calls: the sign-in ended (idle, or signed out elsewhere). Said as
  // such, never as a partner outage. A flow that is open stays open: Persona keeps the
  // details, and a completion then lands on the "details received" page.
  function onSignedOut() {
    signedOut = true;
    window.clearTimeout(keepAliveTimer);
    window.clearTimeout(warningTimer);
    window.clearTimeout(signOutTimer);
    if (flowOpen) return;
    destroyClient();
    hideWarning();
    setStatus("");
    showPanel(byId("signed-out-panel"));
  }

  // -- keeping the sign-in alive ---------------------------------------------------------
  function stayAlive() {
    return postJSON(cfg.keepAliveUrl).then(function (result) {
      if (result.status === 401) {
        onSignedOut();
        return false;
      }
      if (result.ok && typeof result.data.expiresInSeconds === "number") {
        signedInUntil = Date.now() + result.data.expiresInSeconds * 1000;
      }
      return result.ok;
    }, function () { return false; }); // offline for a moment: the next tick tries again
  }

  function scheduleKeepAlive() {
    window.clearTimeout(keepAliveTimer);
    window.clearTimeout(warningTimer);
    window.clearTimeout(signOutTimer);
    if (signedOut) return;
    keepAliveTimer = window.setTimeout(function () {
      stayAlive().then(function () {
        if (flowOpen && !signedOut) scheduleKeepAlive();
      });
    }, cfg.keepAliveMs);
  }

  // With the flow closed, nothing counts as activity by itself: warn before the sign-in ends,
  // with a way to stay (WCAG 2.2.1), and say so when it has ended.
  function scheduleSignOutWarning() {
    window.clearTimeout(warningTimer);
    window.clearTimeout(signOutTimer);
    if (signedOut) return;
    var left = signedInUntil - Date.now();
    warningTimer = window.setTimeout(showWarning, Math.max(0, left - cfg.warnBeforeMs));
    signOutTimer = window.setTimeout(onSignedOut, Math.max(0, left));
  }

  function showWarning() {
    if (flowOpen || signedOut || !warningEl.hidden) return;
    focusBeforeWarning = document.activeElement;
    warningEl.hidden = false;
    byId("warning-title").focus();
  }

  function hideWarning() {
    warningEl.hidden = true;
  }

  byId("stay-signed-in").addEventListener("click", function () {
    stayAlive().then(function (ok) {
      if (!ok) return;
      hideWarning();
      setStatus(t.stillSignedIn);
      var back = focusBeforeWarning;
      if (back && back !== document.body && document.contains(back) && back.offsetParent !== null) {
        back.focus();
      } else {
        byId("content").focus();
      }
      scheduleSignOutWarning();
    });
  });

  // -- the flow ----------------------------------------------------------------------------
  function onReady() {
    ready = true;
    window.clearTimeout(loadTimer);
    setStatus("");
    openFlow();
  }

  function onComplete() {
    flowClosed();
    saveResult();
  }

  function saveResult() {
    setStatus(t.saving);
    postJSON(cfg.completeUrl).then(function (result) {
      var error = result.data && result.data.error;
      if (result.status === 401) {
        window.location.assign(cfg.receivedUrl);
        return;
      }
      if (error && error.code === "busy") {
        // Over the shared Persona budget: try again when our turn comes (the server says when).
        setStatus(t.savingSlowly);
        window.setTimeout(saveResult, Math.max(error.retryAfter || 1, 1) * 1000);
        return;
      }
      window.location.assign((result.data && result.data.redirect) || window.location.pathname);
    }, function () {
      window.location.assign(window.location.pathname);
    });
  }

  function onCancel() {
    flowClosed();
    setStatus("");
    if (signedOut) {
      onSignedOut();
    } else {
      showPanel(byId("saved-panel"));
    }
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
      } else if (result.status === 401) {
        onSignedOut();
      } else if (result.status === 429) {
        fail(t.tooManyTitle, t.tooManyText, result.requestId);
      } else {
        failUnavailable(result);
      }
    }, function () { failUnavailable(null); });
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

  function waitForReady() {
    window.clearTimeout(loadTimer);
    loadTimer = window.setTimeout(function () {
      // A slow phone or connection: offer to keep waiting rather than give up.
      if (!ready) showPanel(byId("slow-panel"));
    }, cfg.loadTimeoutMs);
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
    waitForReady();
  }

  byId("continue-button").addEventListener("click", function () {
    if (client && ready) {
      openFlow();
    } else {
      boot();
    }
  });

  byId("keep-waiting-button").addEventListener("click", function () {
    showPanel(null);
    setStatus(t.stillOpening);
    waitForReady();
  });

  document.querySelectorAll("[data-reload]").forEach(function (button) {
    button.addEventListener("click", function () { window.location.reload(); });
  });

  // "Email me a link": sent in place, so the flow and its progress stay where they are. The
  // button keeps focus (aria-disabled, not disabled, while sending) and the result is announced.
  document.querySelectorAll("form[data-email-link]").forEach(function (form) {
    var status = form.nextElementSibling;
    var button = form.querySelector("button");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button.getAttribute("aria-disabled") === "true") return;
      button.setAttribute("aria-disabled", "true");
      status.textContent = t.sending;
      window.fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json" },
        body: new FormData(form)
      }).then(function (response) {
        if (response.status === 401) {
          status.textContent = "";
          onSignedOut();
          return;
        }
        return response.json().then(function (data) {
          status.textContent = response.ok && data.sent
            ? t.linkSent.replace("{address}", data.to)
            : t.linkFailed;
        });
      }).catch(function () {
        status.textContent = t.linkOffline;
      }).then(function () { button.removeAttribute("aria-disabled"); });
    });
  });

  boot();
})();
