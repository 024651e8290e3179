// Upstream authentication: anonymous or credentialed Bearer tokens from the
// registry's token service (distribution "Token Authentication Specification"),
// or plain Basic. Tokens are cached per scope until shortly before they expire,
// and concurrent requests for one scope share one token fetch.
import type { Dispatcher } from 'undici'
import { LRUCache } from 'lru-cache'
import type { Challenge } from './challenge.ts'
import { basicHeader } from '../auth/credentials.ts'
import { Denied, UpstreamUnavailable } from '../oci/errors.ts'
import { readLimited } from './read-body.ts'

export interface TokenAuthOptions {
  readonly upstreamName: string
  readonly dispatcher: Dispatcher
  readonly username: string | undefined
  /** Read at the moment of use, so a rotated secret is picked up and it is never stored in config. */
  readonly password: () => string | undefined
  readonly timeoutMs: number
}

interface CachedToken { readonly token: string, readonly expiresAt: number }

const MIN_TOKEN_LIFETIME_MS = 60_000 // the token spec's default when expires_in is absent
const MAX_TOKEN_BODY = 64 * 1024

export class TokenAuth {
  private readonly opts: TokenAuthOptions
  /** The scheme and Bearer realm learned from the upstream's first challenge. */
  private scheme: 'bearer' | 'basic' | undefined
  private realm: { url: string, service: string | undefined } | undefined
  private readonly tokens = new LRUCache<string, CachedToken>({ max: 10_000 })
  private readonly pending = new Map<string, Promise<string>>()

  constructor (opts: TokenAuthOptions) { this.opts = opts }

  /** The Authorization header to send for `scope`, or undefined while no challenge was seen. */
  async authorization (scope: string): Promise<string | undefined> {
    if (this.scheme === 'basic') return this.basicHeader()
    if (this.scheme !== 'bearer') return undefined
    const cached = this.tokens.get(scope)
    if (cached !== undefined && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`
    return `Bearer ${await this.fetchToken(scope)}`
  }

  /** Learn from a 401 challenge. Returns false when there is nothing new to try. */
  learn (challenges: readonly Challenge[], scope: string): boolean {
    const bearer = challenges.find(c => c.scheme === 'bearer' && c.params.realm)
    if (bearer !== undefined) {
      this.scheme = 'bearer'
      this.realm = { url: bearer.params.realm!, service: bearer.params.service }
      this.tokens.delete(scope)
      return true
    }
    if (challenges.some(c => c.scheme === 'basic') && this.opts.username !== undefined) {
      const first = this.scheme !== 'basic'
      this.scheme = 'basic'
      return first
    }
    return false
  }

  forget (scope: string): void { this.tokens.delete(scope) }

  private basicHeader (): string | undefined {
    const password = this.opts.password()
    if (this.opts.username === undefined || password === undefined) return undefined
    return basicHeader(this.opts.username, password)
  }

  private fetchToken (scope: string): Promise<string> {
    let p = this.pending.get(scope)
    if (p === undefined) {
      p = this.requestToken(scope).finally(() => this.pending.delete(scope))
      this.pending.set(scope, p)
    }
    return p
  }

  private async requestToken (scope: string): Promise<string> {
    const realm = this.realm!
    let url: URL
    try { url = new URL(realm.url) } catch { throw new UpstreamUnavailable(502, 'upstream sent an invalid token realm', { upstream: this.opts.upstreamName }) }
    if (realm.service !== undefined) url.searchParams.set('service', realm.service)
    url.searchParams.set('scope', scope)
    const headers: Record<string, string> = { accept: 'application/json' }
    const basic = this.basicHeader()
    if (basic !== undefined) headers.authorization = basic
    const started = Date.now()
    let res: Dispatcher.ResponseData
    try {
      res = await this.opts.dispatcher.request({
        origin: url.origin, path: url.pathname + url.search, method: 'GET', headers,
        headersTimeout: this.opts.timeoutMs, bodyTimeout: this.opts.timeoutMs,
      })
    } catch (err) {
      throw new UpstreamUnavailable(502, 'upstream token service unreachable', { upstream: this.opts.upstreamName, cause: (err as Error).message })
    }
    const text = await readLimited(res.body, MAX_TOKEN_BODY)
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new Denied('upstream token service refused ferry\'s credentials', { upstream: this.opts.upstreamName, status: res.statusCode })
    }
    if (res.statusCode !== 200) {
      throw new UpstreamUnavailable(502, 'upstream token service failed', { upstream: this.opts.upstreamName, status: res.statusCode })
    }
    let body: { token?: unknown, access_token?: unknown, expires_in?: unknown }
    try { body = JSON.parse(text) } catch { throw new UpstreamUnavailable(502, 'upstream token service sent no JSON', { upstream: this.opts.upstreamName }) }
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined
    if (token === undefined || token.length === 0) throw new UpstreamUnavailable(502, 'upstream token service sent no token', { upstream: this.opts.upstreamName })
    const lifetimeMs = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : MIN_TOKEN_LIFETIME_MS
    // refresh a little early so a token never expires in flight
    this.tokens.set(scope, { token, expiresAt: started + lifetimeMs * 0.9 })
    return token
  }
}
