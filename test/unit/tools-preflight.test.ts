import { describe, expect, it } from 'vitest';
import { ToolError } from '../../src/errors.js';
import { packagesFor, requireTools } from '../../src/tools/preflight.js';

describe('the preflight of a command', () => {
  it('names every missing program at once, with one apt-get line', async () => {
    const err = await requireTools(['sh', 'selfmail-no-such-a', 'selfmail-no-such-b'], 'selfmail init', [
      { name: 'a module', pkg: 'python3-example', present: async () => false },
      { name: 'another', pkg: 'never-listed', present: async () => true },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    const msg = (err as ToolError).message;
    expect(msg).toMatch(/^selfmail init needs programs that are not installed: selfmail-no-such-a, selfmail-no-such-b, a module\.$/m);
    expect(msg).toMatch(/^Install them with: apt-get install python3-example selfmail-no-such-a selfmail-no-such-b$/m);
    expect(msg).not.toMatch(/never-listed|\bsh\b,/);
    expect((err as ToolError).exitCode).toBe(4);
  });

  it('passes when everything is there', async () => {
    await expect(requireTools(['sh'], 'x')).resolves.toBeUndefined();
  });

  it('turns programs into their Debian packages, each once', () => {
    expect(packagesFor(['postconf', 'postfix', 'ldns-signzone', 'nft'])).toEqual(['ldnsutils', 'nftables', 'postfix']);
  });
});
