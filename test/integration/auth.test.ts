// Client authentication and access per repository, with skopeo as the
// client: Basic against an htpasswd file, then the Docker token flow with
// ferry's own token endpoint. Readers, writers, strangers, anonymous, wrong
// passwords; and no secret in any log line.
import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'

import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { image, pushImage, OCI_MANIFEST, type Image } from '../helpers/images.ts'
import { CLI } from '../helpers/ferry.ts'
import { startContainerd } from '../helpers/containerd.ts'
import { registerFile, registerSecret } from '../helpers/secrets.ts'
import { readFileSync } from 'node:fs'
import { requireBinary, startRegistry, type Registry } from '../helpers/registry.ts'
import { scratchDir } from '../helpers/procs.ts'

const run = promisify(execFile)
const PASSWORDS = { alice: 'alice-Secret-1', bob: 'bob-Secret-2', carol: 'carol-Secret-3', dave: 'dave-Secret-4' }
const dir = scratchDir('ferry-auth-')
let upstream: Registry
let basic: Ferry
let tokens: Ferry
const issued: string[] = []
let teamApp: Image

const basicAuth = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })

t.before(async () => {
  registerSecret(...Object.values(PASSWORDS))
  registerFile(join(dir, 'audit.jsonl'))
  upstream = await startRegistry()
  teamApp = await image()
  await pushImage(upstream.url, 'team-a/app', 'v1', teamApp)
  await pushImage(upstream.url, 'public/tool', 'v1', await image())
  writeFileSync(join(dir, 'htpasswd'), Object.entries(PASSWORDS).filter(([u]) => u !== 'dave').map(([u, p]) => `${u}:${bcrypt.hashSync(p, 8)}`).join('\n') + '\n')
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  writeFileSync(join(dir, 'token.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const auth = {
    htpasswd: join(dir, 'htpasswd'),
    // a user in the region file itself, beside the htpasswd file
    users: { dave: bcrypt.hashSync(PASSWORDS.dave, 8) },
    groups: { team: ['bob', 'dave'] },
    access: [
      { repositories: ['team-a/**'], allow: { 'user:alice': 'writer', 'group:team': 'reader' } },
      { repositories: ['public/**'], allow: { anonymous: 'reader' } },
    ],
  }
  basic = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, default: true }], auth, audit: { file: join(dir, 'audit.jsonl') } } })
  tokens = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, default: true }], auth: { ...auth, token: { keyFile: join(dir, 'token.pem'), service: 'ferry-test', ttl: '5m' } } } })
})
t.teardown(async () => { await basic?.stop(); await tokens?.stop(); await upstream?.stop() })

async function skopeo (...args: string[]): Promise<{ ok: boolean, out: string }> {
  requireBinary('skopeo', 'skopeo')
  try {
    const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 16 * 1024 * 1024 })
    return { ok: true, out: stdout }
  } catch (err) {
    return { ok: false, out: String((err as { stderr?: string }).stderr ?? err) }
  }
}
const inspect = (f: Ferry, ref: string, creds?: string): Promise<{ ok: boolean, out: string }> =>
  skopeo('inspect', '--raw', '--tls-verify=false', ...(creds !== undefined ? ['--creds', creds] : ['--no-creds']), `docker://${f.host}/${ref}`)

for (const mode of ['basic', 'token'] as const) {
  t.test(`${mode}: who may pull what, with skopeo`, async t => {
    const f = mode === 'basic' ? basic : tokens
    t.ok((await inspect(f, 'team-a/app:v1', `alice:${PASSWORDS.alice}`)).ok, 'a writer pulls')
    t.ok((await inspect(f, 'team-a/app:v1', `bob:${PASSWORDS.bob}`)).ok, 'a reader (by group) pulls')
    const wrong = await inspect(f, 'team-a/app:v1', 'alice:not-her-password')
    t.notOk(wrong.ok, 'a wrong password is refused')
    t.match(wrong.out, /unauthorized|401/i)
    t.notOk((await inspect(f, 'team-a/app:v1', `carol:${PASSWORDS.carol}`)).ok, 'a user no rule names is refused')
    t.ok((await inspect(f, 'public/tool:v1')).ok, 'anonymous pulls where allowed')
    t.notOk((await inspect(f, 'team-a/app:v1')).ok, 'and nowhere else')
  })
}

