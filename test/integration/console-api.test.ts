// The console's JSON API (/_ferry/api/v1) after real pulls through ferry:
// every answer checked against the OpenAPI description it serves (ajv),
// what each user sees (team-a's reader sees nothing of team-b in any
// answer), sessions (cookie flags, CSRF, forged cookies), robots created and
// revoked through it (and what the robot can pull before and after), the
// audit search, figures that survive a restart, and the console's pages.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import bcrypt from 'bcryptjs'
import t, { type Test } from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, OCI_INDEX, OCI_MANIFEST, pushImage, type Image } from '../helpers/images.ts'
import { scratchDir } from '../helpers/procs.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { startRateReporting, type RateReporting } from '../helpers/rate-reporting.ts'
import { registerFile, registerSecret } from '../helpers/secrets.ts'
import { seedStandard, SBOM_TYPE, SIG_TYPE, type Seeded } from '../helpers/seed.ts'

const PASSWORDS = { root: 'root-Console-1', alice: 'alice-Console-2' }
const dir = scratchDir('ferry-console-')
const data = scratchDir('ferry-console-data-')
let upstream: Registry
let reporting: RateReporting
let ferry: Ferry
let seeded: Seeded
let teamA: Image
let teamB: Image
const API = '/_ferry/api/v1/'

const basic = (user: keyof typeof PASSWORDS): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}` })

function config (): Record<string, unknown> {
  return {
    // through a front that reports a rate limit, as Docker Hub does
    upstreams: [{ name: 'up', url: reporting.url, default: true }],
    // a peer region that is not there: what this region holds waits for it
    replication: { peers: [{ name: 'dr', url: 'http://127.0.0.1:9' }] },
    auth: {
      htpasswd: join(dir, 'htpasswd'),
      access: [
        { repositories: ['team-a/**'], allow: { 'user:alice': 'reader', 'user:root': 'admin' } },
        { repositories: ['**'], allow: { 'user:root': 'admin' } },
      ],
    },
    audit: { file: join(dir, 'audit.jsonl') },
  }
}

t.before(async () => {
  registerSecret(...Object.values(PASSWORDS))
  registerFile(join(dir, 'audit.jsonl'))
  writeFileSync(join(dir, 'htpasswd'), Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 8)}`).join('\n') + '\n')
  upstream = await startRegistry()
  seeded = await seedStandard(upstream.url)
  teamA = await image()
  teamB = await image()
  await pushImage(upstream.url, 'team-a/app', 'v1', teamA)
  await pushImage(upstream.url, 'team-b/secret-app', 'v1', teamB)
  reporting = await startRateReporting(upstream.url, 100, 21600)
  ferry = await startFerry({ config: config(), data })
  // pulls through ferry: each image's manifest and blobs, twice (a miss, then hits)
  for (let round = 0; round < 2; round++) {
    for (const [repo, tag, img] of [['test/oci', 'v1', seeded.oci], ['team-a/app', 'v1', teamA], ['team-b/secret-app', 'v1', teamB]] as const) {
      const m = await get(`${ferry.url}/v2/${repo}/manifests/${tag}`, { ...basic('root'), accept: OCI_MANIFEST })
      if (m.status !== 200) throw new Error(`pull ${repo}: ${m.status}`)
      for (const b of [img.config, ...img.layers]) {
        const r = await get(`${ferry.url}/v2/${repo}/blobs/${b.digest}`, basic('root'))
        if (r.status !== 200 || !r.body.equals(b.bytes)) throw new Error(`blob of ${repo}: ${r.status}`)
      }
    }
    const idx = await get(`${ferry.url}/v2/test/multi/manifests/v1`, { ...basic('root'), accept: OCI_INDEX })
    if (idx.status !== 200) throw new Error(`index: ${idx.status}`)
    for (const m of [seeded.amd64, seeded.arm64]) await get(`${ferry.url}/v2/test/multi/manifests/${m.manifest.digest}`, { ...basic('root'), accept: OCI_MANIFEST })
  }
  // the referrers, as a client that lists them asks
  await get(`${ferry.url}/v2/test/oci/referrers/${seeded.oci.manifest.digest}`, basic('root'))
})
t.teardown(async () => { await ferry?.stop(); await reporting?.stop(); await upstream?.stop() })

