// A Docker token service for docker-registry's `auth: token`: checks Basic
// credentials and issues RS256 JWTs carrying the certificate in x5c, which
// the registry verifies against its rootcertbundle.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'

import { join } from 'node:path'
import { SignJWT, importPKCS8 } from 'jose'
import { requireBinary } from './registry.ts'
import { scratchDir } from './procs.ts'

export interface TokenServer {
  readonly realm: string
  readonly service: string
  readonly issuer: string
  readonly certPath: string
  /** Every token request: the scope asked for and whether the credentials were good. */
  readonly requests: { scope: string | null, user: string | undefined, ok: boolean }[]
  /** Every token issued, to check none leaks into a log. */
  readonly issued: string[]
  close (): Promise<void>
}

export async function startTokenServer (users: Record<string, string>, opts: { lifetimeSeconds?: number, anonymous?: boolean } = {}): Promise<TokenServer> {
  const lifetimeSeconds = opts.lifetimeSeconds ?? 300
  requireBinary('openssl', 'openssl')
  const dir = scratchDir('ferry-token-')
  const certPath = join(dir, 'cert.pem')
  const keyPath = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=ferry-test-token'], { stdio: 'ignore' })
  const key = await importPKCS8(readFileSync(keyPath, 'utf8'), 'RS256')
  const certDer = readFileSync(certPath, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '')
  const service = 'ferry-test-registry'
  const issuer = 'ferry-test-issuer'
  const requests: TokenServer['requests'] = []
  const issued: string[] = []
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const scope = url.searchParams.get('scope')
      let user: string | undefined
      let ok = false
      const auth = req.headers.authorization
      if (auth?.startsWith('Basic ')) {
        const [u, p] = Buffer.from(auth.slice(6), 'base64').toString().split(':') as [string, string]
        user = u
        ok = users[u] !== undefined && users[u] === p
      } else if (auth === undefined && opts.anonymous === true) {
        ok = true
      }
      requests.push({ scope, user, ok })
      if (!ok) { res.writeHead(401, { 'content-type': 'application/json' }); res.end('{"details":"bad credentials"}'); return }
      const access = scope === null ? [] : [{ type: 'repository', name: scope.split(':')[1], actions: ['pull', 'push'] }]
      const token = await new SignJWT({ access })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', x5c: [certDer] })
        .setIssuer(issuer).setSubject(user ?? 'anonymous').setAudience(service)
        .setIssuedAt().setNotBefore(Math.floor(Date.now() / 1000) - 10).setExpirationTime(`${lifetimeSeconds}s`)
        .setJti(randomBytes(8).toString('hex'))
        .sign(key)
      issued.push(token)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ token, access_token: token, expires_in: lifetimeSeconds, issued_at: new Date().toISOString() }))
    })()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as { port: number }).port
  return {
    realm: `http://127.0.0.1:${port}/token`, service, issuer, certPath, requests, issued,
    close: () => new Promise(resolve => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
}
