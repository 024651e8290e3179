// Replication between regions, end to end with real processes: region A (a
// ferry in front of the upstream registry) replicates to region B (a ferry
// whose own upstream is unreachable, so it can serve only what it was sent)
// and to C (a plain docker-registry). Then the upstream and A die, and
// every image still pulls from B with skopeo.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'

import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { CLI, NODE_FLAGS, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { blob, digestOf, image, index, pushBlob, pushImage, pushManifest, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, type Blob, type Image } from '../helpers/images.ts'
import { pullBlob } from '../helpers/pull.ts'
import { startContainerd } from '../helpers/containerd.ts'
import { registerSecret } from '../helpers/secrets.ts'
import { freePort, startProc, type Proc, scratchDir } from '../helpers/procs.ts'
import { requireBinary, startRegistry, type Registry } from '../helpers/registry.ts'

const run = promisify(execFile)
const SECRET = 'replication-secret-for-tests'
const ACCEPT = { accept: [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST].join(', ') }
let upstream: Registry
let c: Registry
let a: Ferry
let b: Ferry
let bPort: number
const bData = scratchDir('ferry-region-b-')
let replicator: Proc | undefined
let metricsPort = 0

function bConfig (): Record<string, unknown> {
  return {
    region: 'b', listen: `127.0.0.1:${bPort}`, data: bData,
    // the same registry as A's upstream, by the name containerd gives it (?ns=), but unreachable from here
    upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', aliases: [upstream.host], default: true, timeouts: { connect: '200ms' } }],
    replication: { secretEnv: 'FERRY_REPLICATION_SECRET' },
  }
}

t.before(async () => {
  registerSecret(SECRET)
  upstream = await startRegistry()
  c = await startRegistry()
  bPort = await freePort()
  b = await startFerry({ data: bData, config: bConfig(), env: { FERRY_REPLICATION_SECRET: SECRET } })
  // the replicator reaches A's edge at A's listen address: a fixed port
  a = await startFerry({ config: {
    region: 'a',
    listen: `127.0.0.1:${await freePort()}`,
    upstreams: [{ name: 'up', url: upstream.url, default: true }],
    replication: {
      peers: [
        { name: 'b', url: b.url, credentials: { username: 'replicator', passwordEnv: 'PEER_B_SECRET' } },
        { name: 'c', url: c.url },
      ],
      attempts: 2,
      metricsListen: `127.0.0.1:${metricsPort = await freePort()}`,
    },
  } })
})
t.teardown(async () => {
  await replicator?.stop()
  await a?.stop()
  await b?.stop()
  await c?.stop()
  await upstream?.stop()
})

function startReplicator (): Proc {
  replicator = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', a.configPath], { env: { ...process.env, PEER_B_SECRET: SECRET } })
  return replicator
}

interface Status { peer: string, eventsBehind: number, bytesBehind: number, deadLetters: number }
async function status (): Promise<Record<string, Status>> {
  const { stdout } = await run(process.execPath, [CLI, 'replicate', '--config', a.configPath, '--status'])
  const out: Record<string, Status> = {}
  for (const line of stdout.trim().split('\n')) { const s = JSON.parse(line) as Status; out[s.peer] = s }
  return out
}
/** Region A records a tag in its stream just after it answered the client: wait until it has. */
async function recorded (name: string, tag: string): Promise<boolean> {
  const path = join(a.data, 'state', 'events.jsonl')
  const needle = `"kind":"tag","name":"${name}","tag":"${tag}"`
  for (let i = 0; i < 200; i++) {
    try { if (readFileSync(path, 'utf8').includes(needle)) return true } catch { /* not yet written */ }
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return false
}

async function caughtUp (peers: string[], timeoutMs = 60_000): Promise<Record<string, Status>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const s = await status()
    if (peers.every(p => s[p]?.eventsBehind === 0) || Date.now() > deadline) return s
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

/** What a container runtime does: the manifest by tag, then config and layers (of one platform, for an index). */
async function pullThrough (base: string, name: string, tag: string, img: Image, list?: Blob): Promise<void> {
  const top = await get(`${base}/v2/${name}/manifests/${tag}`, ACCEPT)
  if (top.status !== 200) throw new Error(`${name}:${tag}: ${top.status} ${top.body.toString()}`)
  if (list !== undefined) {
    const child = await get(`${base}/v2/${name}/manifests/${img.manifest.digest}`, ACCEPT)
    if (child.status !== 200) throw new Error(`child: ${child.status}`)
  }
  for (const bl of [img.config, ...img.layers]) {
    const p = await pullBlob(`${base}/v2/${name}/blobs/${bl.digest}`)
    if (p.digest !== bl.digest) throw new Error(`blob ${bl.digest}: got ${p.digest}`)
  }
}

async function skopeo (...args: string[]): Promise<string> {
  requireBinary('skopeo', 'skopeo')
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 * 1024 * 1024 })
  return stdout
}

