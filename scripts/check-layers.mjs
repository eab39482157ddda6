#!/usr/bin/env node
// check-layers.mjs - every #include points down (or sideways) the layer order.
//
// The layers, lowest first, are the folders of src/ (docs/design.md, "Layers"):
// a module is a pair src/<layer>/<name>.c + include/hubbub/<name>.h, so a
// header belongs to the layer of its .c file; header-only modules are listed
// in HEADER_ONLY. A file may include headers of its own layer and of the
// layers below it, never above. A header that belongs to no layer fails the
// check, so a new module cannot slip past it.
//
//   node scripts/check-layers.mjs        exit 0, or 1 with one line per violation
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const LAYERS = ['base', 'core', 'proto', 'store', 'auth', 'pubsub', 'api', 'broker', 'server', 'cli'];
// Modules with a header and no .c of their own (inline helpers, constants).
const HEADER_ONLY = {
  hex: 'base', list: 'base', hash: 'base', limits: 'base', clock: 'base',
  broker: 'pubsub', // the interface the publish core calls; src/broker/ implements it
  static_files: 'api', // generated at build time (cmake/embed.cmake)
};

const rank = new Map(LAYERS.map((l, i) => [l, i]));
const layerOf = new Map(Object.entries(HEADER_ONLY));
const sources = [];
const dupes = [];
for (const layer of LAYERS) {
  const dir = join(root, 'src', layer);
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.c') && !f.endsWith('.h')) continue;
    const name = basename(f).replace(/\.[ch]$/, '');
    if (f.endsWith('.c')) {
      if (layerOf.has(name)) dupes.push(`src/${layer}/${f}: the module name ${name} is taken (${layerOf.get(name)}); one name, one module`);
      layerOf.set(name, layer);
    }
    sources.push({ path: join('src', layer, f), layer });
  }
}
for (const f of readdirSync(join(root, 'src'))) {
  if (!rank.has(f) && !f.includes('.')) {
    console.error(`src/${f}/ is not a layer: add it to LAYERS in scripts/check-layers.mjs (in its place)`);
    process.exit(1);
  }
}
const headers = readdirSync(join(root, 'include/hubbub')).filter((f) => f.endsWith('.h'));
const problems = [...dupes];
for (const h of headers) {
  const name = h.slice(0, -2);
  if (!layerOf.has(name)) problems.push(`include/hubbub/${h}: no src/<layer>/${name}.c and not in HEADER_ONLY`);
  else sources.push({ path: join('include/hubbub', h), layer: layerOf.get(name) });
}
const INCLUDE = /^\s*#\s*include\s+"hubbub\/([a-z0-9_]+)\.h"/;
for (const { path, layer } of sources) {
  readFileSync(join(root, path), 'utf8').split('\n').forEach((line, i) => {
    const m = INCLUDE.exec(line);
    if (!m) return;
    const target = layerOf.get(m[1]);
    if (target === undefined) problems.push(`${path}:${i + 1}: includes hubbub/${m[1]}.h, which belongs to no layer`);
    else if (rank.get(target) > rank.get(layer))
      problems.push(`${path}:${i + 1}: ${layer} includes hubbub/${m[1]}.h of ${target}, a layer above it`);
  });
}
if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`${problems.length} include(s) against the layer order ${LAYERS.join(' < ')} (docs/design.md, "Layers")`);
  process.exit(1);
}
console.log(`layers ok: ${sources.length} files, order ${LAYERS.join(' < ')}`);
