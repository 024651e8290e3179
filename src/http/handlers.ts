// Thin handlers for reads: parse and validate the request into typed values,
// resolve the repository, ask the content layer, write the answer. No cache,
// link or upstream logic lives here.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BlobCache, BlobAnswer } from '../blobs/cache.ts'
import type { ListCache, ListResult } from '../cache/lists.ts'
import type { Manifest, ManifestCache } from '../cache/manifests.ts'
import { BLOB_OFFSET_HEADER, BLOB_SIZE_HEADER, PEER_ONLY_HEADER } from '../common/ferry-protocol.ts'
import type { Action } from '../auth/access.ts'
import type { Authenticated, Gate, Principal, TokenGrant } from '../auth/gate.ts'
import type { LoginLimits } from '../auth/login-limits.ts'
import type { HostedReads } from '../content/hosted-reads.ts'
import type { RepositoryListing } from '../content/repository-listing.ts'
import type { Linker } from '../content/linker.ts'
import type { Target, Targets } from '../content/target.ts'
import type { UploadOwners } from '../content/upload-owners.ts'
import type { Writes } from '../content/writes.ts'
import type { Body } from '../io/body.ts'
import { BlobUnknown, ManifestUnknown, OciError, PaginationNumberInvalid, RangeInvalid, TagInvalid, Unauthorized, Unsupported } from '../oci/errors.ts'
import { parseAccept } from '../oci/media-types.ts'
import { parseRangeHeader } from '../oci/range.ts'
import { parseDigest, parseName, parseReference, type Reference } from '../oci/reference.ts'
import type { AuditLog } from '../observe/audit.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { Links } from '../state/region-state.ts'
import type { RegionSecret } from '../blobs/region-secret.ts'
import type { Readiness } from '../observe/readiness.ts'
import { pageOfSorted } from '../oci/paging.ts'
import { API_VERSION_HEADER, sendBody } from './respond.ts'
import type { UploadRelay } from './upload-relay.ts'
import type { ConsoleApi } from '../console/api.ts'
import type { StaticFiles } from '../console/static-files.ts'
import type { Traffic } from '../console/traffic.ts'
import type { Usage } from '../console/usage.ts'
import type { Webhooks } from '../observe/webhooks.ts'

export interface Services {
  readonly targets: Targets
  readonly blobs: BlobCache
  readonly manifests: ManifestCache
  readonly hosted: HostedReads
  readonly lists: ListCache
  readonly links: Links
  /** The repository list the catalog shows, shared by callers that ask at once. */
  readonly listing: RepositoryListing
  readonly linker: Linker
  readonly metrics: Metrics
  /** The Prometheus text for /metrics: this process's, or the whole cluster's. */
  readonly metricsText: () => Promise<{ text: string, contentType: string }>
  /** Client authentication and access; absent: every client may pull, and only the replication secret pushes. */
  readonly gate?: Gate
  /** Where access decisions are recorded. */
  readonly audit?: AuditLog
  /** Pushes: to hosted repositories, and from other regions' replicators. */
  readonly writes: Writes
  /** The replication secret this region accepts pushes with, if any. */
  readonly replicationSecret: () => string | undefined
  /** Limits on guessing passwords, tokens and the replication secret. */
  readonly logins: LoginLimits
  /** In a region of several proxies: the secret they show each other (absent: the region-peer endpoint is not served). */
  readonly regionSecret?: RegionSecret
  /** What /readyz checks. */
  readonly readiness: Readiness
  /** Whether /metrics is served on this port, and the token it requires (undefined: open). */
  readonly metricsAccess: { readonly here: boolean, readonly token: () => string | undefined }
  /** In a region of several proxies: who holds which upload session, and the way to it. */
  readonly uploadOwners?: UploadOwners
  readonly uploadRelay?: UploadRelay
  /** The console's API and pages; absent: not served (`console.enabled: false`). */
  readonly console?: { readonly api: ConsoleApi, readonly files: StaticFiles, readonly traffic: Traffic, readonly usage: Usage }
  /** Where events are posted; absent: no webhooks configured. */
  readonly webhooks?: Webhooks
}

