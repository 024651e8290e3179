// Export on the connected side, import on an air-gapped one whose region has
// no upstream at all, and pulls there with real clients under the names the
// connected side uses: skopeo (also straight from the bundle, as an
// oci-archive) and containerd through a hosts.toml. Then the incremental
// bundle made from the far site's inventory, bundles that lie (a flipped
// byte, a missing part, a truncated part, a blob that is not what it says),
// an import killed with SIGKILL and run again, and multi-part and zstd
// bundles.
import { execFile, execFileSync } from 'node:child_process'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { stringify } from 'yaml'
import { startContainerd } from '../helpers/containerd.ts'
import { CLI, NODE_FLAGS, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, pushImage, OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, type Image } from '../helpers/images.ts'
import { freePort, scratchDir, startProc } from '../helpers/procs.ts'
import { requireBinary, startRegistry, type Registry } from '../helpers/registry.ts'
import { seedStandard, type Seeded } from '../helpers/seed.ts'

const execFileP = promisify(execFile)
const ACCEPT = { accept: [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST].join(', ') }

interface Ran { code: number, stdout: string, stderr: string }
async function ferryCli (args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args], { timeout: 180_000, maxBuffer: 64 * 1024 * 1024 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

let upstream: Registry
let seeded: Seeded
let big: Image
let connected: Ferry
let site: Ferry
let siteConfig: Record<string, unknown>
const dir = scratchDir('ferry-airgap-')

t.before(async () => {
  upstream = await startRegistry()
  seeded = await seedStandard(upstream.url)
  big = await image({ files: { 'big.bin': randomBytes(6 * 1024 * 1024) } })
  await pushImage(upstream.url, 'test/big', 'v1', big)
  connected = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, prefix: 'upstream.test' }] } })
  siteConfig = { listen: `127.0.0.1:${await freePort()}`, upstreams: [], hosted: [{ prefix: 'upstream.test/' }] }
  site = await startFerry({ config: siteConfig })
})
t.teardown(async () => { await site?.stop(); await connected?.stop(); await upstream?.stop() })

const list = join(dir, 'mirror.yaml')
writeFileSync(list, stringify({ images: [
  { name: 'upstream.test/test/oci', tags: ['v1'] },
  { name: 'upstream.test/test/multi', tags: ['v1'] },
  { name: 'upstream.test/test/docker', tags: ['v1'] },
  { name: 'upstream.test/test/big', tags: ['v1'] },
] }))

async function exportTo (out: string, ...extra: string[]): Promise<{ code: number, report: { parts: number, blobs: number, manifests: number, skipped: number, failures: unknown[] }, stderr: string }> {
  const r = await ferryCli(['export', '--config', connected.configPath, '--list', list, '--out', out, ...extra])
  return { code: r.code, report: r.stdout.trim() === '' ? undefined as never : JSON.parse(r.stdout), stderr: r.stderr }
}
async function importFrom (bundle: string, f: Ferry = site): Promise<{ code: number, report: { images: number, tags: number, blobs: number }, stderr: string }> {
  const r = await ferryCli(['import', '--config', f.configPath, bundle])
  return { code: r.code, report: r.stdout.trim() === '' ? undefined as never : JSON.parse(r.stdout), stderr: r.stderr }
}
const siteTags = async (repo: string): Promise<string[]> => {
  const r = await get(`${site.url}/v2/${repo}/tags/list`)
  return r.status === 200 ? (r.json<{ tags: string[] }>().tags ?? []).sort() : []
}

