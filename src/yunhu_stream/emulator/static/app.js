// The emulator's live page: chats in the sidebar, the selected chat's messages, each
// streamed message growing as its chunks arrive (pushed over SSE), with its chunk timeline.
(function () {
  "use strict";

  var md = window.YunhuMarkdown;
  var chats = {}; // key "type:id" -> summary
  var selected = null; // key of the chat shown
  var statusEl = document.getElementById("status");
  var listEl = document.getElementById("chat-list");
  var messagesEl = document.getElementById("messages");
  var titleEl = document.getElementById("chat-title");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function fetchJson(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return r.json();
    });
  }

  // ---- sidebar ----------------------------------------------------------------------

  function renderChats() {
    var keys = Object.keys(chats);
    document.getElementById("no-chats").hidden = keys.length > 0;
    listEl.textContent = "";
    keys.forEach(function (key) {
      var chat = chats[key];
      var item = el("li", "chat");
      item.dataset.chat = key;
      item.dataset.streaming = String(chat.streaming);
      if (key === selected) item.classList.add("selected");
      var button = el("button", "chat-button");
      button.type = "button";
      button.appendChild(el("span", "chat-name", (chat.type === "group" ? "群 " : "用户 ") + chat.id));
      button.appendChild(el("span", "chat-count", String(chat.count)));
      button.appendChild(el("span", "chat-last", chat.lastText));
      button.addEventListener("click", function () { select(key); });
      item.appendChild(button);
      listEl.appendChild(item);
    });
  }

  // ---- messages ---------------------------------------------------------------------

  function formatTime(ms) {
    var d = new Date(ms);
    return d.toLocaleTimeString();
  }

  function renderBody(msg) {
    var body = el("div", "message-body");
    if (msg.contentType === "markdown") {
      body.classList.add("markdown");
      body.innerHTML = md.renderMarkdown(msg.text);
    } else if (["text", "html"].indexOf(msg.contentType) >= 0) {
      body.classList.add("plain");
      body.textContent = msg.text; // html is shown as source: the emulator does not sanitise it
    } else if (msg.mediaUrl && msg.contentType === "image") {
      body.classList.add("media");
      var img = el("img", "message-image");
      img.src = msg.mediaUrl;
      img.alt = "[image]";
      body.appendChild(img);
    } else if (msg.mediaUrl) {
      body.classList.add("media");
      var link = el("a", "message-file", "[" + msg.contentType + "]");
      link.href = msg.mediaUrl;
      body.appendChild(link);
    } else {
      body.classList.add("media");
      body.textContent = "[" + msg.contentType + "]";
    }
    return body;
  }

  function renderButtons(msg) {
    var box = el("div", "message-buttons");
    (msg.buttons || []).forEach(function (row) {
      var rowEl = el("div", "button-row");
      row.forEach(function (b) {
        var button = el("span", "message-button", b.text);
        button.title = b.actionType === 1 ? b.url || "" : b.value || "";
        rowEl.appendChild(button);
      });
      box.appendChild(rowEl);
    });
    return box;
  }

  function renderTimeline(stream) {
    var box = el("div", "chunk-timeline");
    var chunks = stream.chunks;
    var end = chunks.length ? chunks[chunks.length - 1][0] : 0;
    var biggest = chunks.reduce(function (m, c) { return Math.max(m, c[1]); }, 1);
    var summary = el("div", "chunk-summary",
      stream.chunkCount + " chunks · " + stream.bytes + " B · " + (end / 1000).toFixed(3) + " s" +
      (stream.aborted ? " · cut off" : stream.completed ? "" : " · receiving…"));
    box.appendChild(summary);
    var bars = el("div", "chunk-bars");
    chunks.forEach(function (c) {
      var bar = el("span", "chunk");
      bar.dataset.offsetMs = String(c[0]);
      bar.dataset.bytes = String(c[1]);
      bar.style.left = (end > 0 ? (100 * c[0]) / end : 0) + "%";
      bar.style.height = Math.max(8, Math.round((100 * c[1]) / biggest)) + "%";
      bar.title = "+" + c[0].toFixed(1) + " ms, " + c[1] + " B";
      bars.appendChild(bar);
    });
    box.appendChild(bars);
    return box;
  }

  function badge(text, cls) {
    return el("span", "badge " + cls, text);
  }

  function renderMessage(msg) {
    var node = el("article", "message");
    node.dataset.msgId = msg.msgId;
    node.dataset.contentType = msg.contentType;
    node.dataset.streaming = String(msg.streaming);
    node.dataset.recalled = String(msg.recalled);
    node.dataset.senderType = msg.senderType;
    var meta = el("div", "message-meta");
    var sender = el("span", "message-sender", msg.senderNickname || msg.senderId);
    sender.title = msg.senderType + " " + msg.senderId;
    meta.appendChild(sender);
    meta.appendChild(el("time", "message-time", formatTime(msg.sendTime)));
    meta.appendChild(badge(msg.contentType, "badge-type"));
    if (msg.streamed) meta.appendChild(badge("本内容由AI生成，仅供参考", "badge-ai"));
    if (msg.streaming) meta.appendChild(badge("streaming…", "badge-streaming"));
    if (msg.incomplete) meta.appendChild(badge("cut off", "badge-incomplete"));
    if (msg.edits) meta.appendChild(badge("edited ×" + msg.edits, "badge-edited"));
    if (msg.recalled) meta.appendChild(badge("recalled", "badge-recalled"));
    if (msg.parentId) meta.appendChild(badge("reply to " + msg.parentId.slice(0, 8), "badge-reply"));
    node.appendChild(meta);
    node.appendChild(renderBody(msg));
    if (msg.buttons && msg.buttons.length) node.appendChild(renderButtons(msg));
    if (msg.stream) node.appendChild(renderTimeline(msg.stream));
    return node;
  }

  function upsertMessage(msg) {
    var fresh = renderMessage(msg);
    var old = messagesEl.querySelector('[data-msg-id="' + CSS.escape(msg.msgId) + '"]');
    var atBottom = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 40;
    if (old) messagesEl.replaceChild(fresh, old);
    else messagesEl.appendChild(fresh);
    if (atBottom) messagesEl.scrollTop = messagesEl.scrollHeight;
  }

  function select(key) {
    selected = key;
    if (location.hash !== "#" + key) history.replaceState(null, "", "#" + key);
    renderChats();
    var parts = key.split(":");
    var type = parts.shift();
    var id = parts.join(":");
    titleEl.textContent = (type === "group" ? "群 " : "用户 ") + id;
    fetchJson("/_emulator/chats/" + encodeURIComponent(type) + "/" + encodeURIComponent(id))
      .then(function (data) {
        if (selected !== key) return;
        messagesEl.textContent = "";
        data.messages.forEach(upsertMessage);
        messagesEl.scrollTop = messagesEl.scrollHeight;
      })
      .catch(function (err) { setStatus("error", String(err)); });
  }

  // ---- live updates -----------------------------------------------------------------

  function resync() {
    return fetchJson("/_emulator/chats").then(function (data) {
      chats = {};
      data.chats.forEach(function (c) { chats[c.key] = c; });
      var wanted = location.hash.slice(1);
      if (wanted && chats[wanted]) selected = wanted;
      else if (!selected || !chats[selected]) selected = data.chats.length ? data.chats[0].key : null;
      renderChats();
      if (selected) select(selected);
    });
  }

  function connect() {
    var source = new EventSource("/_emulator/events");
    source.addEventListener("hello", function () {
      setStatus("open", "live");
      resync().catch(function (err) { setStatus("error", String(err)); });
    });
    source.addEventListener("message", function (event) {
      var data = JSON.parse(event.data);
      var key = data.chat.key;
      chats[key] = data.chat;
      renderChats();
      if (selected === null) select(key);
      else if (key === selected) upsertMessage(data.message);
    });
    source.onerror = function () {
      setStatus("closed", "disconnected, retrying…");
    };
  }

  window.addEventListener("hashchange", function () {
    var wanted = location.hash.slice(1);
    if (wanted && wanted !== selected && chats[wanted]) select(wanted);
  });
  connect();
})();