/** What a request does to which repository; undefined repository: the base check or the catalog. */
export interface Access { readonly repository: string | undefined, readonly action: Action }

export interface Call {
  /** What the request was judged on (auth or audit on), the repository as routed. */
  access?: Access
  /** Who the access check found (auth on). */
  auth?: Authenticated
  /** Who asked, for the logs and the audit log. */
  principal?: Principal
  /** The access check refused an authenticated client. */
  denied?: boolean
  /** What was served, for the audit log. */
  served?: { digest: string, bytes: number }
  /** A console write (login, a robot created or revoked), for the audit log. */
  consoleAction?: { readonly action: string, readonly reference: string | undefined }
  /** A token request's answer, for the audit log. */
  tokenGrant?: TokenGrant
  /** The client's address, read when the request arrived (the socket may be gone by the time the answer is logged). */
  readonly client: string
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
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') return undefined
  const ns = c.query.get('ns') ?? undefined
  // the host the request came to is ferry itself (pulling ferry.example.com/acme/app sends ?ns=ferry.example.com)
  return ns?.toLowerCase() === c.req.headers.host?.toLowerCase() ? undefined : ns
}

export function readOnly (method: string | undefined, what = 'only GET and HEAD are served here'): void {
  if (method !== 'GET' && method !== 'HEAD') throw new Unsupported(what)
}

/** A manifest reference to read: one that is neither a tag nor a digest names nothing (404, as clients and conformance expect). */
function readReference (raw: string): Reference {
  try {
    return parseReference(raw)
  } catch (err) {
    if (err instanceof OciError && (err.code === 'TAG_INVALID' || err.code === 'DIGEST_INVALID')) throw new ManifestUnknown(raw.slice(0, 160))
    throw err
  }
}

export async function handleManifest (s: Services, c: Call, rawName: string, rawReference: string): Promise<void> {
  readOnly(c.req.method)
  const target = s.targets.resolve(parseName(rawName), routingNs(c))
  const reference = readReference(rawReference)
  const accept = parseAccept(c.req.headers.accept)
  let m: Manifest
  if (target.kind === 'hosted') {
    m = await s.hosted.manifest(target.name, reference, accept)
  } else if (peerOnly(c)) {
    m = await s.manifests.cachedOnly(target.route, reference.kind === 'digest' ? { digest: reference.digest } : { tag: reference.tag }, accept)
  } else {
    m = reference.kind === 'digest' ? await s.manifests.byDigest(target.route, reference.digest) : await s.manifests.byTag(target.route, reference.tag, accept)
  }
  const etag = `"${m.digest}"`
  const headers: Record<string, string | number> = { 'content-type': m.mediaType, 'docker-content-digest': m.digest, etag }
  if (m.stale !== undefined) headers.warning = `110 ferry "served stale: ${m.stale}"`
  if (c.req.headers['if-none-match'] === etag) {
    c.res.writeHead(304, { ...API_VERSION_HEADER, ...headers })
    c.res.end()
    return
  }
  c.served = { digest: m.digest, bytes: c.head ? 0 : m.body.length }
  sendBody(c.res, 200, headers, m.body, c.head)
  if (!c.head && !peerOnly(c)) {
    if (s.console !== undefined) {
      s.console.usage.pulled(target.name, rawReference)
      s.console.traffic.record(target.kind === 'proxied' ? target.route.upstream.name : 'hosted', { pulls: 1 })
    }
    s.webhooks?.emit('pull', referenceOf(target.name, rawReference), { repository: target.name, reference: rawReference, digest: m.digest, mediaType: m.mediaType, who: c.principal?.name ?? 'anonymous', client: c.client })
  }
}

