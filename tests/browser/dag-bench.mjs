// Benchmark: time from opening a run page to its DAG drawn, in headless Chromium.
//
//   node tests/browser/dag-bench.mjs <base-url> <run-id> <screenshot-dir>
//
// Prints `bench: …` lines; exits 1 if the graph never appears.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [base, runId, shots] = process.argv.slice(2);
if (!base || !runId || !shots) {
  console.error('usage: dag-bench.mjs <base-url> <run-id> <screenshot-dir>');
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkwing-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1400, height: 900 },
});
let code = 0;
try {
  const page = context.pages()[0] || await context.newPage();
  const url = `${base}#/runs/${encodeURIComponent(runId)}`;
  const times = [];
  for (let i = 0; i < 3; i++) {
    await page.goto('about:blank');
    const t0 = Date.now();
    await page.goto(url);
    const count = await page.waitForFunction(() => {
      const n = document.querySelectorAll('svg#dag g.node').length;
      return n >= 1000 ? n : false;
    }, null, { timeout: 10000, polling: 'raf' }).then((h) => h.jsonValue());
    const total = Date.now() - t0;
    const draw = await page.evaluate(() => window.__lastDagMs);
    times.push(total);
    console.log(`bench: run page with ${count} nodes, page load to DAG drawn: ${total} ms (SVG build ${draw.toFixed(0)} ms)`);
  }
  console.log(`bench: run page with 1,000 nodes, best of 3: ${Math.min(...times)} ms`);
  await page.screenshot({ path: path.join(shots, 'dag-1000.png') });
} catch (e) {
  console.log(`bench failed: ${e.stack || e}`);
  code = 1;
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(code);
