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
/** Module -> the modules it imports (resolved .ts files), for the cycle check. */
const graph = new Map();
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
    const deps = [];
    graph.set(file, deps);
    // Static imports, require(), and import(): a module loaded lazily is still a dependency.
    const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)/g;
    let m;
    while ((m = re.exec(text))) {
      const spec = m[1] || m[2];
      if (!spec.startsWith('.')) {
        const owners = packageOwners[spec.split('/')[0]];
        if (owners && !owners.includes(layer)) bad.push(`${rel}: imports the package ${spec}; only ${owners.join(', ')} may`);
        continue;
      }
      const abs = path.resolve(path.dirname(file), spec);
      deps.push(fs.existsSync(`${abs}.ts`) ? `${abs}.ts` : path.join(abs, 'index.ts'));
      const target = path.relative(root, abs);
      if (target.startsWith('..')) continue;
      const tlayer = target.split(path.sep)[0];
      let permitted = ok.includes(tlayer);
      if (tlayer === 'netlink' && layer === 'proto') permitted = rel.startsWith(`proto${path.sep}kernel${path.sep}`);
      if (!permitted) bad.push(`${rel}: imports ${spec} (${tlayer}); ${layer} may import only ${ok.join(', ')}`);
    }
  }
}
// Cycles: strongly connected components of more than one module (Tarjan).
{
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      scc.push(path.relative(root, w));
    } while (w !== v);
    if (scc.length > 1) bad.push(`import cycle: ${scc.sort().join(', ')}`);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
}
if (bad.length) {
  console.error(`layer check: ${bad.length} violation(s)\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
console.log('layer check: ok');
