// Pushed content replicates: an image pushed to region A (skopeo) pulls
// from region B, whose upstream is unreachable; a tag moved twice ends in B
// where it ended in A; deletes follow only where the rule says
// `deletes: true`; and what B receives is not sent on (one hop).
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'

import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { CLI, NODE_FLAGS, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { digestOf, image, pushImage, type Image } from '../helpers/images.ts'
import { freePort, startProc, type Proc, scratchDir } from '../helpers/procs.ts'
import { requireBinary, startRegistry, type Registry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'

const run = promisify(execFile)
const SECRET = 'hosted-replication-secret'
const PASSWORD = 'hosted-Replication-Ci-1'
const AUTH = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`
let source: Registry
let a: Ferry
let b: Ferry
let replicator: Proc | undefined

function region (name: string, listen: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    region: name,
    listen,
    upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', prefix: 'nowhere.test', default: true, timeouts: { connect: '200ms' } }],
    hosted: [{ prefix: 'acme/' }],
    auth: { users: { ci: bcrypt.hashSync(PASSWORD, 6) }, access: [{ repositories: ['acme/**'], allow: { 'user:ci': 'admin' } }] },
    ...extra,
  }
}

t.before(async () => {
  registerSecret(SECRET, PASSWORD)
  source = await startRegistry()
  b = await startFerry({ config: region('b', `127.0.0.1:${await freePort()}`, { replication: { secretEnv: 'FERRY_REPLICATION_SECRET' } }), env: { FERRY_REPLICATION_SECRET: SECRET } })
  a = await startFerry({
    config: region('a', `127.0.0.1:${await freePort()}`, {
      replication: {
        peers: [{ name: 'b', url: b.url, credentials: { username: 'replicator', passwordEnv: 'PEER_B_SECRET' } }],
        rules: [
          { repositories: ['acme/mirror/**'], deletes: true },
          { repositories: ['acme/**'] },
        ],
      },
    }),
  })
  replicator = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', a.configPath], { env: { ...process.env, PEER_B_SECRET: SECRET } })
})
t.teardown(async () => {
  await replicator?.stop()
  await a?.stop()
  await b?.stop()
  await source?.stop()
})

async function caughtUp (): Promise<number> {
  let behind = -1
  for (let i = 0; i < 300; i++) {
    const { stdout } = await run(process.execPath, [CLI, 'replicate', '--config', a.configPath, '--status'])
    behind = (JSON.parse(stdout.trim().split('\n')[0]!) as { eventsBehind: number }).eventsBehind
    if (behind === 0) return 0
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return behind
}

async function tagIn (f: Ferry, repo: string, tag: string): Promise<string | undefined> {
  const m = await get(`${f.url}/v2/${repo}/manifests/${tag}`, { authorization: AUTH, accept: 'application/vnd.oci.image.manifest.v1+json' })
  return m.status === 200 ? m.header('docker-content-digest') : undefined
}

async function pullsWhole (f: Ferry, repo: string, img: Image): Promise<boolean> {
  for (const b of [img.config, ...img.layers]) {
    const r = await get(`${f.url}/v2/${repo}/blobs/${b.digest}`, { authorization: AUTH })
    if (r.status !== 200 || digestOf(r.body) !== b.digest) return false
  }
  return true
}

t.test('an image pushed to A with skopeo pulls whole from B, whose upstream is unreachable', async t => {
  requireBinary('skopeo', 'skopeo')
  const img = await image({ files: { 'app.bin': randomBytes(2 * 1024 * 1024) } })
  await pushImage(source.url, 'src/app', 'v1', img)
  await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', `ci:${PASSWORD}`,
    `docker://${source.host}/src/app:v1`, `docker://${a.host}/acme/mirror/app:v1`])
  t.equal(await caughtUp(), 0, 'the replicator caught up')
  t.equal(await tagIn(b, 'acme/mirror/app', 'v1'), img.manifest.digest, 'B has the tag')
  t.ok(await pullsWhole(b, 'acme/mirror/app', img), 'and every blob, bytes and digests')
  const out = join(scratchDir('ferry-hosted-repl-'), 'pulled')
  await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', '--src-creds', `ci:${PASSWORD}`, `docker://${b.host}/acme/mirror/app:v1`, `oci:${out}:v1`])
  t.pass('skopeo pulls it from B')
})

