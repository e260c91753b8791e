// Placeholder: the swarm-page helper replaces this file and swarm.html.
// Reads the info hash from the address and shows the raw JSON every second.
"use strict";
(function () {
  const ih = location.pathname.split("/").pop();
  const pre = document.getElementById("data");
  function load() {
    fetch("/api/swarms/" + ih, { cache: "no-store" })
      .then((r) => r.json())
      .then((j) => {
        if (j.name) document.getElementById("name").textContent = j.name;
        pre.textContent = JSON.stringify(j, null, 2);
      })
      .catch((e) => { pre.textContent = "Cannot reach the tracker: " + e.message; });
  }
  load();
  setInterval(load, 1000);
})();
