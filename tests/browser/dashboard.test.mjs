// Headless Chromium test of the sparkwing dashboard page, driven by tests/e2e/dashboard.rs.
//
//   node tests/browser/dashboard.test.mjs <base-url> <done-run> <live-run> <screenshot-dir>
//
// <done-run> is a finished run with jobs build -> test -> deploy, where the log of `test` holds a
// red ANSI line and the line `<script>alert(1)</script>`, and `build` saved an artifact.
// <live-run> is in flight with `deploy` not done. Half-way the script prints `UPDATE` and waits
// for a line `UPDATED` on stdin: by then the driver has marked <live-run> and `deploy` as
// succeeded in the bucket, and the page must show it within 2 s without a reload.
// Exit code 0 when every check passed; each check prints one `ok` or `FAIL` line.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const [base, doneRun, liveRun, shots, staleRun] = process.argv.slice(2);
if (!base || !doneRun || !liveRun || !shots) {
  console.error('usage: dashboard.test.mjs <base-url> <done-run> <live-run> <screenshot-dir> [<stale-run>]');
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });

const stdin = readline.createInterface({ input: process.stdin });
const stdinLines = [];
let stdinWaiter = null;
stdin.on('line', (l) => { stdinLines.push(l.trim()); if (stdinWaiter) stdinWaiter(); });
async function readLine(timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (!stdinLines.length) {
    if (Date.now() > end) throw new Error('no reply from the driver on stdin');
    await new Promise((r) => { stdinWaiter = r; setTimeout(r, 100); });
  }
  return stdinLines.shift();
}

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
const dialogs = [];
page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
const offsite = [];
page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) offsite.push(r.url()); });

const runUrl = (id) => `${base}#/runs/${encodeURIComponent(id)}`;

