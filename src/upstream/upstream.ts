// A client of one upstream registry: its own undici Agent (keep-alive pool per
// origin, connect/headers/body-idle timeouts, its TLS trust), its auth state,
// and the mapping of what it answers onto OCI errors.
import { readFileSync } from 'node:fs'
import type { IncomingHttpHeaders } from 'node:http'
import { Agent, type Dispatcher } from 'undici'
import type { UpstreamConfig } from '../config/schema.ts'
import { BlobUnknown, Denied, ManifestUnknown, NameUnknown, OciError, TooManyRequests, UpstreamUnavailable, type OciErrorCode } from '../oci/errors.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import { parseChallenges } from './challenge.ts'
import { readLimited } from './read-body.ts'
import { TokenAuth } from './token-auth.ts'

export type UpstreamKind = 'manifest' | 'blob' | 'tags' | 'referrers'

export interface UpstreamRequest {
  readonly method: 'GET' | 'HEAD'
  /** Repository name as the upstream knows it. */
  readonly repo: string
  /** Path after /v2/<repo>/, such as "manifests/latest". */
  readonly path: string
  readonly query?: string
  readonly headers?: Record<string, string>
  readonly kind: UpstreamKind
  readonly signal?: AbortSignal
}

export interface UpstreamResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Dispatcher.ResponseData['body']
}

const MAX_REDIRECTS = 5
const RETRYABLE_SOCKET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED'])
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])

export class Upstream {
  readonly config: UpstreamConfig
  readonly name: string
  private readonly agent: Agent
  private readonly auth: TokenAuth
  private readonly log: Logger
  private readonly metrics: Metrics

  constructor (config: UpstreamConfig, log: Logger, metrics: Metrics) {
    this.config = config
    this.name = config.name
    this.log = log.child({ upstream: config.name })
    this.metrics = metrics
    const ca = config.caFile === undefined ? undefined : readFileSync(config.caFile)
    this.agent = new Agent({
      connections: config.connections,
      keepAliveTimeout: 30_000,
      headersTimeout: config.timeouts.headersMs,
      bodyTimeout: config.timeouts.bodyIdleMs,
      connect: { timeout: config.timeouts.connectMs, ...(ca ? { ca } : {}), rejectUnauthorized: !config.insecure },
    })
    const passwordEnv = config.credentials?.passwordEnv
    this.auth = new TokenAuth({
      upstreamName: config.name,
      dispatcher: this.agent,
      username: config.credentials?.username,
      password: () => passwordEnv === undefined ? undefined : process.env[passwordEnv],
      timeoutMs: config.timeouts.headersMs,
    })
  }

  async request (req: UpstreamRequest): Promise<UpstreamResponse> {
    const scope = `repository:${req.repo}:pull`
    const path = `/v2/${req.repo}/${req.path}${req.query ? `?${req.query}` : ''}`
    const started = performance.now()
    let outcome = 'error'
    try {
      for (let attempt = 0; ; attempt++) {
        const authorization = await this.auth.authorization(scope)
        const headers: Record<string, string> = { 'user-agent': 'ferry', ...req.headers }
        if (authorization !== undefined) headers.authorization = authorization
        let res = await this.send(this.config.url.origin, path, req.method, headers, req.signal)
        if (res.status === 401 && attempt === 0) {
          const challenges = parseChallenges(res.headers['www-authenticate'])
          res.body.resume()
          this.auth.forget(scope)
          if (this.auth.learn(challenges, scope)) continue
        }
        if (res.status >= 300 && res.status < 400 && typeof res.headers.location === 'string') {
          res = await this.followRedirects(res, path, req, headers)
        }
        outcome = String(res.status)
        return res
      }
    } finally {
      this.metrics.upstreamRequests.observe({ upstream: this.name, kind: req.kind, outcome }, (performance.now() - started) / 1000)
    }
  }

