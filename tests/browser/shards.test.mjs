// Headless Chromium test of a run split across CI jobs (shards), driven by tests/e2e/shards.rs.
//
//   node tests/browser/shards.test.mjs <base-url> <run-id> <screenshot-dir>
//
// <run-id> ran as three shards: `build` on shard 1, `test` (needs `build`) on shard 2, `lint` on
// shard 3. The runs list must show it once, and its page one graph of the three jobs, each with
// a badge naming its shard. Exit code 0 when every check passed; each check prints one line.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [base, runId, shots] = process.argv.slice(2);
if (!base || !runId || !shots) {
  console.error('usage: shards.test.mjs <base-url> <run-id> <screenshot-dir>');
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });

let failures = 0;
function check(name, cond, detail) {
  if (cond) console.log(`ok   ${name}`);
  else { failures++; console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`); }
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkwing-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1400, height: 900 },
});
const page = context.pages()[0] || await context.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));

try {
  await page.goto(base);
  await page.waitForSelector('#runs-table tr.run-row', { timeout: 10000 });
  const rows = await page.$$eval('#runs-table tr.run-row', (trs) => trs.map((t) => ({ id: t.dataset.runId, text: t.textContent })));
  const mine = rows.filter((r) => r.id === runId);
  check('the sharded run is one row of the runs list', mine.length === 1, JSON.stringify(rows.map((r) => r.id)));
  check('its row says success', mine.length === 1 && mine[0].text.includes('success'), mine[0] && mine[0].text);

  await page.goto(`${base}#/runs/${encodeURIComponent(runId)}`);
  await page.waitForSelector('svg.dag g.node', { timeout: 10000 });
  await page.waitForFunction(() => document.querySelectorAll('svg.dag g.node').length >= 3, null, { timeout: 10000 }).catch(() => {});
  check('one graph', await page.$$eval('svg.dag', (s) => s.length) === 1);
  const nodes = await page.$$eval('svg.dag g.node', (gs) => gs.map((g) => ({
    id: g.getAttribute('data-node-id'),
    cls: g.getAttribute('class'),
    shard: g.querySelector('.shard-badge') ? g.querySelector('.shard-badge').getAttribute('data-shard') : null,
    badge: g.querySelector('.shard-badge text') ? g.querySelector('.shard-badge text').textContent : null,
  })));
  const by = Object.fromEntries(nodes.map((n) => [n.id, n]));
  check('the graph holds the jobs of every shard', ['build', 'test', 'lint'].every((id) => by[id]) && nodes.length === 3, JSON.stringify(nodes));
  for (const [id, shard] of [['build', '1'], ['test', '2'], ['lint', '3']]) {
    check(`\`${id}\` carries the badge of shard ${shard}`, by[id] && by[id].shard === shard && by[id].badge === 'S' + shard, JSON.stringify(by[id]));
    check(`\`${id}\` is drawn as succeeded`, by[id] && / success/.test(by[id].cls), by[id] && by[id].cls);
  }
  const edges = await page.$$eval('svg.dag path.edge', (ps) => ps.map((p) => `${p.dataset.from}->${p.dataset.to}`));
  check('the cross-shard edge build -> test is drawn', edges.includes('build->test'), JSON.stringify(edges));

  await page.click('svg.dag g.node[data-node-id="test"]');
  await page.waitForSelector('#node-title', { timeout: 5000 });
  const detail = await page.$eval('#node-title', (h) => h.parentElement.textContent);
  check('the job panel names the shard', /Shard\s*2/.test(detail), detail);
  const inv = await page.textContent('body');
  check('the run says how many shards it had', /Shards\s*3 \(3 reporting\)/.test(inv), '');
  await page.screenshot({ path: path.join(shots, 'shards.png'), fullPage: true });
  check('no page errors', pageErrors.length === 0, pageErrors.join('; '));
} catch (e) {
  failures++;
  console.log(`FAIL browser run: ${e && e.stack || e}`);
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
if (failures) { console.log(`${failures} browser check(s) failed`); process.exit(1); }
console.log('all browser checks passed');
