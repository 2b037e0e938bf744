/** TLS failure codes become messages a person can act on; anything else is left alone. */
import { describe, expect, it } from 'vitest';
import { classify, TlsError } from '../../src/model/errors.js';
import { tlsFailure } from '../../src/rabbit/tls-errors.js';

const endpoint = 'https://rabbit.example:15671';
const failing = (code: string) => Object.assign(new Error('node says something terse'), { code });

describe('tlsFailure', () => {
  it('says the certificate is not signed by the given CA, or by the system roots when none was given', () => {
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']) {
      const given = tlsFailure(failing(code), { endpoint, caGiven: true });
      expect(given?.message).toBe(`TLS: the server certificate of ${endpoint} could not be verified: it is not signed by the CA in ca.crt / RABBITMQ_CA_FILE / --ca-file (${code})`);
      expect(tlsFailure(failing(code), { endpoint, caGiven: false })?.message).toContain('not signed by a CA of the system roots (no CA bundle given');
    }
  });

  it('names expiry, a host mismatch and a failed handshake', () => {
    expect(tlsFailure(failing('CERT_HAS_EXPIRED'), { endpoint, caGiven: true })?.message).toContain('it has expired or is not valid yet (CERT_HAS_EXPIRED)');
    expect(tlsFailure(failing('ERR_TLS_CERT_ALTNAME_INVALID'), { endpoint, caGiven: true })?.message).toContain(`it does not name the host of ${endpoint}`);
    expect(tlsFailure(failing('ERR_SSL_WRONG_VERSION_NUMBER'), { endpoint, caGiven: true })?.message).toBe(`TLS: the handshake with ${endpoint} failed: is it a TLS port of RabbitMQ? (ERR_SSL_WRONG_VERSION_NUMBER)`);
  });

  it('finds the code on a wrapped cause (undici), keeps it, and is classified config with no answer', () => {
    const wrapped = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET', cause: failing('UNABLE_TO_VERIFY_LEAF_SIGNATURE') });
    const err = tlsFailure(wrapped, { endpoint, caGiven: true });
    expect(err).toBeInstanceOf(TlsError);
    expect(classify(err)).toMatchObject({ kind: 'config', reason: 'TLSError', noAnswer: true });
    expect(err?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(err?.cause).toBe(wrapped);
  });

  it('leaves other failures alone', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'ETIMEDOUT', 'ERR_TLS_HANDSHAKE_TIMEOUT']) expect(tlsFailure(failing(code), { endpoint, caGiven: true })).toBeUndefined();
    expect(tlsFailure(new Error('no code'), { endpoint, caGiven: true })).toBeUndefined();
    expect(tlsFailure(undefined, { endpoint, caGiven: true })).toBeUndefined();
  });
});