// ---- the OpenAPI description, and a checker for every answer -------------------

let ajv: Ajv2020

t.test('the API describes itself, and the description compiles', async t => {
  const res = await get(`${ferry.url}${API}openapi.json`)
  t.equal(res.status, 200)
  const doc = res.json<{ openapi: string, paths: Record<string, unknown>, components: { schemas: Record<string, unknown> } }>()
  t.equal(doc.openapi, '3.1.0')
  for (const p of ['/session', '/overview', '/repositories', '/tags', '/image', '/audit', '/robots', '/robots/{name}']) t.ok(doc.paths[p], `describes ${p}`)
  ajv = new Ajv2020({ strict: false, allErrors: true })
  ajv.addSchema({ ...doc, $id: 'openapi' })
  for (const name of Object.keys(doc.components.schemas)) t.ok(ajv.compile({ $ref: `openapi#/components/schemas/${name}` }), `schema ${name} compiles`)
})

const check = async (t: Test, path: string, schema: string, headers: Record<string, string> = {}): Promise<any> => {
  const validate = ajv.compile({ $ref: `openapi#/components/schemas/${schema}` })
  const res = await get(`${ferry.url}${API}${path}`, headers)
  t.equal(res.status, 200, `GET ${path}: 200 (${res.body.toString().slice(0, 200)})`)
  const body = res.json()
  t.ok(validate(body), `GET ${path} matches ${schema}: ${JSON.stringify(validate.errors ?? [])}`)
  return body
}

t.test('anonymous callers are told to log in, and see who they are', async t => {
  const who = await check(t, 'session', 'Session')
  t.same({ user: who.user, kind: who.kind, admin: who.admin, authRequired: who.authRequired }, { user: 'anonymous', kind: 'anonymous', admin: false, authRequired: true })
  const overview = await get(`${ferry.url}${API}overview`)
  t.equal(overview.status, 401)
  t.equal(overview.header('www-authenticate'), undefined, 'no challenge: a browser must not prompt and keep Basic credentials')
  const repos = await check(t, 'repositories', 'Repositories')
  t.same(repos.repositories, [], 'the rules give anonymous no repository: none listed')
  for (const path of ['audit', 'robots']) t.equal((await get(`${ferry.url}${API}${path}`)).status, 401, `${path}: 401`)
})

t.test('the overview after pulls: cache, hit ratio, bytes, upstream health', async t => {
  const o = await check(t, 'overview', 'Overview', basic('root'))
  t.ok(o.cache.bytes > 0 && o.cache.blobs > 0, `cache holds ${o.cache.blobs} blobs, ${o.cache.bytes} bytes`)
  const hour = o.windows['1h']
  // three images of 2 blobs each (config and a layer), pulled twice: 6 misses then 6 hits
  t.equal(hour.misses, 6, 'the first round missed every blob')
  t.equal(hour.hits, 6, 'the second hit every blob')
  t.equal(hour.hitRatio, 0.5)
  const blobBytes = [seeded.oci, teamA, teamB].reduce((n, img) => n + img.config.bytes.length + img.layers.reduce((m, l) => m + l.bytes.length, 0), 0)
  t.equal(hour.bytesFromCache, blobBytes, 'bytes from cache: every blob once')
  t.equal(hour.bytesFilled, blobBytes, 'bytes filled: every blob once')
  t.ok(hour.pulls >= 6, `manifest pulls counted (${hour.pulls})`)
  t.equal(hour.byUpstream.up.hits, 6, 'per upstream')
  const up = o.upstreams.find((u: { name: string }) => u.name === 'up')
  t.equal(up.status, 'up', 'the upstream answered')
  t.ok(up.lastSuccessAt > 0 && up.latencyMs >= 0)
  t.same(up.rateLimit && { limit: up.rateLimit.limit, remaining: up.rateLimit.remaining, windowSeconds: up.rateLimit.windowSeconds }, { limit: 100, remaining: 100 - reporting.counted(), windowSeconds: 21600 }, 'the upstream\'s last rate-limit report')
  t.equal(o.replication.length, 1)
  const dr = o.replication[0]
  t.equal(dr.peer, 'dr')
  // what the pulls put in the region's stream: 6 blobs, 3 images' and an index's manifests and tags, with nobody to take them
  t.ok(dr.eventsBehind >= 10, `the peer is ${dr.eventsBehind} events behind`)
  t.equal(dr.bytesBehind, [seeded.oci, teamA, teamB].reduce((n, img) => n + img.config.bytes.length + img.layers.reduce((m, l) => m + l.bytes.length, 0), 0), 'and every blob\'s bytes')
  t.equal(dr.deadLetters, 0)
  t.ok(o.series.length >= 1 && o.series.some((p: { hits: number }) => p.hits === 6), 'the chart series has the hits')
})

