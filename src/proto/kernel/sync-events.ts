/**
 * The kernel's notifications to one sync's parts (the KernelEvents its
 * kernel I/O delivers), in the order each part needs them.
 *
 * Invariants:
 *  - a link change reaches the objects' books first: which objects of ours
 *    the kernel deleted with a link that went (sync-nexthops.ts) is told
 *    before the link cache and the notices learn the link is gone; whether
 *    that flush can be told from our books is judged then too, before the
 *    notices plan anything (link-flush.ts);
 *  - the flush of what the link took comes last, with the routes the kernel
 *    told of before the link's notification (IPv6), which went with the
 *    same objects; a link that is usable again lets waiting routes back;
 *  - every route notification, of any table or family, counts foreign
 *    routes on our objects (nexthop-users.ts) before it is judged; someone
 *    else's change of a backup route of ours asks for a scan, the rest goes
 *    to the notices;
 *  - an overflow reaches both: the foreign users are counted again, and the
 *    notices resync.
 */
import type { RateLimitedLog } from '../logger';
import type { KernelTarget } from './convert';
import type { KernelEvents } from './kernel-io';
import { flushKnowable, linkBack, takeFlush, type LinkFlushContext } from './link-flush';
import type { LinkCache } from './link-cache';
import type { BackupRoutes } from './sync-backup-routes';
import type { SyncFailover } from './sync-failover';
import { SCAN_REASONS } from './sync-metrics';
import type { SyncNexthops } from './sync-nexthops';
import type { SyncNotices } from './sync-notices';

/** The sync's parts the events go to. */
export interface SyncEventParts {
  readonly nh: SyncNexthops;
  readonly notices: SyncNotices;
  readonly failover: SyncFailover;
  readonly backups: BackupRoutes | undefined;
  readonly links: LinkCache;
  readonly target: KernelTarget;
  /** What a link that went takes from the kernel, told from our books (link-flush.ts). */
  readonly flush: LinkFlushContext;
  readonly limited: RateLimitedLog;
  requestScan(reason: string, delayMs: number): void;
}

export function syncEvents(p: SyncEventParts): KernelEvents {
  const { nh, notices, target } = p;
  return {
    onRoute: (r, deleted, nlFlags, port) => {
      nh.onRoute(r, deleted, nlFlags ?? 0);
      // Someone else's change of a backup route of ours (ours are filtered): a scan puts it right.
      if (p.backups?.isBackup(r) && r.protocol === target.protocol && r.table === target.table) p.requestScan(SCAN_REASONS.crossed, 100);
      else notices.onRouteNotification(r, deleted, port === 0);
    },
    onOtherFamilyRoute: (r, deleted, nlFlags) => nh.onRoute(r, deleted, nlFlags ?? 0),
    onLink: (l, deleted) => {
      // Before the link cache and our books learn it: the objects of ours the kernel deleted with it, if it went.
      const flushed = nh.onLink(l, deleted);
      const knowable = flushed !== undefined && flushKnowable(p.flush, l.index);
      notices.onLink(l, deleted);
      p.failover.linksChanged();
      // With the routes the kernel told of before this notification (IPv6), which went with the same objects.
      if (flushed !== undefined) takeFlush(p.flush, l.index, flushed, knowable, notices.takeAhead());
      else if (p.links.get(l.index)?.usable === true) linkBack(p.flush);
    },
    onAddr: (a, deleted) => {
      nh.onAddr(a, deleted);
      notices.onAddr(a, deleted);
    },
    onNexthop: (m, deleted) => nh.onNotification(m, deleted),
    onOverflow: () => {
      nh.onOverflow();
      notices.onOverflow();
    },
    onMalformed: (m) => p.limited.write('warn', 'malformed', `malformed notification: ${m}`),
    onRawRoute: (buf, off, len, type) => notices.onRawRoute(buf, off, len, type),
  };
}
