// Session console: the little behaviour htmx does not give. Everything works without it.
(function () {
  "use strict";
  var REFRESH_MS = 10000;
  var PAUSE_KEY = "console.refresh.paused";
  // Sent with the table's periodic refresh only: the server does not count it as the admin's
  // activity, so an untouched tab still reaches --idle-timeout (handlers.BackgroundHeader).
  var BACKGROUND_HEADER = "X-Console-Background";

  function $(id) { return document.getElementById(id); }
  function dialog() { return $("confirm-dialog"); }

  function showJSOnly(root) {
    (root || document).querySelectorAll(".js-only[hidden]").forEach(function (el) { el.hidden = false; });
    syncPauseButton();
  }

  // The page's one status region: short announcements for screen readers. Cleared first, so
  // that the same words said twice are announced twice.
  function announce(msg) {
    var a = $("announce");
    if (!a) return;
    a.textContent = "";
    setTimeout(function () { a.textContent = msg; }, 50);
  }

  // Moves the focus to el (made focusable by tabindex="-1" in the markup) and brings it into view.
  function focusOn(el) {
    if (!el) return;
    el.focus({ preventScroll: true });
    el.scrollIntoView({ block: "nearest" });
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
      announce("Copied to the clipboard.");
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

  // Dismiss controls are links (they reload the view without JavaScript); here they just remove
  // what they dismiss and put the focus somewhere sensible.
  document.addEventListener("click", function (ev) {
    var d = ev.target.closest("[data-dismiss]");
    if (!d) return;
    ev.preventDefault();
    if (d.getAttribute("data-dismiss") === "notice") {
      var n = $("notices");
      if (n) n.innerHTML = "";
      focusOn($("results-heading"));
      return;
    }
    var result = d.closest('[data-testid="issue-result"]');
    if (result) result.remove();
    var details = $("issue");
    if (details) {
      details.open = false;
      focusOn(details.querySelector("summary"));
    }
  });

  // The issue panel: opening it moves the focus into its form; Escape closes it.
  document.addEventListener("toggle", function (ev) {
    var details = ev.target;
    if (details.id !== "issue" || !details.open) return;
    if (details.querySelector("[autofocus]")) return;
    var u = $("issue-username");
    if (u) u.focus();
  }, true);
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") return;
    var details = $("issue");
    if (!details || !details.open || !details.contains(document.activeElement)) return;
    details.open = false;
    focusOn(details.querySelector("summary"));
  });

  // Confirmation dialogs: htmx loads the confirmation into the dialog; we open and close it.
  document.addEventListener("htmx:afterSwap", function (ev) {
    var d = dialog();
    if (ev.detail.target === d && d.innerHTML.trim() !== "" && !d.open) {
      d.showModal();
      var first = d.querySelector("[autofocus]");
      if (first) first.focus();
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

  // The username filter asks for its view by itself, 400 ms after the last keystroke (the
  // filter form's "input changed delay" trigger). Its change event when it loses the focus
  // would ask for that view a second time, and the answer replaces the table while the
  // pointer that moved the focus away is still down on a link in it (Next, a count, a name):
  // the click is lost. The form never sees that change event; Enter still submits.
  document.addEventListener("change", function (ev) {
    if (ev.target.id === "f-user") ev.stopPropagation();
  }, true);

  // Requests: the background mark, the busy state of the table, and where the focus goes.
  var inFlight = 0;
  document.addEventListener("htmx:configRequest", function (ev) {
    var t = ev.detail.triggeringEvent;
    if (t && t.type === "refresh") ev.detail.headers[BACKGROUND_HEADER] = "refresh";
  });
  document.addEventListener("htmx:beforeRequest", function (ev) {
    inFlight++;
    var target = ev.detail.target;
    if (target && target.id === "results") target.setAttribute("aria-busy", "true");
  });
  document.addEventListener("htmx:afterRequest", function (ev) {
    inFlight = Math.max(0, inFlight - 1);
    var target = ev.detail.target;
    if (target && target.removeAttribute) target.removeAttribute("aria-busy");
    var r = $("results");
    if (r && inFlight === 0) r.removeAttribute("aria-busy");
  });
  // After a view the admin asked for (filters, paging, a username): say what it shows; after
  // paging, move the focus to the table's heading (the old scroll position is meaningless).
  document.addEventListener("htmx:afterSettle", function (ev) {
    var r = $("results");
    var cfg = ev.detail.requestConfig;
    var elt = cfg && cfg.elt;
    if (!elt || !r || ev.target !== r) return;
    var t = cfg.triggeringEvent;
    if (t && (t.type === "refresh" || t.type === "sessions-changed")) return;
    var focus = elt.getAttribute && elt.getAttribute("data-focus-after");
    if (focus) focusOn($(focus));
    if (elt.closest && elt.closest('#filters, .pager, [data-testid="row-user"], [data-testid="try-prefix"]')) {
      announce(r.getAttribute("data-summary") || "");
    }
  });

  // Auto-refresh of the sessions table, never while a confirmation is open or the tab hidden.
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
    announce(paused() ? "Auto-refresh paused." : "Auto-refresh resumed.");
  });
  setInterval(function () {
    var results = $("results");
    var d = dialog();
    if (!results || paused() || inFlight > 0 || (d && d.open) || document.visibilityState !== "visible") return;
    if (document.activeElement && results.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return;
    if (results.querySelector('input[name="id"]:checked')) return; // a selection in progress
    htmx.trigger(results, "refresh");
  }, REFRESH_MS);

  // Bulk selection: "all on this page" checks every row's box; the bar counts the selection.
  function syncSelection() {
    var rows = document.querySelectorAll('#results input[name="id"]');
    var n = 0;
    rows.forEach(function (b) { if (b.checked) n++; });
    var count = $("bulk-count");
    if (count) count.textContent = n + " selected";
    var all = $("select-page");
    if (all) {
      all.checked = rows.length > 0 && n === rows.length;
      all.indeterminate = n > 0 && n < rows.length;
    }
  }
  document.addEventListener("change", function (ev) {
    if (ev.target.id === "select-page") {
      var on = ev.target.checked;
      document.querySelectorAll('#results input[name="id"]').forEach(function (b) { b.checked = on; });
    }
    if (ev.target.id === "select-page" || ev.target.name === "id") {
      syncSelection();
      var count = $("bulk-count");
      if (count) announce(count.textContent + "."); // through the page's one status region
    }
  });
  document.addEventListener("htmx:afterSettle", function () { syncSelection(); });

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