t.test('basic: the answers themselves: 401 with the challenge, 403 DENIED for the authenticated', async t => {
  const none = await get(`${basic.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST })
  t.equal(none.status, 401)
  t.equal(ociError(none)?.code, 'UNAUTHORIZED')
  t.equal(none.headers['www-authenticate'], 'Basic realm="ferry"')
  const wrong = await get(`${basic.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, ...basicAuth('alice', 'nope') })
  t.equal(wrong.status, 401)
  const carol = await get(`${basic.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, ...basicAuth('carol', PASSWORDS.carol) })
  t.equal(carol.status, 403)
  t.equal(ociError(carol)?.code, 'DENIED')
  const dave = await get(`${basic.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, ...basicAuth('dave', PASSWORDS.dave) })
  t.equal(dave.status, 200, 'a user from the region file, reader by group')
  const push = await get(`${basic.url}/v2/team-a/app/blobs/uploads/`, basicAuth('bob', PASSWORDS.bob), 'POST')
  t.equal(push.status, 403, 'a reader pushing is denied')
  t.equal(ociError(push)?.code, 'DENIED')
  const base = await get(`${basic.url}/v2/`)
  t.equal(base.status, 401, '/v2/ tells a client that sent nothing how to authenticate')
  t.equal(base.headers['www-authenticate'], 'Basic realm="ferry"')
  t.equal((await get(`${basic.url}/v2/public/tool/manifests/v1`, { accept: OCI_MANIFEST })).status, 200, 'anonymous where allowed, without any header')
})

t.test('token: the flow: challenge, token, scoped access', async t => {
  const base = await get(`${tokens.url}/v2/`)
  t.equal(base.status, 401)
  t.equal(base.headers['www-authenticate'], `Bearer realm="http://${tokens.host}/token",service="ferry-test"`)
  const challenge = await get(`${tokens.url}/v2/team-a/app/manifests/v1`)
  t.match(String(challenge.headers['www-authenticate']), 'scope="repository:team-a/app:pull"')

  const tokenFor = async (headers: Record<string, string>, scope: string): Promise<{ status: number, token?: string }> => {
    const r = await get(`${tokens.url}/token?service=ferry-test&scope=${encodeURIComponent(scope)}`, headers)
    const token = r.status === 200 ? (JSON.parse(r.body.toString()) as { token: string }).token : undefined
    if (token !== undefined) { issued.push(token); registerSecret(token) }
    return { status: r.status, ...(token !== undefined ? { token } : {}) }
  }
  t.equal((await tokenFor(basicAuth('alice', 'nope'), 'repository:team-a/app:pull')).status, 401, 'no token for a wrong password')

  const bob = await tokenFor(basicAuth('bob', PASSWORDS.bob), 'repository:team-a/app:pull,push')
  const claims = JSON.parse(Buffer.from(bob.token!.split('.')[1]!, 'base64url').toString()) as { sub: string, access: { name: string, actions: string[] }[] }
  t.same(claims.access, [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }], 'a reader asking for push gets pull only')
  t.equal(claims.sub, 'bob')
  const pulled = await get(`${tokens.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, authorization: `Bearer ${bob.token}` })
  t.equal(pulled.status, 200)
  const pushed = await get(`${tokens.url}/v2/team-a/app/blobs/uploads/`, { authorization: `Bearer ${bob.token}` }, 'POST')
  t.equal(pushed.status, 403, 'and cannot push with it')
  const other = await get(`${tokens.url}/v2/public/tool/manifests/v1`, { accept: OCI_MANIFEST, authorization: `Bearer ${bob.token}` })
  t.equal(other.status, 403, 'a token is good for the repositories it names only')

  const anon = await tokenFor({}, 'repository:public/tool:pull')
  t.equal((await get(`${tokens.url}/v2/public/tool/manifests/v1`, { accept: OCI_MANIFEST, authorization: `Bearer ${anon.token}` })).status, 200, 'anonymous token where anonymous may pull')
  const anonTeam = await tokenFor({}, 'repository:team-a/app:pull')
  t.equal((await get(`${tokens.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, authorization: `Bearer ${anonTeam.token}` })).status, 401, 'an anonymous token grants nothing elsewhere')
  t.equal((await get(`${tokens.url}/v2/team-a/app/manifests/v1`, { authorization: 'Bearer not.a.token' })).status, 401, 'a forged token is refused')
})

