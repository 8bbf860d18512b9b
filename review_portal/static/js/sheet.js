// Autosave of the score sheet: ~1 s after the last change the whole form is POSTed as JSON
// (CSRF token in X-CSRFToken) with the revision it was loaded with. The page works without
// this file: the Save button posts the same form.
(function () {
  "use strict";
  var script = document.currentScript;
  var form = document.getElementById("sheet-form");
  if (!form || !form.dataset.editable || !window.fetch) { return; }
  var indicator = document.getElementById("save-indicator");
  var revisionInput = document.getElementById("sheet-revision");
  var csrf = form.querySelector("input[name=csrf_token]").value;
  var texts = script ? script.dataset : {};
  var timer = null;
  var dirty = false;
  var inFlight = false;
  var stale = false;
  var submitting = false;

  function show(text, cls) {
    indicator.textContent = text;
    indicator.className = "small " + (cls || "text-muted");
  }

  function collect() {
    var data = {revision: parseInt(revisionInput.value, 10), scores: {}, comments: {},
                recommendations: "", confirmed: false};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name.indexOf("score-") === 0) {
        var id = el.name.slice(6);
        if (!(id in data.scores)) { data.scores[id] = null; }
        if (el.checked) { data.scores[id] = parseInt(el.value, 10); }
      } else if (el.name.indexOf("comment-") === 0) {
        data.comments[el.name.slice(8)] = el.value;
      } else if (el.name === "recommendations") {
        data.recommendations = el.value;
      } else if (el.name === "confirmed") {
        data.confirmed = el.checked;
      }
    });
    return data;
  }

  function save() {
    timer = null;
    if (stale || !dirty) { return; }
    if (inFlight) { schedule(); return; }
    inFlight = true;
    dirty = false;
    show(texts.saving || "Saving…");
    fetch(form.dataset.autosaveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf,
                "Accept": "application/json"},
      body: JSON.stringify(collect())
    }).then(function (response) {
      return response.json().then(function (body) { return {status: response.status, body: body}; });
    }).then(function (result) {
      inFlight = false;
      if (result.status === 200) {
        revisionInput.value = result.body.revision;
        var time = new Date(result.body.saved_at + (/[zZ]|[+-]\d\d:?\d\d$/.test(result.body.saved_at) ? "" : "Z"));
        var hhmm = ("0" + time.getHours()).slice(-2) + ":" + ("0" + time.getMinutes()).slice(-2);
        if (!dirty) { show((texts.saved || "Saved at {time}").replace("{time}", hhmm), "text-success"); }
      } else if (result.status === 409) {
        stale = true;
        dirty = true;
        show(texts.stale || "A newer version exists", "text-danger fw-bold");
      } else {
        dirty = true;
        show(texts.failed || "Not saved", "text-danger");
        var errors = (result.body && result.body.errors) || {};
        Object.keys(errors).forEach(function (id) {
          var box = document.getElementById("error-" + id);
          if (box) { box.textContent = errors[id]; }
        });
      }
    }).catch(function () {
      inFlight = false;
      dirty = true;
      show(texts.unsaved || "Not saved", "text-danger");
    });
  }

  function schedule() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(save, 1000);
  }

  function changed() {
    if (stale) { return; }
    dirty = true;
    show(texts.unsaved || "Not saved", "text-warning-emphasis");
    schedule();
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", function () { submitting = true; });
  window.addEventListener("beforeunload", function (event) {
    if (!submitting && (dirty || inFlight)) {
      event.preventDefault();
      event.returnValue = "";
      return "";
    }
  });
})();
