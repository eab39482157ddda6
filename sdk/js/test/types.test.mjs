// The shipped types compile for their users: `tsc --noEmit` (the root
// devDependency `typescript`) over
//  - sdk/js/test/types/: an ES-module consumer (.mts, dist/hubbub.d.mts, also
//    through the package name), a CommonJS one (.cts, require() → hubbub.d.ts),
//    and a classic script using the globals, each with lines that must fail;
//  - the TypeScript setup of docs/sdk.md, exactly as written there: every
//    block after an `<!-- tsc: FILE -->` marker is written to FILE in a fresh
//    directory beside copies of the dist files, as the page tells users to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, '../../..');
const DIST = path.join(REPO, 'sdk/js/dist');
const TSC = createRequire(path.join(REPO, 'package.json')).resolve('typescript/bin/tsc');
const TSC_TIMEOUT_MS = 120000;

/** Run tsc with `args`; resolves with its output, rejects with it when tsc reports errors. */
function tsc(args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [TSC, ...args], { cwd, timeout: TSC_TIMEOUT_MS }, (err, stdout, stderr) => {
      const out = String(stdout) + String(stderr);
      if (err) reject(new Error(`tsc ${args.join(' ')} failed:\n${out}`));
      else resolve(out);
    });
  });
}

test('tsc: the ES-module and CommonJS consumers compile (strict, nodenext)', { timeout: TSC_TIMEOUT_MS }, async () => {
  await tsc(['-p', path.join(here, 'types/tsconfig.json')], REPO);
});

test('tsc: the classic-script consumer compiles against the globals', { timeout: TSC_TIMEOUT_MS }, async () => {
  await tsc(['-p', path.join(here, 'types/tsconfig.classic.json')], REPO);
});

test('tsc: the TypeScript setup in docs/sdk.md compiles exactly as written', { timeout: TSC_TIMEOUT_MS }, async () => {
  const md = readFileSync(path.join(REPO, 'docs/sdk.md'), 'utf8');
  const blocks = [...md.matchAll(/<!-- tsc: ([\w.-]+) -->\s*```\w*\n([\s\S]*?)```/g)];
  const names = blocks.map((b) => b[1]);
  for (const need of ['tsconfig.json', 'app.mts', 'classic.ts']) assert.ok(names.includes(need), `docs/sdk.md has no "<!-- tsc: ${need} -->" block`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-sdk-types-'));
  try {
    for (const f of readdirSync(DIST)) if (f !== 'package.json') copyFileSync(path.join(DIST, f), path.join(dir, f));
    for (const [, name, text] of blocks) writeFileSync(path.join(dir, name), text);
    await tsc(['-p', path.join(dir, 'tsconfig.json')], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
