// Drives the system Chromium for tests/e2e/test_browser.py and reports what the browser saw, as JSON.
//
//   node probe.mjs < job.json
//
// job: {chromium, profile, viewport: {width, height}, scale,
//       page: {html} | {url, upload: {file, token}, screenshot}}
// Prints {images: [...], responses: [...], requests: [...], errors: [...]}, and for an upload the
// token field's value after the page is loaded again (tokenAfterReload). All checks are the
// Python test's; this script only loads the page, waits for every image, and collects facts.
// Only loopback is reachable: every host name resolves to nothing, and the test checks each request.

import { chromium } from "playwright-core";

const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

async function readJob() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

// Every <img> once it has loaded (or failed): what it shows and whether it decodes.
async function images(page) {
  await page.waitForFunction(() => [...document.images].every((img) => img.complete), null, { timeout: 30000 });
  return page.evaluate(() => Promise.all([...document.images].map(async (img) => ({
    id: img.id,
    currentSrc: img.currentSrc.startsWith("data:") ? "data:" : img.currentSrc,
    naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight,
    clientWidth: img.clientWidth,
    decodes: await img.decode().then(() => true, () => false),
  }))));
}

async function upload(page, job) {
  await page.goto(job.page.url);
  await page.setInputFiles("#file", job.page.upload.file);
  await page.fill("#token", job.page.upload.token);
  await page.click("#send");
  await page.waitForSelector("#result:not([hidden]) #picture img", { timeout: 30000 });
  await page.waitForFunction(() => document.getElementById("chosen").textContent !== "", null, { timeout: 30000 });
}

const job = await readJob();
const context = await chromium.launchPersistentContext(job.profile, {
  executablePath: job.chromium,
  headless: true,
  args: ARGS,
  viewport: job.viewport,
  deviceScaleFactor: job.scale,
});
const report = { images: [], responses: [], requests: [], errors: [] };
const responses = [];
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("console", (message) => { if (message.type() === "error") report.errors.push(message.text()); });
  page.on("pageerror", (error) => report.errors.push(String(error)));
  context.on("request", (request) => report.requests.push(request.url().startsWith("data:") ? "data:" : request.url()));
  context.on("response", (response) => responses.push((async () => ({
    url: response.url(),
    status: response.status(),
    headers: await response.allHeaders(),
    requestHeaders: await response.request().allHeaders(),
  }))()));
  if (job.page.html !== undefined) {
    await page.setContent(job.page.html, { waitUntil: "load" });
  } else {
    await upload(page, job);
  }
  report.images = await images(page);
  report.chosen = await page.evaluate(() => document.getElementById("chosen")?.textContent ?? null);
  if (job.page.screenshot) await page.screenshot({ path: job.page.screenshot, fullPage: true });
  report.responses = await Promise.all(responses);
  if (job.page.upload !== undefined) {
    await page.reload();
    report.tokenAfterReload = await page.inputValue("#token");
  }
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(report));
