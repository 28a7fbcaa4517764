// The rep sidebar: finds the customer (the WeCom client's current contact, or the page's own),
// renders their 360 and edits notes and tags through /sidebar/v1. Talks to WeCom only through
// a `wx` object with config / agentConfig / invoke (WeCom's JS-SDK, or a test's stand-in).
"use strict";

(function () {
  const body = document.body;
  const API = body.dataset.api;
  const STAFF_ID = Number(body.dataset.staffId);
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  let current = null; // the 360 on screen
  let corpTags = null; // [{id, name, group}], fetched once

  class ApiFailure extends Error {
    constructor(status, error) {
      super(error.message || "request failed");
      this.status = status;
      this.code = error.code;
    }
  }

  async function api(path, method = "GET", payload) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrf();
      init.body = JSON.stringify(payload);
    }
    const res = await fetch(API + path, init);
    const data = await res.json().catch(() => ({}));
    if (res.status === 401) {
      // The session ended (signed out, resigned, expired): sign in again and come back.
      location.href = body.dataset.signIn + "?next=" + encodeURIComponent(location.pathname);
    }
    if (!res.ok) throw new ApiFailure(res.status, data.error || {});
    return data;
  }

  function status(state, text) {
    const el = $("sidebar-status");
    el.dataset.state = state;
    el.textContent = text;
    el.hidden = state === "ready";
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function fill(listId, items, render, empty) {
    const list = $(listId);
    list.replaceChildren(...items.map(render));
    if (!items.length) list.append(el("li", { class: "muted", "data-testid": "empty", text: empty }));
  }

  function myFollow(view) {
    return view.follows.find((f) => f.staff_id === STAFF_ID && f.status === "active") || null;
  }

  // -- rendering ---------------------------------------------------------------------------
  function render(view) {
    current = view;
    const c = view.customer;
    $("customer-360").dataset.customerId = c.id;
    $("customer-name").textContent = c.name || "(no name)";
    $("customer-corp").textContent = c.corp_name || "";
    const avatar = $("customer-avatar");
    avatar.hidden = !c.avatar;
    avatar.onerror = () => { avatar.hidden = true; }; // an unreachable WeChat avatar shows nothing
    if (c.avatar) avatar.src = c.avatar;
    const level = $("intent-level");
    level.textContent = `${view.intent.level} · ${Math.round(view.intent.score)}`;
    level.dataset.level = view.intent.level;

    $("presence").hidden = !view.presence.length;
    fill("presence-list", view.presence, (p) =>
      el("li", { "data-testid": "presence-entry", "data-card-id": p.card_id,
        text: `${p.card_name}${p.since ? " since " + when(p.since) : ""}` }), "");

    const source = view.source || {};
    $("source-channel").textContent =
      [c.first_channel && `first: ${c.first_channel}`, c.last_channel && `last: ${c.last_channel}`]
        .filter(Boolean).join(" · ") || (source.first && source.first.name) || "unknown";

    renderTags(view);
    fill("note-list", view.notes, renderNote, "No notes yet.");
    fill("visit-list", view.visits, renderVisit, "No card visits.");
    fill("identity-list", view.identities, (i) =>
      el("li", { "data-testid": "identity", "data-type": i.type,
        text: `${i.type}: ${i.value}${i.verified ? " ✓" : ""}` }), "None.");
    fill("alert-list", view.alerts, (a) =>
      el("li", { "data-testid": "alert", "data-alert-id": a.id },
        el("strong", { text: a.title }), " ", el("span", { class: "muted", text: when(a.occurred_at) }),
        el("div", { text: a.text })), "No alerts.");
    fill("handover-list", view.handovers, (h) =>
      el("li", { "data-testid": "handover", "data-handover-id": h.handover_id,
        text: `${h.from_name || h.from_userid} → ${h.taker_name || h.taker_userid || "?"}: ${h.state}` }),
      "No hand-overs.");
    $("timeline-list").replaceChildren();
    $("customer-360").hidden = false;
    status("ready", "");
  }

  function renderVisit(v) {
    const what = v.content_title ? `${v.card_name} · ${v.content_title}` : v.card_name;
    const via = v.shared_by ? ` · shared by ${v.shared_by} (depth ${v.share_depth})` : "";
    return el("li", { "data-testid": "visit", "data-visit-id": v.id },
      el("span", { text: `${what}: ${Math.round(v.dwell_seconds)} s` }),
      el("span", { class: "muted", text: ` ${when(v.started_at)}${via}` }));
  }

  function renderNote(n) {
    const item = el("li", { "data-testid": "note", "data-note-id": n.id },
      el("p", { class: "note-body", "data-testid": "note-text", text: n.body }),
      el("span", { class: "muted", text: `${n.author_name} · ${when(n.updated_at || n.created_at)}` }));
    if (n.can_edit) {
      item.append(" ", el("button", { type: "button", class: "link", "data-testid": "note-edit",
        onclick: () => editNote(item, n) , text: "Edit" }));
    }
    return item;
  }

  function renderTags(view) {
    const mine = myFollow(view);
    const tags = mine ? mine.tags : [];
    fill("tag-list", tags, (t) =>
      el("li", { class: "chip", "data-testid": "tag", "data-tag-id": t.id },
        el("span", { text: t.group ? `${t.group}: ${t.name}` : t.name }),
        el("button", { type: "button", class: "link", "data-testid": "tag-remove", title: "Remove",
          onclick: () => changeTags([], [t.id]), text: "×" })), "No tags.");
    $("tag-editor").hidden = !mine;
    const select = $("tag-add-select");
    const have = new Set(tags.map((t) => t.id));
    select.replaceChildren(...(corpTags || []).filter((t) => !have.has(t.id)).map((t) =>
      el("option", { value: t.id, text: t.group ? `${t.group}: ${t.name}` : t.name })));
  }

  // -- actions -----------------------------------------------------------------------------
  async function reload() {
    render(await api(`/customers/${current.customer.id}`));
  }

  async function act(work) {
    try {
      await work();
    } catch (err) {
      status("error", err.message);
    }
  }

  function editNote(item, note) {
    const area = el("textarea", { "data-testid": "note-edit-body", rows: "3", maxlength: "2000" });
    area.value = note.body;
    const save = el("button", { type: "button", "data-testid": "note-save", text: "Save",
      onclick: () => act(async () => {
        await api(`/notes/${note.id}`, "PATCH", { body: area.value });
        await reload();
      }) });
    item.replaceChildren(area, save);
  }

  function changeTags(add, remove) {
    return act(async () => {
      await api(`/customers/${current.customer.id}/tags`, "PUT", { add_tag_ids: add, remove_tag_ids: remove });
      await reload();
    });
  }

  $("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(async () => {
      await api(`/customers/${current.customer.id}/notes`, "POST", { body: $("note-body").value });
      $("note-body").value = "";
      await reload();
    });
  });

  $("tag-add").addEventListener("click", () => {
    const id = Number($("tag-add-select").value);
    if (id) changeTags([id], []);
  });

  $("timeline-load").addEventListener("click", () => act(async () => {
    const page = await api(`/customers/${current.customer.id}/timeline?per_page=50`);
    fill("timeline-list", page.items, (e) =>
      el("li", { "data-testid": "timeline-entry", "data-kind": e.kind },
        el("span", { class: "muted", text: when(e.at) + " " }),
        el("span", { text: `${e.kind}${e.detail ? ": " + e.detail : ""}` })), "Nothing yet.");
  }));

  // -- start -------------------------------------------------------------------------------
  async function show(loadView) {
    try {
      const [view, tags] = await Promise.all([loadView(), corpTags ? null : api("/tags")]);
      if (tags) corpTags = tags.tags;
      render(view);
    } catch (err) {
      status(err.status === 404 ? "not-found" : "error",
        err.status === 404 ? "This customer is not one of yours." : err.message);
    }
  }

  async function fromWeCom() {
    const wx = window.wx;
    if (!wx) {
      status("no-wecom", "Open this page from the WeCom chat toolbar.");
      return;
    }
    let cfg;
    try {
      cfg = await api("/jssdk-config?url=" + encodeURIComponent(location.href.split("#")[0]));
    } catch (err) {
      status("error", err.message);
      return;
    }
    // WeCom 3.0.24 and later take agentConfig without waiting for config's ready.
    wx.config(cfg.config);
    wx.agentConfig({
      ...cfg.agentConfig,
      success: () => wx.invoke("getCurExternalContact", {}, (res) => {
        if (!res || res.err_msg !== "getCurExternalContact:ok") {
          status("no-contact", "Open a chat with a customer to see them here.");
          return;
        }
        show(() => api("/contacts/" + encodeURIComponent(res.userId)));
      }),
      fail: (res) => status("error", "WeCom refused the page: " + ((res && (res.errMsg || res.err_msg)) || "")),
    });
  }

  const initial = $("sidebar-initial");
  if (body.dataset.mode === "customer" && initial) {
    const view = JSON.parse(initial.textContent);
    show(async () => view);
  } else {
    fromWeCom();
  }
})();
