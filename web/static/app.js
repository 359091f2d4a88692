// Session console: the little behaviour htmx does not give. Everything works without it.
(function () {
  "use strict";
  var REFRESH_MS = 10000;
  var PAUSE_KEY = "console.refresh.paused";

  function $(id) { return document.getElementById(id); }
  function dialog() { return $("confirm-dialog"); }

  function showJSOnly(root) {
    (root || document).querySelectorAll(".js-only[hidden]").forEach(function (el) { el.hidden = false; });
    syncPauseButton();
  }

  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var src = $(btn.getAttribute("data-copy"));
    if (!src) return;
    var text = src.textContent;
    var done = function () {
      var label = btn.textContent;
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(src); });
    } else {
      selectText(src);
      try { if (document.execCommand("copy")) done(); } catch (e) { /* selected for manual copy */ }
    }
  });

  function selectText(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }

  // Confirmation dialogs: htmx loads the confirmation into the dialog; we open and close it.
  document.addEventListener("htmx:afterSwap", function (ev) {
    var d = dialog();
    if (ev.detail.target === d && d.innerHTML.trim() !== "" && !d.open) {
      d.showModal();
    }
  });
  // New content, also when an outerHTML swap replaced the target itself: show its
  // JavaScript-only controls.
  document.addEventListener("htmx:load", function (ev) { showJSOnly(ev.detail.elt); });

  // One edit of the filters can fire several requests for the same address (the field's
  // input and change events, the form's submit): push a history entry only when the address
  // changes, so that Back returns to the previous view.
  document.addEventListener("htmx:beforeHistoryUpdate", function (ev) {
    var h = ev.detail.history;
    if (h && h.type === "push" && new URL(h.path, location.href).href === location.href) h.type = "replace";
  });
  document.addEventListener("click", function (ev) {
    var c = ev.target.closest("[data-close-dialog]");
    var d = dialog();
    if (c && d && d.contains(c)) {
      ev.preventDefault();
      d.close();
    }
  });
  document.addEventListener("dialog-done", function () {
    var d = dialog();
    if (d && d.open) d.close();
  });
  document.addEventListener("close", function (ev) {
    if (ev.target === dialog()) ev.target.innerHTML = "";
  }, true);

  // Choosing a custom expiry: typing in its field selects the "custom" choice; choosing a
  // preset clears the field (a filled-in custom duration wins on the server).
  document.addEventListener("input", function (ev) {
    if (ev.target.id !== "expire-custom") return;
    var radio = document.querySelector('input[name="expire_after"][value="custom"]');
    if (radio) radio.checked = true;
  });
  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t.name !== "expire_after" || t.value === "custom") return;
    var custom = $("expire-custom");
    if (custom) custom.value = "";
  });

  // Auto-refresh of the sessions table, never while a confirmation is open or the tab hidden.
  var inFlight = false;
  document.addEventListener("htmx:beforeRequest", function () { inFlight = true; });
  document.addEventListener("htmx:afterRequest", function () { inFlight = false; });

  function paused() { return sessionStorage.getItem(PAUSE_KEY) === "1"; }
  function syncPauseButton() {
    var b = $("pause-refresh");
    if (!b) return;
    b.textContent = paused() ? "Resume auto-refresh" : "Pause auto-refresh";
    b.setAttribute("aria-pressed", paused() ? "true" : "false");
  }
  document.addEventListener("click", function (ev) {
    if (!ev.target.closest("#pause-refresh")) return;
    sessionStorage.setItem(PAUSE_KEY, paused() ? "0" : "1");
    syncPauseButton();
  });
  setInterval(function () {
    var results = $("results");
    var d = dialog();
    if (!results || paused() || inFlight || (d && d.open) || document.visibilityState !== "visible") return;
    if (document.activeElement && results.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return;
    htmx.trigger(results, "refresh");
  }, REFRESH_MS);

  // Errors of htmx requests go to the banner (the page stays as it was).
  function banner(msg) {
    var b = $("banner");
    if (!b) return;
    b.textContent = msg || "";
    b.hidden = !msg;
  }
  document.addEventListener("htmx:responseError", function (ev) {
    var xhr = ev.detail.xhr;
    var msg = "Request failed (HTTP " + xhr.status + ").";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var el = doc.querySelector('[data-testid="error-message"]');
      if (el) msg = el.textContent;
    } catch (e) { /* keep the generic message */ }
    banner(msg);
  });
  document.addEventListener("htmx:sendError", function () {
    banner("The console cannot be reached. It will try again.");
  });
  document.addEventListener("htmx:afterRequest", function (ev) {
    if (ev.detail.successful) banner("");
  });

  // The set-password page: the link's code travels in its fragment (#...), which no server
  // sees. Put it into the form, hide the field, and drop it from the address bar.
  function takeLinkCode() {
    var field = document.querySelector("[data-link-code]");
    if (!field) return;
    var code = location.hash.replace(/^#/, "");
    if (code) {
      field.value = code;
      history.replaceState(null, "", location.pathname);
    }
    if (field.value) {
      document.querySelectorAll(".js-hide").forEach(function (el) { el.hidden = true; });
    }
  }

  document.addEventListener("DOMContentLoaded", function () { showJSOnly(document); takeLinkCode(); });
  if (document.readyState !== "loading") { showJSOnly(document); takeLinkCode(); }
})();
