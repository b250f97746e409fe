// The script embedded in message.html (see html.rs). FRAGMENT_LIMIT is replaced when built.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="sealpost-portal"]');
  var holder = document.getElementById("sealpost-envelope");
  var link = document.getElementById("sp-open");
  var status = document.getElementById("sp-status");
  if (!meta || !holder || !link || !status) return;
  var portal, origin;
  try { portal = new URL(meta.content); origin = portal.origin; } catch (e) { return; }
  if (portal.protocol !== "https:" && portal.protocol !== "http:") return;
  portal.hash = "";
  var data = holder.textContent.replace(/\s+/g, "");
  var b64url = data.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  var small = b64url.length <= FRAGMENT_LIMIT;
  if (small) {
    link.href = portal.href + "#envelope=" + b64url;
  }
  status.textContent = "Select the button to open the message in the secure portal.";
  link.addEventListener("click", function (ev) {
    if (small) return;
    ev.preventDefault();
    var win = window.open(portal.href + "#await-envelope", "_blank");
    if (!win) {
      status.textContent = "Your browser blocked the portal window. Allow pop-ups for this file, or open " + portal.href + " and drop this file onto the page.";
      return;
    }
    status.textContent = "Waiting for the portal to load...";
    window.addEventListener("message", function onMessage(e) {
      if (e.origin !== origin || e.source !== win || !e.data || e.data.type !== "sealpost-ready") return;
      window.removeEventListener("message", onMessage);
      win.postMessage({ type: "sealpost-envelope", version: 1, envelope: data }, origin);
      status.textContent = "The message was handed to the portal. You can close this page.";
    });
  });
})();