t.test('export, import where there is no upstream, pull with skopeo and containerd by the connected side\'s names', async t => {
  const out = join(dir, 'bundle')
  const exported = await exportTo(out)
  t.equal(exported.code, 0, `export exit 0 ${exported.stderr.slice(-300)}`)
  t.equal(exported.report.parts, 1)
  t.same(readdirSync(out).sort(), ['bundle.json', 'bundle.tar'])

  const imported = await importFrom(out)
  t.equal(imported.code, 0, `import exit 0 ${imported.stderr.slice(-300)}`)
  t.equal(imported.report.tags, 4)
  t.ok(imported.report.blobs > 0)

  requireBinary('skopeo', 'skopeo')
  const host = `127.0.0.1:${site.port}`
  const raw = execFileSync('skopeo', ['--insecure-policy', 'inspect', '--raw', '--tls-verify=false', `docker://${host}/upstream.test/test/oci:v1`])
  t.equal(raw.toString(), seeded.oci.manifest.bytes.toString(), 'skopeo: the manifest byte for byte, by tag')
  const copy = join(dir, 'copy-big')
  execFileSync('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${host}/upstream.test/test/big:v1`, `oci:${copy}:v1`], { stdio: 'ignore' })
  const layer = big.layers[0]!.digest
  t.equal(createHash('sha256').update(readFileSync(join(copy, 'blobs', 'sha256', layer.slice(7)))).digest('hex'), layer.slice(7), 'skopeo copy: the 6 MiB layer, byte for byte')
  for (const [repo, img] of [['test/docker', seeded.docker], ['test/multi', { manifest: seeded.multi }]] as const) {
    const byDigest = await get(`${site.url}/v2/upstream.test/${repo}/manifests/${img.manifest.digest}`, ACCEPT)
    t.equal(byDigest.status, 200, `${repo} by digest`)
    t.equal(byDigest.headers['docker-content-digest'], img.manifest.digest)
  }
  const armByDigest = await get(`${site.url}/v2/upstream.test/test/multi/manifests/${seeded.arm64.manifest.digest}`, ACCEPT)
  t.equal(armByDigest.status, 200, 'each platform of the index')
  const referrers = await get(`${site.url}/v2/upstream.test/test/oci/referrers/${seeded.oci.manifest.digest}`, { accept: OCI_INDEX })
  t.equal(referrers.status, 200)
  const found = referrers.json<{ manifests: { digest: string }[] }>().manifests.map(m => m.digest).sort()
  t.same(found, [seeded.sbom.manifest.digest, seeded.sig.manifest.digest].sort(), 'the referrers API finds the signature and the SBOM')

  // containerd with a hosts.toml that names the connected side's registry: ?ns=upstream.test
  const containerd = await startContainerd({ 'upstream.test': [`http://${host}`] })
  t.teardown(() => containerd.stop())
  execFileSync('ctr', ['--address', containerd.sock, 'images', 'pull', '--hosts-dir', containerd.hosts, '--snapshotter', 'native', '--platform', 'linux/arm64', 'upstream.test/test/multi:v1'], { stdio: 'ignore' })
  const content = execFileSync('ctr', ['--address', containerd.sock, 'content', 'ls'], { encoding: 'utf8' })
  t.match(content, seeded.arm64.layers[0]!.digest, 'ctr pulled the arm64 layer through hosts.toml')

  // the bundle is an OCI layout tar other tools read
  const fromArchive = execFileSync('skopeo', ['--insecure-policy', 'inspect', '--raw', `oci-archive:${join(out, 'bundle.tar')}:upstream.test/test/oci:v1`])
  t.equal(fromArchive.toString(), seeded.oci.manifest.bytes.toString(), 'skopeo reads the single-part bundle as an oci-archive')

  const again = await importFrom(out)
  t.equal(again.code, 0)
  t.equal(again.report.blobs, 0, 'importing twice changes nothing: no blob moved')
  t.same(await siteTags('upstream.test/test/oci'), ['v1'])
})

t.test('podman pulls the imported images by tag and by digest through a path mirror', async t => {
  requireBinary('podman', 'podman')
  requireBinary('unshare', 'util-linux')
  const pdir = scratchDir('ferry-airgap-podman-')
  for (const sub of ['root', 'run', 'tmp', 'varlib']) mkdirSync(join(pdir, sub))
  const conf = join(pdir, 'registries.conf')
  writeFileSync(conf, ['[[registry]]', 'prefix = "upstream.test"', 'location = "127.0.0.1:1"', '', '[[registry.mirror]]', `location = "${site.host}/upstream.test"`, 'insecure = true', ''].join('\n'))
  const podman = `CONTAINERS_REGISTRIES_CONF=${conf} podman --root ${pdir}/root --runroot ${pdir}/run --tmpdir ${pdir}/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file`
  const script = [
    'set -e', 'mount -t tmpfs tmpfs /run', 'mkdir -p /var/lib/containers', `mount --bind ${pdir}/varlib /var/lib/containers`,
    `${podman} pull upstream.test/test/docker:v1`,
    `${podman} pull upstream.test/test/oci@${seeded.oci.manifest.digest}`,
    `${podman} images --digests --format '{{.Repository}}:{{.Tag}} {{.Digest}}'`,
  ].join('\n')
  const { stdout } = await execFileP('unshare', ['-m', 'bash', '-c', script], { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 })
  t.match(stdout, `upstream.test/test/docker:v1 ${seeded.docker.manifest.digest}`, 'by tag, with the upstream digest')
  t.match(stdout, seeded.oci.manifest.digest, 'by digest')
})

t.test('incremental: export --since the site\'s signed inventory carries only what it lacks', async t => {
  const v2 = await image({ files: { 'v2.txt': 'the second tag\n' } })
  await pushImage(upstream.url, 'test/oci', 'v2', v2)
  const keys = generateKeyPairSync('ed25519')
  writeFileSync(join(dir, 'site.key'), keys.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  writeFileSync(join(dir, 'site.pub'), keys.publicKey.export({ type: 'spki', format: 'pem' }))
  const inv = await ferryCli(['inventory', '--config', site.configPath, '--key', join(dir, 'site.key')])
  t.equal(inv.code, 0)
  writeFileSync(join(dir, 'site.inv'), inv.stdout)
  const parsed = JSON.parse(inv.stdout) as { repositories: { name: string, tags: Record<string, string> }[], blobs: string[], signature: string }
  t.equal(parsed.repositories.find(r => r.name === 'upstream.test/test/oci')?.tags.v1, seeded.oci.manifest.digest)
  t.ok(parsed.blobs.includes(big.layers[0]!.digest))

  writeFileSync(list, stringify({ images: [{ name: 'upstream.test/test/oci', tags: ['v1', 'v2'] }, { name: 'upstream.test/test/big', tags: ['v1'] }] }))
  const forged = JSON.stringify({ ...parsed, blobs: [] })
  writeFileSync(join(dir, 'forged.inv'), forged)
  const refused = await exportTo(join(dir, 'forged-out'), '--since', join(dir, 'forged.inv'), '--trust', join(dir, 'site.pub'))
  t.equal(refused.code, 1, 'an inventory changed after signing is refused')

  const out = join(dir, 'delta')
  const delta = await exportTo(out, '--since', join(dir, 'site.inv'), '--trust', join(dir, 'site.pub'))
  t.equal(delta.code, 0, delta.stderr.slice(-300))
  t.equal(delta.report.manifests + delta.report.blobs, 3, 'only v2\'s manifest, config and layer go')
  t.ok(delta.report.skipped >= 5, `what the site has stays out (${delta.report.skipped})`)
  const imported = await importFrom(out)
  t.equal(imported.code, 0, imported.stderr.slice(-300))
  t.same(await siteTags('upstream.test/test/oci'), ['v1', 'v2'], 'the new tag, and the old one still')
  const v2raw = await get(`${site.url}/v2/upstream.test/test/oci/manifests/v2`, ACCEPT)
  t.equal(v2raw.headers['docker-content-digest'], v2.manifest.digest)
  t.equal((await get(`${site.url}/v2/upstream.test/test/big/blobs/${big.layers[0]!.digest}`)).status, 200, 'and the old content')
})

t.test('a bundle that lies is refused, naming the part or the digest, and nothing is published', async t => {
  const v3 = await image({ files: { 'v3.txt': randomBytes(3 * 1024 * 1024) } })
  await pushImage(upstream.url, 'test/lies', 'v3', v3)
  writeFileSync(list, stringify({ images: [{ name: 'upstream.test/test/lies', tags: ['v3'] }] }))
  const good = join(dir, 'lies')
  t.equal((await exportTo(good, '--part-size', '1MiB')).code, 0)
  const manifest = JSON.parse(readFileSync(join(good, 'bundle.json'), 'utf8')) as { parts: { file: string, size: number, sha256: string }[] }
  t.ok(manifest.parts.length >= 3, `several parts (${manifest.parts.length})`)
  const variant = (name: string, change: (d: string) => void): string => {
    const d = join(dir, name)
    cpSync(good, d, { recursive: true })
    change(d)
    return d
  }
  const flipped = variant('flipped', d => {
    const p = join(d, manifest.parts[1]!.file)
    const bytes = readFileSync(p)
    bytes[1000] = bytes[1000]! ^ 0xff
    writeFileSync(p, bytes)
  })
  const missing = variant('missing', d => { rmSync(join(d, manifest.parts[2]!.file)) })
  const truncated = variant('truncated', d => { truncateSync(join(d, manifest.parts[0]!.file), 1000) })
  const relabelled = variant('relabelled', d => {
    // a byte changed and bundle.json rewritten to match: only the blob's own digest can tell
    const p = join(d, manifest.parts[1]!.file)
    const bytes = readFileSync(p)
    bytes[5000] = bytes[5000]! ^ 0xff
    writeFileSync(p, bytes)
    const m = JSON.parse(readFileSync(join(d, 'bundle.json'), 'utf8')) as typeof manifest
    m.parts[1]!.sha256 = createHash('sha256').update(bytes).digest('hex')
    writeFileSync(join(d, 'bundle.json'), JSON.stringify(m))
  })
  for (const [bundle, why] of [[flipped, new RegExp(`part ${manifest.parts[1]!.file} has sha256`)], [missing, new RegExp(`part ${manifest.parts[2]!.file} is missing`)], [truncated, new RegExp(`part ${manifest.parts[0]!.file} is 1000 bytes`)], [relabelled, /blob sha256:[a-f0-9]{64} in the bundle does not hash to its name/]] as const) {
    const r = await importFrom(bundle)
    t.equal(r.code, 1, `${bundle.split('/').pop()}: refused`)
    t.match(r.stderr, why, 'naming what is wrong')
    t.match(r.stderr, /nothing published/)
    t.same(await siteTags('upstream.test/test/lies'), [], 'no tag appeared')
  }
  const escaping = variant('escaping', d => {
    // a part named outside the bundle's folder is never read
    const m = JSON.parse(readFileSync(join(d, 'bundle.json'), 'utf8')) as typeof manifest
    m.parts[0]!.file = '../../../etc/passwd'
    writeFileSync(join(d, 'bundle.json'), JSON.stringify(m))
  })
  const escaped = await importFrom(escaping)
  t.equal(escaped.code, 1, 'a part named outside the bundle: refused')
  t.match(escaped.stderr, /a part named "\.\.\/\.\.\/\.\.\/etc\/passwd" is not a file beside it/)
  const garbled = variant('garbled', d => { writeFileSync(join(d, 'bundle.json'), '{"format": "ferry-bundle/1", "parts": ') })
  const notJson = await importFrom(garbled)
  t.equal(notJson.code, 1, 'a bundle.json that is not JSON: refused')
  t.match(notJson.stderr, /bundle\.json: not JSON/)
  t.same(await siteTags('upstream.test/test/lies'), [], 'still no tag')
  const r = await importFrom(good)
  t.equal(r.code, 0, 'the true bundle imports')
  t.same(await siteTags('upstream.test/test/lies'), ['v3'])
})

t.test('kill -9 in the middle of an import, then import again: complete and correct', async t => {
  const huge = await image({ files: { 'huge.bin': randomBytes(48 * 1024 * 1024) } })
  await pushImage(upstream.url, 'test/huge', 'v1', huge)
  writeFileSync(list, stringify({ images: [{ name: 'upstream.test/test/huge', tags: ['v1'] }] }))
  const out = join(dir, 'huge')
  t.equal((await exportTo(out, '--compress', 'zstd', '--part-size', '16MiB')).code, 0)
  t.ok(readdirSync(out).some(f => f.startsWith('bundle.tar.zst.')), 'zstd parts')
  const proc = startProc(process.execPath, [...NODE_FLAGS, CLI, 'import', '--config', site.configPath, out])
  // killed once the parts verified, while the blobs are being staged (48 MiB take longer than noticing the line)
  await proc.waitFor(/verifying every blob/)
  await proc.stop('SIGKILL')
  t.same(await siteTags('upstream.test/test/huge'), [], 'killed before publishing: no tag')
  const r = await importFrom(out)
  t.equal(r.code, 0, r.stderr.slice(-300))
  t.same(await siteTags('upstream.test/test/huge'), ['v1'])
  const layer = huge.layers[0]!
  const pulled = await get(`${site.url}/v2/upstream.test/test/huge/blobs/${layer.digest}`)
  t.equal(createHash('sha256').update(pulled.body).digest('hex'), layer.digest.slice(7), 'the 48 MiB layer, byte for byte')
})

t.test('an import that fills the disk fails saying so, publishes nothing and leaves no partial blob', async t => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs: run the tests as root (CI does)')
  const layerBytes = randomBytes(8 * 1024 * 1024)
  const full = await image({ files: { 'full.bin': layerBytes } })
  await pushImage(upstream.url, 'test/full', 'v1', full)
  writeFileSync(list, stringify({ images: [{ name: 'upstream.test/test/full', tags: ['v1'] }] }))
  const out = join(dir, 'full')
  t.equal((await exportTo(out)).code, 0)
  // a site whose whole data folder is 4 MiB: the 8 MiB layer cannot be staged
  const data = scratchDir('ferry-import-full-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', data])
  t.teardown(() => { execFileSync('umount', ['-l', data]) })
  const small = await startFerry({ data, config: { listen: `127.0.0.1:${await freePort()}`, upstreams: [], hosted: [{ prefix: 'upstream.test/' }] } })
  t.teardown(() => small.stop())
  const r = await importFrom(out, small)
  t.equal(r.code, 1, 'refused')
  t.match(r.stderr, /refused, nothing published: blob sha256:[0-9a-f]{64} could not be staged on this region's disk: ENOSPC/, 'saying the disk is full')
  const tags = await get(`${small.url}/v2/upstream.test/test/full/tags/list`)
  t.same(tags.status === 200 ? tags.json<{ tags: string[] | null }>().tags ?? [] : [], [], 'no tag appeared')
  const partials = execFileSync('find', [data, '-name', '*.partial'], { encoding: 'utf8' }).trim()
  t.equal(partials, '', 'no partial blob left behind')
  const staged = execFileSync('find', [join(data, 'tmp'), '-type', 'f', '-size', '+0'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)
  for (const f of staged) t.equal(createHash('sha256').update(readFileSync(f)).digest('hex'), f.split('/').pop(), `a staged blob is whole: ${f.split('/').pop()!.slice(0, 12)}`)
})

t.test('an export onto a full disk fails saying so and writes no bundle.json', async t => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs: run the tests as root (CI does)')
  writeFileSync(list, stringify({ images: [{ name: 'upstream.test/test/big', tags: ['v1'] }] }))
  const out = scratchDir('ferry-export-full-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', out])
  t.teardown(() => { execFileSync('umount', ['-l', out]) })
  const r = await exportTo(out)
  t.not(r.code, 0, 'it fails')
  t.match(r.stderr, /ferry export: refused: the bundle could not be written to .*ENOSPC/, 'saying the disk is full')
  t.notMatch(r.stderr, /\n\s+at /, 'in a sentence, not a stack trace')
  t.notOk(readdirSync(out).includes('bundle.json'), 'no bundle.json: nothing claims to be a bundle')
})

