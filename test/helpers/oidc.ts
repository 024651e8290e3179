// An OpenID provider of the test's own: oidc-provider (a complete,
// certified implementation) in this process on a loopback port, with its
// development login pages, and a client that signs users in through the
// authorization code flow with PKCE the way a browser would (following
// redirects, keeping cookies, posting the login and consent forms).
import { createHash, randomBytes } from 'node:crypto'
import type { Server } from 'node:http'
import Provider from 'oidc-provider'
import { freePort } from './procs.ts'

export interface Oidc {
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  /** An ID token for `user` with `groups`, by the code flow. */
  idToken (user: string): Promise<string>
  stop (): Promise<void>
}

/** `redirects`: more redirect URIs the client may use (a ferry's console callback). */
export async function startOidc (groups: Record<string, string[]>, redirects: string[] = []): Promise<Oidc> {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const clientId = 'ferry'
  const clientSecret = randomBytes(16).toString('hex')
  const redirect = 'http://127.0.0.1:9/callback'
  const provider = new Provider(issuer, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [redirect, ...redirects], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post' }],
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub, preferred_username: sub, groups: groups[sub] ?? [] }) }),
    claims: { openid: ['sub'], profile: ['preferred_username'], groups: ['groups'] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
  })
  const server: Server = await new Promise(resolve => { const s = provider.listen(port, '127.0.0.1', () => resolve(s)) })

  async function idToken (user: string): Promise<string> {
    const jar = new Map<string, string>()
    const cookie = (): string => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const keep = (res: Response): void => {
      for (const c of res.headers.getSetCookie()) { const [kv] = c.split(';'); const i = kv!.indexOf('='); jar.set(kv!.slice(0, i), kv!.slice(i + 1)) }
    }
    const verifier = randomBytes(32).toString('base64url')
    const challenge = createHash('sha256').update(verifier).digest('base64url')
    let url = `${issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid profile groups', redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', state: randomBytes(8).toString('hex'), nonce: randomBytes(8).toString('hex') })}`
    let body: URLSearchParams | undefined
    for (let hops = 0; hops < 20; hops++) {
      const res: Response = await fetch(url, { method: body === undefined ? 'GET' : 'POST', headers: { cookie: cookie(), ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) }, body, redirect: 'manual' })
      keep(res)
      body = undefined
      const location = res.headers.get('location')
      if (location !== null) {
        const next = new URL(location, url)
        if (next.href.startsWith(redirect)) {
          const code = next.searchParams.get('code')
          if (code === null) throw new Error(`no code: ${next.search}`)
          const token = await fetch(`${issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: verifier, client_id: clientId, client_secret: clientSecret }) })
          const json = await token.json() as { id_token?: string, error?: string }
          if (json.id_token === undefined) throw new Error(`no id_token: ${JSON.stringify(json)}`)
          return json.id_token
        }
        url = next.href
        continue
      }
      // a login or consent page: post its form
      const html = await res.text()
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
      const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1]
      if (action === undefined || prompt === undefined) throw new Error(`unexpected page (${res.status}): ${html.slice(0, 300)}`)
      url = new URL(action.replace(/&amp;/g, '&'), url).href
      body = new URLSearchParams(prompt === 'login' ? { prompt, login: user, password: 'any' } : { prompt })
    }
    throw new Error('too many redirects')
  }

  return {
    issuer, clientId, clientSecret, idToken,
    stop: async () => { await new Promise<void>(resolve => { server.close(() => resolve()); server.closeAllConnections() }) },
  }
}
