// The review of matches, on top of forms that work without it: each decision is sent in the
// background and its card put in place, focus moves on to the next card still waiting, a live
// region says what happened, keys do the clicking, and the last decision can be undone.
(function () {
  "use strict";

  var root = document.querySelector("[data-review]");
  // No review controls (a friend with no photos found yet): nothing to do here.
  if (!root || !window.fetch || !root.querySelector("[data-review-undo]")) {
    return;
  }
  var status = root.querySelector("[data-review-status]");
  var toast = root.querySelector("[data-review-toast]");
  var undoButton = root.querySelector("[data-review-undo]");
  var last = null; // what the last decision changed, to undo it
  var busy = false;

  function cards() {
    return Array.prototype.slice.call(root.querySelectorAll("[data-review-card]"));
  }

  function cardOf(element) {
    return element && element.closest ? element.closest("[data-review-card]") : null;
  }

  function csrfToken() {
    var field = root.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function say(text, canUndo) {
    status.textContent = text;
    undoButton.hidden = !canUndo;
    toast.classList.toggle("is-shown", Boolean(text));
  }

  function post(url, data) {
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("status " + response.status);
      }
      return response.json();
    });
  }

  function formData(fields) {
    var data = new FormData();
    data.append("csrf_token", csrfToken());
    Object.keys(fields).forEach(function (name) {
      data.append(name, fields[name]);
    });
    return data;
  }

  function parsed(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }

  // The answered card in place of the old one; after it, the cards the answer adds (another
  // face of the same photo, asked about once this one is "not me"), and away those it takes back.
  function putInPlace(card, answer) {
    var fresh = parsed(answer.card);
    card.replaceWith(fresh);
    var after = fresh;
    (answer.more || []).forEach(function (html) {
      var added = parsed(html);
      after.after(added);
      after = added;
    });
    (answer.gone || []).forEach(function (id) {
      var old = document.getElementById(id);
      if (old && old !== fresh) {
        old.remove();
      }
    });
    return fresh;
  }

  function focusCard(card) {
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  // The next card still waiting after this one, going round to the top; none: stay here.
  function nextWaiting(card) {
    var all = cards();
    var here = all.indexOf(card);
    for (var step = 1; step <= all.length; step += 1) {
      var candidate = all[(here + step) % all.length];
      if (candidate.dataset.pending === "true") {
        return candidate;
      }
    }
    return null;
  }

  // Send a card's form (a decision, or "Change"), then put the answered card in its place.
  function send(form, then) {
    var card = cardOf(form);
    if (busy || !card) {
      return;
    }
    busy = true;
    card.setAttribute("aria-busy", "true");
    post(form.action, new FormData(form))
      .then(function (answer) {
        then(putInPlace(card, answer), answer.message);
      })
      .catch(function () {
        HTMLFormElement.prototype.submit.call(form); // the page without script still works
      })
      .then(function () {
        busy = false;
      });
  }

  function decide(form) {
    var card = cardOf(form);
    var view = form.elements.view;
    var page = form.elements.page;
    var before = { id: card.id, kind: card.dataset.kind, review: card.dataset.review,
      undoUrl: card.dataset.undoUrl, reviewUrl: form.action,
      view: view ? view.value : "", page: page ? page.value : "" };
    send(form, function (fresh, message) {
      last = before;
      say(message, true);
      var next = nextWaiting(fresh);
      focusCard(next || fresh);
      if (!next) {
        say(message + " Nothing here waits for your review any more.", true);
      }
    });
  }

  function reopen(form) {
    send(form, function (fresh, message) {
      last = null;
      say(message, false);
      focusCard(fresh);
    });
  }

  // Undo the last decision: a group's is taken back whole; a photo gets its earlier answer.
  function undo() {
    var card = last && document.getElementById(last.id);
    if (busy || !card) {
      say(last ? "" : "There is nothing to undo.", false);
      return;
    }
    var fields = {};
    if (last.view) {
      fields.view = last.view;
      fields.page = last.page;
    }
    var url = last.undoUrl;
    if (last.kind === "match" && last.review !== "pending") {
      url = last.reviewUrl;
      fields.decision = last.review;
    }
    busy = true;
    last = null;
    post(url, formData(fields))
      .then(function (answer) {
        var fresh = putInPlace(card, answer);
        say(answer.message, false);
        focusCard(fresh);
      })
      .catch(function () {
        say("That could not be undone. Please reload the page.", false);
      })
      .then(function () {
        busy = false;
      });
  }

  function move(card, step) {
    var all = cards();
    if (!all.length) {
      return;
    }
    var here = all.indexOf(card);
    var to = here < 0 ? (step > 0 ? 0 : all.length - 1) : here + step;
    focusCard(all[Math.min(Math.max(to, 0), all.length - 1)]);
  }

  function act(card, decision) {
    var input = card && card.querySelector(
      'form[data-review-form="decide"] input[name="decision"][value="' + decision + '"]');
    if (input) {
      decide(input.form);
    } else if (card) {
      say("This one is decided. Use “Change” or open it to decide again.", false);
    }
  }

  var KEYS = {
    j: function (card) { move(card, 1); },
    k: function (card) { move(card, -1); },
    y: function (card) { act(card, "confirmed"); },
    c: function (card) { act(card, "confirmed"); },
    n: function (card) { act(card, "rejected"); },
    u: function () { undo(); },
    o: function (card) {
      if (card && card.dataset.openUrl) {
        window.location.assign(card.dataset.openUrl);
      }
    },
  };

  function onKey(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) {
      return;
    }
    var card = cardOf(document.activeElement);
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    // Arrows keep scrolling the page unless the keyboard is on a card.
    if (card && (key === "ArrowDown" || key === "ArrowUp")) {
      key = key === "ArrowDown" ? "j" : "k";
    }
    if (Object.prototype.hasOwnProperty.call(KEYS, key)) {
      event.preventDefault();
      KEYS[key](card);
    }
  }

  root.addEventListener("submit", function (event) {
    var form = event.target;
    var kind = form.dataset.reviewForm;
    if (!kind) {
      return;
    }
    event.preventDefault();
    (kind === "undo" ? reopen : decide)(form);
  });
  undoButton.addEventListener("click", undo);
  document.addEventListener("keydown", onKey);
  root.querySelectorAll("[data-review-keys]").forEach(function (keys) {
    keys.hidden = false;
  });
})();
