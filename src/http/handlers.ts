// Thin handlers: parse and validate the request into typed values, ask the
// cache, write the answer. No cache or upstream logic lives here.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BlobCache, Reach } from '../blobs/cache.ts'
import type { UploadSessions } from '../cache/uploads.ts'
import { BLOB_OFFSET_HEADER, BLOB_SIZE_HEADER, PEER_ONLY_HEADER } from '../common/ferry-protocol.ts'
import type { Action } from '../auth/access.ts'
import type { Gate, Principal } from '../auth/gate.ts'
import type { AuditLog } from '../observe/audit.ts'
import type { ListCache, ListResult } from '../cache/lists.ts'
import type { Manifest, ManifestCache } from '../cache/manifests.ts'
import { PaginationNumberInvalid, RangeInvalid, TagInvalid, Unsupported } from '../oci/errors.ts'
import { parseRangeHeader } from '../oci/range.ts'
import { parseAccept } from '../oci/media-types.ts'
import { parseDigest, parseName, parseReference } from '../oci/reference.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { Router } from '../upstream/router.ts'
import type { Body } from '../io/body.ts'
import { API_VERSION_HEADER, sendBody } from './respond.ts'

export interface Services {
  readonly router: Router
  readonly blobs: BlobCache
  readonly manifests: ManifestCache
  readonly lists: ListCache
  readonly metrics: Metrics
  /** The Prometheus text for /metrics: this process's, or the whole cluster's. */
  readonly metricsText: () => Promise<{ text: string, contentType: string }>
  /** Client authentication and access; absent: every client may pull. */
  readonly gate?: Gate
  /** Where access decisions are recorded. */
  readonly audit?: AuditLog
  /** Pushes from other regions' replicators; absent when the region accepts none. */
  readonly push?: { readonly uploads: UploadSessions, readonly secret: () => string | undefined }
}

/** What a request does to which repository; undefined repository: the base check or the catalog. */
export interface Access { readonly repository: string | undefined, readonly action: Action }

export interface Call {
  /** What the request was judged on (auth or audit on), the repository as routed. */
  access?: Access
  /** Who the access check found (auth on). */
  principal?: Principal
  /** The access check refused an authenticated client. */
  denied?: boolean
  /** What was served, for the audit log. */
  served?: { digest: string, bytes: number }
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly query: URLSearchParams
  readonly head: boolean
  readonly log: Logger
}

/**
 * Another region asking: answer only from what this region holds, never
 * from the upstream or a further peer (no loops, no fetching on its behalf).
 */
function peerOnly (c: Call): boolean { return c.req.headers[PEER_ONLY_HEADER] !== undefined }

/**
 * containerd's `?ns=<host>`, where it routes: reads only. A push names its
 * repository by its path alone, so no query can move it to another one.
 */
export function routingNs (c: Call): string | undefined {
  return c.req.method === 'GET' || c.req.method === 'HEAD' ? c.query.get('ns') ?? undefined : undefined
}

function readOnly (method: string | undefined): void {
  if (method !== 'GET' && method !== 'HEAD') throw new Unsupported('ferry is a pull-through cache: only GET and HEAD are served')
}

export async function handleManifest (s: Services, c: Call, rawName: string, rawReference: string): Promise<void> {
  readOnly(c.req.method)
  const name = parseName(rawName)
  const reference = parseReference(rawReference)
  const route = s.router.route(name, routingNs(c))
  const accept = parseAccept(c.req.headers.accept)
  const m: Manifest = peerOnly(c)
    ? await s.manifests.cachedOnly(route, reference.kind === 'digest' ? { digest: reference.digest } : { tag: reference.tag }, accept)
    : reference.kind === 'digest'
      ? await s.manifests.byDigest(route, reference.digest)
      : await s.manifests.byTag(route, reference.tag, accept)
  const etag = `"${m.digest}"`
  const headers: Record<string, string | number> = { 'content-type': m.mediaType, 'docker-content-digest': m.digest, etag }
  if (m.stale) headers.warning = '110 ferry "served stale: upstream unavailable"'
  if (c.req.headers['if-none-match'] === etag) {
    c.res.writeHead(304, { ...API_VERSION_HEADER, ...headers })
    c.res.end()
    return
  }
  c.served = { digest: m.digest, bytes: c.head ? 0 : m.body.length }
  sendBody(c.res, 200, headers, m.body, c.head)
}

