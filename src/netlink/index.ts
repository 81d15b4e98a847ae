/**
 * The netlink layer's public surface: codec (pure), sockets, client (requests
 * and dumps), route pipeline (bulk changes) and monitor (notifications).
 * See docs/netlink.md.
 */
export * from './constants';
export * from './errors';
export * from './wire';
export * from './route-codec';
export * from './link-codec';
export * from './nexthop-codec';
export * from './message-codec';
export { NetlinkSocket, UnixDatagramSocket, closeFd, netnsPath } from './socket';
export type { NetlinkSocketOptions, NetlinkTransport, ReceiveResult, UnixDatagram } from './socket';
export * from './client';
export * from './pipeline';
export * from './bulk-delete';
export * from './monitor';
