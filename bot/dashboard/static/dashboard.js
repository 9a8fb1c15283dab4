// Progressive enhancement only: every page works without this file.
// The Content-Security-Policy forbids inline script, so all behaviour lives here.
"use strict";

(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // <form data-confirm="Question?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);

  // Try the bot: send with fetch and append the replies, without reloading the page.
  var chat = document.getElementById("chat");
  if (!chat) {
    return;
  }
  var list = document.getElementById("chat-messages");
  var input = document.getElementById("chat-text");
  var buttonsForm = document.getElementById("chat-buttons");
  var textForm = document.getElementById("chat-form");

  function scrollDown() {
    list.scrollTop = list.scrollHeight;
  }

  // As the server's `user_text` filter: invisible format characters (bidi overrides such as
  // U+202E among them) are shown as codes, so text cannot pretend to read otherwise.
  function visibleControls(text) {
    return text.replace(/[\p{Cf}\u061c]/gu, function (ch) {
      if (ch === "\u200d") {
        return ch;
      }
      return "[U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + "]";
    });
  }

  function addMessage(cls, text, meta) {
    var empty = list.querySelector(".empty");
    if (empty) {
      empty.remove();
    }
    var item = document.createElement("li");
    item.className = "msg " + cls;
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    var bdi = document.createElement("bdi");
    bdi.className = "user-text";
    bdi.textContent = visibleControls(text); // text, never HTML
    bubble.appendChild(bdi);
    item.appendChild(bubble);
    if (meta) {
      var info = document.createElement("div");
      info.className = "meta";
      info.textContent = meta;
      item.appendChild(info);
    }
    list.appendChild(item);
    scrollDown();
  }

  function showButtons(buttons) {
    Array.prototype.slice.call(buttonsForm.querySelectorAll("button")).forEach(function (b) {
      b.remove();
    });
    buttons.forEach(function (pair) {
      var button = document.createElement("button");
      button.type = "submit";
      button.name = "button";
      button.value = pair[1];
      button.textContent = pair[0];
      buttonsForm.appendChild(button);
    });
  }

  // One message at a time, in order, as in a chat app: each waits for the previous answer.
  var queue = Promise.resolve();

  function send(body, shown) {
    if (shown) {
      addMessage("from-user", shown, "");
    }
    queue = queue.then(function () { return post(body); });
    return queue;
  }

  function post(body) {
    chat.setAttribute("aria-busy", "true");
    return fetch("/try", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() },
      body: body
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    }).then(function (data) {
      data.replies.forEach(function (reply) {
        addMessage("from-bot", reply.text, reply.kind);
        showButtons(reply.buttons);
      });
    }).catch(function (error) {
      addMessage("from-bot", "(The message could not be sent: " + error.message + ". Reload the page.)", "");
    }).finally(function () {
      chat.removeAttribute("aria-busy");
    });
  }

  textForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) {
      return;
    }
    var body = new URLSearchParams();
    body.set("text", text);
    input.value = "";
    send(body, text).then(function () { input.focus(); });
  });

  buttonsForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = event.submitter;
    if (!button || !button.value) {
      return;
    }
    var body = new URLSearchParams();
    body.set("button", button.value);
    send(body, "[" + button.textContent + "]");
  });

  scrollDown();
})();
