// Garbage collection of hosted repositories, online: pushes while it runs
// every second lose nothing; what no tag reaches goes after the grace
// period, bytes measured on the store before and after; `ferry gc --dry-run`
// says what would go and changes nothing.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { CLI, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { digestOf, image, pushImage, type Image } from '../helpers/images.ts'
import { registerSecret } from '../helpers/secrets.ts'

const run = promisify(execFile)
const PASSWORD = 'gc-Admin-Passw0rd'
const AUTH = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`

function config (gc: Record<string, string>): Record<string, unknown> {
  return {
    upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', prefix: 'nowhere.test', default: true }],
    hosted: [{ prefix: 'acme/' }],
    gc,
    auth: { users: { admin: bcrypt.hashSync(PASSWORD, 6) }, access: [{ repositories: ['acme/**'], allow: { 'user:admin': 'admin' } }] },
  }
}

/** Bytes of the blobs (and manifests) in an fs store. */
function storeBytes (f: Ferry): number {
  let n = 0
  const walk = (d: string): void => { for (const e of readdirSync(d, { withFileTypes: true })) { const p = join(d, e.name); if (e.isDirectory()) walk(p); else n += statSync(p).size } }
  walk(join(f.data, 'blobs'))
  return n
}
const inStore = (f: Ferry, digest: string): boolean => existsSync(join(f.data, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7)))

async function pullsWhole (f: Ferry, repo: string, tag: string, img: Image): Promise<boolean> {
  const m = await get(`${f.url}/v2/${repo}/manifests/${tag}`, { authorization: AUTH, accept: img.manifest.mediaType })
  if (m.header('docker-content-digest') !== img.manifest.digest) return false
  for (const b of [img.config, ...img.layers]) {
    const r = await get(`${f.url}/v2/${repo}/blobs/${b.digest}`, { authorization: AUTH })
    if (r.status !== 200 || digestOf(r.body) !== b.digest) return false
  }
  return true
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

t.test('100 pushes while garbage collection runs every second lose nothing; what no tag reaches goes after the grace period', async t => {
  registerSecret(PASSWORD)
  const f = await startFerry({ config: config({ interval: '1s', grace: '3s' }) })
  t.teardown(() => f.stop())
  const images: Image[] = []
  for (let i = 0; i < 100; i++) images.push(await image({ files: { [`f${i}.txt`]: `image ${i}\n` } }))
  for (let i = 0; i < images.length; i += 10) {
    await Promise.all(images.slice(i, i + 10).map((img, j) => pushImage(f.url, `acme/load${(i + j) % 7}`, undefined, img, AUTH)))
    // tag each one (a manifest PUT by tag) while the collector runs
    await Promise.all(images.slice(i, i + 10).map(async (img, j) => {
      const res = await fetch(`${f.url}/v2/acme/load${(i + j) % 7}/manifests/t${i + j}`, { method: 'PUT', headers: { authorization: AUTH, 'content-type': img.manifest.mediaType }, body: img.manifest.bytes })
      await res.arrayBuffer()
      if (res.status !== 201) throw new Error(`tag ${i + j}: ${res.status}`)
    }))
    await sleep(150)
  }
  // the collector has run several times over all of it; everything is tagged, so everything stays
  await sleep(4500)
  let whole = 0
  for (const [i, img] of images.entries()) if (await pullsWhole(f, `acme/load${i % 7}`, `t${i}`, img)) whole++
  t.equal(whole, 100, 'every pushed image pulls whole after the collections')
  t.ok((await f.waitForLogs(l => l.msg === 'garbage collected', 3)).length >= 3, 'the collector ran meanwhile')

  // untag twenty: after the grace period their manifests and blobs leave the repositories and the store
  const before = storeBytes(f)
  const dropped = images.slice(0, 20)
  for (const [i] of dropped.entries()) {
    const res = await get(`${f.url}/v2/acme/load${i % 7}/manifests/t${i}`, { authorization: AUTH }, 'DELETE')
    t.equal(res.status, 202)
  }
  let gone = false
  for (let i = 0; i < 40 && !gone; i++) {
    await sleep(250)
    gone = dropped.every(img => !inStore(f, img.layers[0]!.digest) && !inStore(f, img.manifest.digest))
  }
  t.ok(gone, 'their layers and manifests are gone from the store')
  const after = storeBytes(f)
  const expected = dropped.reduce((n, img) => n + img.layers[0]!.bytes.length + img.config.bytes.length + img.manifest.bytes.length, 0)
  t.ok(before - after >= expected * 0.9, `the store shrank by ${before - after} bytes (their blobs and manifests: ${expected})`)
  for (const [i, img] of images.slice(20).entries()) {
    const n = i + 20
    const m = await get(`${f.url}/v2/acme/load${n % 7}/manifests/t${n}`, { authorization: AUTH, accept: img.manifest.mediaType })
    if (m.header('docker-content-digest') !== img.manifest.digest) { t.fail(`image ${n} lost its tag`); break }
  }
  t.equal((await get(`${f.url}/v2/acme/load0/blobs/${dropped[0]!.layers[0]!.digest}`, { authorization: AUTH })).status, 404, 'an untagged image\'s layer is unknown')
})

t.test('ferry gc --dry-run says what would go and the bytes; ferry gc removes it', async t => {
  const f = await startFerry({ config: config({ interval: '1h', grace: '1s' }) })
  t.teardown(() => f.stop())
  const kept = await image({ files: { 'kept.txt': 'kept\n' } })
  const dropped = await image({ files: { 'dropped.txt': 'dropped\n' } })
  await pushImage(f.url, 'acme/cli', 'kept', kept, AUTH)
  await pushImage(f.url, 'acme/cli', 'dropped', dropped, AUTH)
  t.equal((await get(`${f.url}/v2/acme/cli/manifests/dropped`, { authorization: AUTH }, 'DELETE')).status, 202)
  await sleep(1500)
  const before = storeBytes(f)
  const gc = async (...args: string[]): Promise<Record<string, unknown>[]> => {
    const { stdout } = await run(process.execPath, [CLI, 'gc', '--config', f.configPath, ...args])
    return stdout.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  }
  const dry = await gc('--dry-run')
  const summary = dry[dry.length - 1]!
  t.equal(summary.dryRun, true)
  const deleted = dry.filter(l => typeof l.deleted === 'object').map(l => (l.deleted as { digest: string }).digest)
  t.same(deleted.sort(), [dropped.manifest.digest, dropped.config.digest, dropped.layers[0]!.digest].sort(), 'exactly the untagged image\'s manifest, config and layer')
  t.equal(summary.bytes, dropped.manifest.bytes.length + dropped.config.bytes.length + dropped.layers[0]!.bytes.length, 'and their bytes')
  t.equal(storeBytes(f), before, 'a dry run changes nothing')
  t.ok(await pullsWhole(f, 'acme/cli', 'kept', kept), 'the kept image pulls whole before the real run')
  const real = await gc()
  t.equal(real[real.length - 1]!.bytes, summary.bytes, 'the real run removes what the dry run said')
  t.notOk(inStore(f, dropped.layers[0]!.digest), 'the layer is gone')
  t.ok(inStore(f, kept.layers[0]!.digest), 'the kept image\'s layer stays')
  const m = await get(`${f.url}/v2/acme/cli/manifests/kept`, { authorization: AUTH, accept: kept.manifest.mediaType })
  t.equal(m.header('docker-content-digest'), kept.manifest.digest, 'and its tag pulls')
})
