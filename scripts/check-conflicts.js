#!/usr/bin/env node
// Fails when a merge left its conflict markers in a tracked text file: one reached
// docs/architecture.md unnoticed, since neither the compiler nor the tests read the docs.
// Walks the project's own trees (not node_modules, dist or native/build) and exits 1
// naming each file and line.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const trees = ['src', 'test', 'scripts', 'docs', 'systemd', 'native', 'bin', 'contrib', '.ci'];
const skipDirs = new Set(['node_modules', 'build', 'dist']);
const files = ['README.md', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];
const marker = /^(<{7}|>{7})( |$)/; // not "=======" alone: a Markdown heading may underline with it

function* walk(dir) {
  let entries;
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (!skipDirs.has(e.name)) yield* walk(p); }
    else if (e.isFile()) yield p;
  }
}

const found = [];
const candidates = [...trees.flatMap((t) => [...walk(path.join(root, t))]), ...files.map((f) => path.join(root, f))];
for (const file of candidates) {
  let text;
  try { text = fs.readFileSync(file); } catch { continue; }
  if (text.includes(0)) continue; // binary
  text.toString('utf8').split('\n').forEach((line, i) => {
    if (marker.test(line)) found.push(`${path.relative(root, file)}:${i + 1}: merge conflict marker: ${line.slice(0, 40)}`);
  });
}
if (found.length > 0) {
  for (const f of found) console.error(f);
  process.exit(1);
}
