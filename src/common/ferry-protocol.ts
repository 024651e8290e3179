// What ferry adds to the distribution API between its own processes: the
// region-peer fill endpoint (another proxy of the region streams a fill led
// here) and the peer-only mark (another region asks; answer from what you
// hold, never from your upstream or a further peer, so regions cannot loop).

/** Marks a request from another region (or its replicator): answer only from what this region holds. */
export const PEER_ONLY_HEADER = 'x-ferry-peer-only'

/** Where a proxy serves a fill it leads to the other proxies of its region: `<path><digest>`. */
export const REGION_PEER_PATH = '/_ferry/v1/fills/'

/** The region-peer endpoint's answer: the whole blob's size, when known. */
export const BLOB_SIZE_HEADER = 'x-ferry-blob-size'

/** The region-peer endpoint's answer: the offset its body starts at. */
export const BLOB_OFFSET_HEADER = 'x-ferry-blob-offset'

/** Marks an upload request one proxy of a region relayed to the proxy holding its session: answer it here, relay it no further. */
export const RELAYED_HEADER = 'x-ferry-relayed'
