// Photo Removal: a little plain JavaScript on top of pages that work without it.
// - forms (or buttons) with data-confirm ask before they submit (and tell the server they asked:
//   without this script, the server asks on a page of its own);
// - [data-copy] buttons copy the invitation link;
// - the share page uploads with a real progress bar and follows its scans live.
(function () {
  "use strict";

  var POLL_MS = 1500;
  var STATUS_WORDS = {
    queued: "waiting to start",
    running: "looking through photos",
    done: "finished",
    failed: "could not finish",
  };

  function confirmBeforeSubmit(event) {
    var source = (event.submitter && event.submitter.dataset.confirm) || event.target.dataset.confirm;
    if (source && !window.confirm(source)) {
      event.preventDefault();
    } else if (source) {
      event.target.querySelectorAll("[data-when-confirmed]").forEach(function (field) {
        field.value = field.dataset.whenConfirmed;
      });
    }
  }

  function setUpCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var field = document.getElementById(button.dataset.copy);
      var status = document.querySelector("[data-copy-status]");
      if (!field || !navigator.clipboard) {
        return;
      }
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(field.value).then(
          function () { if (status) { status.textContent = "Link copied."; } },
          function () { field.select(); }
        );
      });
    });
  }

  // ---- the scans list on the share page ----

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function newScanItem(id, label) {
    var li = document.createElement("li");
    li.className = "scan";
    li.dataset.scanId = String(id);
    li.innerHTML =
      '<p class="scan__title"><span class="scan__label"></span>: <span class="scan__status"></span></p>' +
      '<div class="scan__progress"><progress></progress>' +
      '<span class="scan__count" aria-hidden="true"></span></div>' +
      '<p class="scan__result"></p>';
    li.querySelector(".scan__label").textContent = label;
    li.querySelector("progress").setAttribute("aria-label", "Photos looked through in " + label);
    return li;
  }

  function scanResult(scan, ownerName) {
    if (scan.status === "done") {
      return "Found " + plural(scan.matches, "photo", "photos") + " that may show " + ownerName +
        ". Your upload has been deleted.";
    }
    if (scan.status === "failed") {
      return (scan.error || "Something went wrong.") + " Your upload has been deleted.";
    }
    return scan.matches ? scan.matches + " found so far." : "";
  }

  function showScan(li, scan, ownerName) {
    var bar = li.querySelector("progress");
    var known = scan.photos_total !== null && scan.photos_total !== undefined;
    li.className = "scan scan--" + scan.status;
    setText(li.querySelector(".scan__status"), STATUS_WORDS[scan.status] || scan.status);
    bar.max = known ? Math.max(scan.photos_total, 1) : 1;
    if (known) {
      bar.value = scan.status === "done" ? scan.photos_total : scan.photos_done;
    } else {
      bar.removeAttribute("value"); // an indeterminate bar while the photos are counted
    }
    setText(li.querySelector(".scan__count"),
      known ? scan.photos_done + " of " + scan.photos_total + " photos"
        : (scan.photos_done ? scan.photos_done + " photos so far" : "counting photos…"));
    setText(li.querySelector(".scan__result"), scanResult(scan, ownerName));
  }

  // Only touch text that changed, so screen readers announce changes, not every poll.
  function setText(element, text) {
    if (element.textContent !== text) {
      element.textContent = text;
    }
  }

  function ScanList(list) {
    this.list = list;
    this.url = list.dataset.scansUrl;
    this.ownerName = list.dataset.ownerName;
    this.timer = null;
  }

  ScanList.prototype.item = function (id, label) {
    var li = this.list.querySelector('[data-scan-id="' + id + '"]');
    if (!li) {
      var empty = this.list.querySelector("[data-empty]");
      if (empty) {
        empty.remove();
      }
      li = newScanItem(id, label || "Your upload");
      showScan(li, { status: "queued", photos_total: null, photos_done: 0, matches: 0 }, this.ownerName);
      this.list.insertBefore(li, this.list.firstChild);
    }
    return li;
  };

  ScanList.prototype.busy = function () {
    return this.list.querySelector(".scan--queued, .scan--running") !== null;
  };

  ScanList.prototype.poll = function () {
    var self = this;
    window.clearTimeout(self.timer);
    fetch(self.url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (scans) {
        scans.forEach(function (scan) {
          showScan(self.item(scan.id), scan, self.ownerName);
        });
        if (self.busy()) {
          self.timer = window.setTimeout(function () { self.poll(); }, POLL_MS);
        }
      })
      .catch(function () {
        // A hiccup (a restart, a lost connection): try again a little later.
        self.timer = window.setTimeout(function () { self.poll(); }, POLL_MS * 4);
      });
  };

  // ---- the upload form on the share page ----
  // With tus-js-client (served by us, /static/vendor), each file goes by the tus protocol in
  // pieces: a dropped connection or a closed tab resumes where it stopped when the same file is
  // chosen again. All the files chosen are the parts of one export, scanned as one. Without it,
  // the form is posted as it is.

  var CHUNK_BYTES = 32 * 1024 * 1024;
  var RETRY_MS = [0, 1000, 3000, 5000, 10000, 20000, 30000];

  function setUpUpload(form, scans) {
    var input = form.querySelector('input[type="file"]');
    var button = form.querySelector('button[type="submit"]');
    var bar = document.getElementById("upload-progress");
    var message = document.getElementById("upload-message");
    var maxBytes = Number(form.dataset.maxBytes || 0);

    function say(text, isError) {
      message.textContent = text;
      message.classList.toggle("error-text", Boolean(isError));
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var files = Array.prototype.slice.call(input.files || []);
      if (!files.length) {
        say("Please choose your download first.", true);
        return;
      }
      var tooLarge = files.filter(function (file) { return maxBytes && file.size > maxBytes; });
      if (tooLarge.length) {
        say(tooLarge[0].name + " is larger than the limit; please ask the platform for smaller parts.", true);
        return;
      }
      button.disabled = true;
      bar.hidden = false;
      bar.value = 0;
      say("Uploading " + names(files) + "…");
      if (window.tus && window.tus.isSupported && form.dataset.resumableUrl) {
        resumable(files);
      } else {
        whole(files);
      }
    });

    function names(files) {
      return files.length === 1 ? files[0].name : files.length + " parts";
    }

    function showProgress(sent, total) {
      bar.value = total ? Math.round((sent / total) * 100) : 0;
    }

    // One file after the other; then the finished uploads become one scan.
    function resumable(files) {
      var total = files.reduce(function (sum, file) { return sum + file.size; }, 0);
      var keys = [];
      var before = 0;

      function next(index) {
        if (index === files.length) {
          scanUploads(keys, files);
          return;
        }
        var file = files[index];
        var upload = new window.tus.Upload(file, {
          endpoint: form.dataset.resumableUrl,
          chunkSize: CHUNK_BYTES,
          retryDelays: RETRY_MS,
          metadata: { filename: file.name },
          storeFingerprintForResuming: true,
          removeFingerprintOnSuccess: true,
          onProgress: function (sent) { showProgress(before + sent, total); },
          onError: function (error) {
            var answer = error.originalResponse;
            var detail = answer ? detailOf(answer.getBody()) : null;
            failed(detail || "The upload stopped. Check your connection and choose the same " +
              "files again: it goes on where it stopped.");
          },
          onSuccess: function () {
            keys.push(upload.url.split("/").pop());
            before += file.size;
            next(index + 1);
          },
        });
        upload.findPreviousUploads().then(function (previous) {
          if (previous.length) {
            upload.resumeFromPreviousUpload(previous[0]);
          }
          upload.start();
        });
      }
      next(0);
    }

    function scanUploads(keys, files) {
      fetch(form.dataset.apiUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ uploads: keys }),
      }).then(function (response) {
        return response.json().then(function (body) { answered(response.status, body, files); });
      }).catch(function () {
        failed("The upload arrived, but the scan could not be started. Please try again.");
      });
    }

    // The plain form's body, for browsers without tus (the server takes both).
    function whole(files) {
      var xhr = new XMLHttpRequest();
      var data = new FormData();
      files.forEach(function (file) { data.append("file", file, file.name); });
      xhr.open("POST", form.dataset.apiUrl || form.action);
      xhr.responseType = "json";
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          showProgress(e.loaded, e.total);
        }
      });
      xhr.addEventListener("load", function () { answered(xhr.status, xhr.response || {}, files); });
      xhr.addEventListener("error", function () {
        failed("The upload was interrupted. Please check your connection and try again.");
      });
      xhr.send(data);
    }

    function detailOf(text) {
      try {
        var detail = JSON.parse(text).detail;
        return typeof detail === "string" ? detail.charAt(0).toUpperCase() + detail.slice(1) : null;
      } catch (e) {
        return null;
      }
    }

    function answered(status, body, files) {
      button.disabled = false;
      if (status === 202 && body.scan_id) {
        bar.value = 100;
        say("Uploaded. The scan has started; you can follow it below.");
        // On a phone the scan's progress is screens below: bring it into view.
        var followed = document.getElementById("step-scan");
        if (followed && followed.scrollIntoView) {
          followed.scrollIntoView({ behavior: "smooth", block: "start" });
        }
        form.reset();
        if (scans) {
          scans.item(body.scan_id, files.length === 1 ? files[0].name : files[0].name + " and the other parts");
          scans.poll();
        }
        return;
      }
      var detail = typeof body.detail === "string" ? body.detail : "The upload did not work.";
      failed(detail.charAt(0).toUpperCase() + detail.slice(1));
    }

    // A failed upload leaves no full bar beside its error: the bar goes, the reason stays.
    function failed(text) {
      button.disabled = false;
      bar.value = 0;
      bar.hidden = true;
      say(text, true);
    }
  }

  function start() {
    document.addEventListener("submit", confirmBeforeSubmit);
    setUpCopyButtons();
    var list = document.getElementById("scans");
    var scans = list ? new ScanList(list) : null;
    if (scans && scans.busy()) {
      scans.poll();
    }
    var form = document.getElementById("upload-form");
    if (form) {
      setUpUpload(form, scans);
    }
  }

  start();
})();

// A form the server sent back (web/templates/_field.html): its first wrong field has autofocus,
// which some browsers ignore (Safari on an iPhone); focus it and bring it into view with its
// label above and its message below, wherever the form is on the page.
(function () {
  "use strict";

  var wrong = document.querySelector('[aria-invalid="true"][autofocus], .form-problem[autofocus]');
  if (!wrong) {
    return;
  }
  if (document.activeElement !== wrong) {
    wrong.focus({ preventScroll: true });
  }
  (wrong.closest(".field") || wrong).scrollIntoView({ block: "center" });
})();