t.test('repositories, tags, an image: what an admin sees', async t => {
  const all = await check(t, 'repositories', 'Repositories', basic('root'))
  const names = all.repositories.map((r: { name: string }) => r.name)
  for (const n of ['test/oci', 'test/multi', 'team-a/app', 'team-b/secret-app']) t.ok(names.includes(n), `lists ${n}`)
  t.same(all.repositories.find((r: { name: string }) => r.name === 'test/oci'), { name: 'test/oci', kind: 'proxied', upstream: 'up', tags: 1 })
  const searched = await check(t, 'repositories?q=MULTI', 'Repositories', basic('root'))
  t.same(searched.repositories.map((r: { name: string }) => r.name), ['test/multi'], 'search by part of the name, any case')
  const paged = await check(t, 'repositories?n=2', 'Repositories', basic('root'))
  t.equal(paged.repositories.length, 2)
  t.ok(paged.next !== undefined)
  const rest = await check(t, `repositories?n=50&last=${encodeURIComponent(paged.next)}`, 'Repositories', basic('root'))
  t.same([...paged.repositories, ...rest.repositories].map((r: { name: string }) => r.name), names, 'two pages give every repository once')

  const tags = await check(t, 'tags?repository=test/multi', 'Tags', basic('root'))
  t.equal(tags.tags.length, 1)
  t.equal(tags.tags[0].digest, seeded.multi.digest)
  t.same(tags.tags[0].platforms.sort(), ['linux/amd64', 'linux/arm64'], 'the index\'s platforms')
  t.equal(tags.tags[0].pulls, 2, 'pulled twice by tag')
  t.ok(tags.tags[0].lastPulledAt > Date.now() - 600_000)

  const img = await check(t, 'image?repository=test/oci&reference=v1', 'Image', basic('root'))
  t.equal(img.digest, seeded.oci.manifest.digest)
  t.same(img.layers.map((l: { digest: string }) => l.digest), seeded.oci.layers.map(l => l.digest), 'its layers')
  t.equal(img.config.digest, seeded.oci.config.digest)
  t.same(img.referrers.map((r: { artifactType: string }) => r.artifactType).sort(), [SBOM_TYPE, SIG_TYPE].sort(), 'its referrers: the SBOM and the signature')
  t.same(img.tags, ['v1'])
  const byDigest = await check(t, `image?repository=test/multi&reference=${seeded.multi.digest}`, 'Image', basic('root'))
  t.same(byDigest.manifests.map((m: { platformName: string }) => m.platformName).sort(), ['linux/amd64', 'linux/arm64'])

  const unknown = await get(`${ferry.url}${API}image?repository=test/oci&reference=${seeded.docker.manifest.digest}`, basic('root'))
  t.equal(unknown.status, 404, 'a manifest the repository does not hold: 404')
  t.equal((await get(`${ferry.url}${API}tags?repository=..%2Fetc`, basic('root'))).status, 400, 'a malformed name: 400')
  t.equal((await get(`${ferry.url}${API}repositories?n=abc`, basic('root'))).status, 400, 'a bad count: 400')
})

