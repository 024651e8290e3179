// One upstream registry as the cache needs it: typed questions (a blob's
// size, its bytes from an offset, a manifest, a tags list, referrers) with
// typed answers, and every failure a RegistryError. What statuses and
// headers mean stays here; the cache never sees a raw response.
import { UpstreamHealth } from './health.ts'
import type { Readable } from 'node:stream'
import { LRUCache } from 'lru-cache'
import type { UpstreamConfig } from '../config/region-config.ts'
import { BodyTooLarge, readBounded } from '../io/read-bounded.ts'
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts'
import { parseContentRange } from '../oci/range.ts'
import type { Digest } from '../oci/reference.ts'
import type { Metrics } from '../observe/metrics.ts'
import { RegistryClient, type RegistryResponse } from '../registry-client/client.ts'
import { createDispatcher } from '../registry-client/dispatcher.ts'
import { RegistryError, type RegistryResource } from '../registry-client/errors.ts'
import { TokenAuth } from '../registry-client/token-auth.ts'
import type { MissBudget } from './miss-budget.ts'
import { RatePacer, type Pacing } from './rate-pacer.ts'
import { boundedCache } from '../common/bounded-cache.ts'

export interface UpstreamBlob {
  /** The whole blob's size, when the upstream said it. */
  readonly size: number | undefined
  /** Where the body starts: the offset asked for, or 0 when the upstream sent the whole blob instead. */
  readonly start: number
  readonly body: Readable
  /** A strong validator, to resume with If-Range. */
  readonly etag: string | undefined
}

export interface UpstreamManifest {
  readonly body: Buffer
  /** The Content-Type the upstream sent (bare), when it sent one. */
  readonly mediaType: string | undefined
  /** The Docker-Content-Digest it sent, unchecked. */
  readonly digest: string | undefined
}

export interface UpstreamList {
  readonly body: Buffer
  /** Its `Link: <...>; rel="next"` target, when it paged the list. */
  readonly next: string | undefined
}

const MAX_LIST_BYTES = 16 * 1024 * 1024

export class Upstream {
  readonly config: UpstreamConfig
  readonly name: string
  private readonly client: RegistryClient
  /**
   * The upstream's recent "not found" answers, by what was asked: thousands
   * of requests for a digest or tag that does not exist cost it one.
   */
  private readonly notFound: LRUCache<string, RegistryError> | undefined

  private readonly budget: MissBudget | undefined

  /** Set for batch work (a command's edge): requests slow down as the upstream's rate limit runs out. */
  private readonly pacer: RatePacer | undefined
  /** How it has been answering (the console's upstream health). */
  readonly health = new UpstreamHealth()

  private readonly metrics: Metrics

  constructor (config: UpstreamConfig, metrics: Metrics, budget?: MissBudget, onPace?: (p: Pacing) => void) {
    this.metrics = metrics
    this.budget = budget
    this.pacer = onPace === undefined ? undefined : new RatePacer(p => { onPace(p) })
    this.config = config
    this.name = config.name
    this.notFound = config.notFoundTTLMs > 0 ? boundedCache(10_000, { ttl: config.notFoundTTLMs }) : undefined
    const dispatcher = createDispatcher({
      caFile: config.caFile,
      insecure: config.insecure,
      connections: config.connections,
      connectTimeoutMs: config.timeouts.connectMs,
      headersTimeoutMs: config.timeouts.headersMs,
      bodyTimeoutMs: config.timeouts.bodyIdleMs,
    })
    const passwordEnv = config.credentials?.passwordEnv
    this.client = new RegistryClient({
      name: config.name,
      origin: config.url.origin,
      dispatcher,
      auth: new TokenAuth({
        registry: config.name,
        dispatcher,
        username: config.credentials?.username,
        password: () => passwordEnv === undefined ? undefined : process.env[passwordEnv],
        timeoutMs: config.timeouts.headersMs,
      }),
      observe: (resource, outcome, seconds) => {
        metrics.upstreamRequests.observe({ upstream: config.name, kind: resource, outcome }, seconds)
        this.health.record(outcome, seconds)
      },
    })
  }

