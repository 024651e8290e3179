// ferry mirror against a real docker-registry: a list of several
// repositories (tags by name, by pattern and by semver range, an index
// filtered to one platform, an image with referrers), the report, a second
// run that fetches no blob, a dry run, a failing image that does not stop
// the others, and a list that is not one.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { stringify } from 'yaml'
import { CLI, startFerry, type Ferry } from '../helpers/ferry.ts'
import { startFaulty, type Faulty } from '../helpers/faulty.ts'
import { get } from '../helpers/http.ts'
import { blob, image, pushBlob, pushImage, pushManifest, OCI_INDEX, OCI_MANIFEST, type Image } from '../helpers/images.ts'
import { scratchDir } from '../helpers/procs.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { seedStandard, type Seeded } from '../helpers/seed.ts'

const execFileP = promisify(execFile)
interface Ref { reference: string, digest: string, platforms?: { whole: boolean, kept: string[] }, blobs: number, fetched: number, referrers: string[], manifests: number }
interface Report { dryRun: boolean, images: { name: string, references: Ref[], failures: { reference: string, reason: string }[] }[], references: number, blobsFetched: number, bytesFetched: number, failures: number }

async function mirror (ferry: Ferry, list: string, ...extra: string[]): Promise<{ code: number, report: Report, stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, 'mirror', '--config', ferry.configPath, '--list', list, ...extra], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 })
    return { code: 0, report: JSON.parse(stdout) as Report, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, report: (e.stdout ?? '').trim() === '' ? undefined as unknown as Report : JSON.parse(e.stdout!) as Report, stderr: e.stderr ?? '' }
  }
}

let upstream: Registry
let ferry: Ferry
let seeded: Seeded
const versions: Record<string, Image> = {}
const dir = scratchDir('ferry-mirror-')

t.before(async () => {
  upstream = await startRegistry()
  seeded = await seedStandard(upstream.url)
  for (const tag of ['1.25.0', '1.26.1', '1.27.0', '2.0.0', '1.26-alpine', 'build-1', 'build-2', 'release-1']) {
    versions[tag] = await image({ files: { 'version.txt': `${tag}\n` } })
    await pushImage(upstream.url, 'test/versions', tag, versions[tag]!)
  }
  ferry = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, prefix: 'upstream.test' }] } })
})
t.teardown(async () => { await ferry?.stop(); await upstream?.stop() })

const blobGets = (): number => upstream.requests().filter(r => r.method === 'GET' && r.path.includes('/blobs/')).length
/** The registry writes its access log after it answered: the count once it has stopped moving. */
async function settledBlobGets (): Promise<number> {
  for (let last = -1; ;) {
    const now = blobGets()
    if (now === last) return now
    last = now
    await new Promise(resolve => setTimeout(resolve, 300))
  }
}

