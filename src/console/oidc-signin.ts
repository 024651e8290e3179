// Signing in to the console through an OpenID provider: the authorization
// code flow with PKCE. `begin` sends the browser to the provider with a
// fresh state, nonce and code challenge, kept in a sealed, short-lived,
// HttpOnly cookie; `finish` checks the state, trades the code (with the
// client secret and the verifier) for an ID token, verifies it (issuer,
// audience, nonce, the provider's keys) and names the user from its claims.
import { createHash, randomBytes } from 'node:crypto'
import { jwtVerify } from 'jose'
import type { Identity } from '../auth/identity.ts'
import type { OidcProvider } from '../auth/oidc.ts'
import { OciError } from '../oci/errors.ts'
import { cookieValue, type Sessions } from './session.ts'

export interface OidcSignInConfig {
  readonly clientId: string
  readonly clientSecretEnv: string
  /** This ferry's callback as the browser reaches it: .../_ferry/api/v1/session/oidc/callback */
  readonly redirectUri: string
  readonly usernameClaim: string
  readonly groupsClaim: string
}

const FLOW_COOKIE = 'ferry_oidc'
const FLOW_PATH = '/_ferry/api/v1/session/oidc'
const FLOW_AUDIENCE = 'ferry-oidc-flow'
const FLOW_SECONDS = 600

export class OidcSignIn {
  private readonly c: OidcSignInConfig
  private readonly provider: OidcProvider
  private readonly sessions: Sessions

  constructor (config: OidcSignInConfig, provider: OidcProvider, sessions: Sessions) {
    this.c = config
    this.provider = provider
    this.sessions = sessions
  }

  /** The provider's endpoints, both of which the sign-in needs. */
  private async discover (): Promise<{ authorizationEndpoint: string, tokenEndpoint: string, keys: Awaited<ReturnType<OidcProvider['endpoints']>>['keys'] }> {
    const d = await this.provider.endpoints()
    if (d.authorizationEndpoint === undefined || d.tokenEndpoint === undefined) throw new OciError('UNAVAILABLE', 503, 'the OpenID provider names no authorization or token endpoint', { issuer: this.provider.issuer })
    return { authorizationEndpoint: d.authorizationEndpoint, tokenEndpoint: d.tokenEndpoint, keys: d.keys }
  }

  /** Where to send the browser, and the cookie that remembers this sign-in. */
  async begin (): Promise<{ location: string, cookie: string }> {
    const d = await this.discover()
    const state = randomBytes(16).toString('base64url')
    const nonce = randomBytes(16).toString('base64url')
    const verifier = randomBytes(32).toString('base64url')
    const url = new URL(d.authorizationEndpoint)
    url.search = new URLSearchParams({
      response_type: 'code', client_id: this.c.clientId, redirect_uri: this.c.redirectUri, scope: 'openid profile groups',
      state, nonce, code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    }).toString()
    const sealed = await this.sessions.seal({ state, nonce, verifier }, FLOW_AUDIENCE, FLOW_SECONDS)
    return { location: url.href, cookie: this.sessions.flowCookie(FLOW_COOKIE, sealed, FLOW_PATH, FLOW_SECONDS) }
  }

  /** The provider sent the browser back: who signed in. Throws on anything that does not check out. */
  async finish (query: URLSearchParams, cookieHeader: string | undefined): Promise<{ who: Identity, expiresAt: number, clearCookie: string }> {
    const clearCookie = this.sessions.flowCookie(FLOW_COOKIE, '', FLOW_PATH, 0)
    const sealed = cookieValue(cookieHeader, FLOW_COOKIE)
    const flow = sealed === undefined ? undefined : await this.sessions.unseal(sealed, FLOW_AUDIENCE)
    if (flow === undefined || typeof flow.state !== 'string' || query.get('state') !== flow.state) throw new OciError('DENIED', 403, 'this sign-in was not started here (or took too long): start again')
    if (query.get('error') !== null) throw new OciError('DENIED', 403, `the OpenID provider refused: ${query.get('error')!.slice(0, 100)}`)
    const code = query.get('code')
    if (code === null || code === '') throw new OciError('UNSUPPORTED', 400, 'no code from the OpenID provider')
    const d = await this.discover()
    let tokens: { id_token?: unknown }
    try {
      const res = await fetch(d.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: this.c.redirectUri, code_verifier: String(flow.verifier), client_id: this.c.clientId, client_secret: process.env[this.c.clientSecretEnv] ?? '' }),
        signal: AbortSignal.timeout(5000),
      })
      tokens = await res.json() as typeof tokens
      if (!res.ok) throw new Error(`the token endpoint answered ${res.status}`)
    } catch (err) {
      throw new OciError('DENIED', 403, 'the OpenID provider did not give a token for this code', { cause: (err as Error).message.slice(0, 200) })
    }
    if (typeof tokens.id_token !== 'string') throw new OciError('DENIED', 403, 'the OpenID provider gave no ID token')
    let claims: Record<string, unknown>
    try {
      claims = (await jwtVerify(tokens.id_token, d.keys, { issuer: this.provider.issuer, audience: this.c.clientId })).payload
    } catch (err) {
      throw new OciError('DENIED', 403, 'the ID token did not verify', { cause: (err as Error).message.slice(0, 200) })
    }
    if (claims.nonce !== flow.nonce) throw new OciError('DENIED', 403, 'the ID token is not for this sign-in (nonce)')
    const name = claims[this.c.usernameClaim] ?? claims.sub
    if (typeof name !== 'string' || name === '') throw new OciError('DENIED', 403, `the ID token names no user (${this.c.usernameClaim})`)
    const raw = claims[this.c.groupsClaim]
    const expiresAt = typeof claims.exp === 'number' ? claims.exp * 1000 : Date.now()
    return { who: { kind: 'user', name, groups: Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string') : [] }, expiresAt, clearCookie }
  }
}
