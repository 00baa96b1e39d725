// Relays this inspector's messages to the hosted Stately inspector in the
// iframe, as @statelyai/inspect's own inspector server does: the iframe says
// "@statelyai.connected" once it listens, then gets every buffered and live
// message by postMessage. Only the three message types Stately understands
// are relayed, and only to the iframe's origin.
"use strict";

(() => {
  const relayed = new Set(["@xstate.actor", "@xstate.event", "@xstate.snapshot"]);
  const iframe = document.getElementById("inspector");
  const origin = iframe.dataset.origin;
  const buffer = [];
  let connected = false;

  const post = (message) => iframe.contentWindow.postMessage(message, origin);

  window.addEventListener("message", (e) => {
    if (e.origin !== origin || !e.data || e.data.type !== "@statelyai.connected") return;
    connected = true;
    for (const message of buffer.splice(0)) post(message);
  });

  function connect() {
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/events`);
    socket.addEventListener("message", (e) => {
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!message || !relayed.has(message.type)) return;
      if (connected) post(message);
      else buffer.push(message);
    });
    socket.addEventListener("close", () => setTimeout(connect, 1000));
  }
  connect();
})();
