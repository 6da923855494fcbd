// The emulated Persona flow. Speaks the official SDK's postMessage protocol (shared/persona/SDK.md).
(function () {
  "use strict";
  var root = document.getElementById("flow");
  var cfg = root.dataset;
  var storageKey = "persona-inquiry-session:" + cfg.inquiryId;
  var state = null;

  function post(name, extra) {
    if (window.parent === window || !cfg.iframeOrigin) return;
    var message = Object.assign({ containerId: cfg.containerId, name: name }, extra || {});
    window.parent.postMessage(message, cfg.iframeOrigin);
  }

  function show(id) {
    ["loading", "step", "confirm-exit", "expired", "finished", "failure"].forEach(function (s) {
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

  function call(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit"
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    });
  }

  function renderStep() {
    document.getElementById("step-progress").textContent =
      "Step " + state.stepNumber + " of " + state.stepCount;
    document.getElementById("step-title").textContent = state.stepTitle;
    document.querySelectorAll(".step-body").forEach(function (el) {
      el.hidden = el.id !== "step-" + state.step;
    });
    document.getElementById("continue").hidden = state.isLastStep;
    document.getElementById("submit").hidden = !state.isLastStep;
    show("step");
    post("page-change", { metadata: { name: state.step, path: state.step } });
  }

  function handleError(data) {
    var error = (data && data.error) || { status: 0, code: "application_error", message: "Network error" };
    if (error.code === "unauthenticated") {
      dropToken();
      show("expired");
    } else if (error.status === 409) {
      document.getElementById("finished-title").textContent = "Verification already submitted";
      document.getElementById("finished-text").textContent =
        "This verification is " + (data.inquiryStatus || "finished") + " and can no longer be changed.";
      show("finished");
    } else {
      document.getElementById("failure-text").textContent = error.message || "Please try again later.";
      show("failure");
    }
    post("error", { error: error });
  }

  function networkFailure() { handleError(null); }

  function step(action) {
    call("/widget/api/step", { inquiryId: cfg.inquiryId, sessionToken: state.sessionToken, action: action })
      .then(function (result) {
        if (!result.ok) return handleError(result.data);
        state = result.data;
        if (action === "continue") return renderStep();
        var done = action === "submit";
        document.getElementById("finished-title").textContent = done ? "Thank you" : "We could not verify you";
        document.getElementById("finished-text").textContent = done
          ? "Your information was submitted."
          : "This verification did not succeed.";
        show("finished");
        post(done ? "complete" : "fail", {
          metadata: { inquiryId: state.inquiryId, status: state.status, fields: state.fields }
        });
      }, networkFailure);
  }

  function exit() {
    post("exit", { metadata: { inquiryId: cfg.inquiryId, sessionToken: state ? state.sessionToken : undefined } });
  }

  document.getElementById("continue").addEventListener("click", function () { step("continue"); });
  document.getElementById("submit").addEventListener("click", function () { step("submit"); });
  document.getElementById("fail").addEventListener("click", function () { step("fail"); });
  document.getElementById("exit").addEventListener("click", exit);
  document.getElementById("confirm-exit-button").addEventListener("click", exit);
  document.getElementById("stay").addEventListener("click", renderStep);

  window.addEventListener("message", function (event) {
    if (event.origin !== cfg.iframeOrigin || !event.data || typeof event.data !== "object") return;
    if (event.data.action === "exit") {
      if (event.data.metadata && event.data.metadata.force) exit();
      else if (state) show("confirm-exit");
      else exit();
    }
  });

  post("load");
  if (!cfg.inquiryId) {
    handleError({ error: { status: 400, code: "invalid_config", message: "The emulator only runs existing inquiries (inquiryId)." } });
    return;
  }
  call("/widget/api/session", { inquiryId: cfg.inquiryId, sessionToken: cfg.sessionToken || storedToken() })
    .then(function (result) {
      if (!result.ok) return handleError(result.data);
      state = result.data;
      keepToken(state.sessionToken);
      renderStep();
      post("ready", { metadata: {} });
      post("start", { metadata: { inquiryId: state.inquiryId } });
    }, networkFailure);
})();
