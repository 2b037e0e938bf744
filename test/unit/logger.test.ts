import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, scrub } from '../../src/log/logger.js';

function capture(secrets: string[] = []) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: createLogger({ level: 'debug', destination, secrets: () => secrets }), lines };
}

describe('logger', () => {
  it('redacts credentials in URLs, Authorization headers, password fields and known secrets', () => {
    const { log, lines } = capture(['Pl4nted-pw']);
    log.info({ password: 'hunter22', headers: { authorization: 'Basic Z3Vlc3Q6Z3Vlc3Q=' } }, 'connecting to amqp://app:hunter22@rabbit:5672/ with Pl4nted-pw');
    log.error({ err: new Error('GET http://u:Pl4nted-pw@x/api failed') }, 'failed');
    const text = lines.join('');
    for (const secret of ['hunter22', 'Z3Vlc3Q6Z3Vlc3Q=', 'Pl4nted-pw']) expect(text).not.toContain(secret);
    expect(text).toContain('amqp://***:***@rabbit');
  });

  it('never throws on an odd `err` (a string, undefined)', () => {
    const { log, lines } = capture();
    expect(() => log.warn({ err: undefined }, 'x')).not.toThrow();
    expect(() => log.warn({ err: 'plain text' }, 'y')).not.toThrow();
    expect(lines).toHaveLength(2);
  });

  it('scrub leaves text without credentials alone', () => {
    expect(scrub('http://127.0.0.1:15672/api/overview')).toBe('http://127.0.0.1:15672/api/overview');
  });
});