t.test('pushes need the replication credential', async t => {
  const none = await get(`${b.url}/v2/any/repo/blobs/uploads/`, {}, 'POST')
  t.equal(none.status, 401)
  t.equal(ociError(none)?.code, 'UNAUTHORIZED')
  t.match(String(none.headers['www-authenticate']), /^Basic realm=/)
  const wrong = await get(`${b.url}/v2/any/repo/blobs/uploads/`, { authorization: `Basic ${Buffer.from('x:wrong').toString('base64')}` }, 'POST')
  t.equal(wrong.status, 401)
  const manifest = await get(`${b.url}/v2/any/repo/manifests/v1`, { 'content-type': OCI_MANIFEST }, 'PUT')
  t.equal(manifest.status, 401)
  const ok = await get(`${b.url}/v2/any/repo/blobs/uploads/`, { authorization: `Bearer ${SECRET}` }, 'POST')
  t.equal(ok.status, 202, 'the secret opens an upload')
  t.match(String(ok.headers.location), /^\/v2\/any\/repo\/blobs\/uploads\/[0-9a-f-]{36}$/)
  const notAccepting = await get(`${a.url}/v2/any/repo/blobs/uploads/`, { authorization: `Bearer ${SECRET}` }, 'POST')
  t.equal(notAccepting.status, 405, 'a region without replication.secretEnv takes no pushes at all')
  t.equal(ociError(notAccepting)?.code, 'UNSUPPORTED')
})

t.test('a pushed blob whose bytes do not match its digest is refused and not kept', async t => {
  const auth = { authorization: `Bearer ${SECRET}` }
  const start = await get(`${b.url}/v2/any/repo/blobs/uploads/`, auth, 'POST')
  const location = String(start.headers.location)
  const real = blob('application/octet-stream', randomBytes(1000))
  const { request } = await import('undici')
  const patch = await request(`${b.url}${location}`, { method: 'PATCH', headers: { ...auth, 'content-range': '0-999', 'content-type': 'application/octet-stream' }, body: randomBytes(1000) })
  await patch.body.dump()
  t.equal(patch.statusCode, 202)
  t.equal(patch.headers.range, '0-999', 'the peer reports the offset it holds')
  const put = await get(`${b.url}${location}?digest=${real.digest}`, auth, 'PUT')
  t.equal(put.status, 400)
  t.equal(ociError(put)?.code, 'DIGEST_INVALID')
  t.equal((await get(`${b.url}/v2/any/repo/blobs/${real.digest}`, {}, 'HEAD')).status >= 400, true, 'not served')
})

const images: { name: string, tag: string, img: Image, list?: Blob }[] = []

