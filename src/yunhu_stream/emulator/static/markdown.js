// A small, safe Markdown renderer for the emulator page (no dependencies, no network).
// Safety: every piece of source text is HTML-escaped before any markup is added, and
// links are kept only for http(s), mailto, relative and fragment URLs.
(function (root) {
  "use strict";

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  var SAFE_URL = /^(https?:\/\/|mailto:|\/|#)/i;

  // `text` is already escaped; returns HTML for one line of inline markup.
  function inline(text) {
    var codes = [];
    text = text.replace(/`([^`]+)`/g, function (_m, code) {
      codes.push("<code>" + code + "</code>");
      return "\u0000" + (codes.length - 1) + "\u0000";
    });
    text = text.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, function (m, label, url) {
      if (!SAFE_URL.test(url)) return m;
      return '<a href="' + url + '" target="_blank" rel="noopener noreferrer">' + label + "</a>";
    });
    text = text
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
      .replace(/__([^_]+)__/g, "<strong>$1</strong>")
      .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
      .replace(/(^|[^\w])_([^_\s][^_]*)_(?!\w)/g, "$1<em>$2</em>")
      .replace(/~~([^~]+)~~/g, "<del>$1</del>");
    return text.replace(/\u0000(\d+)\u0000/g, function (_m, i) {
      return codes[Number(i)];
    });
  }

  // Returns HTML for a whole Markdown document (possibly cut off mid-stream).
  function renderMarkdown(source) {
    var lines = escapeHtml(source).split(/\r?\n/);
    var out = [];
    var para = [];
    var list = null; // {tag: "ul" | "ol", items: []}

    function flushPara() {
      if (para.length) out.push("<p>" + para.map(inline).join("<br>") + "</p>");
      para = [];
    }
    function flushList() {
      if (list) {
        out.push("<" + list.tag + ">" + list.items.map(function (item) {
          return "<li>" + inline(item) + "</li>";
        }).join("") + "</" + list.tag + ">");
      }
      list = null;
    }
    function flush() {
      flushPara();
      flushList();
    }

    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      var fence = /^\s*```\s*([\w+-]*)\s*$/.exec(line);
      if (fence) {
        flush();
        var code = [];
        for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) code.push(lines[i]);
        var cls = fence[1] ? ' class="language-' + fence[1] + '"' : "";
        out.push("<pre><code" + cls + ">" + code.join("\n") + "</code></pre>");
        continue;
      }
      var heading = /^(#{1,6})\s+(.*)$/.exec(line);
      if (heading) {
        flush();
        var level = heading[1].length;
        out.push("<h" + level + ">" + inline(heading[2]) + "</h" + level + ">");
        continue;
      }
      if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
        flush();
        out.push("<hr>");
        continue;
      }
      var quote = /^&gt;\s?(.*)$/.exec(line);
      if (quote) {
        flush();
        out.push("<blockquote>" + inline(quote[1]) + "</blockquote>");
        continue;
      }
      var bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      var numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
      if (bullet || numbered) {
        flushPara();
        var tag = bullet ? "ul" : "ol";
        if (list && list.tag !== tag) flushList();
        if (!list) list = { tag: tag, items: [] };
        list.items.push((bullet || numbered)[1]);
        continue;
      }
      if (/^\s*$/.test(line)) {
        flush();
        continue;
      }
      flushList();
      para.push(line);
    }
    flush();
    return out.join("\n");
  }

  var api = { escapeHtml: escapeHtml, renderMarkdown: renderMarkdown };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.YunhuMarkdown = api;
})(this);
