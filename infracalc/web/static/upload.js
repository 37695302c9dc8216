// Imports from the project page: the chosen file is sent as the raw body of one request, so that the
// service streams it to the object store as it arrives (nothing is buffered, whatever its size), and
// the browser's upload events show how far it got. The page's words come from the form's data-*
// attributes (the page's language); the service answers JSON: where to go next, or why not.
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) {
    return;
  }
  const input = document.getElementById("upload-file");
  const submit = document.getElementById("upload-submit");
  const cancel = document.getElementById("upload-cancel");
  const status = document.getElementById("upload-status");
  const progress = document.getElementById("upload-progress");
  const progressText = document.getElementById("upload-progress-text");
  const problem = document.getElementById("upload-error");
  const words = form.dataset;
  let sending = null;

  function size(bytes) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? bytes + " B" : value.toFixed(1) + " " + units[unit];
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) {
      return name in values ? String(values[name]) : "";
    });
  }

  function refuse(text) {
    problem.textContent = text;
    problem.hidden = false;
    status.hidden = true;
    submit.disabled = false;
    cancel.hidden = true;
    input.setAttribute("aria-invalid", "true");
    problem.focus();
  }

  function show(text) {
    status.hidden = false;
    progressText.textContent = text;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    problem.hidden = true;
    input.removeAttribute("aria-invalid");
    const file = input.files && input.files[0];
    if (!file) {
      refuse(words.msgChoose);
      return;
    }
    const limit = Number(words.maxBytes);
    if (file.size > limit) {
      refuse(fill(words.msgTooLarge, { size: size(file.size), limit: size(limit) }));
      return;
    }
    const request = new XMLHttpRequest();
    sending = request;
    request.open("POST", form.action + "?name=" + encodeURIComponent(file.name));
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.setRequestHeader("X-CSRFToken", form.querySelector("input[name=_csrf_token]").value);
    request.responseType = "json";
    request.upload.addEventListener("progress", function (progressEvent) {
      const total = progressEvent.lengthComputable ? progressEvent.total : file.size;
      const percent = total ? Math.floor((progressEvent.loaded * 100) / total) : 100;
      progress.value = percent;
      show(fill(words.msgSending, {
        name: file.name, sent: size(progressEvent.loaded), total: size(total), percent: percent,
      }));
    });
    request.upload.addEventListener("load", function () {
      progress.removeAttribute("value");
      show(words.msgChecking);
    });
    request.addEventListener("load", function () {
      sending = null;
      const answer = request.response || {};
      if (request.status === 201 && answer.location) {
        window.location.assign(answer.location);
        return;
      }
      refuse(answer.message || words.msgFailed);
    });
    request.addEventListener("error", function () {
      sending = null;
      refuse(words.msgFailed);
    });
    request.addEventListener("abort", function () {
      sending = null;
      refuse(words.msgCancelled);
    });
    submit.disabled = true;
    cancel.hidden = false;
    progress.value = 0;
    show(fill(words.msgSending, { name: file.name, sent: size(0), total: size(file.size), percent: 0 }));
    request.send(file);
  });

  cancel.addEventListener("click", function () {
    if (sending) {
      sending.abort();
    }
  });
})();
