// The continue page: boots the official Persona client, heals "Session expired" once, keeps the
// sign-in alive while the flow is open, says plainly when this browser was signed out, and
// runs the flow in one tab of this browser at a time (the newest tab takes over). Before the flow
// boots: in an app's built-in browser (the server tells), "Copy link" for the phone's own
// browser; with no camera API or the camera denied for this site, how to allow it. This script
// never opens the camera itself: only the flow does, when it needs it.
// Settings come from the JSON block #verify-config; no inline script (CSP nonce only).
// Every sentence shown comes translated in cfg.messages; the flow is told cfg.language.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("verify-config").textContent);
  var t = cfg.messages;
  var statusEl = byId("flow-status");
  var announcer = byId("flow-announcer");
  var warningEl = byId("sign-out-warning");
  var elsewherePanel = byId("elsewhere-panel");
  var cameraPanel = byId("camera-panel");
  var handoffPanel = byId("handoff-panel");
  var handoffActive = byId("handoff-active");
  var panels = [byId("saved-panel"), byId("slow-panel"), byId("error-panel"), byId("signed-out-panel"), elsewherePanel,
    cameraPanel, handoffPanel, handoffActive];
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
  var elsewhere = false; // another tab of this browser took the flow over
  // One tab at a time: every tab that boots the flow says so on this channel, and the others
  // close theirs. Without BroadcastChannel each tab runs on its own, as before.
  var tabs = "BroadcastChannel" in window ? new window.BroadcastChannel("continue-verification") : null;
  var tabId = String(Math.random()).slice(2) + String(Date.now());
  // A phone or tablet is already the device with the camera: it is offered no "Continue on your phone".
  var onATouchScreen = Boolean(window.matchMedia && window.matchMedia("(pointer: coarse)").matches);
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
    byId("summary-handoff").hidden = Boolean(panel) || onATouchScreen;
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
    stopHandoff();
    window.clearTimeout(keepAliveTimer);
    window.clearTimeout(warningTimer);
    window.clearTimeout(signOutTimer);
    if (flowOpen) return;
    destroyClient();
    hideWarning();
    if (byId("in-app-panel")) byId("in-app-panel").hidden = true;
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
    // While another tab has the flow, that tab keeps the sign-in alive and warns; this one
    // checks again when the person comes back to it ("Use this tab").
    // While handing off to a phone, this page's polling keeps the sign-in alive.
    if (signedOut || elsewhere || (handoff && !handoff.paused)) return;
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

  // -- one tab at a time --------------------------------------------------------------------
  function claimTheFlow() {
    elsewhere = false;
    if (tabs) tabs.postMessage({ type: "flow-opened", tab: tabId });
  }

  function onFlowOpenedElsewhere() {
    elsewhere = true;
    stopHandoff();
    destroyClient();
    hideWarning();
    setStatus("");
    showPanel(elsewherePanel);
  }

  if (tabs) {
    tabs.addEventListener("message", function (event) {
      var message = event.data || {};
      if (message.type === "flow-opened" && message.tab !== tabId && !signedOut) onFlowOpenedElsewhere();
    });
  }

  byId("use-this-tab").addEventListener("click", function () {
    claimTheFlow();
    // The other tab kept the sign-in alive; learn how long it has before opening the flow here.
    stayAlive().then(function () {
      if (!signedOut && !elsewhere) boot();
    });
  });

  function boot() {
    stopHandoff();
    destroyClient();
    claimTheFlow();
    showPanel(null);
    ready = false;
    setStatus(t.opening);
    if (!window.Persona || !window.Persona.Client) {
      fail(t.sdkMissingTitle, t.sdkMissingText);
      return;
    }
    var options = { inquiryId: cfg.inquiryId, language: cfg.language, iframeTitle: t.iframeTitle,
      onReady: onReady, onComplete: onComplete, onCancel: onCancel, onError: onError };
    // SDK 5.9.0: `customHost` is the public option (`host` is private and "will do nothing").
    if (cfg.customHost) options.customHost = cfg.customHost;
    if (cfg.sessionToken) options.sessionToken = cfg.sessionToken;
    if (cfg.environmentId) options.environmentId = cfg.environmentId;
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

  // -- "Continue on your phone" ---------------------------------------------------------------
  // The panel shows a QR code for a single-use link, a new one every cfg.handoffRotateMs (the
  // older ones die soon after, on the server), for at most cfg.handoffShowMs. Meanwhile, and
  // once the phone has opened a link, this page asks the server where things stand: every 2 s
  // at first, backing off to 5 s (15 s after a failed call). When a phone used a link, this
  // page closes its flow and shows `handoff`; when the verification is finished or
  // replaced, it goes to the page for the result. Polling, not a held connection: any app
  // instance answers, and no server thread waits (docs/ARCHITECTURE.md).
  var main = byId("content");
  var handoffQr = byId("handoff-qr");
  var handoffLinkField = byId("handoff-link-text");
  var handoffStatus = byId("handoff-status");
  var handoffAgain = byId("handoff-again");
  var handoff = null; // while handing off: {since, openedAt, rotateTimer, pollTimer, pollMs, onPhone}

  function stopHandoff() {
    if (!handoff) return;
    window.clearTimeout(handoff.rotateTimer);
    window.clearTimeout(handoff.pollTimer);
    handoff = null;
    main.setAttribute("data-verification-state", "continue");
  }

  function openHandoff() {
    stopHandoff();
    handoff = { since: null, openedAt: Date.now(), rotateTimer: null, pollTimer: null, pollMs: 2000, onPhone: false,
      paused: false };
    handoffQr.textContent = "";
    handoffLinkField.value = "";
    handoffAgain.hidden = true;
    handoffStatus.textContent = t.makingCode;
    setStatus("");
    hideWarning();
    showPanel(handoffPanel);
    newHandoffLink(handoff);
  }

  function newHandoffLink(current) {
    postJSON(handoffForm.action).then(function (result) {
      if (handoff !== current || current.onPhone) return;
      if (result.status === 401) {
        onSignedOut();
      } else if (result.ok && result.data.redirect) {
        window.location.assign(result.data.redirect);
      } else if (result.ok && result.data.qrSvg) {
        handoffQr.innerHTML = result.data.qrSvg; // our server's markup for our own link
        handoffLinkField.value = result.data.url;
        handoffStatus.textContent = "";
        if (current.since === null) {
          current.since = result.data.issuedAt;
          pollHandoff(current);
        }
        scheduleRotation(current);
      } else {
        handoffStatus.textContent = t.codeNotMade;
        scheduleRotation(current);
      }
    }, function () {
      if (handoff !== current) return;
      handoffStatus.textContent = t.codeNotMade;
      scheduleRotation(current);
    });
  }

  function scheduleRotation(current) {
    current.rotateTimer = window.setTimeout(function () {
      if (handoff !== current || current.onPhone) return;
      if (Date.now() - current.openedAt >= cfg.handoffShowMs) {
        // Nobody scanned it for a while: stop making links (and keeping this sign-in alive).
        window.clearTimeout(current.pollTimer);
        handoffQr.textContent = "";
        handoffLinkField.value = "";
        handoffStatus.textContent = t.codePaused;
        handoffAgain.hidden = false;
        current.paused = true;
        stayAlive().then(scheduleSignOutWarning);
        return;
      }
      if (document.activeElement === handoffLinkField) {
        scheduleRotation(current); // someone is copying the link: leave it be for now
        return;
      }
      newHandoffLink(current);
    }, cfg.handoffRotateMs);
  }

  function pollHandoff(current) {
    current.pollTimer = window.setTimeout(function () {
      var url = cfg.handoffStatusUrl + "?since=" + encodeURIComponent(current.since);
      window.fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (handoff !== current) return;
          if (response.status === 401) {
            onSignedOut();
            return;
          }
          if (!response.ok) throw new Error("status " + response.status);
          return response.json().then(function (data) {
            if (handoff !== current) return;
            if (data.redirect) {
              window.location.assign(data.redirect);
              return;
            }
            if (data.state === "on_phone" && !current.onPhone) onPhoneNow(current);
            current.pollMs = Math.min(current.pollMs * 1.25, 5000);
            pollHandoff(current);
          });
        })
        .catch(function () {
          if (handoff !== current) return;
          current.pollMs = 15000;
          pollHandoff(current);
        });
    }, current.pollMs);
  }

  // The phone opened a link: the flow runs there only, and this page follows it.
  function onPhoneNow(current) {
    current.onPhone = true;
    window.clearTimeout(current.rotateTimer);
    destroyClient();
    window.clearTimeout(warningTimer); // the polling keeps this sign-in alive meanwhile
    window.clearTimeout(signOutTimer);
    setStatus("");
    main.setAttribute("data-verification-state", "handoff");
    showPanel(handoffActive);
  }

  var handoffForm = document.querySelector("form[data-handoff-open]");
  document.querySelectorAll("[data-handoff-offer]").forEach(function (offer) {
    offer.hidden = onATouchScreen;
    offer.querySelector("form").addEventListener("submit", function (event) {
      event.preventDefault();
      openHandoff();
    });
  });
  handoffAgain.querySelector("button").addEventListener("click", openHandoff);
  document.querySelectorAll("[data-handoff-here]").forEach(function (button) {
    button.addEventListener("click", function () { boot(); });
  });

  // -- before the flow: the in-app browser and the camera ---------------------------------
  // Resolves "missing" (no camera API: an old or locked-down browser, or not a secure page),
  // "denied" (the Permissions API says so for this site) or null. Asking the Permissions API
  // shows no prompt and opens nothing.
  function cameraProblem() {
    var media = navigator.mediaDevices;
    if (!media || typeof media.getUserMedia !== "function") return Promise.resolve("missing");
    if (!navigator.permissions || typeof navigator.permissions.query !== "function") return Promise.resolve(null);
    return navigator.permissions.query({ name: "camera" }).then(function (status) {
      return status.state === "denied" ? "denied" : null;
    }, function () { return null; }); // a browser that can't tell (Firefox before 131): go on
  }

  function showCameraPanel(problem) {
    if (problem === "missing") {
      byId("camera-reason").textContent = t.noCameraApi;
    }
    setStatus("");
    showPanel(cameraPanel);
    scheduleSignOutWarning();
  }

  byId("camera-continue").addEventListener("click", function () { boot(); });

  var copyForm = document.querySelector("form[data-copy-link]");
  if (copyForm) {
    copyForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var status = byId("copy-link-status");
      var field = byId("copy-link-text");
      status.textContent = t.makingLink;
      window.fetch(copyForm.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json" },
        body: new FormData(copyForm)
      }).then(function (response) {
        if (response.status === 401) return null;
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      }).then(function (data) {
        if (!data) {
          status.textContent = "";
          onSignedOut();
          return;
        }
        field.value = data.url;
        var copied = navigator.clipboard && navigator.clipboard.writeText
          ? navigator.clipboard.writeText(data.url) : Promise.reject(new Error("no clipboard"));
        return copied.then(function () {
          status.textContent = t.linkCopied;
        }, function () {
          // No clipboard here (some in-app browsers): the link to select and copy by hand.
          byId("copy-link-fallback").hidden = false;
          field.focus();
          field.select();
          status.textContent = t.copyByHand;
        });
      }).catch(function () {
        status.textContent = t.linkNotMade;
      });
    });
  }

  if (cfg.inAppBrowser) {
    // The server showed the in-app pre-flight: the flow waits for "Continue here anyway".
    scheduleSignOutWarning();
  } else {
    cameraProblem().then(function (problem) {
      if (problem) {
        showCameraPanel(problem);
      } else {
        boot();
      }
    });
  }
})();
