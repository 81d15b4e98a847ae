/** The routing table and its export side: exporters, export requests, feeders, prefilters. */
export { Table, type TableOptions } from './table';
export { Exporter, type ExporterKind, type ExporterOptions } from './exporter';
export { ExportRequest, type ExportRequestOptions, type ExportRequestState, type ReaderOptions } from './export-request';
export { Feeder, type FeederOptions, type FeederState } from './feeder';
export type { Prefilter } from './prefilter';
export type { ExportItem, FeedItem, FeederItem, ReadyItem, RefeedItem, StopItem, UpdateItem } from './items';
export { FeedRun } from './items';
export { NextHopTracker, type ConnectedPrefix, type HopReport, type NextHopChange, type NextHopListener, type NextHopTrackerOptions, type TrackedLink } from './nexthop-tracker';
export { DEFAULT_DAMPING, NO_DAMPING, type DampingOptions, type DampingSettings } from './nexthop-damping';
