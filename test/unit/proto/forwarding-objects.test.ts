/**
 * ForwardingObjects' books for next-hop tracking (forwarding-objects.ts): an object held on its backup serves
 * the nets held on it by its key, and keeps serving them once the tracker gives its primary back, until their
 * re-export gives them the same key as their own pair. Before, a link change in between (which converts every
 * want naming no device again) found no object for the net's still-held want and made one of its own: a route
 * replace per net onto it and one back, and the status counted twice the objects (failover-status.test.ts).
 */
import { parseAddr } from '../../../src/lib/addr';
import { ForwardingObjects } from '../../../src/proto/kernel/forwarding-objects';
import { keyOf, newObject, type Hop, type NhObject } from '../../../src/proto/kernel/nh-object';

function books(): { fw: ForwardingObjects; hop: (gw: string, oif: number) => Hop } {
  const byKey = new Map<string, NhObject>();
  let next = 0x8000;
  const fw = new ForwardingObjects({
    lookup: (k) => byKey.get(k),
    register: (o) => byKey.set(o.key, o),
    unkey: (o) => (byKey.get(o.key) === o ? byKey.delete(o.key) : undefined),
    allocate: () => next++,
    contentOf: keyOf,
    release: (o) => void o.refs--,
    protocol: 144,
  });
  let id = 1;
  const hop = (gw: string, oif: number): Hop => {
    const obj = newObject(id, `h${id}`, { id: id++, family: 4, protocol: 144, scope: 0, flags: 0, oif, gateway: parseAddr(gw) }, undefined, 'live');
    obj.refs = 1;
    return { obj, weight: 1 };
  };
  return { fw, hop };
}

describe('ForwardingObjects: held, given back, held again', () => {
  it('the object held for (primary, backup) serves the nets held on it after the tracker gives the primary back, and not once it is held again unheld', () => {
    const { fw, hop } = books();
    const primary = { source: 'primary', hops: [hop('203.0.113.2', 2)] };
    const backup = { source: 'backup', hops: [hop('192.0.2.2', 1)] };
    const o = fw.intern(primary, backup);
    fw.hold(o);
    expect(fw.internHeld(primary, backup)).toBe(o);
    expect(fw.counts()).toMatchObject({ primary: 0, held: 1 });
    fw.restore(o);
    // A net whose want still says "held" (its re-export is not done yet) stays on it: no object of its own.
    expect(fw.internHeld(primary, backup)).toBe(o);
    expect(fw.size).toBe(1);
    expect(fw.counts()).toMatchObject({ primary: 1, held: 0 });
    // Held again: served while held; restored after a link's return alone (degraded, not held) it is not given back by the tracker.
    fw.hold(o);
    expect(fw.internHeld(primary, backup)).toBe(o);
    fw.restore(o);
    fw.degrade(o);
    fw.restore(o);
    expect(fw.internHeld(primary, backup)).toBeUndefined();
  });

  it('an object that forwards to its primary and was never held is not one for nets held on that primary', () => {
    const { fw, hop } = books();
    const primary = { source: 'primary', hops: [hop('203.0.113.2', 2)] };
    const backup = { source: 'backup', hops: [hop('192.0.2.2', 1)] };
    fw.intern(primary, backup);
    expect(fw.internHeld(primary, backup)).toBeUndefined();
  });
});