t.test('what region A pulls reaches region B (a ferry) and C (a plain registry), tags last', async t => {
  const oci = await image({ layerCount: 2, files: { 'big.bin': randomBytes(3 * 1024 * 1024) } })
  const docker = await image({ docker: true })
  const amd = await image({ arch: 'amd64' }); const arm = await image({ arch: 'arm64' })
  const list = index([amd, arm])
  await pushImage(upstream.url, 'apps/oci', 'v1', oci)
  await pushImage(upstream.url, 'apps/docker', 'v1', docker)
  await pushImage(upstream.url, 'apps/multi', undefined, amd)
  await pushImage(upstream.url, 'apps/multi', undefined, arm)
  await pushManifest(upstream.url, 'apps/multi', 'v1', list)
  images.push({ name: 'apps/oci', tag: 'v1', img: oci }, { name: 'apps/docker', tag: 'v1', img: docker }, { name: 'apps/multi', tag: 'v1', img: amd, list })
  for (const i of images) await pullThrough(a.url, i.name, i.tag, i.img, i.list)
  for (const i of images) t.ok(await recorded(i.name, i.tag), `A recorded ${i.name}:${i.tag}`)

  startReplicator()
  const s = await caughtUp(['b', 'c'])
  t.equal(s.b?.eventsBehind, 0, 'B caught up')
  t.equal(s.c?.eventsBehind, 0, 'C caught up')
  t.equal(s.b?.deadLetters, 0, 'B refused nothing')
  // the running replicator's own view, on its metrics port
  let text = ''
  for (let i = 0; i < 50 && !/ferry_replication_lag_events\{peer="b"\} 0\n/.test(text); i++) {
    text = (await get(`http://127.0.0.1:${metricsPort}/metrics`)).body.toString()
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.match(text, /ferry_replication_lag_events\{peer="b"\} 0\n/, 'lag in /metrics')
  t.match(text, /ferry_replication_events_total\{peer="b",kind="tag"\} [1-9]/, 'tags delivered, counted')
  t.match(text, /ferry_replication_bytes_total\{peer="b"\} [1-9]/, 'bytes uploaded, counted')

  for (const i of images) {
    const top = await get(`${b.url}/v2/${i.name}/manifests/${i.tag}`, ACCEPT)
    t.equal(top.status, 200, `B: ${i.name}:${i.tag}`)
    t.equal(top.headers['docker-content-digest'], (i.list ?? i.img.manifest).digest)
  }
  for (const i of images.filter(x => x.list === undefined)) {
    const top = await get(`${c.url}/v2/${i.name}/manifests/${i.tag}`, ACCEPT)
    t.equal(top.status, 200, `C: ${i.name}:${i.tag}`)
    t.equal(top.headers['docker-content-digest'], i.img.manifest.digest)
  }
  // a plain registry wants every platform of an index: A holds only the one its client pulled
  const { stdout } = await run(process.execPath, [CLI, 'replicate', '--config', a.configPath, '--dead-letters'])
  const dead = stdout.trim().split('\n').map(l => JSON.parse(l) as { peer: string, event: { kind: string, name: string, tag?: string, digest: string }, error: string })
  t.ok(dead.length > 0 && dead.every(d => d.peer === 'c' && d.event.name === 'apps/multi' && d.event.digest === images[2]!.list!.digest), 'C refused only the partial index; it waits in the dead letters')
  t.ok(dead.some(d => d.event.kind === 'tag' && d.event.tag === 'v1'), 'the tag among them')
  t.match(dead[0]!.error, /MANIFEST_BLOB_UNKNOWN|manifest blob unknown/i, 'with the peer\'s reason')
  t.equal(s.c?.deadLetters, dead.length)
})

t.test('a blob the peer holds in another repository is mounted; dead letters are retried once the cause is gone', async t => {
  const i = images[0]!
  await pushImage(upstream.url, 'apps/oci-copy', 'v1', i.img)
  await pullThrough(a.url, 'apps/oci-copy', 'v1', i.img)
  t.ok(await recorded('apps/oci-copy', 'v1'))
  const s = await caughtUp(['b', 'c'])
  t.equal(s.b?.deadLetters, 0, 'B refused nothing')
  const layer = i.img.layers[0]!.digest
  t.ok(c.requests().some(r => r.method === 'POST' && r.path.startsWith(`/v2/apps/oci-copy/blobs/uploads/?mount=${encodeURIComponent(layer)}&from=apps%2Foci`) && r.status === 201),
    'C was asked to mount the layer from apps/oci, and did')
  t.equal((await get(`${c.url}/v2/apps/oci-copy/manifests/v1`, ACCEPT)).headers['docker-content-digest'], i.img.manifest.digest)

  // C refused the index because A held one platform: pull the other through A, then retry
  const multi = images[2]!
  const arm = JSON.parse(multi.list!.bytes.toString()).manifests.find((m: { platform: { architecture: string } }) => m.platform.architecture === 'arm64') as { digest: string }
  t.equal((await get(`${a.url}/v2/apps/multi/manifests/${arm.digest}`, ACCEPT)).status, 200)
  const armManifest = JSON.parse((await get(`${a.url}/v2/apps/multi/manifests/${arm.digest}`, ACCEPT)).body.toString()) as { config: { digest: string }, layers: { digest: string }[] }
  for (const d of [armManifest.config.digest, ...armManifest.layers.map(l => l.digest)]) t.equal((await pullBlob(`${a.url}/v2/apps/multi/blobs/${d}`)).digest, d)
  // the running replicator takes the new platform first; then the dead letters are retried
  await new Promise(resolve => setTimeout(resolve, 500))
  await caughtUp(['c'])
  const { stdout } = await run(process.execPath, [CLI, 'replicate', '--config', a.configPath, '--retry-dead'], { env: { ...process.env, PEER_B_SECRET: SECRET } })
  const r = JSON.parse(stdout.trim()) as { retried: number, delivered: number }
  t.ok(r.retried > 0 && r.delivered === r.retried, `every dead letter delivered (${r.delivered}/${r.retried})`)
  const top = await get(`${c.url}/v2/apps/multi/manifests/v1`, ACCEPT)
  t.equal(top.headers['docker-content-digest'], multi.list!.digest, 'C has the whole index now')
  t.equal((await status()).c?.deadLetters, 0, 'and no dead letters')
})

t.test('peer fallback: a region whose upstream is down gets what a peer region holds, and only that', async t => {
  const d = await startFerry({ config: {
    region: 'd',
    upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true, timeouts: { connect: '200ms' } }],
    replication: { peers: [{ name: 'a', url: a.url }], fallbackTimeout: '1s' },
  } })
  try {
    const i = images[0]!
    const asked = upstream.requests().length
    const m = await get(`${d.url}/v2/${i.name}/manifests/${i.img.manifest.digest}`, ACCEPT)
    t.equal(m.status, 200, 'a manifest by digest from region A')
    t.equal(digestOf(m.body), i.img.manifest.digest)
    for (const l of [i.img.config, ...i.img.layers]) {
      const p = await pullBlob(`${d.url}/v2/${i.name}/blobs/${l.digest}`)
      t.equal(p.digest, l.digest, 'a blob from region A, verified')
    }
    t.equal(upstream.requests().length, asked, 'A answered from what it holds: its upstream was not asked')
    const absent = blob('application/octet-stream', randomBytes(1000))
    await pushBlob(upstream.url, i.name, absent)
    const before = upstream.count('GET', absent.digest)
    const r = await get(`${d.url}/v2/${i.name}/blobs/${absent.digest}`)
    t.ok(r.status >= 500, `what A does not hold, D cannot get (${r.status})`)
    t.equal(upstream.count('GET', absent.digest), before, 'A did not fetch it from its upstream on D\'s behalf')
  } finally {
    await d.stop()
  }
})

