// Several upstreams in one ferry, routed by path prefix, by containerd's
// ?ns=, or to the default; and upstreams that demand credentials.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { registerSecret } from '../helpers/secrets.ts'
import t, { type Test } from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { digestOf, image, pushImage, type Image } from '../helpers/images.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { startTokenServer } from '../helpers/token-server.ts'
import { scratchDir } from '../helpers/procs.ts'

t.test('prefix, ?ns= and the default upstream each reach the right registry', async t => {
  const one = await startRegistry()
  const two = await startRegistry()
  t.teardown(async () => { await one.stop(); await two.stop() })
  const a = await image({ files: { 'who.txt': 'one' } })
  const b = await image({ files: { 'who.txt': 'two' } })
  await pushImage(one.url, 'app/x', 'v1', a)
  await pushImage(two.url, 'app/x', 'v1', b)
  await pushImage(two.url, 'library/busybox', 'v1', b)
  const ferry = await startFerry({ config: { upstreams: [
    { name: 'one', url: one.url, prefix: 'one.example', default: true },
    { name: 'two', url: two.url, prefix: 'two.example', aliases: ['two.example'], dockerHub: true },
  ] } })
  t.teardown(() => ferry.stop())
  const accept = { accept: a.manifest.mediaType }
  const digest = async (path: string): Promise<string | undefined> => (await get(ferry.url + path, accept)).header('docker-content-digest')

  t.equal(await digest('/v2/one.example/app/x/manifests/v1'), a.manifest.digest, 'prefix one')
  t.equal(await digest('/v2/two.example/app/x/manifests/v1'), b.manifest.digest, 'prefix two')
  t.equal(await digest('/v2/app/x/manifests/v1?ns=two.example'), b.manifest.digest, '?ns= alias')
  t.equal(await digest(`/v2/app/x/manifests/v1?ns=${encodeURIComponent(two.host)}`), b.manifest.digest, '?ns= matches the upstream host:port')
  t.equal(await digest('/v2/app/x/manifests/v1'), a.manifest.digest, 'default upstream')
  t.equal(await digest('/v2/app/x/manifests/v1?ns=one.example'), a.manifest.digest, '?ns= naming a prefix that is a host')
  t.equal(await digest('/v2/app/x/manifests/v1?ns=docker.io'), b.manifest.digest, '?ns=docker.io: the Docker Hub upstream')
  t.equal(await digest('/v2/two.example/busybox/manifests/v1'), b.manifest.digest, 'Docker Hub: one-component names get library/')
  t.ok(two.count('GET', '/v2/library/busybox/manifests/v1') === 1)

  const blob = await get(`${ferry.url}/v2/two.example/app/x/blobs/${b.layers[0]!.digest}`)
  t.equal(digestOf(blob.body), b.layers[0]!.digest)
  t.equal(two.count('GET', `/v2/app/x/blobs/${b.layers[0]!.digest}`), 1, 'the prefix is stripped for the upstream')
  t.equal(one.count('GET', `/blobs/${b.layers[0]!.digest}`), 0)
  // both upstreams were asked for their own tag, once each
  t.equal(one.count('GET', '/v2/app/x/manifests/v1'), 1)
  t.equal(two.count('GET', '/v2/app/x/manifests/v1'), 1, 'prefix and ?ns= share one cache entry')
})

