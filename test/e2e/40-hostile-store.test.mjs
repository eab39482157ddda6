// Hostile catalogue, the store under faults: H105-H107. A corrupt, foreign or
// unusable data directory must stop the server at start with a clear error
// (exit non-zero, a message naming the problem), never a crash later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer } from './harness.mjs';

async function refusesToStart(dir, pattern) {
  await assert.rejects(startServer({ threads: 1, dataDir: dir }), (e) => {
    assert.match(e.message, /server exited \(code [1-9]\d*, signal null\)/, e.message);
    assert.match(e.message, pattern, e.message);
    assert.doesNotMatch(e.message, /AddressSanitizer|runtime error|Segmentation/, e.message);
    return true;
  });
}

test('H105 a corrupt database file: clear error at start, exit non-zero', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-h105-'));
  // A valid SQLite header followed by garbage pages.
  const buf = Buffer.alloc(8192, 0xa5);
  Buffer.from('SQLite format 3\0').copy(buf, 0);
  buf.writeUInt16BE(4096, 16);
  writeFileSync(path.join(dir, 'hubbub.db'), buf, { mode: 0o600 });
  try {
    await refusesToStart(dir, /corrupt|malformed|not a database/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('H106 a file that is not a database at all: clear error at start', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-h106-'));
  writeFileSync(path.join(dir, 'hubbub.db'), 'this is a text file, not SQLite\n'.repeat(200), { mode: 0o600 });
  try {
    await refusesToStart(dir, /not a database|corrupt|malformed/i);
    // And the file was left alone.
    assert.match(readFileSync(path.join(dir, 'hubbub.db'), 'utf8'), /^this is a text file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('H107 the data directory path is a regular file: clear error at start', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-h107-'));
  const file = path.join(dir, 'not-a-dir');
  writeFileSync(file, 'x');
  try {
    await refusesToStart(file, /not a directory|data directory|cannot/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