t.test('a tag moved twice in A ends in B where it ended in A', async t => {
  const first = await image({ files: { 'v.txt': 'first\n' } })
  const second = await image({ files: { 'v.txt': 'second\n' } })
  await pushImage(a.url, 'acme/keep/app', 'latest', first, AUTH)
  await pushImage(a.url, 'acme/keep/app', 'latest', second, AUTH)
  t.equal(await caughtUp(), 0)
  t.equal(await tagIn(b, 'acme/keep/app', 'latest'), second.manifest.digest)
  t.ok(await pullsWhole(b, 'acme/keep/app', second))
})

t.test('deletes follow where the rule says deletes: true, and only there', async t => {
  const img = await image({ files: { 'd.txt': 'to be deleted\n' } })
  await pushImage(a.url, 'acme/mirror/gone', 'v1', img, AUTH)
  await pushImage(a.url, 'acme/mirror/gone', 'v2', img, AUTH)
  await pushImage(a.url, 'acme/keep/stays', 'v1', img, AUTH)
  const other = await image({ files: { 'd.txt': 'deleted by digest\n' } })
  await pushImage(a.url, 'acme/mirror/bydigest', 'v1', other, AUTH)
  t.equal(await caughtUp(), 0)
  t.equal(await tagIn(b, 'acme/mirror/gone', 'v1'), img.manifest.digest, 'B has them all first')
  t.equal(await tagIn(b, 'acme/keep/stays', 'v1'), img.manifest.digest)

  t.equal((await get(`${a.url}/v2/acme/mirror/gone/manifests/v1`, { authorization: AUTH }, 'DELETE')).status, 202)
  t.equal((await get(`${a.url}/v2/acme/keep/stays/manifests/v1`, { authorization: AUTH }, 'DELETE')).status, 202)
  t.equal((await get(`${a.url}/v2/acme/mirror/bydigest/manifests/${other.manifest.digest}`, { authorization: AUTH }, 'DELETE')).status, 202)
  t.equal(await caughtUp(), 0)

  const gone = await get(`${b.url}/v2/acme/mirror/gone/manifests/v1`, { authorization: AUTH })
  t.equal(gone.status, 404, 'a tag deleted in A under acme/mirror/ is gone from B')
  t.equal(ociError(gone)?.code, 'MANIFEST_UNKNOWN')
  t.equal(await tagIn(b, 'acme/mirror/gone', 'v2'), img.manifest.digest, 'its other tag stays')
  t.equal(await tagIn(b, 'acme/keep/stays', 'v1'), img.manifest.digest, 'a delete under a rule without deletes: true does not go')
  t.equal((await get(`${b.url}/v2/acme/mirror/bydigest/manifests/${other.manifest.digest}`, { authorization: AUTH })).status, 404, 'a manifest deleted by digest is gone from B')
  t.equal(await tagIn(b, 'acme/mirror/bydigest', 'v1'), undefined, 'with the tag that pointed at it')
})

t.test('what B received is not recorded for replication again (one hop)', async t => {
  const path = join(b.data, 'state', 'events.jsonl')
  const events = existsSync(path) ? readFileSync(path, 'utf8') : ''
  t.notMatch(events, /"kind":"(tag|manifest|tag-deleted|manifest-deleted)"/, 'B\'s stream holds none of what it received')
  const mine = readFileSync(join(a.data, 'state', 'events.jsonl'), 'utf8')
  const deleted = /"kind":"tag-deleted","name":"acme\/mirror\/gone","tag":"v1"/
  if (deleted.test(mine)) {
    t.pass('while A\'s holds what was pushed and deleted there')
  } else {
    // A's replicator frees what every peer has had (a hole punched at the front: zeros), between lease renewals
    const compactedPath = join(a.data, 'state', 'events.compacted')
    const compacted = existsSync(compactedPath) ? Number(readFileSync(compactedPath, 'utf8')) : 0
    t.ok(compacted > 0 && /^\0+$/.test(mine.slice(0, compacted)), `while A's held it, until its replicator freed the part B had had (${compacted} bytes)`)
    t.match(mine.slice(compacted), /^(\{.*\}\n)*$/, 'and what it keeps is whole event lines')
  }
})