t.test('robot accounts: scoped, refused at once when revoked or expired', async t => {
  const robot = async (f: Ferry, ...args: string[]): Promise<{ code: number, out: string }> => {
    try {
      const { stdout } = await run(process.execPath, [CLI, 'robot', ...args, '--config', f.configPath])
      return { code: 0, out: stdout }
    } catch (err) {
      return { code: (err as { code: number }).code, out: String((err as { stderr?: string }).stderr) }
    }
  }
  const created = JSON.parse((await robot(basic, 'create', 'ci', '--scope', 'team-a/**=reader', '--expires', '30d')).out) as { user: string, secret: string }
  t.equal(created.user, 'robot$ci')
  t.ok(created.secret.length >= 32, 'a long random secret, shown once')
  issued.push(created.secret); registerSecret(created.secret)
  const listed = (await robot(basic, 'list')).out
  t.match(listed, '"user":"robot$ci"')
  t.notMatch(listed, created.secret, 'the list never shows the secret')

  t.ok((await inspect(basic, 'team-a/app:v1', `${created.user}:${created.secret}`)).ok, 'the robot pulls within its scope')
  const outside = await get(`${basic.url}/v2/public/tool/manifests/v1`, { accept: OCI_MANIFEST, ...basicAuth(created.user, created.secret) })
  t.equal(outside.status, 403, 'and nowhere else: its scope, not the rules, says what it may do')
  const push = await get(`${basic.url}/v2/team-a/app/blobs/uploads/`, basicAuth(created.user, created.secret), 'POST')
  t.equal(push.status, 403, 'a reader robot may not push')
  const bad = await robot(basic, 'create', 'x', '--scope', 'team-a/**=owner')
  t.equal(bad.code, 2)
  t.match(bad.out, 'PATTERN=ROLE')

  t.equal((await robot(basic, 'revoke', 'ci')).code, 0)
  const after = await get(`${basic.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, ...basicAuth(created.user, created.secret) })
  t.equal(after.status, 401, 'revoked: refused at the next request')

  // a token issued before the revocation is refused too
  const tokenRobot = JSON.parse((await robot(tokens, 'create', 'deployer', '--scope', 'team-a/**=reader')).out) as { user: string, secret: string }
  issued.push(tokenRobot.secret); registerSecret(tokenRobot.secret)
  const tr = await get(`${tokens.url}/token?service=ferry-test&scope=${encodeURIComponent('repository:team-a/app:pull')}`, basicAuth(tokenRobot.user, tokenRobot.secret))
  const token = (JSON.parse(tr.body.toString()) as { token: string }).token
  issued.push(token); registerSecret(token)
  t.equal((await get(`${tokens.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, authorization: `Bearer ${token}` })).status, 200)
  await robot(tokens, 'revoke', 'deployer')
  t.equal((await get(`${tokens.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, authorization: `Bearer ${token}` })).status, 401, 'its unexpired token is refused at once')

  const shortLived = JSON.parse((await robot(basic, 'create', 'brief', '--scope', 'team-a/**=reader', '--expires', '1s')).out) as { user: string, secret: string }
  issued.push(shortLived.secret); registerSecret(shortLived.secret)
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.equal((await get(`${basic.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, ...basicAuth(shortLived.user, shortLived.secret) })).status, 401, 'expired: refused')
})

t.test('containerd logs in through the token flow (ctr --user)', async t => {
  const { sock, hosts, stop } = await startContainerd({ [upstream.host]: [tokens.url] })
  t.teardown(stop)
  const ref = `${upstream.host}/team-a/app:v1`
  const pull = (user: string): Promise<{ ok: boolean, out: string }> => run('ctr', ['--address', sock, 'images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', '--user', user, ref], { maxBuffer: 16 * 1024 * 1024 })
    .then(r => ({ ok: true, out: r.stdout }), (err: unknown) => ({ ok: false, out: String((err as { stderr?: string }).stderr) }))
  const wrong = await pull('alice:not-her-password')
  t.notOk(wrong.ok, 'a wrong password: no pull')
  const right = await pull(`alice:${PASSWORDS.alice}`)
  t.ok(right.ok, 'the right one pulls')
  const ls = (await run('ctr', ['--address', sock, 'images', 'ls'])).stdout
  t.match(ls, teamApp.manifest.digest)
})

