// Real clients pulling through ferry: skopeo, and containerd with ferry as
// its hosts.toml mirror (the ?ns= path).
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'

import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import type { Ferry } from '../helpers/ferry.ts'
import { digestOf } from '../helpers/images.ts'
import { startContainerd } from '../helpers/containerd.ts'
import { requireBinary, type Registry } from '../helpers/registry.ts'
import { startSeededFerry, type Seeded } from '../helpers/seed.ts'
import { scratchDir } from '../helpers/procs.ts'

const run = promisify(execFile)

let upstream: Registry
let ferry: Ferry
let seeded: Seeded
let stop: (() => Promise<void>) | undefined

t.before(async () => { ({ upstream, ferry, seeded, stop } = await startSeededFerry()) })
t.teardown(() => stop?.())

async function skopeo (...args: string[]): Promise<string> {
  requireBinary('skopeo', 'skopeo')
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' }) as unknown as { stdout: Buffer }
  return stdout.toString('latin1')
}

t.test('skopeo inspect --raw through ferry gives the upstream manifest bytes for every image', async t => {
  for (const [ref, want] of [
    ['test/oci:v1', seeded.oci.manifest],
    ['test/docker:v1', seeded.docker.manifest],
    ['test/multi:v1', seeded.multi],
    [`test/oci@${seeded.sbom.manifest.digest}`, seeded.sbom.manifest],
  ] as const) {
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ferry.host}/${ref}`)
    t.equal(digestOf(Buffer.from(raw, 'latin1')), want.digest, ref)
  }
})

t.test('skopeo copy --all --preserve-digests of the index', async t => {
  const dir = scratchDir('ferry-skopeo-')
  await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${ferry.host}/test/multi:v1`, `oci:${dir}:v1`)
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }
  t.equal(index.manifests[0]?.digest, seeded.multi.digest, 'the copied index has the upstream digest')
  for (const img of [seeded.amd64, seeded.arm64]) {
    for (const b of [img.manifest, img.config, ...img.layers]) {
      const bytes = readFileSync(join(dir, 'blobs', 'sha256', b.digest.slice(7)))
      t.equal(digestOf(bytes), b.digest, `${img.platform.architecture} ${b.mediaType}`)
    }
  }
})

t.test('skopeo list-tags through ferry', async t => {
  const out = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${ferry.host}/test/oci`)) as { Tags: string[] }
  t.ok(out.Tags.includes('v1'))
  t.ok(out.Tags.includes(seeded.oci.manifest.digest.replace(':', '-')), 'the referrers tag is listed too')
})

t.test('containerd pulls a non-default platform with ferry as its hosts.toml mirror', async t => {
  const { sock, hosts, stop } = await startContainerd({ [upstream.host]: [ferry.url] })
  t.teardown(stop)

  const before = ferry.logs().length
  const ref = `${upstream.host}/test/multi:v1`
  const { stdout } = await run('ctr', ['--address', sock, 'images', 'pull', '--hosts-dir', hosts, '--platform', 'linux/arm64', '--snapshotter', 'native', ref], { maxBuffer: 16 * 1024 * 1024 })
  t.match(stdout, /done/)
  const ls = (await run('ctr', ['--address', sock, 'images', 'ls'])).stdout
  t.match(ls, new RegExp(`${ref.replace(/[.]/g, '\\.')}\\s+\\S+\\s+${seeded.multi.digest}`), 'the image is the upstream index')
  const content = (await run('ctr', ['--address', sock, 'content', 'ls'])).stdout
  for (const b of seeded.arm64.layers) t.match(content, b.digest, 'arm64 layer fetched')
  for (const b of seeded.amd64.layers) t.notMatch(content, b.digest, 'amd64 layer not fetched')
  await ferry.waitForLogs(l => l.msg === 'request' && l.path === `/v2/test/multi/blobs/${seeded.arm64.layers[0]!.digest}`, 1)
  const seen = ferry.logs().slice(before).filter(l => l.msg === 'request').map(l => `${String(l.method)} ${String(l.path)} ${String(l.ns)} ${String(l.status)}`)
  t.ok(seen.includes(`HEAD /v2/test/multi/manifests/v1 ${upstream.host} 200`), 'resolved the tag through ferry, with ?ns=')
  t.ok(seen.includes(`GET /v2/test/multi/blobs/${seeded.arm64.layers[0]!.digest} ${upstream.host} 200`), 'pulled the layer through ferry')
  const snaps = (await run('ctr', ['--address', sock, 'snapshots', '--snapshotter', 'native', 'ls'])).stdout
  t.ok(snaps.split('\n').length > 1, 'unpacked into a snapshot')
})