  /** Registries send blob GETs to a CDN; credentials never follow a redirect to another origin. */
  private async followRedirects (first: UpstreamResponse, path: string, req: UpstreamRequest, headers: Record<string, string>): Promise<UpstreamResponse> {
    let res = first
    let base = new URL(path, this.config.url)
    for (let hop = 0; hop < MAX_REDIRECTS && res.status >= 300 && res.status < 400 && typeof res.headers.location === 'string'; hop++) {
      res.body.resume()
      let next: URL
      try { next = new URL(res.headers.location as string, base) } catch { throw new UpstreamUnavailable(502, 'upstream sent an invalid redirect', { upstream: this.name }) }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new UpstreamUnavailable(502, 'upstream redirected to a non-HTTP URL', { upstream: this.name })
      const hopHeaders = { ...headers }
      if (next.origin !== this.config.url.origin) delete hopHeaders.authorization
      res = await this.send(next.origin, next.pathname + next.search, req.method, hopHeaders, req.signal)
      base = next
    }
    return res
  }

  private async send (origin: string, path: string, method: 'GET' | 'HEAD', headers: Record<string, string>, signal: AbortSignal | undefined): Promise<UpstreamResponse> {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.agent.request({ origin, path, method, headers, signal: signal ?? null })
        return { status: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: res.body }
      } catch (err) {
        const code = (err as { code?: string }).code
        // A keep-alive socket the upstream closed while idle: the request never ran, so one retry is safe.
        if (attempt === 0 && code !== undefined && RETRYABLE_SOCKET_CODES.has(code) && !signal?.aborted) continue
        throw this.networkError(err)
      }
    }
  }

  networkError (err: unknown): OciError {
    if (err instanceof OciError) return err
    const code = (err as { code?: string }).code ?? (err as Error).name
    const message = (err as Error).message
    if (code !== undefined && TIMEOUT_CODES.has(code)) return new UpstreamUnavailable(504, 'upstream timed out', { upstream: this.name, cause: code })
    this.log.debug({ code, message }, 'upstream request failed')
    return new UpstreamUnavailable(502, 'upstream unreachable', { upstream: this.name, cause: code ?? message })
  }

  /** Turn a non-success upstream answer into the OCI error the client should see. Consumes the body. */
  async errorFrom (res: UpstreamResponse, kind: UpstreamKind, reference: string): Promise<OciError> {
    let upstreamCode: string | undefined
    if (res.status >= 400) {
      try {
        const text = await readLimited(res.body, 64 * 1024)
        const doc = JSON.parse(text) as { errors?: { code?: unknown }[] }
        const c = doc.errors?.[0]?.code
        if (typeof c === 'string') upstreamCode = c
      } catch { /* not an OCI error body */ }
    } else {
      res.body.resume()
    }
    const detail = { upstream: this.name, status: res.status, ...(upstreamCode ? { code: upstreamCode } : {}) }
    switch (res.status) {
      case 404:
        if (upstreamCode === 'NAME_UNKNOWN') return new NameUnknown(reference, detail)
        if (kind === 'blob') return new BlobUnknown(reference, detail)
        if (kind === 'manifest') return new ManifestUnknown(reference, detail)
        return new NameUnknown(reference, detail)
      case 401:
      case 403:
        return new Denied('upstream denied access', detail)
      case 429: {
        const retryAfter = res.headers['retry-after']
        return new TooManyRequests(typeof retryAfter === 'string' ? retryAfter : undefined, detail)
      }
      case 400:
        if (upstreamCode === 'NAME_INVALID' || upstreamCode === 'TAG_INVALID' || upstreamCode === 'DIGEST_INVALID' || upstreamCode === 'MANIFEST_INVALID') {
          return new OciError(upstreamCode as OciErrorCode, 400, 'upstream rejected the request', detail)
        }
        return new UpstreamUnavailable(502, 'upstream rejected the request', detail)
      case 503:
        return new UpstreamUnavailable(503, 'upstream unavailable', detail)
      case 504:
        return new UpstreamUnavailable(504, 'upstream timed out', detail)
      default:
        return new UpstreamUnavailable(502, `upstream answered ${res.status}`, detail)
    }
  }

  async close (): Promise<void> { await this.agent.close() }
}