t.test('a user limited to team-a sees nothing of team-b, in any answer', async t => {
  const repos = await check(t, 'repositories', 'Repositories', basic('alice'))
  t.same(repos.repositories.map((r: { name: string }) => r.name), ['team-a/app'])
  t.equal(repos.total, 1)
  const found = await check(t, 'repositories?q=secret', 'Repositories', basic('alice'))
  t.same(found.repositories, [], 'a search finds nothing of team-b')
  for (const path of ['tags?repository=team-b/secret-app', `image?repository=team-b/secret-app&reference=v1`, `image?repository=team-b/secret-app&reference=${teamB.manifest.digest}`]) {
    const res = await get(`${ferry.url}${API}${path}`, basic('alice'))
    t.equal(res.status, 404, `${path}: 404, as a repository that does not exist`)
    t.notMatch(res.body.toString(), teamB.manifest.digest, 'and no digest of it')
  }
  const overview = await get(`${ferry.url}${API}overview`, basic('alice'))
  t.equal(overview.status, 200)
  t.notMatch(overview.body.toString(), /team-b/, 'the overview names no repository')
  for (const path of ['audit', 'robots']) {
    const res = await get(`${ferry.url}${API}${path}`, basic('alice'))
    t.equal(res.status, 403, `${path}: 403 for a non-admin`)
  }
  const tags = await check(t, 'tags?repository=team-a/app', 'Tags', basic('alice'))
  t.equal(tags.tags[0].digest, teamA.manifest.digest)
})

async function login (user: keyof typeof PASSWORDS): Promise<{ cookie: string, csrf: string, setCookie: string[] }> {
  const res = await fetch(`${ferry.url}${API}session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user, password: PASSWORDS[user] }) })
  if (res.status !== 200) throw new Error(`login ${user}: ${res.status}`)
  const setCookie = res.headers.getSetCookie()
  const body = await res.json() as { csrf: string }
  return { cookie: setCookie.map(c => c.split(';')[0]).join('; '), csrf: body.csrf, setCookie }
}

t.test('console sessions: cookie flags, CSRF, forged and wrong logins', async t => {
  const wrong = await fetch(`${ferry.url}${API}session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'nope' }) })
  t.equal(wrong.status, 401, 'a wrong password: 401')
  t.equal(wrong.headers.getSetCookie().length, 0, 'and no cookie')
  const asForm = await fetch(`${ferry.url}${API}session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=alice&password=${PASSWORDS.alice}` })
  t.equal(asForm.status, 415, 'a login from a cross-site form (not JSON): refused')

  const s = await login('root')
  const session = s.setCookie.find(c => c.startsWith('ferry_session='))!
  t.match(session, /HttpOnly/, 'the session cookie is HttpOnly')
  t.match(session, /SameSite=Strict/, 'SameSite=Strict')
  t.notMatch(session, /Secure/, 'not Secure on plain HTTP (it would never be sent)')
  t.match(s.setCookie.find(c => c.startsWith('ferry_csrf='))!, /SameSite=Strict/)
  const who = await check(t, 'session', 'Session', { cookie: s.cookie })
  t.same({ user: who.user, admin: who.admin }, { user: 'root', admin: true })
  t.equal(who.csrf, s.csrf)

  const body = JSON.stringify({ name: 'no-csrf', scopes: [{ repositories: ['team-a/**'], role: 'reader' }] })
  const noCsrf = await fetch(`${ferry.url}${API}robots`, { method: 'POST', headers: { cookie: s.cookie, 'content-type': 'application/json' }, body })
  t.equal(noCsrf.status, 403, 'a session write without its CSRF header: 403')
  const wrongCsrf = await fetch(`${ferry.url}${API}robots`, { method: 'POST', headers: { cookie: s.cookie, 'content-type': 'application/json', 'x-ferry-csrf': 'guess' }, body })
  t.equal(wrongCsrf.status, 403, 'with a guessed one: 403')
  const plain = await fetch(`${ferry.url}${API}robots`, { method: 'POST', headers: { cookie: s.cookie, 'content-type': 'text/plain', 'x-ferry-csrf': s.csrf }, body })
  t.equal(plain.status, 415, 'a write that is not JSON: 415')
  const robots = await check(t, 'robots', 'Robots', basic('root'))
  t.notOk(robots.robots.some((r: { name: string }) => r.name === 'no-csrf'), 'none of them made a robot')

  // a cookie signed with another key, or altered, is nobody
  const [head, payload] = session.split(';')[0]!.slice('ferry_session='.length).split('.')
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>
  const forged = `${head}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${session.split('.')[2]!.split(';')[0]}`
  const asForged = await get(`${ferry.url}${API}session`, { cookie: `ferry_session=${forged}` })
  t.equal(asForged.json<{ kind: string }>().kind, 'anonymous', 'an altered session cookie: anonymous')
  t.equal((await get(`${ferry.url}${API}overview`, { cookie: `ferry_session=${forged}` })).status, 401)

  const out = await fetch(`${ferry.url}${API}session`, { method: 'DELETE', headers: { cookie: s.cookie, 'x-ferry-csrf': s.csrf } })
  t.equal(out.status, 200)
  t.ok(out.headers.getSetCookie().some(c => /^ferry_session=;.*Max-Age=0/.test(c)), 'log out clears the cookie')
})