/**
 * A blob of a repository. A digest the repository does not hold is unknown
 * there, whatever the region holds for others: a hosted repository, or
 * another region asking, get 404; a proxied repository gets it once its
 * upstream confirms it (a HEAD, or the fetch itself), and then holds it.
 */
async function blobOf (s: Services, c: Call, target: Target, digest: ReturnType<typeof parseDigest>): Promise<BlobAnswer> {
  const range = c.head ? undefined : parseRangeHeader(c.req.headers.range)
  // while the region's state is unreachable a proxied repository asks its upstream instead; a hosted one cannot
  const held = await s.links.linked(target.name, 'blob', digest.value).then(at => at !== undefined, (err: unknown) => {
    if (target.kind === 'hosted' || peerOnly(c)) throw err
    return false
  })
  if (target.kind === 'hosted' || peerOnly(c)) {
    if (!held) throw new BlobUnknown(digest.value)
    return await s.blobs.serve({ digest, range, head: c.head, reach: 'held', route: undefined })
  }
  const route = target.route
  if (held) return await s.blobs.serve({ digest, range, head: c.head, reach: 'anywhere', route })
  const answer = await s.blobs.serve({ digest, range, head: c.head, reach: 'anywhere', route, confirm: () => s.linker.confirmBlob(route, target.name, digest) })
  // fetched from its upstream for this repository, or confirmed by it: the repository holds the blob now
  s.linker.background(s.linker.blob(target.name, digest.value), 'blob')
  return answer
}

export async function handleBlob (s: Services, c: Call, rawName: string, rawDigest: string): Promise<void> {
  readOnly(c.req.method)
  const target = s.targets.resolve(parseName(rawName), routingNs(c))
  const digest = parseDigest(rawDigest)
  const answer = await blobOf(s, c, target, digest)
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
  const fromCache = answer.source !== 'fill'
  // for the console, a hit is what the region held: a proxy filling its L1 from the region's store is one
  const regionHit = fromCache || answer.fetched === false
  if (inMemory !== undefined) {
    // configs, small layers: headers and body leave in one write
    c.res.end(inMemory)
    c.served = { digest: digest.value, bytes: inMemory.length }
    s.metrics.bytesServed.inc({ source: fromCache ? 'cache' : 'fill' }, inMemory.length)
    if (!peerOnly(c)) s.console?.traffic.record(trafficKey(target), regionHit ? { hits: 1, bytesFromCache: inMemory.length } : { misses: 1, bytesFilled: inMemory.length })
    return
  }
  const sent = await sendBlobBody(s, c, answer.body, digest.value, fromCache ? 'cache' : 'fill')
  if (!peerOnly(c)) s.console?.traffic.record(trafficKey(target), regionHit ? { hits: 1, bytesFromCache: sent } : { misses: 1, bytesFilled: sent })
}

/** `repo:tag` or `repo@digest`, as clients write an image's name. */
export function referenceOf (repo: string, reference: string): string {
  return reference.includes(':') ? `${repo}@${reference}` : `${repo}:${reference}`
}

/** Which upstream a repository's traffic counts for in the console: its upstream's name, or "hosted". */
function trafficKey (target: Target): string {
  return target.kind === 'proxied' ? target.route.upstream.name : 'hosted'
}

/** The body after the headers; a body that fails cuts the response, so the client sees the transfer fail. */
async function sendBlobBody (s: Services, c: Call, body: Body, digest: string, source: 'fill' | 'cache' | 'peer'): Promise<number> {
  try {
    let sent: number
    if (body.bytes !== undefined) {
      sent = body.bytes.length
      c.res.end(body.bytes)
    } else {
      sent = await body.writeTo(c.res)
      c.res.end()
    }
    if (source !== 'peer') c.served = { digest, bytes: sent }
    s.metrics.bytesServed.inc({ source }, sent)
    return sent
  } catch (err) {
    c.log.debug({ err: (err as Error).message, digest }, 'blob transfer cut')
    c.res.destroy()
    return 0
  }
}