t.test('a peer that is down: lag grows, nothing is lost, it drains when the peer is back', async t => {
  await b.stop()
  const late = await image({ files: { 'late.bin': randomBytes(2 * 1024 * 1024) } })
  await pushImage(upstream.url, 'apps/late', 'v1', late)
  await pullThrough(a.url, 'apps/late', 'v1', late)
  t.ok(await recorded('apps/late', 'v1'))
  await new Promise(resolve => setTimeout(resolve, 1500))
  const behind = await status()
  t.ok((behind.b?.eventsBehind ?? 0) > 0, `B is behind (${behind.b?.eventsBehind} events)`)
  t.equal(behind.c?.eventsBehind, 0, 'C, which is up, is not held back by B')
  b = await startFerry({ data: bData, config: bConfig(), env: { FERRY_REPLICATION_SECRET: SECRET } })
  const after = await caughtUp(['b'])
  t.equal(after.b?.eventsBehind, 0, 'drained')
  t.equal(after.b?.deadLetters, 0, 'nothing dead-lettered while B was away')
  const top = await get(`${b.url}/v2/apps/late/manifests/v1`, ACCEPT)
  t.equal(top.status, 200)
  const layer = await pullBlob(`${b.url}/v2/apps/late/blobs/${late.layers[0]!.digest}`)
  t.equal(layer.digest, late.layers[0]!.digest)
  images.push({ name: 'apps/late', tag: 'v1', img: late })
})

