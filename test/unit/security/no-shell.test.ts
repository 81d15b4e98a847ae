/**
 * No input ever reaches a shell or an interpreter: the daemon and CLI never
 * start a process and never evaluate text as code. Routes, configs, stream
 * lines and control requests are parsed by our own parsers into typed
 * values, and the kernel is spoken to over netlink only. This test keeps it
 * that way: any of these in src/ is a design change that must be argued.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(__dirname, '..', '..', '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bchild_process\b/, 'child_process'],
  [/\bworker_threads\b/, 'worker_threads'],
  [/\bnode:vm\b|require\(['"]vm['"]\)/, 'vm'],
  [/\beval\s*\(/, 'eval'],
  [/\bnew\s+Function\s*\(/, 'new Function'],
  [/\bprocess\.binding\b/, 'process.binding'],
];

describe('no shell, no eval', () => {
  it('nothing in src/ starts a process or evaluates text as code', () => {
    const hits: string[] = [];
    for (const f of files(SRC)) {
      const text = readFileSync(f, 'utf8');
      for (const [re, what] of FORBIDDEN) if (re.test(text)) hits.push(`${relative(SRC, f)}: ${what}`);
    }
    expect(hits).toEqual([]);
  });

  it('the native addon has no exec or system call either', () => {
    const native = join(SRC, '..', 'native');
    const hits = readdirSync(native)
      .filter((n) => n.endsWith('.c'))
      .filter((n) => /\b(system|popen|exec[lv]p?e?|fork|posix_spawn)\s*\(/.test(readFileSync(join(native, n), 'utf8')));
    expect(hits).toEqual([]);
  });
});
