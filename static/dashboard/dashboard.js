// kvsite dashboard: small page behaviours (copy buttons, confirmations, JSON checks).
// Every form works without this script; it only adds convenience and early feedback.
"use strict";

(function () {
  function announce(text) {
    const region = document.getElementById("announcer");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }
  window.kvAnnounce = announce;

  // Copy buttons: data-copy-target names the element whose value or text is copied.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy-target]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copyTarget);
    if (!source) return;
    const text = "value" in source && source.value !== undefined ? source.value : source.textContent;
    const done = function () {
      const label = button.textContent;
      button.textContent = "Copied";
      announce("Copied to the clipboard");
      window.setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectAndCopy(source, done); });
    } else {
      selectAndCopy(source, done);
    }
  });

  function selectAndCopy(source, done) {
    if (source.select) {
      source.select();
    } else {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    try {
      if (document.execCommand("copy")) done();
    } catch (error) {
      announce("Press Ctrl+C to copy");
    }
  }

  // Forms that need a second thought: data-confirm holds the question.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Typed confirmation: the submit button stays disabled until the input matches.
  function syncConfirmMatch(input) {
    const button = input.form && input.form.querySelector("button[type=submit]");
    if (button) button.disabled = input.value !== input.dataset.confirmMatch;
  }
  document.querySelectorAll("input[data-confirm-match]").forEach(syncConfirmMatch);
  document.addEventListener("input", function (event) {
    if (event.target.matches("input[data-confirm-match]")) syncConfirmMatch(event.target);
  });

  // JSON editors: checked as you type; a form with an invalid one does not submit.
  function checkJson(textarea) {
    const status = document.getElementById(textarea.getAttribute("aria-describedby"));
    let problem = "";
    try {
      const data = JSON.parse(textarea.value);
      if (textarea.hasAttribute("data-json-object") && (data === null || typeof data !== "object" || Array.isArray(data))) {
        problem = "A config document must be a JSON object ({...}).";
      }
    } catch (error) {
      problem = "Not valid JSON: " + error.message;
    }
    textarea.setAttribute("aria-invalid", problem ? "true" : "false");
    if (status) {
      status.innerHTML = "";
      const span = document.createElement("span");
      span.className = problem ? "error" : "ok";
      span.textContent = problem || "Valid JSON";
      status.appendChild(span);
    }
    return !problem;
  }
  document.querySelectorAll("textarea[data-json-editor]").forEach(function (textarea) {
    let timer = null;
    textarea.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { checkJson(textarea); }, 150);
    });
    if (textarea.form) {
      textarea.form.addEventListener("submit", function (event) {
        if (!checkJson(textarea)) {
          event.preventDefault();
          textarea.focus();
        }
      });
    }
  });
  // Format re-indents the text as the server writes documents (two spaces, "name": value)
  // without parsing its values: strings and numbers are copied as typed, because a JS number
  // is a double (12345678901234567890 would become 12345678901234567000, 1.10 would be 1.1).
  const JSON_TOKEN = /[ \t\n\r]*("(?:[^"\\]|\\.)*"|[{}\[\],:]|[^ \t\n\r{}\[\],:"]+)/y;
  function jsonTokens(text) {
    const tokens = [];
    let end = 0;
    JSON_TOKEN.lastIndex = 0;
    let match;
    while ((match = JSON_TOKEN.exec(text)) !== null) {
      tokens.push(match[1]);
      end = JSON_TOKEN.lastIndex;
    }
    // Anything left but whitespace: not the text checkJson passed; leave it alone.
    return /^[ \t\n\r]*$/.test(text.slice(end)) ? tokens : null;
  }
  function formatJson(text) {
    const tokens = jsonTokens(text);
    if (tokens === null) return null;
    let out = "";
    let depth = 0;
    const newline = function () { return "\n" + "  ".repeat(depth); };
    for (let index = 0; index < tokens.length; index++) {
      const token = tokens[index];
      if (token === "{" || token === "[") {
        const close = token === "{" ? "}" : "]";
        if (tokens[index + 1] === close) {
          out += token + close;
          index++;
        } else {
          depth++;
          out += token + newline();
        }
      } else if (token === "}" || token === "]") {
        depth--;
        out += newline() + token;
      } else if (token === ",") {
        out += "," + newline();
      } else if (token === ":") {
        out += ": ";
      } else {
        out += token;
      }
    }
    return out;
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-json-format]");
    if (!button) return;
    const textarea = document.getElementById(button.dataset.jsonFormat);
    if (!textarea || !checkJson(textarea)) return;
    const formatted = formatJson(textarea.value);
    if (formatted === null) return;
    textarea.value = formatted;
    announce("Formatted");
  });

  // A freshly issued token: move focus to it so keyboard and screen-reader users find it at once.
  const issued = document.querySelector("[data-autofocus]");
  if (issued) issued.focus();
})();
