// Deskgate passkey ceremonies (WebAuthn), written for Deskgate; no third-party code.
//
// A form marked data-passkey="create" or "get" runs one ceremony when submitted:
//   1. it asks data-options for the server's options (GET when data-options-method="GET", else a
//      POST of the form's fields, as JSON when data-encoding="json"); the answer is the options,
//      or {ceremony, options};
//   2. it turns the options' base64url strings into bytes and calls navigator.credentials;
//   3. with data-finish="submit" it puts the credential (and ceremony) in the form's hidden
//      `credential` / `ceremony` fields and submits the form normally; otherwise it POSTs
//      {credential, ceremony, <data-carry fields>} as JSON to data-finish and shows the answer's
//      message in the form's [data-passkey-status] element.
// No inline script or style anywhere: the pages' CSP forbids both.
(function () {
  "use strict";

  function toBytes(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // The browser's option dictionaries refuse null where they expect a value: drop such members.
  function strip(value) {
    if (Array.isArray(value)) return value.map(strip);
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (k) {
        if (value[k] !== null && value[k] !== undefined) out[k] = strip(value[k]);
      });
      return out;
    }
    return value;
  }

  function creationOptions(options) {
    var pk = strip(options.publicKey);
    pk.challenge = toBytes(pk.challenge);
    pk.user.id = toBytes(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(options) {
    var pk = strip(options.publicKey);
    pk.challenge = toBytes(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return { publicKey: pk };
  }

  function registrationJson(c) {
    return {
      id: c.id,
      rawId: toText(c.rawId),
      type: c.type,
      response: {
        attestationObject: toText(c.response.attestationObject),
        clientDataJSON: toText(c.response.clientDataJSON)
      },
      extensions: {}
    };
  }

  function assertionJson(c) {
    return {
      id: c.id,
      rawId: toText(c.rawId),
      type: c.type,
      response: {
        authenticatorData: toText(c.response.authenticatorData),
        clientDataJSON: toText(c.response.clientDataJSON),
        signature: toText(c.response.signature),
        userHandle: c.response.userHandle ? toText(c.response.userHandle) : null
      },
      extensions: {}
    };
  }

  function fields(form) {
    var data = {};
    new FormData(form).forEach(function (v, k) {
      if (k !== "credential" && k !== "ceremony") data[k] = v;
    });
    return data;
  }

  function answer(response) {
    return response.text().then(function (text) {
      var body = {};
      try { body = text ? JSON.parse(text) : {}; } catch (e) { body = {}; }
      if (!response.ok) {
        throw new Error((body.error && body.error.message) || ("the server answered " + response.status));
      }
      return body;
    });
  }

  function run(form, status) {
    var create = form.dataset.passkey === "create";
    var data = fields(form);
    var request = { credentials: "same-origin" };
    if (form.dataset.optionsMethod === "GET") {
      request.method = "GET";
    } else if (form.dataset.encoding === "json") {
      request.method = "POST";
      request.headers = { "Content-Type": "application/json" };
      request.body = JSON.stringify(data);
    } else {
      request.method = "POST";
      request.body = new URLSearchParams(data);
    }
    var ceremony = null;
    return fetch(form.dataset.options, request).then(answer).then(function (got) {
      ceremony = got.ceremony || null;
      var options = got.options || got;
      status.textContent = "Follow your browser's prompt to use your passkey.";
      return create
        ? navigator.credentials.create(creationOptions(options))
        : navigator.credentials.get(requestOptions(options));
    }).then(function (credential) {
      if (!credential) throw new Error("no passkey was used");
      var json = create ? registrationJson(credential) : assertionJson(credential);
      if (form.dataset.finish === "submit") {
        form.elements.namedItem("credential").value = JSON.stringify(json);
        if (ceremony) form.elements.namedItem("ceremony").value = ceremony;
        HTMLFormElement.prototype.submit.call(form);
        return null;
      }
      var body = { credential: json };
      if (ceremony) body.ceremony = ceremony;
      (form.dataset.carry || "").split(" ").filter(Boolean).forEach(function (k) { body[k] = data[k]; });
      return fetch(form.dataset.finish, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body)
      }).then(answer);
    }).then(function (done) {
      if (!done) return;
      status.textContent = done.message || "Done.";
      status.dataset.outcome = "ok";
      if (done.recovery_codes && done.recovery_codes.length) showCodes(form, done.recovery_codes);
      // The link or pass is spent: nothing more to press.
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    });
  }

  // New recovery codes, shown once: a list to copy and a file to download. They are never sent.
  function showCodes(form, codes) {
    var box = document.createElement("section");
    box.className = "card";
    box.setAttribute("data-recovery-codes", "");
    var title = document.createElement("h2");
    title.textContent = "Your recovery codes";
    var hint = document.createElement("p");
    hint.textContent = "Each works once. Keep them where only you can reach them; this page is the only time they are shown.";
    var list = document.createElement("ol");
    codes.forEach(function (code) {
      var item = document.createElement("li");
      var text = document.createElement("code");
      text.textContent = code;
      item.appendChild(text);
      list.appendChild(item);
    });
    var download = document.createElement("a");
    download.textContent = "Download them as a text file";
    download.download = "recovery-codes.txt";
    download.href = URL.createObjectURL(new Blob([codes.join("\n") + "\n"], { type: "text/plain" }));
    box.appendChild(title);
    box.appendChild(hint);
    box.appendChild(list);
    box.appendChild(download);
    form.parentNode.insertBefore(box, form.nextSibling);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      var status = form.querySelector("[data-passkey-status]");
      if (!window.PublicKeyCredential || !navigator.credentials) {
        status.textContent = "This browser does not support passkeys.";
        return;
      }
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        status.textContent = "Working...";
        delete status.dataset.outcome;
        run(form, status).catch(function (e) {
          status.textContent = "Not done: " + (e && e.message ? e.message : e);
          status.dataset.outcome = "error";
        });
      });
    });
  });
})();