/** A fill in flight here (or the blob on this proxy's disk), for another proxy of the region. */
export async function handleRegionPeerFill (s: Services, c: Call, rawDigest: string): Promise<void> {
  // only for the region's other proxies, which show the region's secret; a proxy alone in its region has no such endpoint
  if (s.regionSecret === undefined) throw new OciError('UNSUPPORTED', 404, 'no such endpoint')
  if (!await s.regionSecret.shownIn(c.req.headers.authorization)) throw new Unauthorized('the region-peer endpoint is for the proxies of this region')
  readOnly(c.req.method)
  const digest = parseDigest(rawDigest)
  const range = parseRangeHeader(c.req.headers.range)
  if (range !== undefined && (range.kind !== 'from' || range.end !== undefined)) throw new RangeInvalid(c.req.headers.range ?? '')
  const answer = await s.blobs.serve({ digest, range, head: c.head, reach: 'proxy', route: undefined })
  const offset = answer.range?.start ?? 0
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'docker-content-digest': digest.value, [BLOB_OFFSET_HEADER]: offset }
  if (answer.size !== undefined) headers[BLOB_SIZE_HEADER] = answer.size
  if (answer.length !== undefined) headers['content-length'] = answer.length
  c.res.writeHead(offset > 0 ? 206 : 200, headers)
  if (answer.body === undefined) { c.res.end(); return }
  await sendBlobBody(s, c, answer.body, digest.value, 'peer')
}

/** `n` and `last` of a tags list or the catalog. */
function paging (c: Call): { n: number | undefined, last: string | undefined } {
  const nText = c.query.get('n')
  const last = c.query.get('last') ?? undefined
  if (nText !== null && !/^\d{1,9}$/.test(nText)) throw new PaginationNumberInvalid(nText)
  return { n: nText === null ? undefined : Number(nText), last: last === '' ? undefined : last }
}

export async function handleTags (s: Services, c: Call, rawName: string): Promise<void> {
  readOnly(c.req.method)
  const name = parseName(rawName)
  const target = s.targets.resolve(name, routingNs(c))
  const query = paging(c)
  if (query.last !== undefined && parseReference(query.last).kind !== 'tag') throw new TagInvalid(query.last)
  sendList(c, target.kind === 'hosted' ? await s.hosted.tags(target.name, query) : await s.lists.tags(target.route, name, query))
}

export async function handleReferrers (s: Services, c: Call, rawName: string, rawDigest: string): Promise<void> {
  readOnly(c.req.method)
  const name = parseName(rawName)
  const target = s.targets.resolve(name, routingNs(c))
  const digest = parseDigest(rawDigest)
  const artifactType = c.query.get('artifactType') ?? undefined
  sendList(c, target.kind === 'hosted'
    ? await s.hosted.referrers(target.name, digest.value, artifactType)
    : await s.lists.referrers(target.route, name, digest, artifactType))
}

/** The repositories this region holds that the caller may pull (distribution-spec "Listing Repositories"). */
export async function handleCatalog (s: Services, c: Call): Promise<void> {
  readOnly(c.req.method)
  const query = paging(c)
  const all = await s.listing.all()
  const auth = c.auth
  const visible = s.gate === undefined || auth === undefined ? all : all.filter(r => s.gate!.ruleAllows(auth, r, 'pull'))
  const { items, link } = pageOfSorted(visible, query, '/v2/_catalog')
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (link !== undefined) headers.link = link
  sendBody(c.res, 200, headers, JSON.stringify({ repositories: items }), c.head)
}

function sendList (c: Call, list: ListResult): void {
  const headers: Record<string, string> = { 'content-type': list.contentType }
  if (list.link !== undefined) headers.link = list.link
  if (list.filtersApplied !== undefined) headers['oci-filters-applied'] = list.filtersApplied
  if (list.stale) headers.warning = '110 ferry "served stale: upstream unavailable"'
  sendBody(c.res, 200, headers, list.body, c.head)
}