export async function handleBlob (s: Services, c: Call, rawName: string, rawDigest: string): Promise<void> {
  readOnly(c.req.method)
  const name = parseName(rawName)
  const digest = parseDigest(rawDigest)
  const route = s.router.route(name, routingNs(c))
  const range = c.head ? undefined : parseRangeHeader(c.req.headers.range)
  const reach: Reach = peerOnly(c) ? 'peer-region' : 'client'
  const answer = await s.blobs.serve({ digest, range, head: c.head, reach, route })
  const headers: Record<string, string | number> = {
    ...API_VERSION_HEADER,
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest.value,
    etag: `"${digest.value}"`,
    'accept-ranges': 'bytes',
    'cache-control': 'max-age=31536000, immutable',
  }
  if (answer.length !== undefined) headers['content-length'] = answer.length
  let status = 200
  if (answer.range !== undefined) {
    status = 206
    headers['content-range'] = `bytes ${answer.range.start}-${answer.range.end}/${answer.size ?? '*'}`
  }
  c.res.writeHead(status, headers)
  if (answer.body === undefined) {
    c.res.end()
    return
  }
  const inMemory = answer.body.bytes
  if (inMemory !== undefined) {
    // configs, small layers: headers and body leave in one write
    c.res.end(inMemory)
    c.served = { digest: digest.value, bytes: inMemory.length }
    s.metrics.bytesServed.inc({ source: answer.source === 'fill' ? 'fill' : 'cache' }, inMemory.length)
    return
  }
  await sendBlobBody(s, c, answer.body, digest.value, answer.source === 'fill' ? 'fill' : 'cache')
}

/** The body after the headers; a body that fails cuts the response, so the client sees the transfer fail. */
async function sendBlobBody (s: Services, c: Call, body: Body, digest: string, source: 'fill' | 'cache' | 'peer'): Promise<void> {
  try {
    let sent: number
    if (body.bytes !== undefined) {
      // configs, small layers: headers and body leave in one write
      sent = body.bytes.length
      c.res.end(body.bytes)
    } else {
      sent = await body.writeTo(c.res)
      c.res.end()
    }
    if (source !== 'peer') c.served = { digest, bytes: sent }
    s.metrics.bytesServed.inc({ source }, sent)
  } catch (err) {
    c.log.debug({ err: (err as Error).message, digest }, 'blob transfer cut')
    c.res.destroy()
  }
}

/** A fill in flight here (or the blob on this proxy's disk), for another proxy of the region. */
export async function handleRegionPeerFill (s: Services, c: Call, rawDigest: string): Promise<void> {
  readOnly(c.req.method)
  const digest = parseDigest(rawDigest)
  const range = parseRangeHeader(c.req.headers.range)
  if (range !== undefined && (range.kind !== 'from' || range.end !== undefined)) throw new RangeInvalid(c.req.headers.range ?? '')
  const answer = await s.blobs.serve({ digest, range, head: c.head, reach: 'region-peer', route: undefined })
  const offset = answer.range?.start ?? 0
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'docker-content-digest': digest.value, [BLOB_OFFSET_HEADER]: offset }
  if (answer.size !== undefined) headers[BLOB_SIZE_HEADER] = answer.size
  if (answer.length !== undefined) headers['content-length'] = answer.length
  c.res.writeHead(offset > 0 ? 206 : 200, headers)
  if (answer.body === undefined) { c.res.end(); return }
  await sendBlobBody(s, c, answer.body, digest.value, 'peer')
}

export async function handleTags (s: Services, c: Call, rawName: string): Promise<void> {
  readOnly(c.req.method)
  const name = parseName(rawName)
  const route = s.router.route(name, routingNs(c))
  const nText = c.query.get('n')
  const last = c.query.get('last') ?? undefined
  let n: number | undefined
  if (nText !== null) {
    n = Number(nText)
    if (!/^\d{1,9}$/.test(nText)) throw new PaginationNumberInvalid(nText)
  }
  if (last !== undefined && last !== '') {
    const ref = parseReference(last)
    if (ref.kind !== 'tag') throw new TagInvalid(last)
  }
  sendList(c, await s.lists.tags(route, name, { n, last: last === '' ? undefined : last }))
}

export async function handleReferrers (s: Services, c: Call, rawName: string, rawDigest: string): Promise<void> {
  readOnly(c.req.method)
  const name = parseName(rawName)
  const digest = parseDigest(rawDigest)
  const route = s.router.route(name, routingNs(c))
  const artifactType = c.query.get('artifactType') ?? undefined
  sendList(c, await s.lists.referrers(route, name, digest, artifactType))
}

function sendList (c: Call, list: ListResult): void {
  const headers: Record<string, string> = { 'content-type': list.contentType }
  if (list.link !== undefined) headers.link = list.link
  if (list.filtersApplied !== undefined) headers['oci-filters-applied'] = list.filtersApplied
  if (list.stale) headers.warning = '110 ferry "served stale: upstream unavailable"'
  sendBody(c.res, 200, headers, list.body, c.head)
}