t.test('a list of several repositories: tags, patterns, semver, one platform of an index, referrers; a second run fetches no blob', async t => {
  const list = join(dir, 'mirror.yaml')
  writeFileSync(list, stringify({
    images: [
      { name: 'upstream.test/test/oci', tags: ['v1'] },
      { name: 'upstream.test/test/versions', semver: '>=1.26 <2' },
      { name: 'upstream.test/test/versions', tagPattern: 'build-.*' },
      { name: 'upstream.test/test/multi', tags: ['v1'], platforms: ['linux/arm64'] },
      { name: 'upstream.test/test/docker', digests: [seeded.docker.manifest.digest] },
    ],
  }))
  const first = await mirror(ferry, list)
  t.equal(first.code, 0, `exit 0 (${first.stderr.split('\n').slice(-3).join(' ')})`)
  const r = first.report
  t.equal(r.failures, 0)
  t.same(r.images.map(i => i.name), ['upstream.test/test/oci', 'upstream.test/test/versions', 'upstream.test/test/versions', 'upstream.test/test/multi', 'upstream.test/test/docker'])
  const oci = r.images[0]!.references[0]!
  t.equal(oci.digest, seeded.oci.manifest.digest)
  t.same(oci.referrers.sort(), [seeded.sbom.manifest.digest, seeded.sig.manifest.digest].sort(), 'both referrers followed')
  t.same(r.images[1]!.references.map(x => x.reference).sort(), ['1.26.1', '1.27.0'], 'the semver range: not 1.25.0, 2.0.0 or 1.26-alpine')
  t.same(r.images[2]!.references.map(x => x.reference).sort(), ['build-1', 'build-2'], 'the pattern')
  const multi = r.images[3]!.references[0]!
  t.same(multi.platforms, { whole: false, kept: ['linux/arm64'] }, 'the index filtered to one platform, and said so')
  t.equal(r.images[4]!.references[0]!.digest, seeded.docker.manifest.digest)

  // what the upstream was asked for: every wanted blob once, nothing of amd64 or of unlisted tags
  await settledBlobGets()
  const asked = new Set(upstream.requests().filter(x => x.method === 'GET' && x.path.includes('/blobs/')).map(x => x.path.split('/blobs/')[1]))
  for (const img of [seeded.oci, seeded.arm64, seeded.docker, versions['1.26.1']!, versions['build-2']!]) {
    for (const b of [img.config, ...img.layers]) t.ok(asked.has(b.digest), `fetched ${b.digest.slice(0, 19)}`)
  }
  for (const img of [seeded.amd64, versions['1.25.0']!, versions['2.0.0']!, versions['1.26-alpine']!, versions['release-1']!]) {
    t.notOk(asked.has(img.layers[0]!.digest), 'not fetched: a platform or a tag the list does not want')
  }
  for (const b of [seeded.sbom.layer, seeded.sig.layer]) t.ok(asked.has(b.digest), 'the referrers\' blobs too')

  // the region serves it all now: by tag and by digest
  const arm = await get(`${ferry.url}/v2/upstream.test/test/multi/manifests/${seeded.arm64.manifest.digest}`, { accept: OCI_MANIFEST })
  t.equal(arm.status, 200)
  const referrers = await get(`${ferry.url}/v2/upstream.test/test/oci/referrers/${seeded.oci.manifest.digest}`, { accept: OCI_INDEX })
  t.equal(referrers.status, 200)

  const before = await settledBlobGets()
  const second = await mirror(ferry, list)
  t.equal(second.code, 0)
  t.equal(await settledBlobGets() - before, 0, 'a second run fetches no blob')
  t.equal(second.report.blobsFetched, 0)
  t.equal(second.report.bytesFetched, 0)
  t.same(second.report.images.map(i => i.references.map(x => x.digest)), r.images.map(i => i.references.map(x => x.digest)), 'the same digests')
})

t.test('a dry run fetches manifests only and says how many bytes a run would fetch', async t => {
  const img = await image({ files: { 'new.txt': 'not mirrored yet\n' } })
  await pushImage(upstream.url, 'test/fresh', 'v1', img)
  const list = join(dir, 'fresh.yaml')
  writeFileSync(list, stringify({ images: [{ name: 'upstream.test/test/fresh', tags: ['v1'] }] }))
  const before = await settledBlobGets()
  const dry = await mirror(ferry, list, '--dry-run')
  t.equal(dry.code, 0)
  t.equal(dry.report.dryRun, true)
  t.equal(await settledBlobGets() - before, 0, 'no blob fetched')
  const size = img.config.bytes.length + img.layers.reduce((n, l) => n + l.bytes.length, 0)
  t.equal(dry.report.bytesFetched, size, 'the bytes a run would fetch')
  t.equal(dry.report.images[0]!.references[0]!.fetched, size)
})

t.test('a real run: each blob fetched whole once, verified into the region; a manifest that misstates a blob\'s size fails', async t => {
  const img = await image({ files: { 'whole.txt': 'fetched once, kept whole\n'.repeat(2000) } })
  await pushImage(upstream.url, 'test/whole', 'v1', img)
  const list = join(dir, 'whole.yaml')
  writeFileSync(list, stringify({ images: [{ name: 'upstream.test/test/whole', tags: ['v1'], referrers: false }] }))
  const before = await settledBlobGets()
  const run = await mirror(ferry, list)
  const size = img.config.bytes.length + img.layers.reduce((n, l) => n + l.bytes.length, 0)
  t.equal(run.code, 0)
  t.equal(run.report.bytesFetched, size, 'the bytes of the blobs, counted once')
  t.equal(await settledBlobGets() - before, 2, 'each blob asked of the upstream once')
  for (const b of [img.config, ...img.layers]) {
    const got = await get(`${ferry.url}/v2/upstream.test/test/whole/blobs/${b.digest}`)
    t.equal(got.status, 200)
    t.equal(createHash('sha256').update(got.body).digest('hex'), b.digest.slice(7), 'the region serves it with its digest')
  }

  // another image, named by a manifest that says its layer is one byte longer than it is (distribution takes it; a client would not)
  const other = await image({ files: { 'other.txt': 'a layer of some other size\n'.repeat(500) } })
  for (const b of [...other.layers, other.config]) await pushBlob(upstream.url, 'test/whole', b)
  const lying = JSON.parse(other.manifest.bytes.toString()) as { layers: { size: number }[] }
  lying.layers[0]!.size += 1
  await pushManifest(upstream.url, 'test/whole', 'lying', blob(OCI_MANIFEST, Buffer.from(JSON.stringify(lying))))
  const lyingList = join(dir, 'lying.yaml')
  writeFileSync(lyingList, stringify({ images: [{ name: 'upstream.test/test/whole', tags: ['lying'], referrers: false }] }))
  const refused = await mirror(ferry, lyingList)
  t.equal(refused.code, 1, 'exit 1')
  t.match(refused.report.images[0]!.failures[0]!, { reference: 'lying', reason: /is \d+ bytes, not the \d+ its manifest says/ })
})