t.test('robots through the API: created, used, listed, revoked, audited', async t => {
  const s = await login('root')
  const res = await fetch(`${ferry.url}${API}robots`, {
    method: 'POST',
    headers: { cookie: s.cookie, 'content-type': 'application/json', 'x-ferry-csrf': s.csrf },
    body: JSON.stringify({ name: 'ci-bot', scopes: [{ repositories: ['team-a/**'], role: 'reader' }], expiresInDays: 30 }),
  })
  t.equal(res.status, 201)
  const made = await res.json() as { user: string, secret: string }
  t.ok(ajv.compile({ $ref: 'openapi#/components/schemas/RobotCreated' })(made), 'matches RobotCreated')
  registerSecret(made.secret)
  t.equal(made.user, 'robot$ci-bot')
  const robotAuth = { authorization: `Basic ${Buffer.from(`${made.user}:${made.secret}`).toString('base64')}` }
  const pulled = await get(`${ferry.url}/v2/team-a/app/manifests/v1`, { ...robotAuth, accept: OCI_MANIFEST })
  t.equal(pulled.status, 200, 'the robot pulls what its scope allows')
  t.ok(pulled.body.equals(teamA.manifest.bytes))
  t.equal((await get(`${ferry.url}/v2/team-b/secret-app/manifests/v1`, { ...robotAuth, accept: OCI_MANIFEST })).status, 403, 'and nothing else')

  const again = await fetch(`${ferry.url}${API}robots`, { method: 'POST', headers: { cookie: s.cookie, 'content-type': 'application/json', 'x-ferry-csrf': s.csrf }, body: JSON.stringify({ name: 'ci-bot', scopes: [{ repositories: ['**'], role: 'admin' }] }) })
  t.equal(again.status, 409, 'a second robot of the same name: 409')
  const bad = await fetch(`${ferry.url}${API}robots`, { method: 'POST', headers: { ...basic('root'), 'content-type': 'application/json' }, body: JSON.stringify({ name: '../x', scopes: [] }) })
  t.equal(bad.status, 400, 'a bad name: 400')

  const list = await check(t, 'robots', 'Robots', { cookie: s.cookie })
  const listed = list.robots.find((r: { name: string }) => r.name === 'ci-bot')
  t.equal(listed.active, true)
  t.ok(listed.expiresAt > Date.now() + 29 * 86_400_000)
  t.notMatch(JSON.stringify(list), made.secret, 'the list never shows a secret')
  t.notMatch(JSON.stringify(list), /\$2[aby]\$/, 'nor its hash')

  const revoked = await fetch(`${ferry.url}${API}robots/ci-bot`, { method: 'DELETE', headers: { cookie: s.cookie, 'x-ferry-csrf': s.csrf } })
  t.equal(revoked.status, 200)
  t.equal((await get(`${ferry.url}/v2/team-a/app/manifests/v1`, { ...robotAuth, accept: OCI_MANIFEST })).status, 401, 'revoked: its secret stops working')
  t.equal((await fetch(`${ferry.url}${API}robots/ci-bot`, { method: 'DELETE', headers: { ...basic('root') } })).status, 404, 'revoking again: 404')

  // the writes are in the audit log, with who made them
  const audit = await check(t, 'audit?user=root', 'Audit', basic('root'))
  const actions = audit.records.map((r: { action: string, reference?: string, decision: string }) => `${r.action} ${r.reference ?? ''} ${r.decision}`)
  t.ok(actions.includes('console:robot-create ci-bot allow'), 'robot-create audited')
  t.ok(actions.includes('console:robot-revoke ci-bot allow'), 'robot-revoke audited')
  t.ok(actions.includes('console:login  allow'), 'the login audited')
})