t.test('failed logins are limited per user and client address: 429 with Retry-After', async t => {
  let limited: Awaited<ReturnType<typeof get>> | undefined
  for (let i = 0; i < 12 && limited === undefined; i++) {
    const r = await get(`${basic.url}/v2/team-a/app/manifests/v1`, basicAuth('mallory', `guess-${i}`))
    if (r.status === 429) limited = r
    else t.equal(r.status, 401)
  }
  t.ok(limited !== undefined, 'limited within a dozen failures')
  t.equal(ociError(limited!)?.code, 'TOOMANYREQUESTS')
  t.ok(Number(limited!.headers['retry-after']) > 0, `Retry-After: ${String(limited!.headers['retry-after'])}`)
  const again = await get(`${basic.url}/v2/team-a/app/manifests/v1`, basicAuth('mallory', 'yet-another-guess'))
  t.equal(again.status, 429, 'mallory from this address waits, even to try the right password')
  const right = await get(`${basic.url}/v2/team-a/app/manifests/v1`, { accept: OCI_MANIFEST, ...basicAuth('alice', PASSWORDS.alice) })
  t.equal(right.status, 200, 'alice, from the same address, is not locked out by mallory\'s failures')
  const tokenOk = await get(`${tokens.url}/v2/public/tool/manifests/v1`, { accept: OCI_MANIFEST })
  t.equal(tokenOk.status, 401, 'another ferry keeps its own count: an ordinary challenge there')
})

t.test('the audit log: who pulled what, allowed or denied, read back with ferry audit', async t => {
  const audit = async (...args: string[]): Promise<Record<string, unknown>[]> => {
    const { stdout } = await run(process.execPath, [CLI, 'audit', '--config', basic.configPath, ...args])
    return stdout.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>)
  }
  let alice: Record<string, unknown>[] = []
  for (let i = 0; i < 50 && !alice.some(l => l.digest === teamApp.manifest.digest); i++) {
    alice = await audit('--user', 'alice', '--repo', 'team-a/**', '--since', '1h')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const pull = alice.find(l => l.digest === teamApp.manifest.digest && l.status === 200)
  t.ok(pull, 'alice\'s manifest pull, with the digest served')
  t.match(pull, { who: 'alice', kind: 'user', action: 'pull', repository: 'team-a/app', reference: 'v1', decision: 'allow', client: '127.0.0.1' })
  t.ok(Number(pull?.bytes) > 0, 'and its bytes')
  t.ok(alice.every(l => l.who === 'alice' && String(l.repository).startsWith('team-a/')), 'only what the filter asked for')
  const carol = await audit('--user', 'anonymous', '--repo', 'team-a/**')
  t.ok(carol.some(l => l.decision === 'deny' && l.status === 401), 'anonymous refusals are there')
  const pushes = (await audit('--user', 'bob')).filter(l => l.action === 'push')
  t.ok(pushes.some(l => l.decision === 'deny' && l.status === 403), 'so is a reader\'s refused push')
})

t.test('no password, Basic string or token in any log line', async t => {
  const lines = [...basic.proc.lines, ...tokens.proc.lines, readFileSync(join(dir, 'audit.jsonl'), 'utf8')].join('\n')
  for (const [user, password] of Object.entries(PASSWORDS)) {
    t.notMatch(lines, password, `${user}'s password`)
    t.notMatch(lines, Buffer.from(`${user}:${password}`).toString('base64'), `${user}'s Basic string`)
  }
  for (const secret of issued) t.notMatch(lines, secret.includes('.') ? secret.split('.')[2]! : secret, 'an issued token or robot secret')
  t.match(lines, /"who":"alice"/, 'the identity is logged, by name')
})
