// The console's only script: live fragments, confirmations and repeatable form rows.
// Every page works without it; it only saves reloads.
(function () {
  "use strict";

  // <div data-poll-url="…" data-poll-seconds="3">: the server's HTML fragment replaces the
  // content every few seconds until the fragment says it is final (data-final="true").
  function poll(el) {
    var seconds = parseFloat(el.dataset.pollSeconds || "3");
    function tick() {
      fetch(el.dataset.pollUrl, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          el.innerHTML = html;
          var final = el.querySelector("[data-final='true']");
          if (!final) { setTimeout(tick, seconds * 1000); }
        })
        .catch(function () { setTimeout(tick, seconds * 4000); });
    }
    if (!el.querySelector("[data-final='true']")) { setTimeout(tick, seconds * 1000); }
  }

  // <form data-confirm="Archive this code?">: ask before a destructive post.
  function confirmForms() {
    document.addEventListener("submit", function (ev) {
      var msg = ev.target.dataset && ev.target.dataset.confirm;
      if (msg && !window.confirm(msg)) { ev.preventDefault(); }
    });
  }

  // <button data-add-row="pool"> clones <template id="row-pool">, numbering __i__ from the
  // rows already in <tbody id="rows-pool">; <button data-remove-row> removes its row.
  function rows() {
    document.addEventListener("click", function (ev) {
      var add = ev.target.closest("[data-add-row]");
      if (add) {
        ev.preventDefault();
        var name = add.dataset.addRow;
        var tpl = document.getElementById("row-" + name);
        var body = document.getElementById("rows-" + name);
        var next = parseInt(body.dataset.next || body.children.length, 10);
        body.insertAdjacentHTML("beforeend", tpl.innerHTML.replace(/__i__/g, String(next)));
        body.dataset.next = String(next + 1);
        return;
      }
      var remove = ev.target.closest("[data-remove-row]");
      if (remove) {
        ev.preventDefault();
        remove.closest("[data-row]").remove();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll-url]").forEach(poll);
    confirmForms();
    rows();
  });
})();