t.test('audit search: by user, repository, decision and time, newest first, paged', async t => {
  const denied = await check(t, 'audit?decision=deny', 'Audit', basic('root'))
  t.ok(denied.total >= 1, `denials found (${denied.total})`)
  t.ok(denied.records.every((r: { decision: string }) => r.decision === 'deny'))
  t.ok(denied.records.some((r: { who: string, action: string }) => r.who === 'alice' && r.action === 'console:login'), 'the wrong password for alice is there')
  const teamB = await check(t, 'audit?repository=team-b/**', 'Audit', basic('root'))
  t.ok(teamB.total >= 4 && teamB.records.every((r: { repository: string }) => r.repository.startsWith('team-b/')), 'by repository pattern')
  const times = teamB.records.map((r: { time: string }) => Date.parse(r.time))
  t.same(times, [...times].sort((a, b) => b - a), 'newest first')
  const page1 = await check(t, 'audit?n=2', 'Audit', basic('root'))
  const page2 = await check(t, 'audit?n=2&offset=2', 'Audit', basic('root'))
  t.equal(page1.records.length, 2)
  t.notSame(page1.records, page2.records, 'pages differ')
  const future = await check(t, `audit?from=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`, 'Audit', basic('root'))
  t.equal(future.total, 0, 'nothing from the future')
  t.equal((await get(`${ferry.url}${API}audit?from=yesterday`, basic('root'))).status, 400, 'a bad time: 400')
  t.equal((await get(`${ferry.url}${API}audit?decision=maybe`, basic('root'))).status, 400)
})

t.test('the console pages: served from the package, cached by ETag, with a strict CSP', async t => {
  const redirect = await get(`${ferry.url}/ui`)
  t.equal(redirect.status, 308)
  t.equal(redirect.header('location'), '/ui/')
  const page = await get(`${ferry.url}/ui/`)
  t.equal(page.status, 200)
  t.match(page.header('content-type'), /text\/html/)
  t.match(page.header('content-security-policy'), /script-src 'self'/)
  t.equal(page.header('x-frame-options'), 'DENY')
  t.match(page.body.toString(), /<script src="app.js" type="module">/)
  t.notMatch(page.body.toString(), /https?:\/\//, 'nothing from another origin')
  for (const asset of ['app.js', 'app.css', 'uPlot.min.js', 'uPlot.min.css']) {
    const a = await get(`${ferry.url}/ui/${asset}`)
    t.equal(a.status, 200, `${asset}: 200`)
    const again = await get(`${ferry.url}/ui/${asset}`, { 'if-none-match': a.header('etag')! })
    t.equal(again.status, 304, `${asset}: 304 with its ETag`)
  }
  t.ok(readFileSync(join(import.meta.dirname, '..', '..', 'console-ui', 'app.js')).length < 40_000, 'the console\'s script is small')
  for (const path of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/index.html.bak', '/ui/app.js/']) {
    t.equal((await get(`${ferry.url}${path}`)).status, 404, `${path}: 404`)
  }
})

t.test('the figures survive a restart', async t => {
  const before = await check(t, 'overview', 'Overview', basic('root'))
  await ferry.stop()
  ferry = await startFerry({ config: config(), data })
  const after = await check(t, 'overview', 'Overview', basic('root'))
  t.equal(after.windows['1h'].hits, before.windows['1h'].hits, 'hits kept')
  t.equal(after.windows['7d'].bytesFromCache, before.windows['7d'].bytesFromCache, 'bytes kept')
  const tags = await check(t, 'tags?repository=test/multi', 'Tags', basic('root'))
  t.equal(tags.tags[0].pulls, 2, 'pull counts kept')
  // an old session still works after the restart (the key is kept in the data folder)
  const s = await login('alice')
  await ferry.stop()
  ferry = await startFerry({ config: config(), data })
  const who = await check(t, 'session', 'Session', { cookie: s.cookie })
  t.equal(who.user, 'alice')
})
