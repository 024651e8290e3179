// Authenticating to another registry the way it asks: anonymous or
// credentialed Bearer tokens from its token service (distribution "Token
// Authentication Specification"), or Basic. Tokens are cached per scope until
// shortly before they expire, and concurrent requests for one scope share one
// token fetch. Credentials are read at the moment of use, so a rotated secret
// is picked up and none is kept in config.
import type { Dispatcher } from 'undici'
import { basicHeader } from '../auth/credentials.ts'
import { readText } from '../io/read-bounded.ts'
import type { Challenge } from './challenge.ts'
import { RegistryError } from './errors.ts'
import { boundedCache } from '../common/bounded-cache.ts'

/** How a client proves itself to a registry. */
export interface RegistryAuth {
  /** The Authorization header to send for `scope`, or undefined for none. */
  authorization (scope: string | undefined): Promise<string | undefined>
  /** A 401 answered with these challenges: true when a second try may succeed. */
  challenged (challenges: readonly Challenge[], scope: string | undefined): boolean
}

/** No credentials at all. */
export const NO_AUTH: RegistryAuth = { authorization: async () => undefined, challenged: () => false }

/** The same Basic credentials on every request (a peer region, which expects them). */
export function basicAuth (username: string, password: () => string | undefined): RegistryAuth {
  return {
    authorization: async () => { const p = password(); return p === undefined ? undefined : basicHeader(username, p) },
    challenged: () => false,
  }
}

export interface TokenAuthOptions {
  readonly registry: string
  readonly dispatcher: Dispatcher
  readonly username: string | undefined
  readonly password: () => string | undefined
  readonly timeoutMs: number
}

interface CachedToken { readonly token: string, readonly expiresAt: number }

const MIN_TOKEN_LIFETIME_MS = 60_000 // the token spec's default when expires_in is absent
const MAX_TOKEN_BODY = 64 * 1024

/** Whatever the registry's challenge asks for: nothing, Basic, or Bearer tokens per scope. */
export class TokenAuth implements RegistryAuth {
  private readonly opts: TokenAuthOptions
  /** The scheme and Bearer realm learned from the registry's first challenge. */
  private scheme: 'bearer' | 'basic' | undefined
  private realm: { url: string, service: string | undefined } | undefined
  private readonly tokens = boundedCache<string, CachedToken>(10_000)
  private readonly pending = new Map<string, Promise<string>>()

  constructor (opts: TokenAuthOptions) { this.opts = opts }

  async authorization (scope: string | undefined): Promise<string | undefined> {
    if (this.scheme === 'basic') return this.basicHeader()
    if (this.scheme !== 'bearer') return undefined
    const key = scope ?? ''
    const cached = this.tokens.get(key)
    if (cached !== undefined && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`
    return `Bearer ${await this.fetchToken(key)}`
  }

  challenged (challenges: readonly Challenge[], scope: string | undefined): boolean {
    this.tokens.delete(scope ?? '')
    const bearer = challenges.find(c => c.scheme === 'bearer' && c.params.realm)
    if (bearer !== undefined) {
      this.scheme = 'bearer'
      this.realm = { url: bearer.params.realm!, service: bearer.params.service }
      return true
    }
    if (challenges.some(c => c.scheme === 'basic') && this.opts.username !== undefined) {
      const first = this.scheme !== 'basic'
      this.scheme = 'basic'
      return first
    }
    return false
  }

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
    const registry = this.opts.registry
    let url: URL
    try { url = new URL(realm.url) } catch { throw new RegistryError('REGISTRY_BAD_ANSWER', 'the registry sent an invalid token realm', { registry, resource: 'token' }) }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RegistryError('REGISTRY_BAD_ANSWER', 'the registry sent a token realm that is not http(s)', { registry, resource: 'token' })
    if (realm.service !== undefined) url.searchParams.set('service', realm.service)
    if (scope !== '') url.searchParams.set('scope', scope)
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
      throw new RegistryError('REGISTRY_UNREACHABLE', 'the registry\'s token service is unreachable', { registry, resource: 'token', cause: err })
    }
    const text = await readText(res.body, MAX_TOKEN_BODY)
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new RegistryError('REGISTRY_DENIED', 'the registry\'s token service refused ferry\'s credentials', { registry, resource: 'token', status: res.statusCode })
    }
    if (res.statusCode !== 200) {
      throw new RegistryError(res.statusCode >= 500 ? 'REGISTRY_FAILED' : 'REGISTRY_BAD_ANSWER', `the registry's token service answered ${res.statusCode}`, { registry, resource: 'token', status: res.statusCode })
    }
    let body: { token?: unknown, access_token?: unknown, expires_in?: unknown }
    try { body = JSON.parse(text) as typeof body } catch { throw new RegistryError('REGISTRY_BAD_ANSWER', 'the registry\'s token service sent no JSON', { registry, resource: 'token' }) }
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined
    if (token === undefined || token.length === 0) throw new RegistryError('REGISTRY_BAD_ANSWER', 'the registry\'s token service sent no token', { registry, resource: 'token' })
    const lifetimeMs = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : MIN_TOKEN_LIFETIME_MS
    // refresh a little early so a token never expires in flight
    this.tokens.set(scope, { token, expiresAt: started + lifetimeMs * 0.9 })
    return token
  }
}
