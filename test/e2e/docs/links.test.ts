/**
 * The links of the user docs (quickstart, concepts, operations, security) point at files that exist and, where
 * they name a heading (`file.md#anchor`), at a heading that exists, with GitHub's anchor rules.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { repoRoot } from '../../support/child-process.js';

const DOCS = ['README.md', 'docs/quickstart.md', 'docs/concepts.md', 'docs/operations.md', 'docs/security.md'];

/** GitHub's heading anchor: lowercase, punctuation dropped (but `-` and `_`), spaces to `-`. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsIn(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^```/.test(line)) inFence = !inFence;
    const m = inFence ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (m !== null) anchors.add(anchorOf(m[1]!));
  }
  return anchors;
}

describe('links in the user docs', () => {
  it('anchorOf follows GitHub', () => {
    assert.equal(anchorOf('Exposing IMDS at 169.254.169.254 (containers and VMs)'), 'exposing-imds-at-169254169254-containers-and-vms');
    assert.equal(anchorOf('The one line: `eval "$(openmsi dev env)"`'), 'the-one-line-eval-openmsi-dev-env');
  });

  for (const doc of DOCS) {
    it(`${doc}: every relative link resolves`, () => {
      const text = readFileSync(join(repoRoot, doc), 'utf8');
      const broken: string[] = [];
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path === '' ? join(repoRoot, doc) : join(repoRoot, dirname(doc), path);
        if (!existsSync(file)) {
          broken.push(`${target} (no ${relative(repoRoot, file)})`);
          continue;
        }
        if (anchor !== undefined && file.endsWith('.md') && !anchorsIn(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${target} (no such heading)`);
      }
      assert.deepEqual(broken, []);
    });
  }
});
