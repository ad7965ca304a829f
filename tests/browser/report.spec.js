// Opens report.html of the demo capture in Debian's Chromium (headless, through
// playwright-core) and checks what a reader does with it: it loads offline with no
// console error and no request beyond its own file, the graph has one edge per link of
// links.json, a header click sorts the table, a row opens its evidence, the filters
// filter. Saves target/report-screenshot.png.
//
// Usage: node report.spec.js [OUT_DIR]   (OUT_DIR holds report.html and links.json; by
// default the demo is analysed into target/browser-demo with target/debug/linkrank).
"use strict";
const path = require("path");
const fs = require("fs");
const { spawnSync } = require("child_process");
const { pathToFileURL } = require("url");
const { chromium } = require("playwright-core");

const repo = path.resolve(__dirname, "..", "..");
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok" : "FAILED"} - ${what}`);
  if (!ok) failures += 1;
}
function eq(a, b, what) {
  const ok = JSON.stringify(a) === JSON.stringify(b);
  check(ok, ok ? what : `${what}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
}

function demoDir() {
  if (process.argv[2]) return path.resolve(process.argv[2]);
  const out = path.join(repo, "target", "browser-demo");
  const bin = process.env.LINKRANK_BIN || path.join(repo, "target", "debug", "linkrank");
  const r = spawnSync(bin, ["analyze", "captures/prod.pcap", "--quiet", "--out", out], {
    cwd: repo,
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error(`${bin} analyze failed (${r.status})`);
  return out;
}

async function main() {
  const dir = demoDir();
  const doc = JSON.parse(fs.readFileSync(path.join(dir, "links.json"), "utf8"));
  const links = doc.links;
  const url = pathToFileURL(path.join(dir, "report.html")).href;

  const args = [];
  if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = [];
    const requests = [];
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(url, { waitUntil: "load" });

    // The graph: one edge per link, the same client/server pairs.
    const edges = await page.$$eval("svg.graph g.edge[data-client][data-server]", (gs) =>
      gs.map((g) => [g.dataset.client, g.dataset.server]));
    eq(edges.length, links.length, `graph has one edge per link (${links.length})`);
    eq(edges.map((e) => e.join(" -> ")).sort(),
       links.map((l) => `${l.client} -> ${l.server}`).sort(), "edges are the links' pairs");
    const tip = await page.$eval("svg.graph g.edge title", (t) => t.textContent);
    check(tip.includes("recommended:") && tip.includes("rate:"), "an edge's hover title holds its figures");

    // Sorting: "requests" sorts biggest first, unknown last, ties in rank order; again
    // reverses. The expected order is computed here from links.json.
    const order = () => page.$$eval("#links tbody.link", (bs) =>
      bs.map((b) => `${b.dataset.client} -> ${b.dataset.server}`));
    const name = (l) => `${l.client} -> ${l.server}`;
    eq(await order(), links.map(name), "table starts in rank order");
    const byRequests = (dir) => links
      .map((l, i) => [l.requests, i, name(l)])
      .sort((a, b) => {
        if (a[0] == null && b[0] == null) return a[1] - b[1];
        if (a[0] == null) return 1;
        if (b[0] == null) return -1;
        return (dir * (a[0] - b[0])) || a[1] - b[1];
      })
      .map((x) => x[2]);
    await page.click("#links th[data-key=requests]");
    const desc = await order();
    eq(desc, byRequests(-1), "a click on 'requests' sorts biggest first");
    if (JSON.stringify(byRequests(-1)) !== JSON.stringify(links.map(name))) {
      check(JSON.stringify(desc) !== JSON.stringify(links.map(name)), "the order changed");
    }
    eq(await page.getAttribute("#links th[data-key=requests]", "aria-sort"), "descending",
       "the header shows the direction");
    await page.click("#links th[data-key=requests]");
    eq(await order(), byRequests(1), "a second click reverses (unknown still last)");
    await page.click("#links th[data-key=rank]");
    eq(await order(), links.map(name), "'#' sorts back to rank order");

    // Evidence: closed, then open on a click, with the link's recommendation and routes.
    const first = "#links tbody.link:first-of-type";
    check(!(await page.isVisible(`${first} tr.evidence`)), "evidence starts closed");
    await page.click(`${first} tr.row`);
    check(await page.isVisible(`${first} tr.evidence`), "a click on a row opens its evidence");
    const ev = await page.textContent(`${first} tr.evidence`);
    const l0 = links[0];
    check(ev.includes(`Recommendation: ${l0.recommendation.target}`), "evidence names the recommendation");
    check(ev.includes("Savings as pooled gRPC") && ev.includes("Position in the call chains"),
      "evidence shows savings and chain position");
    for (const w of l0.recommendation.why) check(ev.includes(w), "evidence gives the why");
    await page.click(`${first} tr.row`);
    check(!(await page.isVisible(`${first} tr.evidence`)), "a second click closes it");
    // A link with routes lists them.
    const withRoutes = links.findIndex((l) => l.routes.length > 0);
    if (withRoutes >= 0) {
      const sel = `#links tbody.link:nth-of-type(${withRoutes + 1})`;
      await page.click(`${sel} tr.row`);
      const ev2 = await page.textContent(`${sel} tr.evidence`);
      check(links[withRoutes].routes.every((r) => ev2.includes(r.route)), "evidence lists the routes");
      await page.click(`${sel} tr.row`);
    }

    // Filters.
    const visible = () => page.$$eval("#links tbody.link", (bs) => bs.filter((b) => !b.hidden).length);
    await page.selectOption("#target-filter", "grpc");
    eq(await visible(), links.filter((l) => l.recommendation.target === "grpc").length,
       "the target filter keeps the gRPC links");
    await page.selectOption("#target-filter", "");
    await page.fill("#filter", "notifications");
    eq(await visible(), links.filter((l) => name(l).includes("notifications") ||
       l.routes.some((r) => r.route.toLowerCase().includes("notifications"))).length,
       "the text filter keeps the matching links");
    await page.fill("#filter", "");
    eq(await visible(), links.length, "clearing the filter shows every link");

    // Open the top link for the screenshot, as a reader would.
    await page.click(`${first} tr.row`);
    const shot = path.join(repo, "target", "report-screenshot.png");
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    check(fs.statSync(shot).size > 10000, `screenshot saved to ${path.relative(repo, shot)}`);

    eq(errors, [], "no console errors");
    eq([...new Set(requests)], [url], "no request beyond the page's own file");
  } finally {
    await browser.close();
  }
  if (failures > 0) {
    console.error(`${failures} browser check(s) failed`);
    process.exit(1);
  }
  console.log("browser test passed");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
