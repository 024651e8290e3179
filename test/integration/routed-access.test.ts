// Access is judged on the routed name: the name a repository has in every
// path (`<upstream prefix>/<upstream repository>`), however the request
// reached it. containerd's `?ns=ghcr.io` on `/v2/acme/app/...` and Docker's
// `/v2/private/thing/...` to a default upstream with the prefix `docker.io`
// are the same repositories as `/v2/ghcr.io/acme/app/...` and
// `/v2/docker.io/private/thing/...`: the same rules, scopes and audit lines.
import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'

import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { startContainerd } from '../helpers/containerd.ts'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { image, pushImage, OCI_MANIFEST, type Image } from '../helpers/images.ts'
import { registerFile, registerSecret } from '../helpers/secrets.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { scratchDir } from '../helpers/procs.ts'

const run = promisify(execFile)
const PASSWORDS = { alice: 'alice-Routed-1', bob: 'bob-Routed-2' }
const dir = scratchDir('ferry-routed-')
let hub: Registry
let ghcr: Registry
let basic: Ferry
let tokens: Ferry
let acme: Image
let testApp: Image
let privateThing: Image

const basicAuth = (user: keyof typeof PASSWORDS): Record<string, string> =>
  ({ authorization: `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}` })

t.before(async () => {
  registerSecret(...Object.values(PASSWORDS))
  registerFile(join(dir, 'audit-basic.jsonl'))
  registerFile(join(dir, 'audit-tokens.jsonl'))
  hub = await startRegistry()
  ghcr = await startRegistry()
  acme = await image()
  testApp = await image()
  privateThing = await image()
  await pushImage(ghcr.url, 'acme/app', 'v1', acme)
  await pushImage(ghcr.url, 'test/app', 'v1', testApp)
  await pushImage(ghcr.url, 'public/tool', 'v1', await image())
  await pushImage(hub.url, 'private/thing', 'v1', privateThing)
  writeFileSync(join(dir, 'htpasswd'), Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 8)}`).join('\n') + '\n')
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  writeFileSync(join(dir, 'token.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  // the README's shape: a team's repositories under an upstream prefix, anonymous readers elsewhere
  const auth = {
    htpasswd: join(dir, 'htpasswd'),
    access: [
      { repositories: ['ghcr.io/acme/**'], allow: { 'user:alice': 'reader' } },
      { repositories: ['ghcr.io/test/**'], allow: { 'user:bob': 'reader' } },
      { repositories: ['docker.io/private/**'], allow: { 'user:alice': 'reader' } },
      { repositories: ['**'], allow: { anonymous: 'reader' } },
    ],
  }
  const upstreams = [
    // Docker Hub's place: the default, also reachable by its prefix
    { name: 'hub', url: hub.url, prefix: 'docker.io', aliases: ['docker.io'], default: true },
    { name: 'ghcr', url: ghcr.url, prefix: 'ghcr.io', aliases: ['ghcr.io'] },
  ]
  basic = await startFerry({ config: { upstreams, auth, audit: { file: join(dir, 'audit-basic.jsonl') } } })
  tokens = await startFerry({ config: { upstreams, auth: { ...auth, token: { keyFile: join(dir, 'token.pem'), service: 'ferry-routed', ttl: '5m' } }, audit: { file: join(dir, 'audit-tokens.jsonl') } } })
})
t.teardown(async () => { await basic?.stop(); await tokens?.stop(); await hub?.stop(); await ghcr?.stop() })

const manifest = (f: Ferry, path: string, headers: Record<string, string> = {}): ReturnType<typeof get> =>
  get(`${f.url}/v2/${path}`, { accept: OCI_MANIFEST, ...headers })

t.test('basic: ?ns= is judged as the prefixed name', async t => {
  const viaNs = await manifest(basic, 'acme/app/manifests/v1?ns=ghcr.io')
  t.equal(viaNs.status, 401, 'anonymous may not read ghcr.io/acme/app through ?ns=ghcr.io')
  t.equal(ociError(viaNs)?.code, 'UNAUTHORIZED')
  t.notOk(viaNs.body.includes(acme.manifest.bytes), 'and got none of its manifest')
  t.equal((await manifest(basic, 'ghcr.io/acme/app/manifests/v1')).status, 401, 'as through its prefixed path')
  const blob = await get(`${basic.url}/v2/acme/app/blobs/${acme.layers[0]!.digest}?ns=ghcr.io`)
  t.equal(blob.status, 401, 'nor its layer by digest')
  t.notOk(blob.body.includes(acme.layers[0]!.bytes), 'no layer bytes')
  t.equal((await get(`${basic.url}/v2/acme/app/tags/list?ns=ghcr.io`)).status, 401, 'nor its tags list')

  const alice = await manifest(basic, 'acme/app/manifests/v1?ns=ghcr.io', basicAuth('alice'))
  t.equal(alice.status, 200, 'alice, whom the rule names, reads it through ?ns=')
  t.equal(alice.header('docker-content-digest'), acme.manifest.digest)
  const bob = await manifest(basic, 'acme/app/manifests/v1?ns=ghcr.io', basicAuth('bob'))
  t.equal(bob.status, 403, 'bob, whom it does not, is denied')
  t.equal(ociError(bob)?.code, 'DENIED')
  t.match(ociError(bob)?.message ?? '', 'ghcr.io/acme/app', 'the refusal names the routed repository')
  t.equal((await manifest(basic, 'public/tool/manifests/v1?ns=ghcr.io')).status, 200, 'anonymous still reads what the catch-all rule gives it')
})

t.test('basic: a default upstream with a prefix is judged with its prefix too', async t => {
  const anon = await manifest(basic, 'private/thing/manifests/v1')
  t.equal(anon.status, 401, 'Docker\'s /v2/private/thing is docker.io/private/thing')
  t.notOk(anon.body.includes(privateThing.manifest.bytes))
  t.equal((await manifest(basic, 'docker.io/private/thing/manifests/v1')).status, 401, 'as is the prefixed path')
  t.equal((await manifest(basic, 'private/thing/manifests/v1?ns=docker.io')).status, 401, 'and ?ns=docker.io')
  const alice = await manifest(basic, 'private/thing/manifests/v1', basicAuth('alice'))
  t.equal(alice.status, 200, 'alice reads it by every path')
  t.equal(alice.header('docker-content-digest'), privateThing.manifest.digest)
})

t.test('token: the challenge scopes the routed name, and a token for the bare name reads nothing', async t => {
  const challenge = await manifest(tokens, 'test/app/manifests/v1?ns=ghcr.io')
  t.equal(challenge.status, 401)
  t.match(challenge.header('www-authenticate') ?? '', 'scope="repository:ghcr.io/test/app:pull"')

  // anonymous may pull a repository called test/app (the catch-all rule): that name is not ghcr.io/test/app
  const r = await get(`${tokens.url}/token?service=ferry-routed&scope=${encodeURIComponent('repository:test/app:pull')}`)
  t.equal(r.status, 200)
  const bare = (r.json() as { token: string }).token
  registerSecret(bare)
  const stolen = await manifest(tokens, 'test/app/manifests/v1?ns=ghcr.io', { authorization: `Bearer ${bare}` })
  t.equal(stolen.status, 401, 'a token for test/app does not read ghcr.io/test/app through ?ns=')
  t.notOk(stolen.body.includes(testApp.manifest.bytes))

  const b = await get(`${tokens.url}/token?service=ferry-routed&scope=${encodeURIComponent('repository:ghcr.io/test/app:pull')}`, basicAuth('bob'))
  const bobs = (b.json() as { token: string }).token
  registerSecret(bobs)
  const ok = await manifest(tokens, 'test/app/manifests/v1?ns=ghcr.io', { authorization: `Bearer ${bobs}` })
  t.equal(ok.status, 200, 'bob\'s token for ghcr.io/test/app reads it through ?ns=')
  t.equal(ok.header('docker-content-digest'), testApp.manifest.digest)
})

t.test('ctr through hosts.toml: ghcr.io pulls are judged as ghcr.io/...', async t => {
  for (const f of [basic, tokens]) {
    const { sock, hosts, stop } = await startContainerd({ 'ghcr.io': [f.url] })
    t.teardown(stop)
    const pull = (ref: string, user?: string): Promise<{ ok: boolean, out: string }> =>
      run('ctr', ['--address', sock, 'images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', ...(user !== undefined ? ['--user', user] : []), ref], { maxBuffer: 16 * 1024 * 1024 })
        .then(r => ({ ok: true, out: r.stdout }), (err: unknown) => ({ ok: false, out: String((err as { stderr?: string }).stderr) }))
    const mode = f === basic ? 'basic' : 'token'
    const anon = await pull('ghcr.io/acme/app:v1')
    t.notOk(anon.ok, `${mode}: anonymous ctr may not pull ghcr.io/acme/app`)
    t.match(anon.out, /401|unauthorized/i)
    const bob = await pull('ghcr.io/acme/app:v1', `bob:${PASSWORDS.bob}`)
    t.notOk(bob.ok, `${mode}: nor may bob`)
    const alice = await pull('ghcr.io/acme/app:v1', `alice:${PASSWORDS.alice}`)
    t.ok(alice.ok, `${mode}: alice may`, alice.ok ? {} : { out: alice.out.slice(-500) })
    const ls = (await run('ctr', ['--address', sock, 'images', 'ls'])).stdout
    t.match(ls, acme.manifest.digest, `${mode}: and has it`)
    t.ok((await pull('ghcr.io/public/tool:v1')).ok, `${mode}: anonymous ctr pulls what the catch-all rule allows`)
  }
})

t.test('the audit log names the routed repository', async t => {
  const lines = (): Record<string, unknown>[] => readFileSync(join(dir, 'audit-basic.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  let found: Record<string, unknown>[] = []
  for (let i = 0; i < 50; i++) {
    found = lines().filter(l => l.who === 'alice' && l.status === 200 && l.reference === 'v1')
    if (found.length >= 2) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const repos = new Set(found.map(l => l.repository))
  t.ok(repos.has('ghcr.io/acme/app'), 'the ?ns= pull is recorded as ghcr.io/acme/app')
  t.ok(repos.has('docker.io/private/thing'), 'the default upstream\'s pull as docker.io/private/thing')
  t.notOk(lines().some(l => l.repository === 'acme/app' || l.repository === 'private/thing'), 'never under the bare name')
})
