/* The new-order form: when the service changes, show its details and the inputs its order
   type asks for; as the customer types, show the charge (asked of the server, debounced).
   The server prices the order again when it is placed. Every visible word comes from the
   page, so this file has nothing to translate. */
(function () {
  "use strict";
  var form = document.getElementById("order-form");
  if (!form || !window.fetch) return;
  var select = form.querySelector("#service");
  var charge = document.getElementById("order-charge");
  var note = document.getElementById("order-charge-note");
  var warning = document.getElementById("order-funds-warning");
  var info = document.getElementById("service-info");
  var timer = null;
  var asked = 0;

  function showInputs(fields) {
    form.querySelectorAll("[data-param]").forEach(function (group) {
      var wanted = fields.indexOf(group.dataset.param) !== -1;
      group.hidden = !wanted;
      group.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !wanted;
      });
    });
  }

  function showService(service) {
    info.hidden = false;
    info.querySelectorAll("[data-info]").forEach(function (element) {
      var value = service[element.dataset.info];
      element.textContent = value === null || value === undefined ? "" : String(value);
      if (element.hasAttribute("data-optional")) element.hidden = !value;
    });
    info.querySelectorAll("[data-flag]").forEach(function (element) {
      element.hidden = !service[element.dataset.flag];
    });
  }

  function showCharge(text, message, short) {
    charge.textContent = text;
    note.textContent = message || "";
    note.classList.toggle("order-charge__note--error", Boolean(message));
    warning.hidden = !short;
  }

  function refresh(serviceChanged) {
    var id = select.value;
    if (!id) {
      info.hidden = true;
      showInputs([]);
      showCharge("\u2014");
      return;
    }
    var params = new URLSearchParams({ service: id });
    form.querySelectorAll("[data-param] [name]").forEach(function (input) {
      if (!input.disabled && input.value.trim()) params.set(input.name, input.value);
    });
    var mine = ++asked;
    charge.setAttribute("aria-busy", "true");
    fetch(form.dataset.quoteUrl + "?" + params.toString(), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) { return response.json(); })
      .then(function (reply) {
        if (mine !== asked) return;
        if (reply.service) {
          showService(reply.service);
          if (serviceChanged) showInputs(reply.service.fields);
        }
        if (reply.charge) {
          showCharge(reply.currency + " " + reply.charge, "", !reply.enough_funds);
        } else {
          showCharge("\u2014", reply.error, false);
        }
      })
      .catch(function () {
        if (mine === asked) showCharge("\u2014");
      })
      .finally(function () {
        if (mine === asked) charge.removeAttribute("aria-busy");
      });
  }

  select.addEventListener("change", function () {
    var url = new URL(window.location.href);
    url.searchParams.set("service", select.value);
    window.history.replaceState(null, "", url);
    refresh(true);
  });
  form.addEventListener("input", function (event) {
    if (event.target === select) return;
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { refresh(false); }, 300);
  });
  refresh(true);
})();
