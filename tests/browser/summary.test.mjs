// Renders a run summary (the Markdown `sparkwing run` appends to GitHub Actions' job summary) to
// HTML with marked, opens it in headless Chromium, takes a screenshot and prints what the page
// shows as one JSON object. Driven by tests/e2e/reports.rs, which asserts on it.
//
//   node tests/browser/summary.test.mjs <summary.md> <screenshot.png>
//
// marked passes raw HTML through (GitHub sanitizes it; this page does not), so anything the
// summary failed to escape would show up here as an element, a script run or a dialog.
import { marked } from 'marked';
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [mdPath, shot] = process.argv.slice(2);
if (!mdPath || !shot) {
  console.error('usage: summary.test.mjs <summary.md> <screenshot.png>');
  process.exit(2);
}
const html = marked.parse(fs.readFileSync(mdPath, 'utf8'), { gfm: true });
const page_html = `<!doctype html><html><head><meta charset="utf-8"><title>summary</title><style>
body { font: 14px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 24px; color: #1f2328; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #d0d7de; padding: 6px 13px; }
tr:nth-child(2n) { background: #f6f8fa; }
pre { background: #f6f8fa; padding: 12px; overflow: auto; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
</style></head><body><main>${html}</main></body></html>`;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkwing-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1200, height: 800 },
});
try {
  const page = context.pages()[0] || await context.newPage();
  const dialogs = [];
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  const requests = [];
  page.on('request', (r) => { if (!r.url().startsWith('data:') && r.url() !== 'about:blank') requests.push(r.url()); });
  await page.setContent(page_html, { waitUntil: 'load' });
  const shown = await page.evaluate(() => {
    const texts = (sel) => [...document.querySelectorAll(sel)].map((e) => e.innerText.trim());
    return {
      h3: texts('main h3'),
      h4: texts('main h4'),
      headers: texts('main table thead th'),
      rows: [...document.querySelectorAll('main table tbody tr')].map((tr) => [...tr.cells].map((c) => c.innerText.trim())),
      code: [...document.querySelectorAll('main pre code')].map((c) => c.textContent),
      links: [...document.querySelectorAll('main a')].map((a) => a.getAttribute('href')),
      // Elements the summary itself never writes: any of them came from a record or a log.
      injected: document.querySelectorAll('main script, main img, main iframe, main style, main failure').length,
      paragraphs: texts('main p'),
    };
  });
  shown.failedRowVisible = await page.locator('main table tbody tr', { hasText: 'failed' }).first().isVisible();
  shown.dialogs = dialogs;
  shown.requests = requests;
  fs.mkdirSync(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify(shown));
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
