// kvsite dashboard: live pages over the watch WebSocket (session cookie auth, same origin).
//
// Bucket page: rows appear, change and disappear as kv_update frames arrive.
// Key page: a notice when someone else writes the key. Config page: the flags
// panel refreshes itself from the config watch socket.
// Each socket starts at the revision the page was rendered at (?since=), so a
// write between rendering and connecting is not missed, and reconnects resume
// from the last revision seen.
"use strict";

(function () {
  const announce = function (text) { if (window.kvAnnounce) window.kvAnnounce(text); };

  function setStatus(state, text) {
    const status = document.getElementById("live-status");
    if (!status) return;
    status.dataset.state = state;
    status.textContent = text;
  }

  // One watch socket with resume and back-off. onEvent gets kv_update frames.
  function Watch(path, params, onEvent) {
    this.path = path;
    this.params = params;
    this.onEvent = onEvent;
    this.since = params.since;
    this.stopped = false;
    this.delay = 1000;
    this.socket = null;
    this.open();
  }
  Watch.prototype.url = function () {
    const query = new URLSearchParams(this.params.query || "");
    if (this.params.key) query.set("key", this.params.key);
    if (this.since !== undefined && this.since !== null && this.since !== "") query.set("since", String(this.since));
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + this.path + "?" + query.toString();
  };
  Watch.prototype.open = function () {
    const self = this;
    setStatus("connecting", "Connecting…");
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch (error) {
      setStatus("error", "Live updates unavailable");
      return;
    }
    this.socket = socket;
    let lastError = "";
    socket.addEventListener("open", function () {
      self.delay = 1000;
      setStatus("live", "Live");
    });
    socket.addEventListener("message", function (message) {
      let frame;
      try { frame = JSON.parse(message.data); } catch (error) { return; }
      if (frame.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (frame.type === "kv_update" || frame.type === "config_update") {
        self.since = Math.max(Number(self.since) || 0, frame.revision);
        self.onEvent(frame);
      } else if (frame.type === "error") {
        lastError = frame.message || frame.code || "error";
        if (frame.code === "resource_exhausted" && frame.revision !== undefined) self.since = frame.revision;
      }
    });
    socket.addEventListener("close", function (event) {
      if (self.stopped) return;
      if (event.code === 4410) {
        setStatus("error", "Missed changes: reload the page");
        return;
      }
      if (event.code === 4404) {
        setStatus("error", lastError || "This bucket no longer exists");
        return;
      }
      if (event.code === 4401 || event.code === 4403 || event.code === 4400 || event.code === 1008) {
        setStatus("error", "Live updates refused" + (lastError ? ": " + lastError : ""));
        return;
      }
      setStatus("connecting", "Reconnecting…");
      window.setTimeout(function () { if (!self.stopped) self.open(); }, self.delay);
      self.delay = Math.min(self.delay * 2, 30000);
    });
  };
  Watch.prototype.stop = function () {
    this.stopped = true;
    if (this.socket) this.socket.close(1000);
  };

  function base64Size(value) {
    if (!value) return 0;
    const padding = value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0;
    return Math.floor(value.length * 3 / 4) - padding;
  }
  function shortTime(rfc3339) {
    // 2026-01-31T12:00:00.123456Z -> 2026-01-31 12:00:00 (times on these pages are UTC)
    return String(rfc3339).replace("T", " ").replace(/\.\d+/, "").replace(/Z$|\+00:00$/, "");
  }
  function plusSeconds(rfc3339, seconds) {
    const moment = new Date(rfc3339);
    if (isNaN(moment)) return "";
    return shortTime(new Date(moment.getTime() + seconds * 1000).toISOString());
  }
  function keyHref(base, key) {
    return base + key.split("/").map(encodeURIComponent).join("/");
  }

  // --- Bucket page ---------------------------------------------------------------------
  let bucketWatch = null;
  let watchedSection = null;

  function startBucketWatch() {
    const section = document.getElementById("keys");
    if (section === watchedSection) return;
    watchedSection = section;
    if (bucketWatch) bucketWatch.stop();
    bucketWatch = null;
    if (!section || !section.dataset.watchPath || !("WebSocket" in window)) return;
    const tbody = section.querySelector("tbody");
    const empty = section.querySelector("[data-empty]");
    const ttl = Number(section.dataset.ttl) || 0;
    const after = section.hasAttribute("data-after") ? section.dataset.after : null;
    const until = section.hasAttribute("data-until") ? section.dataset.until : null;

    function onThisPage(key) {
      return (after === null || key > after) && (until === null || key <= until);
    }
    function findRow(key) {
      for (const row of tbody.rows) if (row.dataset.key === key) return row;
      return null;
    }
    function fill(row, event) {
      row.querySelector('[data-col="revision"]').textContent = event.revision;
      row.querySelector('[data-col="size"]').textContent = base64Size(event.value);
      const updated = row.querySelector('[data-col="updated"]');
      updated.textContent = "";
      const time = document.createElement("time");
      time.dateTime = event.created_at;
      time.textContent = shortTime(event.created_at);
      updated.appendChild(time);
      const expires = row.querySelector('[data-col="expires"]');
      expires.textContent = "";
      if (ttl) {
        expires.textContent = plusSeconds(event.created_at, ttl);
      } else {
        const never = document.createElement("span");
        never.className = "muted";
        never.textContent = "never";
        expires.appendChild(never);
      }
      row.classList.remove("flash");
      void row.offsetWidth; // restart the highlight
      row.classList.add("flash");
    }
    function newRow(event) {
      const row = document.createElement("tr");
      row.dataset.key = event.key;
      const head = document.createElement("th");
      head.scope = "row";
      const link = document.createElement("a");
      link.href = keyHref(section.dataset.keyUrl, event.key);
      link.textContent = event.key;
      head.appendChild(link);
      row.appendChild(head);
      for (const [col, extra] of [["revision", "num"], ["size", "num"], ["updated", ""], ["expires", "hide-sm"]]) {
        const cell = document.createElement("td");
        cell.dataset.col = col;
        if (extra) cell.className = extra;
        row.appendChild(cell);
      }
      return row;
    }
    let factsTimer = null;
    function refreshFacts() {
      // The counters (values, bytes) follow history rules the page cannot redo: ask the server, at most once a second.
      const facts = document.getElementById("bucket-facts");
      if (!facts || !window.htmx || factsTimer) return;
      factsTimer = window.setTimeout(function () {
        factsTimer = null;
        window.htmx.ajax("GET", facts.dataset.factsUrl, { target: "#bucket-facts", swap: "outerHTML" });
      }, 1000);
    }
    function onEvent(event) {
      refreshFacts();
      const row = findRow(event.key);
      if (event.operation === "put") {
        if (row) {
          fill(row, event);
          announce(event.key + " changed");
        } else if (onThisPage(event.key)) {
          const added = newRow(event);
          let before = null;
          for (const other of tbody.rows) {
            if (other.dataset.key > event.key) { before = other; break; }
          }
          tbody.insertBefore(added, before);
          fill(added, event);
          if (empty) empty.hidden = true;
          announce(event.key + " added");
        }
      } else if (row) {
        row.classList.add("leaving");
        window.setTimeout(function () {
          row.remove();
          if (empty && tbody.rows.length === 0) empty.hidden = false;
        }, 400);
        announce(event.key + " removed");
      }
    }
    bucketWatch = new Watch(
      section.dataset.watchPath,
      { key: section.dataset.watchKey || "", since: section.dataset.since },
      onEvent
    );
  }

  // --- Key page ----------------------------------------------------------------------------
  function startKeyWatch() {
    const holder = document.getElementById("key-watch");
    if (!holder || !("WebSocket" in window)) return;
    const key = holder.dataset.key;
    const shownRevision = Number(holder.dataset.revision) || 0;
    const notice = document.getElementById("key-changed");
    new Watch(holder.dataset.watchPath, { key: holder.dataset.watchKey || "", since: holder.dataset.since }, function (event) {
      if (event.key !== key || event.revision <= shownRevision) return;
      const what = event.operation === "put" ? "it is now at revision " + event.revision : "it was " + event.operation + "d (revision " + event.revision + ")";
      notice.querySelector("[data-detail]").textContent = what;
      notice.hidden = false;
    });
  }

  // --- Config document page --------------------------------------------------------------------
  function startConfigLive() {
    const holder = document.getElementById("config-watch");
    if (!holder) return;
    const editor = document.getElementById("config-json");
    const editorRevision = editor && editor.form ? editor.form.querySelector('input[name="revision"]') : null;
    const notice = document.getElementById("config-changed");

    function liveRevision() {
      const panel = document.getElementById("config-live");
      return panel ? Number(panel.dataset.revision) : 0;
    }
    function syncEditor() {
      const panel = document.getElementById("config-live");
      const data = document.getElementById("config-live-text");
      if (!panel || !editor || !editorRevision || !data) return;
      const revision = Number(panel.dataset.revision);
      if (revision <= Number(editorRevision.value)) return;
      if (editor.value === editor.defaultValue) {
        // Untouched editor: follow the document, as the server wrote it out (a JSON string,
        // so its numbers keep their digits: parsing the document here would round them to doubles).
        const text = JSON.parse(data.textContent);
        editor.value = text;
        editor.defaultValue = text;
        editorRevision.value = String(revision);
        if (notice) notice.hidden = true;
      } else if (notice) {
        notice.querySelector("[data-detail]").textContent = String(revision);
        notice.hidden = false;
      }
    }
    function refresh() {
      if (!window.htmx) { window.location.reload(); return; }
      window.htmx.ajax("GET", holder.dataset.liveUrl, { target: "#config-live", swap: "outerHTML" }).then(function () {
        announce("The document changed: revision " + liveRevision());
      });
    }
    document.body.addEventListener("htmx:afterSettle", syncEditor);

    const url = new URL(holder.dataset.watchUrl, window.location.href);
    new Watch(url.pathname, { query: url.search.slice(1) }, function (event) {
      if (event.revision > liveRevision()) refresh();
    });
  }

  function start() {
    startBucketWatch();
    startKeyWatch();
    startConfigLive();
    // Filtering or paging the key list swaps #keys: watch what is shown now.
    document.body.addEventListener("htmx:afterSettle", startBucketWatch);
    document.body.addEventListener("htmx:historyRestore", startBucketWatch);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
