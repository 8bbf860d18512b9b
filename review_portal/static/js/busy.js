// A long operation says it is running: when a form marked data-busy-text is sent, its
// buttons are disabled (no second click) and the text is shown with a spinner next to the
// button that was pressed. Without this file the form works the same, without the text.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset || !form.dataset.busyText || event.defaultPrevented) { return; }
    var pressed = event.submitter;
    if (pressed && pressed.name) {
      // A disabled button is not sent: keep its name and value in the form.
      var carried = document.createElement("input");
      carried.type = "hidden";
      carried.name = pressed.name;
      carried.value = pressed.value;
      carried.setAttribute("data-busy-carried", "");
      form.appendChild(carried);
    }
    var buttons = form.querySelectorAll("button, input[type=submit]");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
    var status = document.createElement("span");
    status.className = "ms-2 text-muted busy-status";
    status.setAttribute("role", "status");
    var spinner = document.createElement("span");
    spinner.className = "spinner-border spinner-border-sm me-1";
    spinner.setAttribute("aria-hidden", "true");
    status.appendChild(spinner);
    status.appendChild(document.createTextNode(form.dataset.busyText));
    (pressed || buttons[buttons.length - 1] || form).insertAdjacentElement("afterend", status);
  });
  // Back to a page the browser kept (back/forward cache): its forms work again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    var forms = document.querySelectorAll("form[data-busy-text]");
    for (var i = 0; i < forms.length; i++) {
      var stale = forms[i].querySelectorAll(".busy-status, input[data-busy-carried]");
      for (var j = 0; j < stale.length; j++) { stale[j].remove(); }
      var buttons = forms[i].querySelectorAll("button, input[type=submit]");
      for (var k = 0; k < buttons.length; k++) { buttons[k].disabled = false; }
    }
  });
})();