try {
  // ---- runs list
  await page.goto(base);
  await page.waitForSelector('#runs-table tr.run-row', { timeout: 10000 });
  const rows = await page.$$eval('#runs-table tr.run-row', (trs) => trs.map((t) => ({ id: t.dataset.runId, text: t.textContent })));
  check('runs list shows the runs', rows.length >= 3, JSON.stringify(rows.map((r) => r.id)));
  const done = rows.find((r) => r.id === doneRun);
  check('finished run is listed with its status', done && done.text.includes('failed') && done.text.includes('main'), done && done.text);
  check('runs are newest first', rows.length > 1 && rows.every((r, i) => i === 0 || rows[i - 1].id >= r.id), rows.map((r) => r.id).join(' '));
  if (staleRun) {
    const marks = await page.$$eval('#runs-table tr.run-row', (trs) => Object.fromEntries(trs.map((t) => [t.dataset.runId, !!t.querySelector('.badge.stale')])));
    check('a running run without a heartbeat for 10 min is marked stale', marks[staleRun] === true, JSON.stringify(marks));
    check('a live run is not marked stale', marks[liveRun] === false, JSON.stringify(marks));
  }
  check('a javascript: CI link is not clickable', await page.$$eval('a[href^="javascript:"]', (a) => a.length) === 0);
  await page.screenshot({ path: path.join(shots, 'runs.png'), fullPage: true });

  await page.selectOption('#filter-status', 'failed');
  await page.waitForFunction(() => {
    const trs = [...document.querySelectorAll('#runs-table tr.run-row')];
    return trs.length > 0 && trs.every((t) => t.querySelector('.badge').textContent === 'failed');
  }, null, { timeout: 5000 }).then(() => check('status filter narrows the list', true), (e) => check('status filter narrows the list', false, e.message));
  check('the filter is in the URL', page.url().includes('status=failed'), page.url());

  // ---- run page: DAG, log, XSS, ANSI, search, artifacts, invocation
  await page.goto(runUrl(doneRun));
  await page.waitForSelector('svg#dag g.node', { timeout: 10000 });
  const nodes = await page.$$eval('svg#dag g.node', (gs) => gs.map((g) => ({ id: g.dataset.nodeId, cls: g.getAttribute('class') })));
  check('DAG draws one SVG node per job', nodes.length === 3, JSON.stringify(nodes));
  check('nodes are coloured by outcome', nodes.some((n) => n.id === 'build' && n.cls.includes('success')) && nodes.some((n) => n.id === 'test' && n.cls.includes('failed')), JSON.stringify(nodes));
  const edges = await page.$$eval('svg#dag path.edge', (ps) => ps.map((p) => `${p.dataset.from}->${p.dataset.to}`));
  check('edges follow needs', edges.includes('build->test') && edges.includes('test->deploy') && edges.length === 2, edges.join(','));
  const xs = await page.$$eval('svg#dag g.node', (gs) => Object.fromEntries(gs.map((g) => [g.dataset.nodeId, g.transform.baseVal.consolidate().matrix.e])));
  check('layers follow depth', xs.build < xs.test && xs.test < xs.deploy, JSON.stringify(xs));

  await page.click('svg#dag g.node[data-node-id="test"]');
  await page.waitForFunction(() => [...document.querySelectorAll('#log .line')].some((l) => l.textContent.includes('<script>alert(1)</script>')), null, { timeout: 5000 })
    .then(() => check('the XSS log line renders as text', true), (e) => check('the XSS log line renders as text', false, e.message));
  check('no script element came from the log', await page.$$eval('#log script', (s) => s.length) === 0);
  const red = await page.$$eval('#log .fg-31', (s) => s.map((x) => x.textContent));
  check('ANSI red becomes a coloured span', red.includes('FAILED'), JSON.stringify(red));
  const lineNos = await page.$$eval('#log .line .ln', (s) => s.map((x) => x.textContent));
  check('log lines are numbered', lineNos[0] === '1' && lineNos.length >= 3, lineNos.join(','));
  await page.fill('#log-search', 'alert');
  const count = await page.textContent('#log-count');
  const visible = await page.$$eval('#log .line', (ls) => ls.filter((l) => !l.hidden).length);
  check('search keeps the matching lines', /^1 of \d+ lines match$/.test(count) && visible === 1, `${count}, ${visible} visible`);
  await page.fill('#log-search', '');

  await page.click('svg#dag g.node[data-node-id="build"]');
  await page.waitForSelector('#artifacts a.artifact', { timeout: 5000 });
  const art = await page.$eval('#artifacts a.artifact', (a) => ({ href: a.getAttribute('href'), text: a.textContent }));
  check('artifacts have download links', art.href.startsWith('/api/v1/artifacts/') && art.text.length > 0, JSON.stringify(art));
  const artStatus = await page.evaluate(async (href) => (await fetch(href)).status, art.href);
  check('the artifact link downloads', artStatus === 200, String(artStatus));
  const inv = await page.textContent('#invocation');
  check('invocation shows mode, workers, profile and the CI job', inv.includes('ci-embedded') && inv.includes('Workers4') && inv.includes('ci-team') && inv.includes('https://ci.example.com/job/42'), inv);
  await page.click('svg#dag g.node[data-node-id="test"]');
  await page.waitForFunction(() => document.querySelectorAll('#log .line').length >= 3, null, { timeout: 5000 });
  await page.screenshot({ path: path.join(shots, 'run.png'), fullPage: true });

  // ---- live update of an in-flight run
  await page.goto(runUrl(liveRun));
  await page.waitForSelector('svg#dag g.node[data-node-id="deploy"]', { timeout: 10000 });
  const before = await page.getAttribute('svg#dag g.node[data-node-id="deploy"]', 'class');
  check('in-flight job is not done yet', !before.includes('success'), before);
  await page.screenshot({ path: path.join(shots, 'live-before.png'), fullPage: true });
  console.log('UPDATE');
  const reply = await readLine(30000);
  const t0 = Date.now();
  check('driver updated the bucket', reply === 'UPDATED', reply);
  await page.waitForFunction(() => {
    const g = document.querySelector('svg#dag g.node[data-node-id="deploy"]');
    const b = document.querySelector('#run-title .badge');
    return g && g.getAttribute('class').includes('success') && b && b.textContent === 'success';
  }, null, { timeout: 5000 }).catch(() => {});
  const took = Date.now() - t0;
  const after = await page.getAttribute('svg#dag g.node[data-node-id="deploy"]', 'class');
  check('the page shows the change within 2 s', after.includes('success') && took <= 2000, `${after} after ${took} ms`);
  console.log(`live update seen after ${took} ms`);
  await page.screenshot({ path: path.join(shots, 'live-after.png'), fullPage: true });
  const mainText = await page.textContent('main');
  check('no empty value is printed as "null" or "undefined"', !/\bnull\b|\bundefined\b/.test(mainText), mainText);

  check('no dialog was opened', dialogs.length === 0, JSON.stringify(dialogs));
  check('no page errors', pageErrors.length === 0, JSON.stringify(pageErrors));
  check('no request left this origin', offsite.length === 0, JSON.stringify(offsite));
} catch (e) {
  failures++;
  if (pageErrors.length) console.log(`page errors: ${JSON.stringify(pageErrors)}`);
  console.log(`FAIL unexpected error: ${e.stack || e}`);
  await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
  stdin.close();
}
console.log(failures ? `${failures} check(s) failed` : 'all browser checks passed');
process.exit(failures ? 1 : 0);