t.test('prune only when asked, and said first: --prune lists, --prune --yes removes', async t => {
  writeFileSync(list, stringify({ images: [{ name: 'upstream.test/test/oci', tags: ['v2'] }] }))
  const out = join(dir, 'only-v2')
  t.equal((await exportTo(out)).code, 0)
  const plain = await importFrom(out)
  t.equal(plain.code, 0)
  t.equal((plain.report as { pruned?: unknown }).pruned, undefined, 'no prune without the flag')
  t.same(await siteTags('upstream.test/test/oci'), ['v1', 'v2'], 'nothing removed')
  const shown = await ferryCli(['import', '--config', site.configPath, '--prune', out])
  t.equal(shown.code, 0)
  t.same((JSON.parse(shown.stdout) as { pruned: unknown }).pruned, { removed: false, tags: [{ repository: 'upstream.test/test/oci', tag: 'v1' }] }, 'what would go is said')
  t.match(shown.stderr, /would prune/)
  t.same(await siteTags('upstream.test/test/oci'), ['v1', 'v2'], 'and nothing went')
  const done = await ferryCli(['import', '--config', site.configPath, '--prune', '--yes', out])
  t.equal(done.code, 0)
  t.same(await siteTags('upstream.test/test/oci'), ['v2'], 'with --yes, v1 is gone')
})
