/**
 * Links as the kernel protocol needs them: name <-> index for converting
 * routes (`dev veth0`), and whether a link is usable, to tell a link that
 * came back (reinstall what the kernel dropped) from one that went away.
 */
import * as C from '../../netlink/constants';
import type { LinkMessage } from '../../netlink/link-codec';
import type { LinkResolver } from './convert';

export interface LinkInfo {
  index: number;
  name: string;
  /** Administratively up and carrier present. */
  usable: boolean;
}

export type LinkChange = 'added' | 'removed' | 'up' | 'down' | 'renamed' | 'none';

export function linkUsable(l: LinkMessage): boolean {
  return (l.flags & C.IFF_UP) !== 0 && (l.flags & C.IFF_LOWER_UP) !== 0;
}

export class LinkCache implements LinkResolver {
  private readonly byIndex = new Map<number, LinkInfo>();
  private readonly byName = new Map<string, number>();

  indexOf(name: string): number | undefined {
    return this.byName.get(name);
  }

  nameOf(index: number): string | undefined {
    return this.byIndex.get(index)?.name;
  }

  get(index: number): LinkInfo | undefined {
    return this.byIndex.get(index);
  }

  /** Records a link message; says what changed. */
  update(l: LinkMessage, deleted: boolean): LinkChange {
    const old = this.byIndex.get(l.index);
    if (deleted) {
      if (!old) return 'none';
      this.byIndex.delete(l.index);
      if (this.byName.get(old.name) === l.index) this.byName.delete(old.name);
      return 'removed';
    }
    const info: LinkInfo = { index: l.index, name: l.name ?? old?.name ?? `if${l.index}`, usable: linkUsable(l) };
    this.byIndex.set(l.index, info);
    if (old && old.name !== info.name && this.byName.get(old.name) === l.index) this.byName.delete(old.name);
    this.byName.set(info.name, l.index);
    if (!old) return 'added';
    if (old.name !== info.name) return 'renamed';
    if (old.usable !== info.usable) return info.usable ? 'up' : 'down';
    return 'none';
  }
}
