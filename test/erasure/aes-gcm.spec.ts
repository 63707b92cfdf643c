import { randomBytes } from 'node:crypto';
import { gcmOpen, gcmSeal } from '../../libs/engine/src/privacy/aes-gcm';

// Personal values are sealed with IVs taken from a pool refilled 512 at a time.
describe('AES-256-GCM sealing of personal values', () => {
  const key = randomBytes(32);
  const aad = Buffer.from('identity-1:familyName');

  it('gives every value its own IV across pool refills, and each opens to its plaintext afterwards', () => {
    const plains = Array.from({ length: 2000 }, (_, i) => Buffer.from(`value ${i}`));
    const sealed = plains.map((p) => gcmSeal(key, aad, p));
    // Opened only after every refill: a sealed value must not share memory with the pool.
    expect(sealed.map((s) => gcmOpen(key, aad, s).toString())).toEqual(plains.map((p) => p.toString()));
    const ivs = new Set(sealed.map((s) => s.subarray(0, 12).toString('hex')));
    expect(ivs.size).toBe(2000);
    // The same plaintext sealed twice differs: the IV is not derived from it.
    expect(gcmSeal(key, aad, plains[0]).equals(gcmSeal(key, aad, plains[0]))).toBe(false);
  });

  it('refuses a value that was changed, or opened under another key or context', () => {
    const s = gcmSeal(key, aad, Buffer.from('Lovelace'));
    const flipped = Buffer.from(s);
    flipped[14] ^= 1;
    expect(() => gcmOpen(key, aad, flipped)).toThrow();
    expect(() => gcmOpen(randomBytes(32), aad, s)).toThrow();
    expect(() => gcmOpen(key, Buffer.from('identity-2:familyName'), s)).toThrow();
    expect(gcmOpen(key, aad, s).toString()).toBe('Lovelace');
  });
});
