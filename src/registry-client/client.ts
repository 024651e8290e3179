// A client of one other registry (an upstream, a peer region, another proxy
// of the region): one origin, one dispatcher (dispatcher.ts), one way of
// authenticating (token-auth.ts), and every failure as a RegistryError.
// Callers get the status, headers and body of an answer; `failure` turns an
// answer they cannot use into the error it means.
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { readText } from '../io/read-bounded.ts'
import { parseChallenges } from './challenge.ts'
import { RegistryError, type RegistryErrorCode, type RegistryResource } from './errors.ts'
import { NO_AUTH, type RegistryAuth } from './token-auth.ts'

export interface RegistryRequest {
  readonly method: Dispatcher.HttpMethod
  /** A path on the registry's origin (`/v2/...`), or an absolute URL on the same origin (an upload's Location). */
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: Buffer | Readable
  /** The token scope this request needs (`repository:<name>:pull`). */
  readonly scope?: string
  /** What is asked for, so errors say which kind of thing failed. */
  readonly resource: RegistryResource
  readonly signal?: AbortSignal
}

export interface RegistryResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Dispatcher.ResponseData['body']
}

export interface RegistryClientOptions {
  /** The registry's name in errors and logs (an upstream's or a peer's). */
  readonly name: string
  readonly origin: string
  readonly dispatcher: Dispatcher
  readonly auth?: RegistryAuth
  /** Sent with every request (a User-Agent, the peer-only mark). */
  readonly headers?: Record<string, string>
  /** Told how each request went: its resource, the status or error code, and how long the headers took. */
  readonly observe?: (resource: RegistryResource, outcome: string, seconds: number) => void
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])
/** A pooled keep-alive connection the other side had closed: the request never ran. */
const STALE_SOCKET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED'])
const MAX_ERROR_BODY = 64 * 1024

export class RegistryClient {
  readonly name: string
  readonly origin: string
  private readonly dispatcher: Dispatcher
  private readonly auth: RegistryAuth
  private readonly headers: Record<string, string>
  private readonly observe: RegistryClientOptions['observe']

  constructor (opts: RegistryClientOptions) {
    this.name = opts.name
    this.origin = opts.origin
    this.dispatcher = opts.dispatcher
    this.auth = opts.auth ?? NO_AUTH
    this.headers = { 'user-agent': 'ferry', ...opts.headers }
    this.observe = opts.observe
  }

  /** An answer of any status; rejects only when no answer came (REGISTRY_UNREACHABLE, REGISTRY_TIMEOUT). */
  async request (req: RegistryRequest): Promise<RegistryResponse> {
    const started = performance.now()
    let outcome = 'error'
    try {
      for (let attempt = 0; ; attempt++) {
        const headers: Record<string, string> = { ...this.headers, ...req.headers }
        const authorization = await this.auth.authorization(req.scope)
        if (authorization !== undefined) headers.authorization = authorization
        const res = await this.send(req, headers)
        // a streamed body cannot be sent twice: its 401 is the answer
        const replayable = req.body === undefined || Buffer.isBuffer(req.body)
        if (res.status === 401 && attempt === 0 && replayable && this.auth.challenged(parseChallenges(res.headers['www-authenticate']), req.scope)) {
          res.body.resume()
          continue
        }
        outcome = String(res.status)
        return res
      }
    } catch (err) {
      if (err instanceof RegistryError) outcome = err.code
      throw err
    } finally {
      this.observe?.(req.resource, outcome, (performance.now() - started) / 1000)
    }
  }

  private async send (req: RegistryRequest, headers: Record<string, string>): Promise<RegistryResponse> {
    let origin = this.origin
    let path = req.path
    if (!path.startsWith('/')) {
      // an absolute URL the registry gave (an upload's Location): only on its own origin, so credentials stay there
      let url: URL
      try { url = new URL(path) } catch { throw this.error('REGISTRY_BAD_ANSWER', `not a URL: ${path.slice(0, 100)}`, req) }
      if (url.origin !== this.origin) throw this.error('REGISTRY_BAD_ANSWER', `a location on another origin: ${url.origin}`, req)
      origin = url.origin
      path = url.pathname + url.search
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.dispatcher.request({ origin, path, method: req.method, headers, body: req.body ?? null, signal: req.signal ?? null })
        return { status: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: res.body }
      } catch (err) {
        // request() rejects only when no answer came; a GET or HEAD that never ran is safe to send again, once
        const code = (err as { code?: string }).code
        const idempotent = (req.method === 'GET' || req.method === 'HEAD') && req.body === undefined
        if (attempt === 0 && idempotent && code !== undefined && STALE_SOCKET_CODES.has(code) && req.signal?.aborted !== true) continue
        throw this.networkError(err, req.resource)
      }
    }
  }

  /** A failure of the connection or a stream from this registry, as a RegistryError. */
  networkError (err: unknown, resource: RegistryResource, reference?: string): RegistryError {
    if (err instanceof RegistryError) return err
    const code = (err as { code?: string }).code ?? (err as Error).name
    const timeout = code !== undefined && TIMEOUT_CODES.has(code)
    return new RegistryError(timeout ? 'REGISTRY_TIMEOUT' : 'REGISTRY_UNREACHABLE', timeout ? `${this.name} timed out` : `${this.name} unreachable`,
      { registry: this.name, resource, ...(reference !== undefined ? { reference } : {}), cause: err })
  }

  private error (code: RegistryErrorCode, message: string, req: RegistryRequest): RegistryError {
    return new RegistryError(code, message, { registry: this.name, resource: req.resource })
  }

  /** What an answer that is not a success means, as an error. Consumes the body. */
  async failure (res: RegistryResponse, resource: RegistryResource, reference?: string): Promise<RegistryError> {
    let remoteCode: string | undefined
    let text = ''
    if (res.status >= 400) {
      try {
        text = await readText(res.body, MAX_ERROR_BODY)
        const c = (JSON.parse(text) as { errors?: { code?: unknown }[] }).errors?.[0]?.code
        if (typeof c === 'string') remoteCode = c
      } catch { /* not an OCI error body */ }
    } else {
      res.body.resume()
    }
    const opts = { registry: this.name, resource, status: res.status, ...(reference !== undefined ? { reference } : {}), ...(remoteCode !== undefined ? { remoteCode } : {}) }
    const said = text.length > 0 ? `: ${text.slice(0, 200)}` : ''
    switch (res.status) {
      case 404: return new RegistryError('REGISTRY_NOT_FOUND', `${this.name}: not found`, opts)
      case 401: case 403: return new RegistryError('REGISTRY_DENIED', `${this.name} denied access${said}`, opts)
      case 429: {
        const retryAfter = res.headers['retry-after']
        return new RegistryError('REGISTRY_RATE_LIMITED', `${this.name} is rate-limiting`, { ...opts, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) })
      }
      case 503: return new RegistryError('REGISTRY_UNAVAILABLE', `${this.name} unavailable`, opts)
      case 500: case 502: case 504: return new RegistryError('REGISTRY_FAILED', `${this.name} answered ${res.status}${said}`, opts)
      case 400: if (remoteCode !== undefined) return new RegistryError('REGISTRY_REJECTED', `${this.name} rejected the request${said}`, opts)
    }
    return new RegistryError('REGISTRY_BAD_ANSWER', `${this.name} answered ${res.status}${said}`, opts)
  }

  async close (): Promise<void> { await this.dispatcher.close() }
}
