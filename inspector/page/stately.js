// Relays this inspector's messages to the hosted Stately inspector in the
// iframe, as @statelyai/inspect's own inspector server does: the iframe says
// "@statelyai.connected" once it listens, then gets every buffered and live
// message by postMessage. Only the three message types Stately understands
// are relayed, and only to the iframe's origin. Until the iframe listens,
// messages wait in a bounded buffer: every actor registration (up to
// MAX_ACTORS) and the most recent MAX_BUFFERED other messages.
"use strict";

(() => {
  const relayed = new Set(["@xstate.actor", "@xstate.event", "@xstate.snapshot"]);
  const iframe = document.getElementById("inspector");
  const origin = iframe.dataset.origin;
  const MAX_BUFFERED = 1000;
  const MAX_ACTORS = 100;
  const actors = [];
  const buffer = [];
  let connected = false;

  const keep = (message) => {
    if (message.type === "@xstate.actor") {
      actors.push(message);
      if (actors.length > MAX_ACTORS) actors.shift();
    } else {
      buffer.push(message);
      if (buffer.length > MAX_BUFFERED) buffer.shift();
    }
  };

  const post = (message) => iframe.contentWindow.postMessage(message, origin);

  window.addEventListener("message", (e) => {
    if (e.origin !== origin || !e.data || e.data.type !== "@statelyai.connected") return;
    connected = true;
    for (const message of actors.splice(0)) post(message);
    for (const message of buffer.splice(0)) post(message);
  });

  function connect() {
    const url = new URL("events", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url.href);
    socket.addEventListener("message", (e) => {
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!message || !relayed.has(message.type)) return;
      if (connected) post(message);
      else keep(message);
    });
    socket.addEventListener("close", () => setTimeout(connect, 1000));
  }
  connect();
})();
