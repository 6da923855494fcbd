// The emulated Persona flow. Speaks the official SDK's postMessage protocol (shared/persona/SDK.md).
(function () {
  "use strict";
  var root = document.getElementById("flow");
  var cfg = root.dataset;
  var t = JSON.parse(cfg.strings);
  var storageKey = "persona-inquiry-session:" + cfg.inquiryId;
  var state = null;
  var retry = null;
  // Events the SDK passes to onEvent by default (its built-in allowlist), per step shown.
  var CAMERA_EVENTS = { document_front: "document-camera", selfie: "selfie-camera" };

  function post(name, extra) {
    if (window.parent === window || !cfg.iframeOrigin) return;
    var message = Object.assign({ containerId: cfg.containerId, name: name }, extra || {});
    window.parent.postMessage(message, cfg.iframeOrigin);
  }

  function show(id) {
    ["loading", "step", "confirm-exit", "expired", "finished", "failure", "offline", "handoff-screen"].forEach(function (s) {
      document.getElementById(s).hidden = s !== id;
    });
    var heading = document.querySelector("#" + id + " h1");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
  }

  function storedToken() {
    try { return window.sessionStorage.getItem(storageKey); } catch (e) { return null; }
  }
  function keepToken(token) {
    try { window.sessionStorage.setItem(storageKey, token); } catch (e) { /* storage blocked */ }
  }
  function dropToken() {
    try { window.sessionStorage.removeItem(storageKey); } catch (e) { /* storage blocked */ }
  }

  // A reply from our own API: {ok, data}. An answer that is not JSON is Persona's own failure
  // (application_error); no answer at all is a network failure, which the caller handles.
  function call(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit"
    }).then(function (response) {
      return response.json().then(
        function (data) { return { ok: response.ok, data: data }; },
        function () {
          return { ok: false, data: { error: { status: 0, code: "application_error", message: "Unreadable answer" } } };
        }
      );
    });
  }

  // The flow does not call onError for network failures (ECB): it offers to try again in the frame.
  function offline(again) {
    retry = again;
    show("offline");
  }

  function renderStep() {
    var title = t["step." + state.step];
    document.getElementById("step-progress").textContent =
      t.progress.replace("{n}", state.stepNumber).replace("{count}", state.stepCount);
    document.getElementById("step-title").textContent = title;
    document.querySelectorAll(".step-body").forEach(function (el) {
      el.hidden = el.id !== "step-" + state.step;
    });
    document.getElementById("continue").hidden = state.isLastStep;
    document.getElementById("submit").hidden = !state.isLastStep;
    show("step");
    post("page-change", {
      metadata: { name: state.step, nameDisplay: title, path: "/" + state.step,
                  metadata: { pageHeight: document.documentElement.scrollHeight } }
    });
    if (CAMERA_EVENTS[state.step]) post(CAMERA_EVENTS[state.step] + "-select", { metadata: { inquiryId: state.inquiryId } });
  }

  function handleError(data) {
    var error = (data && data.error) || { status: 0, code: "application_error", message: "Unknown error" };
    if (error.code === "unauthenticated") {
      dropToken();
      show("expired");
    } else if (error.status === 409) {
      document.getElementById("finished-title").textContent = t["final.title"];
      document.getElementById("finished-text").textContent = t["final.text"];
      show("finished");
    } else {
      document.getElementById("failure-text").textContent = t["error.text"];
      show("failure");
    }
    post("error", { error: error });
  }

  function step(action) {
    var from = state.step;
    call("/widget/api/step", { inquiryId: cfg.inquiryId, sessionToken: state.sessionToken, action: action })
      .then(function (result) {
        if (!result.ok) return handleError(result.data);
        if (CAMERA_EVENTS[from] && action !== "fail") {
          post(CAMERA_EVENTS[from] + "-capture", { metadata: { inquiryId: cfg.inquiryId } });
        }
        state = result.data;
        if (action === "continue") return renderStep();
        var done = action === "submit";
        document.getElementById("finished-title").textContent = done ? t["done.title"] : t["failed.title"];
        document.getElementById("finished-text").textContent = done ? t["done.text"] : t["failed.text"];
        show("finished");
        post(done ? "complete" : "fail", {
          metadata: { inquiryId: state.inquiryId, status: state.status, fields: state.fields }
        });
      }, function () { offline(function () { show("step"); step(action); }); });
  }

  // -- "Continue on another device" (Persona's own handoff) ----------------------------------
  // A one-time link for this inquiry; the other device opens it in a session of its own
  // (`device-handoff-method` "qr"). This window says so to the SDK with the documented events
  // (one-time-link-sent, -start, -exit) and, once the inquiry is finished there, completes here
  // too, as the first device does in Persona's flow.
  var FINISHED = ["completed", "failed", "approved", "declined", "needs_review"];
  var handoff = null; // {code, timer, started}

  function startHandoff() {
    call("/widget/api/handoff", { inquiryId: cfg.inquiryId, sessionToken: state.sessionToken })
      .then(function (result) {
        if (!result.ok) return handleError(result.data);
        handoff = { code: result.data.code, timer: null, started: false };
        document.getElementById("handoff-text").textContent = t["handoff.text"];
        document.getElementById("handoff-link").value = result.data.link;
        show("handoff-screen");
        post("one-time-link-sent", { metadata: { inquiryId: cfg.inquiryId } });
        followHandoff(handoff);
      }, function () { offline(function () { show("step"); startHandoff(); }); });
  }

  function followHandoff(current) {
    current.timer = window.setTimeout(function () {
      call("/widget/api/handoff-status", { inquiryId: cfg.inquiryId, sessionToken: state.sessionToken, code: current.code })
        .then(function (result) {
          if (handoff !== current) return;
          if (!result.ok) return handleError(result.data);
          if (result.data.opened && !current.started) {
            current.started = true;
            document.getElementById("handoff-text").textContent = t["handoff.opened"];
            post("one-time-link-start", { metadata: { inquiryId: cfg.inquiryId } });
          }
          if (FINISHED.indexOf(result.data.status) >= 0) {
            handoff = null;
            var done = result.data.status !== "failed";
            document.getElementById("finished-title").textContent = done ? t["done.title"] : t["failed.title"];
            document.getElementById("finished-text").textContent = done ? t["done.text"] : t["failed.text"];
            show("finished");
            post(done ? "complete" : "fail", {
              metadata: { inquiryId: result.data.inquiryId, status: result.data.status, fields: result.data.fields }
            });
            return;
          }
          followHandoff(current);
        }, function () { if (handoff === current) followHandoff(current); });
    }, 1000);
  }

  function cancelHandoff() {
    if (handoff) window.clearTimeout(handoff.timer);
    handoff = null;
    post("one-time-link-exit", { metadata: { inquiryId: cfg.inquiryId } });
    renderStep();
  }

  function exit() {
    post("exit", { metadata: { inquiryId: cfg.inquiryId, sessionToken: state ? state.sessionToken : undefined } });
  }

  function start() {
    show("loading");
    call("/widget/api/session", { inquiryId: cfg.inquiryId, sessionToken: cfg.sessionToken || storedToken() })
      .then(function (result) {
        if (!result.ok) return handleError(result.data);
        state = result.data;
        keepToken(state.sessionToken);
        renderStep();
        post("ready", { metadata: {} });
        post("start", { metadata: { inquiryId: state.inquiryId } });
      }, function () { offline(start); });
  }

  document.getElementById("continue").addEventListener("click", function () { step("continue"); });
  document.getElementById("submit").addEventListener("click", function () { step("submit"); });
  document.getElementById("fail").addEventListener("click", function () { step("fail"); });
  if (document.getElementById("handoff")) document.getElementById("handoff").addEventListener("click", startHandoff);
  document.getElementById("handoff-cancel").addEventListener("click", cancelHandoff);
  document.getElementById("exit").addEventListener("click", exit);
  document.getElementById("confirm-exit-button").addEventListener("click", exit);
  document.getElementById("stay").addEventListener("click", renderStep);
  document.getElementById("retry").addEventListener("click", function () { if (retry) retry(); });

  window.addEventListener("message", function (event) {
    if (event.origin !== cfg.iframeOrigin || !event.data || typeof event.data !== "object") return;
    if (event.data.action === "exit") {
      if (event.data.metadata && event.data.metadata.force) exit();
      else if (state) show("confirm-exit");
      else exit();
    }
  });

  post("load");
  if (cfg.linkDead) { // a one-time link that was used, or whose inquiry is over
    show("expired");
    return;
  }
  if (!cfg.inquiryId) {
    handleError({ error: { status: 400, code: "invalid_config", message: "The emulator only runs existing inquiries (inquiryId)." } });
    return;
  }
  start();
})();
