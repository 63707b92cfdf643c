import { EVENT_VERSIONS, toIdentityEvent, UpcasterRegistry, upcasters } from '../src';

describe('UpcasterRegistry', () => {
  it('a registered step upgrades old data to the current version', () => {
    const r = new UpcasterRegistry().register('IdentityTerminated', 0, (d: { date: string; why: string }) => ({ effectiveAt: d.date, reason: d.why }));
    expect(r.upcast('IdentityTerminated', 0, { date: '2026-01-01T00:00:00.000Z', why: 'resigned' })).toEqual({
      version: EVENT_VERSIONS.IdentityTerminated,
      data: { effectiveAt: '2026-01-01T00:00:00.000Z', reason: 'resigned' },
    });
  });

  it('chains steps up to an explicit target', () => {
    const r = new UpcasterRegistry()
      .register('Thing', 1, (d: { a: number }) => ({ ...d, b: d.a * 2 }))
      .register('Thing', 2, (d: { a: number; b: number }) => ({ sum: d.a + d.b }));
    expect(r.upcast('Thing', 1, { a: 2 }, 3)).toEqual({ version: 3, data: { sum: 6 } });
    expect(r.upcast('Thing', 2, { a: 1, b: 1 }, 3)).toEqual({ version: 3, data: { sum: 2 } });
  });

  it('current data passes through untouched', () => {
    const data = { effectiveAt: 'x', reason: 'y' };
    const out = new UpcasterRegistry().upcast('IdentityTerminated', 1, data);
    expect(out).toEqual({ version: 1, data });
    expect(out.data).toBe(data);
  });

  it('a missing step throws, naming the type and versions', () => {
    const r = new UpcasterRegistry().register('Thing', 1, (d) => d);
    expect(() => new UpcasterRegistry().upcast('IdentityHired', 0, {})).toThrow('no upcaster for IdentityHired v0 -> v1');
    expect(() => r.upcast('Thing', 1, {}, 3)).toThrow('no upcaster for Thing v2 -> v3');
  });

  it('data newer than the engine knows throws', () => {
    expect(() => new UpcasterRegistry().upcast('IdentityHired', 2, {})).toThrow('IdentityHired v2 is newer than this engine understands (v1)');
    expect(() => toIdentityEvent({ type: 'RoleGranted', version: 5, data: {} })).toThrow(/newer than this engine understands/);
  });

  it('toIdentityEvent upcasts identity events and ignores unknown types', () => {
    const r = new UpcasterRegistry().register('RoleGranted', 0, (d: { role: string }) => ({ role: d.role, source: { kind: 'manual' } }));
    expect(toIdentityEvent({ type: 'RoleGranted', version: 0, data: { role: 'git' } }, r)).toEqual({
      type: 'RoleGranted',
      version: 1,
      data: { role: 'git', source: { kind: 'manual' } },
    });
    expect(toIdentityEvent({ type: 'SomethingElse', version: 9, data: {} }, r)).toBeNull();
    expect(toIdentityEvent({ type: 'LoginRefused', version: 1, data: { at: 'x' } })).toEqual({ type: 'LoginRefused', version: 1, data: { at: 'x' } });
  });

  it('the engine registry has no steps yet: every stored v0 event fails loudly', () => {
    expect(() => upcasters.upcast('AccountDisabled', 0, {})).toThrow('no upcaster for AccountDisabled v0 -> v1');
  });
});