t.test('an ?ns= naming no upstream is refused, not answered from the default upstream or a hosted repository', async t => {
  // a node that mirrors every registry through ferry (containerd's _default) asks for ghcr.io/acme/app:v1
  // with ?ns=ghcr.io: from the default upstream it would get docker.io/acme/app:v1, whoever owns that name there
  registerSecret('ns-push-Secret-1')
  const hub = await startRegistry()
  t.teardown(() => hub.stop())
  const impostor = await image({ files: { 'who.txt': 'not what ghcr.io has' } })
  await pushImage(hub.url, 'acme/app', 'v1', impostor)
  await pushImage(hub.url, 'team/app', 'v1', impostor)
  const ferry = await startFerry({ config: {
    upstreams: [{ name: 'hub', url: hub.url, default: true }],
    hosted: [{ prefix: 'team/' }],
    hostnames: ['Ferry.Example:5000'],
    auth: { users: { ci: bcrypt.hashSync('ns-push-Secret-1', 6) }, access: [{ repositories: ['team/**'], allow: { 'user:ci': 'writer', anonymous: 'reader' } }, { repositories: ['**'], allow: { anonymous: 'reader' } }] },
  } })
  t.teardown(() => ferry.stop())
  const pushed = await image({ files: { 'who.txt': 'pushed to ferry' } })
  await pushImage(ferry.url, 'team/app', 'v1', pushed, `Basic ${Buffer.from('ci:ns-push-Secret-1').toString('base64')}`)
  const accept = { accept: impostor.manifest.mediaType }

  for (const path of ['/v2/acme/app/manifests/v1?ns=ghcr.io', '/v2/team/app/manifests/v1?ns=ghcr.io', `/v2/acme/app/blobs/${impostor.layers[0]!.digest}?ns=quay.io`, '/v2/acme/app/tags/list?ns=ghcr.io']) {
    const r = await get(ferry.url + path, accept)
    t.equal(r.status, 404, path)
    t.equal(ociError(r)?.code, 'NAME_UNKNOWN')
    t.match(ociError(r)?.message, /name unknown|repository/i)
  }
  const refused = await get(`${ferry.url}/v2/acme/app/manifests/v1?ns=ghcr.io`, accept)
  t.match(JSON.parse(refused.body.toString()).errors[0].detail, { ns: 'ghcr.io', reason: /mirrors no registry/ }, 'the detail says why')
  t.equal(hub.count('GET', '/v2/acme/app/'), 0, 'the default upstream was not asked')
  t.equal(hub.count('HEAD', '/v2/acme/app/'), 0)
  const refusal = (l: Record<string, unknown>): boolean => l.level === 40 && typeof l.msg === 'string' && l.msg.startsWith('refused ?ns=')
  await ferry.waitForLogs(refusal, 2)
  t.same(ferry.logs().filter(refusal).map(l => l.ns).sort(), ['ghcr.io', 'quay.io'], 'the operator is told, once per registry (four refusals of ghcr.io, one of quay.io)')
  for (let i = 0; i < 30; i++) t.equal((await get(`${ferry.url}/v2/acme/app/manifests/v1?ns=made-up-${i}.example`, accept)).status, 404)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(ferry.logs().filter(refusal).length, 10, 'names made up by a client: ten warnings a minute at most')

  // ferry itself, as the client names it: the request's Host, or one of hostnames
  const host = new URL(ferry.url).host
  t.equal((await get(`${ferry.url}/v2/acme/app/manifests/v1?ns=${host}`, accept)).header('docker-content-digest'), impostor.manifest.digest, '?ns= of the host the request came to: the default upstream, as with no ?ns=')
  t.equal((await get(`${ferry.url}/v2/team/app/manifests/v1?ns=ferry.example:5000`, accept)).header('docker-content-digest'), pushed.manifest.digest, '?ns= one of hostnames (any case): the hosted repository')
  t.equal((await get(`${ferry.url}/v2/team/app/manifests/v1?ns=`, accept)).header('docker-content-digest'), pushed.manifest.digest, 'an empty ?ns= is none')
})

async function pullAll (t: Test, ferry: Ferry, repo: string, img: Image): Promise<void> {
  const m = await get(`${ferry.url}/v2/${repo}/manifests/v1`, { accept: img.manifest.mediaType })
  t.equal(m.status, 200, `manifest: ${m.body.toString().slice(0, 200)}`)
  t.same(m.body, img.manifest.bytes)
  for (const b of [img.config, ...img.layers]) {
    const r = await get(`${ferry.url}/v2/${repo}/blobs/${b.digest}`)
    t.equal(digestOf(r.body), b.digest)
  }
}

function secretsIn (lines: readonly string[], secrets: readonly string[]): string[] {
  return lines.filter(l => secrets.some(s => l.includes(s)))
}