  private async get (repo: string, path: string, resource: RegistryResource, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<RegistryResponse> {
    await this.pacer?.before()
    const res = await this.client.request({ method, path: `/v2/${repo}/${path}`, headers, resource, scope: `repository:${repo}:pull` })
    this.pacer?.observe(res.headers)
    // time to reset: what a 429 says in Retry-After (seconds, or an HTTP date), counted down by the gauge's readers from when it was said
    if (res.status === 429) {
      const after = retryAfterSeconds(res.headers['retry-after'])
      if (after !== undefined) this.metrics.rateLimitReset.set({ upstream: this.name }, after)
    } else if (res.status < 400) {
      this.metrics.rateLimitReset.set({ upstream: this.name }, 0)
    }
    const limit = this.health.observeHeaders(res.headers)
    if (limit !== undefined) {
      this.metrics.rateLimitRemaining.set({ upstream: this.name }, limit.remaining)
      if (limit.limit !== undefined) this.metrics.rateLimitLimit.set({ upstream: this.name }, limit.limit)
    }
    return res
  }

  /** Throws the upstream's recent "not found" for this, if it said so within notFoundTTL. */
  private knownMissing (resource: RegistryResource, repo: string, reference: string): void {
    const known = this.notFound?.get(`${resource}|${repo}|${reference}`)
    if (known !== undefined) throw known
  }

  /** The failure of an answer, a "not found" remembered. */
  private async failed (res: RegistryResponse, resource: RegistryResource, repo: string, reference: string): Promise<RegistryError> {
    const err = await this.client.failure(res, resource, reference)
    if (err.code === 'REGISTRY_NOT_FOUND') this.notFound?.set(`${resource}|${repo}|${reference}`, err)
    return err
  }

  /** The size of a blob, from a HEAD (no bytes move). */
  async blobSize (repo: string, digest: Digest): Promise<number | undefined> {
    this.knownMissing('blob', repo, digest.value)
    this.budget?.spend(this.name, 'blob')
    const res = await this.get(repo, `blobs/${digest.value}`, 'blob', {}, 'HEAD')
    if (res.status !== 200) throw await this.failed(res, 'blob', repo, digest.value)
    res.body.resume()
    return declaredSize(res.headers['content-length'])
  }

  /**
   * A blob's bytes from `from` (0: all of it). A resume is guarded by
   * If-Range with the validator of the first answer; an upstream that sends
   * the whole blob instead says so with `start: 0`.
   */
  async blob (repo: string, digest: Digest, from: number, etag?: string): Promise<UpstreamBlob> {
    if (from === 0) {
      this.knownMissing('blob', repo, digest.value)
      this.budget?.spend(this.name, 'blob')
    }
    const headers: Record<string, string> = {}
    if (from > 0) {
      headers.range = `bytes=${from}-`
      if (etag !== undefined) headers['if-range'] = etag
    }
    const res = await this.get(repo, `blobs/${digest.value}`, 'blob', headers)
    if (res.status === 200) {
      return { size: declaredSize(res.headers['content-length']), start: 0, body: res.body, etag: strongEtag(res.headers.etag) }
    }
    if (res.status === 206 && from > 0) {
      const range = parseContentRange(res.headers['content-range'])
      if (range === undefined || range.start !== from) {
        res.body.destroy()
        throw new RegistryError('REGISTRY_BAD_ANSWER', 'the upstream answered a resume with the wrong range', { registry: this.name, resource: 'blob', reference: digest.value, status: 206 })
      }
      return { size: range.size, start: from, body: res.body, etag: etag ?? strongEtag(res.headers.etag) }
    }
    throw await this.failed(res, 'blob', repo, digest.value)
  }

  /** What a manifest reference resolves to now, from a HEAD. */
  async manifestHead (repo: string, reference: string, accept: readonly string[]): Promise<{ digest: string | undefined, mediaType: string | undefined }> {
    this.knownMissing('manifest', repo, reference)
    this.budget?.spend(this.name, 'manifest')
    const res = await this.get(repo, `manifests/${reference}`, 'manifest', acceptHeader(accept), 'HEAD')
    if (res.status !== 200) throw await this.failed(res, 'manifest', repo, reference)
    res.body.resume()
    const digest = res.headers['docker-content-digest']
    return { digest: typeof digest === 'string' ? digest : undefined, mediaType: contentType(res.headers['content-type']) }
  }

  /** A manifest's bytes (at most 4 MiB) and what the upstream said of them. `accept` undefined: no Accept header. */
  async manifest (repo: string, reference: string, accept: readonly string[] | undefined): Promise<UpstreamManifest> {
    this.knownMissing('manifest', repo, reference)
    this.budget?.spend(this.name, 'manifest')
    const res = await this.get(repo, `manifests/${reference}`, 'manifest', accept === undefined ? {} : acceptHeader(accept))
    if (res.status !== 200) throw await this.failed(res, 'manifest', repo, reference)
    const tooLarge = (): RegistryError => new RegistryError('REGISTRY_BAD_ANSWER', `the upstream's manifest is larger than ${MAX_MANIFEST_BYTES} bytes`, { registry: this.name, resource: 'manifest', reference })
    if (Number(res.headers['content-length']) > MAX_MANIFEST_BYTES) {
      res.body.destroy()
      throw tooLarge()
    }
    let body: Buffer
    try {
      body = await readBounded(res.body, MAX_MANIFEST_BYTES)
    } catch (err) {
      throw err instanceof BodyTooLarge ? tooLarge() : this.client.networkError(err, 'manifest', reference)
    }
    const digest = res.headers['docker-content-digest']
    return { body, mediaType: contentType(res.headers['content-type']), digest: typeof digest === 'string' ? digest : undefined }
  }

  /** A repository's tags list as the upstream sends it (its query passed on). */
  async tags (repo: string, query: string): Promise<UpstreamList> {
    this.budget?.spend(this.name, 'tags')
    const res = await this.get(repo, `tags/list${query === '' ? '' : `?${query}`}`, 'tags')
    if (res.status !== 200) throw await this.client.failure(res, 'tags', repo)
    return await this.list(res, 'tags', repo)
  }

  /** The referrers API's index for `subject`, or undefined when the upstream has no referrers API (404). */
  async referrers (repo: string, subject: Digest): Promise<UpstreamList | undefined> {
    this.budget?.spend(this.name, 'referrers')
    const res = await this.get(repo, `referrers/${subject.value}`, 'referrers', { accept: 'application/vnd.oci.image.index.v1+json' })
    if (res.status === 404) { res.body.resume(); return undefined }
    if (res.status !== 200) throw await this.client.failure(res, 'referrers', subject.value)
    return await this.list(res, 'referrers', subject.value)
  }

  private async list (res: RegistryResponse, resource: RegistryResource, reference: string): Promise<UpstreamList> {
    let body: Buffer
    try {
      body = await readBounded(res.body, MAX_LIST_BYTES)
    } catch (err) {
      if (err instanceof BodyTooLarge) throw new RegistryError('REGISTRY_BAD_ANSWER', `the upstream's list is larger than ${MAX_LIST_BYTES} bytes`, { registry: this.name, resource, reference })
      throw this.client.networkError(err, resource, reference)
    }
    return { body, next: nextLink(res.headers.link) }
  }

  /** A failure of a body already being read from this upstream (a manifest cut short), as a RegistryError. */
  broken (err: unknown, resource: RegistryResource, reference?: string): RegistryError {
    return this.client.networkError(err, resource, reference)
  }

  async close (): Promise<void> { await this.client.close() }
}

function acceptHeader (accept: readonly string[]): Record<string, string> {
  return { accept: accept.join(', ') }
}

/** The bare media type of a Content-Type header. */
export function contentType (header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header
  if (v === undefined) return undefined
  const t = v.split(';', 1)[0]!.trim()
  return t.length > 0 ? t : undefined
}

export function declaredSize (header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header
  const n = Number(v)
  return v !== undefined && v !== '' && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

function strongEtag (header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header
  return v !== undefined && !v.startsWith('W/') ? v : undefined
}

/** The target of `Link: <...>; rel="next"`. */
function nextLink (header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header
  if (v === undefined) return undefined
  return /<([^>]*)>\s*;\s*rel="?next"?/i.exec(v)?.[1]
}

/** Retry-After as seconds from now: a number of seconds, or an HTTP date. */
function retryAfterSeconds (v: string | string[] | undefined): number | undefined {
  const text = Array.isArray(v) ? v[0] : v
  if (text === undefined) return undefined
  if (/^\d+$/.test(text.trim())) return Number(text.trim())
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.round((at - Date.now()) / 1000))
}
