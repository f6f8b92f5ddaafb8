// The live queue: the server sends the queue's HTML whenever it changes (server-sent events).
"use strict";
(function () {
  var box = document.getElementById("queue");
  if (!box || !window.EventSource) { return; }
  var events = new EventSource(box.getAttribute("data-events"));
  events.onmessage = function (event) { box.innerHTML = JSON.parse(event.data).html; };
})();
