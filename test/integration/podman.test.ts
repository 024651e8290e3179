// Podman with ferry as its registries.conf mirror, the way the README tells
// users to set it up: a mirror location with a path, which ferry routes by
// prefix. The fallback location is a dead loopback port, so only ferry can
// serve the pull. Podman runs in a private mount namespace with its own
// storage, so it leaves nothing behind on the machine.
import { execFile } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { startFerry } from '../helpers/ferry.ts'
import { image, pushImage } from '../helpers/images.ts'
import { requireBinary, startRegistry } from '../helpers/registry.ts'
import { scratchDir } from '../helpers/procs.ts'

const run = promisify(execFile)

t.test('podman pulls through ferry as a path mirror', async t => {
  requireBinary('podman', 'podman')
  requireBinary('unshare', 'util-linux')
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const img = await image({ files: { 'hello.txt': 'hello from podman\n' } })
  await pushImage(upstream.url, 'team/app', 'v1', img)
  const ferry = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, prefix: 'upstream.test', default: true }] } })
  t.teardown(() => ferry.stop())

  const dir = scratchDir('ferry-podman-')
  for (const sub of ['root', 'run', 'tmp', 'varlib']) mkdirSync(join(dir, sub))
  const conf = join(dir, 'registries.conf')
  writeFileSync(conf, [
    '[[registry]]', 'prefix = "upstream.test"', 'location = "127.0.0.1:1"', '',
    '[[registry.mirror]]', `location = "${ferry.host}/upstream.test"`, 'insecure = true', '',
  ].join('\n'))
  const podman = `CONTAINERS_REGISTRIES_CONF=${conf} podman --root ${dir}/root --runroot ${dir}/run --tmpdir ${dir}/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file`
  const script = [
    'set -e',
    'mount -t tmpfs tmpfs /run',
    'mkdir -p /var/lib/containers',
    `mount --bind ${dir}/varlib /var/lib/containers`,
    `${podman} pull upstream.test/team/app:v1`,
    `${podman} images --digests --format '{{.Repository}}:{{.Tag}} {{.Digest}}'`,
  ].join('\n')
  const { stdout } = await run('unshare', ['-m', 'bash', '-c', script], { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 })
  t.match(stdout, `upstream.test/team/app:v1 ${img.manifest.digest}`, 'podman has the image with the upstream digest')
  const seen = (await ferry.waitForLogs(l => l.msg === 'request' && l.path === `/v2/upstream.test/team/app/blobs/${img.layers[0]!.digest}`, 1))
  t.equal(seen.length, 1, 'the layer came through ferry, under the mirror path prefix')
  t.equal(upstream.count('GET', `/v2/team/app/blobs/${img.layers[0]!.digest}`), 1, 'the prefix was stripped for the upstream')
})