t.test('a failing image is reported with its reason and the others go on; exit 1', async t => {
  const list = join(dir, 'partly.yaml')
  writeFileSync(list, stringify({ images: [
    { name: 'upstream.test/test/missing', tags: ['v1'] },
    { name: 'elsewhere.example/test/oci', tags: ['v1'] },
    { name: 'upstream.test/test/oci', tags: ['v1', 'nope'] },
  ] }))
  const run = await mirror(ferry, list)
  t.equal(run.code, 1, 'exit 1')
  t.equal(run.report.failures, 3)
  t.match(run.report.images[0]!.failures[0]!.reason, /404|unknown/i)
  t.match(run.report.images[1]!.failures[0]!.reason, /404 MANIFEST_UNKNOWN/, 'the one upstream takes any name: it does not have this one')
  t.same(run.report.images[2]!.references.map(x => x.reference), ['v1'], 'the rest mirrored')
  t.same(run.report.images[2]!.failures.map(f => f.reference), ['nope'])
})

t.test('a list that is not one is refused whole, each problem named', async t => {
  const list = join(dir, 'bad.yaml')
  writeFileSync(list, stringify({ images: [{ name: 'alpine', tags: ['3.20'] }, { name: 'docker.io/library/x', semver: 'not a range', platforms: ['linux'] }, { name: 'docker.io/library/y' }], extra: 1 }))
  const run = await mirror(ferry, list)
  t.equal(run.code, 1)
  t.match(run.stderr, /images\.0\.name/)
  t.match(run.stderr, /images\.1\.semver: expected a semver range/)
  t.match(run.stderr, /images\.1\.platforms\.0/)
  t.match(run.stderr, /extra/)
})

/** `ferry mirror` of `name`:v1 by an edge whose upstream answers through a faulty front with `fault`. */
async function mirrorThroughFaulty (t: Test, fault: Faulty['fault'], name: string): ReturnType<typeof mirror> {
  const faulty = await startFaulty(upstream.url)
  t.teardown(() => faulty.close())
  faulty.fault = fault
  const edge = await startFerry({ config: { upstreams: [{ name: 'up', url: faulty.url, prefix: 'upstream.test' }] } })
  t.teardown(() => edge.stop())
  const list = join(dir, `${name.replaceAll('/', '-')}.yaml`)
  writeFileSync(list, stringify({ images: [{ name, tags: ['v1'], referrers: false }] }))
  return await mirror(edge, list)
}

t.test('an upstream that answers 429: the mirror slows down and finishes, it does not fail', async t => {
  let limited = 0
  const run = await mirrorThroughFaulty(t, req => req.url?.includes('/manifests/') === true && limited++ < 2 ? { status: 429, headers: { 'retry-after': '1' } } : undefined, 'upstream.test/test/oci')
  t.equal(run.code, 0, 'exit 0')
  t.equal(run.report.failures, 0)
  t.equal(run.report.images[0]!.references[0]!.digest, seeded.oci.manifest.digest)
  t.equal(limited, 3, 'told to slow down twice, then let through')
  t.match(run.stderr, /the upstream asked to slow down; waiting/)
})

t.test('an upstream whose RateLimit-Remaining runs low: the mirror paces its requests before any 429, and finishes', async t => {
  // Docker Hub's form: the count, and the window in seconds
  const run = await mirrorThroughFaulty(t, () => ({ addHeaders: { 'ratelimit-limit': '100;w=1', 'ratelimit-remaining': '2;w=1' } }), 'upstream.test/test/docker')
  t.equal(run.code, 0, 'exit 0')
  t.equal(run.report.images[0]!.references[0]!.digest, seeded.docker.manifest.digest)
  t.match(run.stderr, /the upstream's rate limit is nearly spent; pacing requests/, 'it says it slowed down')
  t.match(run.stderr, /"remaining":2,"waitMs":500/, 'each request waits its share of the window')
})
