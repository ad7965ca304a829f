// Sorting, filtering and opening the ranked links; no library, nothing fetched.
(function () {
  "use strict";
  var table = document.getElementById("links");
  if (!table) { return; }
  var bodies = function () { return Array.prototype.slice.call(table.tBodies); };

  // A row opens (or closes) the evidence row that follows it.
  bodies().forEach(function (tb) {
    var row = tb.querySelector("tr.row");
    var ev = tb.querySelector("tr.evidence");
    var toggle = function () {
      ev.hidden = !ev.hidden;
      row.setAttribute("aria-expanded", String(!ev.hidden));
    };
    row.addEventListener("click", toggle);
    row.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); }
    });
  });

  // Sorting: numbers biggest first on the first click (rank smallest first), text A-Z;
  // a second click reverses. Unknown values ("-") always go last.
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, col) {
    var sort = function () {
      var numeric = th.dataset.type === "num";
      var current = th.getAttribute("aria-sort");
      var asc;
      if (current) { asc = current !== "ascending"; }
      else { asc = !numeric || th.dataset.key === "rank"; }
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var key = function (tb) {
        var td = tb.rows[0].cells[col];
        if (numeric) {
          var v = td.dataset.v;
          return v === "" ? null : parseFloat(v);
        }
        return td.textContent.trim().toLowerCase();
      };
      var sorted = bodies().map(function (tb, i) { return [key(tb), i, tb]; });
      sorted.sort(function (a, b) {
        if (a[0] === null && b[0] === null) { return a[1] - b[1]; }
        if (a[0] === null) { return 1; }
        if (b[0] === null) { return -1; }
        var c = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
        return (asc ? c : -c) || a[1] - b[1];
      });
      sorted.forEach(function (x) { table.appendChild(x[2]); });
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });

  // Filtering: free text over names, protocol and routes, and the recommended target.
  var box = document.getElementById("filter");
  var target = document.getElementById("target-filter");
  var shown = document.getElementById("shown");
  var filter = function () {
    var q = box.value.trim().toLowerCase();
    var t = target.value;
    var n = 0;
    bodies().forEach(function (tb) {
      var ok = (!q || tb.dataset.search.indexOf(q) >= 0) && (!t || tb.dataset.target === t);
      tb.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + table.tBodies.length + " links";
  };
  box.addEventListener("input", filter);
  target.addEventListener("change", filter);
  filter();
})();