t.test('kill -9 of the replicator mid-blob: it resumes the upload, and B never shows the tag before its content', async t => {
  const big = blob('application/octet-stream', randomBytes(256 * 1024 * 1024))
  const img = await image()
  const withBig: Image = { ...img, layers: [...img.layers, big] }
  const manifest = blob(OCI_MANIFEST, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: img.config.mediaType, digest: img.config.digest, size: img.config.bytes.length },
    layers: withBig.layers.map(l => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })),
  })))
  await pushBlob(upstream.url, 'apps/big', big)
  await pushImage(upstream.url, 'apps/big', undefined, img)
  await pushManifest(upstream.url, 'apps/big', 'v1', manifest)
  await pullThrough(a.url, 'apps/big', 'v1', { ...withBig, manifest })

  // B answers only from what was replicated: a tag that resolves must have all its bytes
  let sawIncomplete = false
  let watching = true
  const watcher = (async () => {
    while (watching) {
      const m = await get(`${b.url}/v2/apps/big/manifests/v1`, ACCEPT)
      if (m.status === 200) {
        for (const l of withBig.layers) {
          const h = await get(`${b.url}/v2/apps/big/blobs/${l.digest}`, {}, 'HEAD')
          if (h.status !== 200 || Number(h.headers['content-length']) !== l.bytes.length) sawIncomplete = true
        }
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })()

  const uploads = join(bData, 'uploads')
  const partial = (): number => Math.max(0, ...readdirSync(uploads).map(f => statSync(join(uploads, f)).size))
  const deadline = Date.now() + 30_000
  while (partial() < 64 * 1024 * 1024 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
  const held = partial()
  t.ok(held > 0 && held < big.bytes.length, `killed with ${held} of ${big.bytes.length} bytes at B`)
  await replicator!.stop('SIGKILL')

  const restarted = startReplicator()
  t.ok(await recorded('apps/big', 'v1'))
  const s = await caughtUp(['b'], 120_000)
  watching = false
  await watcher
  t.equal(s.b?.eventsBehind, 0, 'caught up after the restart')
  t.equal(s.b?.deadLetters, 0, 'nothing dead-lettered by the restart')
  t.notOk(sawIncomplete, 'B never showed the tag before all its blobs')
  t.ok(restarted.lines.some(l => l.includes('resuming an upload') && /"offset":[1-9]/.test(l)), 'the restarted replicator resumed the upload at the offset B held')
  const got = await pullBlob(`${b.url}/v2/apps/big/blobs/${big.digest}`)
  t.equal(got.digest, big.digest, 'B has the right bytes')
  images.push({ name: 'apps/big', tag: 'v1', img: { ...withBig, manifest } })
})

t.test('DR: with the upstream and region A dead, every image pulls from B by tag and by digest with skopeo', async t => {
  await replicator?.stop()
  await a.stop()
  await upstream.stop()
  for (const i of images) {
    const ref = `${b.host}/${i.name}`
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}:${i.tag}`)
    t.equal(raw, (i.list ?? i.img.manifest).bytes.toString(), `${i.name}:${i.tag} by tag, the same bytes`)
    const dir = scratchDir('ferry-dr-')
    // skopeo verifies every blob against its digest as it copies; dir: keeps the manifest as it is
    await skopeo('copy', '--src-tls-verify=false', `docker://${ref}@${i.img.manifest.digest}`, `dir:${dir}`)
    t.equal(readFileSync(join(dir, 'manifest.json'), 'utf8'), i.img.manifest.bytes.toString(), `${i.name}@${i.img.manifest.digest.slice(0, 19)} by digest`)
    for (const l of i.img.layers) t.equal(statSync(join(dir, l.digest.slice(7))).size, l.bytes.length, 'each layer copied whole')
  }
})

t.test('DR: containerd with region A then region B in hosts.toml fails over to B', async t => {
  const { sock, hosts, stop } = await startContainerd({ [upstream.host]: [a.url, b.url] })
  t.teardown(stop)
  const i = images[0]!
  const ref = `${upstream.host}/${i.name}:${i.tag}`
  const { stdout } = await run('ctr', ['--address', sock, 'images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', ref], { maxBuffer: 16 * 1024 * 1024 })
  t.match(stdout, /done/)
  const ls = (await run('ctr', ['--address', sock, 'images', 'ls'])).stdout
  t.match(ls, i.img.manifest.digest, 'the image as region A had it')
  const content = (await run('ctr', ['--address', sock, 'content', 'ls'])).stdout
  for (const l of i.img.layers) t.match(content, l.digest, 'every layer fetched')
  t.ok(b.logs().some(l => l.msg === 'request' && l.path === `/v2/${i.name}/blobs/${i.img.layers[0]!.digest}` && l.status === 200), 'from region B')
})
