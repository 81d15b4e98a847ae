import { CAP_NET_ADMIN, effectiveCapabilities, MissingCapabilityError, requireNetAdmin } from '../../../src/daemon/capabilities';

describe('CAP_NET_ADMIN check', () => {
  it('reads the effective set from /proc/self/status', () => {
    expect(effectiveCapabilities('Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n')).toBe(1n << BigInt(CAP_NET_ADMIN));
    expect(effectiveCapabilities('Name:\tnode\n')).toBeUndefined();
    expect(typeof effectiveCapabilities()).toBe('bigint');
  });

  it('passes with CAP_NET_ADMIN, and refuses without it with a message naming it and how to grant it', () => {
    expect(() => requireNetAdmin(0x1000n)).not.toThrow();
    expect(() => requireNetAdmin(0x1ffffffffffn)).not.toThrow();
    expect(() => requireNetAdmin(0x1000n ^ 0x1ffffffffffn)).toThrow(MissingCapabilityError);
    expect(() => requireNetAdmin(0n)).toThrow(/needs CAP_NET_ADMIN.*AmbientCapabilities=CAP_NET_ADMIN.*nothing was changed/);
  });
});