t.test('an upstream with htpasswd Basic auth: the secret comes from the environment and is never logged', async t => {
  const dir = scratchDir('ferry-htpasswd-')
  const password = 'S3cret-basic-' + Math.random().toString(36).slice(2)
  registerSecret(password)
  writeFileSync(join(dir, 'htpasswd'), `robot:${bcrypt.hashSync(password, 6)}\n`)
  const upstream = await startRegistry({ auth: { htpasswd: { realm: 'test', path: join(dir, 'htpasswd') } } })
  t.teardown(() => upstream.stop())
  const basic = 'Basic ' + Buffer.from(`robot:${password}`).toString('base64')
  const img = await image()
  await pushImage(upstream.url, 'private/app', 'v1', img, basic)

  const config = { upstreams: [{ name: 'private', url: upstream.url, default: true, credentials: { username: 'robot', passwordEnv: 'FERRY_TEST_UPSTREAM_SECRET' } }] }
  const ferry = await startFerry({ config, env: { FERRY_TEST_UPSTREAM_SECRET: password } })
  t.teardown(() => ferry.stop())
  await pullAll(t, ferry, 'private/app', img)
  t.same(secretsIn(ferry.proc.lines, [password, basic.slice(6)]), [], 'no log line holds the secret')

  const wrong = await startFerry({ config, env: { FERRY_TEST_UPSTREAM_SECRET: 'wrong-password' } })
  t.teardown(() => wrong.stop())
  const denied = await get(`${wrong.url}/v2/private/app/manifests/v1`, { accept: img.manifest.mediaType })
  t.equal(denied.status, 403)
  t.equal(ociError(denied)?.code, 'DENIED')
  t.same(secretsIn(wrong.proc.lines, ['wrong-password']), [])
})

t.test('an upstream with token auth: tokens are fetched with the credentials, cached per scope, and never logged', async t => {
  const password = 'S3cret-token-' + Math.random().toString(36).slice(2)
  const tokens = await startTokenServer({ puller: password })
  t.teardown(() => tokens.close())
  const upstream: Registry = await startRegistry({ auth: { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootcertbundle: tokens.certPath } } })
  t.teardown(() => upstream.stop())
  const basic = 'Basic ' + Buffer.from(`puller:${password}`).toString('base64')
  // seed through the registry's own token flow
  const seedToken = JSON.parse(await (await fetch(`${tokens.realm}?service=${tokens.service}&scope=repository:secure/app:pull,push`, { headers: { authorization: basic } })).text()).token as string
  const img = await image({ layerCount: 2 })
  await pushImage(upstream.url, 'secure/app', 'v1', img, `Bearer ${seedToken}`)
  const other = await image()
  await pushImage(upstream.url, 'secure/other', 'v1', other, `Bearer ${JSON.parse(await (await fetch(`${tokens.realm}?service=${tokens.service}&scope=repository:secure/other:pull,push`, { headers: { authorization: basic } })).text()).token}`)
  const before = tokens.requests.length

  const ferry = await startFerry({
    config: { upstreams: [{ name: 'secure', url: upstream.url, default: true, credentials: { username: 'puller', passwordEnv: 'FERRY_TEST_TOKEN_SECRET' } }] },
    env: { FERRY_TEST_TOKEN_SECRET: password },
  })
  t.teardown(() => ferry.stop())
  await pullAll(t, ferry, 'secure/app', img)
  await pullAll(t, ferry, 'secure/other', other)
  const asked = tokens.requests.slice(before)
  t.same(asked.map(r => r.scope), ['repository:secure/app:pull', 'repository:secure/other:pull'], 'one token per scope, reused for every request')
  t.ok(asked.every(r => r.ok && r.user === 'puller'), 'ferry authenticated to the token service')
  t.same(secretsIn(ferry.proc.lines, [password, basic.slice(6), ...tokens.issued]), [], 'no log line holds the secret or a token')
})

t.test('anonymous token auth works for public upstreams (the Docker Hub flow)', async t => {
  const tokens = await startTokenServer({}, { anonymous: true })
  t.teardown(() => tokens.close())
  const upstream = await startRegistry({ auth: { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootcertbundle: tokens.certPath } } })
  t.teardown(() => upstream.stop())
  const anon = JSON.parse(await (await fetch(`${tokens.realm}?service=${tokens.service}&scope=repository:pub/app:pull,push`)).text()).token as string
  const img = await image()
  await pushImage(upstream.url, 'pub/app', 'v1', img, `Bearer ${anon}`)
  const before = tokens.requests.length
  const ferry = await startFerry({ config: { upstreams: [{ name: 'pub', url: upstream.url, default: true }] } })
  t.teardown(() => ferry.stop())
  await pullAll(t, ferry, 'pub/app', img)
  t.same(tokens.requests.slice(before), [{ scope: 'repository:pub/app:pull', user: undefined, ok: true }], 'one anonymous token request')
  t.same(secretsIn(ferry.proc.lines, tokens.issued), [], 'no token in the logs')
})
