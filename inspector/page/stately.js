// Relays this inspector's messages to the hosted Stately inspector in the
// iframe, as @statelyai/inspect's own inspector server does: the iframe says
// "@statelyai.connected" once it listens, then gets every buffered and live
// message by postMessage. Only the three message types Stately understands
// are relayed, and only to the iframe's origin. Until the iframe listens,
// messages wait in bounded queues: the latest MAX_ROOTS root actor
// registrations, MAX_CHILDREN child registrations and MAX_BUFFERED other
// messages, posted in that order.
"use strict";

(() => {
  const relayed = new Set(["@xstate.actor", "@xstate.event", "@xstate.snapshot"]);
  const iframe = document.getElementById("inspector");
  const origin = iframe.dataset.origin;
  const MAX_BUFFERED = 1000;
  const MAX_ROOTS = 8;
  const MAX_CHILDREN = 100;
  const roots = [];
  const children = [];
  const buffer = [];
  let connected = false;

  /** Queues a message for the iframe; each queue drops its oldest beyond its bound. */
  const keep = (message) => {
    const queue = message.type !== "@xstate.actor" ? buffer : message.parentId === undefined ? roots : children;
    const max = queue === buffer ? MAX_BUFFERED : queue === roots ? MAX_ROOTS : MAX_CHILDREN;
    queue.push(message);
    if (queue.length > max) queue.shift();
  };

  const post = (message) => iframe.contentWindow.postMessage(message, origin);

  window.addEventListener("message", (e) => {
    if (e.origin !== origin || !e.data || e.data.type !== "@statelyai.connected") return;
    connected = true;
    for (const queue of [roots, children, buffer]) for (const message of queue.splice(0)) post(message);
  });
  // The iframe loads only now that the listener exists: its one
  // "@statelyai.connected" could otherwise arrive before anyone listens.
  iframe.src = iframe.dataset.src;

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
