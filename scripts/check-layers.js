#!/usr/bin/env node
// Enforces DESIGN.md's one-way imports: lib <- route <- table <- proto <- daemon <- cli;
// netlink depends only on lib; only proto/kernel and daemon use netlink; nothing imports daemon or cli
// (cli may import daemon: it is the entry point). metrics (the Prometheus registry and its HTTP
// listener) sits beside daemon, which alone imports it; the prom-client package may be imported
// only by metrics. Exits 1 listing every violation.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'src');
const allowed = {
  lib: ['lib'],
  route: ['lib', 'route'],
  table: ['lib', 'route', 'table'],
  netlink: ['lib', 'netlink'],
  proto: ['lib', 'route', 'table', 'proto', 'config'],
  config: ['lib', 'route', 'config'],
  control: ['lib', 'route', 'control'],
  metrics: ['lib', 'route', 'table', 'proto', 'config', 'control', 'metrics'],
  daemon: ['lib', 'route', 'table', 'proto', 'netlink', 'config', 'control', 'metrics', 'daemon'],
  cli: ['lib', 'route', 'table', 'proto', 'netlink', 'config', 'control', 'daemon', 'cli'],
};
/** Packages only some layers may import. */
const packageOwners = { 'prom-client': ['metrics'] };

function* walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

const bad = [];
if (fs.existsSync(root)) {
  for (const file of walk(root)) {
    const rel = path.relative(root, file);
    const layer = rel.split(path.sep)[0];
    const ok = allowed[layer];
    if (!ok) {
      bad.push(`${rel}: folder ${layer} is not a known layer (add it to scripts/check-layers.js)`);
      continue;
    }
    const text = fs.readFileSync(file, 'utf8');
    const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)/g;
    let m;
    while ((m = re.exec(text))) {
      const spec = m[1] || m[2];
      if (!spec.startsWith('.')) {
        const owners = packageOwners[spec.split('/')[0]];
        if (owners && !owners.includes(layer)) bad.push(`${rel}: imports the package ${spec}; only ${owners.join(', ')} may`);
        continue;
      }
      const target = path.relative(root, path.resolve(path.dirname(file), spec));
      if (target.startsWith('..')) continue;
      const tlayer = target.split(path.sep)[0];
      let permitted = ok.includes(tlayer);
      if (tlayer === 'netlink' && layer === 'proto') permitted = rel.startsWith(`proto${path.sep}kernel${path.sep}`);
      if (!permitted) bad.push(`${rel}: imports ${spec} (${tlayer}); ${layer} may import only ${ok.join(', ')}`);
    }
  }
}
if (bad.length) {
  console.error(`layer check: ${bad.length} violation(s)\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
console.log('layer check: ok');
